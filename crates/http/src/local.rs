//! Requests that change something (bans, force builds) are obeyed only
//! from this machine, and only when no web page elsewhere sent them.
//!
//! A loopback TCP peer is not enough: a page the operator visits can post
//! to `http://127.0.0.1:7878` (cross-site request forgery), and a hostile
//! domain can be made to resolve to 127.0.0.1 (DNS rebinding). So the
//! `Host` must name a loopback host and an `Origin`, if the client sent
//! one (browsers do on such requests), must be a loopback origin. Behind a
//! reverse proxy on the same machine every client looks local: do not put
//! these endpoints behind one.

use crate::error;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;

/// `Ok` if the request may change things; else the 403 to answer.
pub(crate) fn from_this_machine(
    client: &SocketAddr,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    let refuse = |why: &str| Box::new(error(StatusCode::FORBIDDEN, why));
    if !client.ip().is_loopback() {
        return Err(refuse("this is done from the node's own machine only"));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host) {
        return Err(refuse(
            "the Host header must name this machine (127.0.0.1, localhost or [::1])",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        if !is_loopback_host(host) {
            return Err(refuse(
                "refused: the request came from a web page of another site",
            ));
        }
    }
    Ok(())
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
fn is_loopback_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().map(|h| format!("[{h}]")),
        None => authority.split(':').next().map(str::to_owned),
    };
    matches!(host.as_deref(), Some("127.0.0.1" | "localhost" | "[::1]"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::HOST,
            HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("x")),
        );
        if let Some(origin) = origin {
            map.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        map
    }

    #[test]
    fn only_this_machine_and_no_foreign_page() {
        let local: SocketAddr = ([127, 0, 0, 1], 5000).into();
        let remote: SocketAddr = ([127, 0, 0, 1], 5000).into();
        assert!(from_this_machine(&local, &headers("127.0.0.1:7878", None)).is_ok());
        assert!(
            from_this_machine(
                &local,
                &headers("localhost:7878", Some("http://localhost:7878"))
            )
            .is_ok()
        );
        assert!(from_this_machine(&local, &headers("[::1]:7878", None)).is_ok());
        // DNS rebinding: a hostile name that resolves here.
        assert!(from_this_machine(&remote, &headers("evil.example:7878", None)).is_err());
        // A page elsewhere posting to the local node.
        assert!(
            from_this_machine(
                &local,
                &headers("127.0.0.1:7878", Some("http://evil.example"))
            )
            .is_err()
        );
        assert!(from_this_machine(&local, &headers("127.0.0.1:7878", Some("null"))).is_err());
        assert!(from_this_machine(&local, &headers("127.0.0.1.evil.example", None)).is_err());
    }
}
