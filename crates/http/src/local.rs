//! Requests that change something (bans, force builds) must come from
//! this machine, to this node by a loopback name, and not from a page of
//! another origin. This alone grants nothing: the operator token does
//! (see [`crate::operator`]). It still matters:
//!
//! - the `Host` must name a loopback host: a hostile domain can be made to
//!   resolve to 127.0.0.1 (DNS rebinding);
//! - an `Origin`, if the client sent one (browsers do on posts), must be
//!   this very origin, `http://` plus the `Host`: a page on another
//!   loopback port is another origin, though the same site;
//! - the client must be on a loopback address. The token is the real gate,
//!   so this is a choice, not a need: HTTP is plain text, and a token sent
//!   across a network could be read on the way, so it is only ever taken
//!   from this machine (an operator elsewhere tunnels, e.g. `ssh -L`).
//!   It costs nothing, since a remote client must name a loopback `Host`
//!   anyway. Behind a reverse proxy on this machine every client looks
//!   local, which the token makes harmless.

use crate::conn::LocalAddr;
use crate::error;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// `Ok` if the request may go on to the operator check; else why not.
pub(crate) fn from_this_machine(
    client: &SocketAddr,
    headers: &HeaderMap,
) -> Result<(), &'static str> {
    if !client.ip().is_loopback() {
        return Err("this is done from the node's own machine only");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host) {
        return Err("the Host header must name this machine (127.0.0.1, localhost or [::1])");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host));
        if !same {
            return Err("refused: the request came from a web page of another origin");
        }
    }
    Ok(())
}

/// The hosts a node answers to: what its operator listed, beside the
/// address each connection came in on and loopback names.
#[derive(Debug)]
pub(crate) struct KnownHosts {
    /// The bound address, for a request that does not say which address
    /// it came in on.
    bound: SocketAddr,
    /// Configured names, lower-case, without port or brackets.
    names: Vec<String>,
}

impl KnownHosts {
    pub(crate) fn new(bound: SocketAddr, names: &[String]) -> Self {
        KnownHosts {
            bound,
            names: names.iter().map(|n| host_name(n)).collect(),
        }
    }

    /// Whether a request that came in on `local` may name `authority`:
    /// a loopback name (a page cannot make a browser send one unless it is
    /// served from this machine), the very address the client connected
    /// to (with a wildcard bind, one of the machine's own), or a
    /// configured name. Any other name may be a hostile domain made to
    /// resolve here (DNS rebinding).
    fn allow(&self, authority: &str, local: IpAddr) -> bool {
        let name = host_name(authority);
        if matches!(name.as_str(), "127.0.0.1" | "localhost" | "::1") {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>()
            && !local.is_unspecified()
            && ip.to_canonical() == local.to_canonical()
        {
            return true;
        }
        self.names.contains(&name)
    }
}

/// Every request must name, in `Host`, a host this node serves (see
/// [`KnownHosts::allow`]): a web page on a hostile domain that resolves
/// to the node's address (DNS rebinding) would otherwise read the node's
/// API and pages from a browser that can reach it.
pub(crate) async fn known_host(
    State(hosts): State<Arc<KnownHosts>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let local = request
        .extensions()
        .get::<LocalAddr>()
        .map_or(hosts.bound, |l| l.0);
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if host.is_some_and(|h| hosts.allow(h, local.ip())) {
        return next.run(request).await;
    }
    error(
        StatusCode::MISDIRECTED_REQUEST,
        "the Host header names no host this node serves: use its address, localhost, or \
         a name its operator lists in http_hosts (--http-host NAME) (a page of another site \
         cannot read the node)",
    )
}

/// The host of an authority (`name:port`, `[v6]:port`), lower-case,
/// without port or brackets.
fn host_name(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None if authority.matches(':').count() > 1 => authority,
        None => authority.split(':').next().unwrap_or(""),
    };
    host.to_ascii_lowercase()
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
        let remote: SocketAddr = ([192, 0, 2, 1], 5000).into();
        assert!(from_this_machine(&remote, &headers("127.0.0.1:7878", None)).is_err());
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
        assert!(from_this_machine(&local, &headers("evil.example:7878", None)).is_err());
        // A page elsewhere posting to the local node.
        assert!(
            from_this_machine(
                &local,
                &headers("127.0.0.1:7878", Some("http://evil.example"))
            )
            .is_err()
        );
        assert!(from_this_machine(&local, &headers("127.0.0.1:7878", Some("null"))).is_err());
        // A page on another loopback port: the same site, another origin.
        assert!(
            from_this_machine(
                &local,
                &headers("127.0.0.1:7878", Some("http://127.0.0.1:9999"))
            )
            .is_err()
        );
        assert!(
            from_this_machine(
                &local,
                &headers("127.0.0.1:7878", Some("http://localhost:7878"))
            )
            .is_err()
        );
        assert!(from_this_machine(&local, &headers("127.0.0.1.evil.example", None)).is_err());
    }

    #[test]
    fn hosts_are_this_machine_the_address_used_or_configured() {
        let wildcard: SocketAddr = ([0, 0, 0, 0], 7878).into();
        let hosts = KnownHosts::new(wildcard, &["CI.example.org".into(), "[2001:db8::1]".into()]);
        let public: IpAddr = [203, 0, 113, 5].into();
        assert!(hosts.allow("203.0.113.5:7878", public));
        assert!(hosts.allow("203.0.113.5", public));
        assert!(hosts.allow("localhost:7878", public));
        assert!(hosts.allow("ci.example.org:443", public));
        assert!(hosts.allow("[2001:db8::1]:7878", public));
        assert!(hosts.allow("2001:db8::1", public));
        // Another address of the machine than the one used, a rebinding
        // name, or nothing that says which address was used.
        assert!(!hosts.allow("198.51.100.7:7878", public));
        assert!(!hosts.allow("rebound.example:7878", public));
        assert!(!hosts.allow("ci.example.org.rebound.example", public));
        assert!(!hosts.allow("0.0.0.0:7878", wildcard.ip()));
        let v6: IpAddr = "2001:db8::2".parse().unwrap_or(public);
        assert!(hosts.allow("[2001:db8::2]:7878", v6));
        let mapped: IpAddr = "::ffff:203.0.113.5".parse().unwrap_or(public);
        assert!(hosts.allow("203.0.113.5", mapped));
    }
}
