//! `POST /api/v1/hooks/github` and `/api/v1/hooks/gitea`: push webhooks.
//!
//! A forge calls these when someone pushes. The body is checked against the
//! HMAC-SHA256 secret the node was given (GitHub's `X-Hub-Signature-256:
//! sha256=HEX`, Gitea's `X-Gitea-Signature: HEX`); a valid push makes the
//! node's poller fetch at once instead of at its next poll, so the commit is
//! announced within moments. The poller reads the commits from git itself:
//! nothing in the payload is trusted beyond "something was pushed".

use crate::{AppState, Command, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Largest webhook body read: GitHub caps payloads at 25 MB, but a push
/// payload worth polling for is far smaller.
pub const HOOK_BYTES_MAX: usize = 1024 * 1024;

/// A push webhook from `forge` (`github` or `gitea`).
pub(crate) async fn push(
    State(state): State<AppState>,
    Path(forge): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(secret) = state.hook_secret.as_deref() else {
        return error(
            StatusCode::NOT_FOUND,
            "webhooks are off on this node: start it with webhook_secret_file set",
        );
    };
    let header = match forge.as_str() {
        "github" => "x-hub-signature-256",
        "gitea" => "x-gitea-signature",
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "webhooks are /api/v1/hooks/github or /gitea",
            );
        }
    };
    let Some(given) = headers.get(header).and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::UNAUTHORIZED, &format!("no {header} header"));
    };
    if body.len() > HOOK_BYTES_MAX {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "webhook body too large");
    }
    if !signature_matches(secret, &body, given.trim_start_matches("sha256=")) {
        return error(
            StatusCode::UNAUTHORIZED,
            "the signature does not match the secret",
        );
    }
    if state.commands.send(Command::Poll).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    Json(serde_json::json!({ "polling": true })).into_response()
}

/// Whether `given` (hex) is the HMAC-SHA256 of `body` under `secret`,
/// compared in constant time.
pub fn signature_matches(secret: &[u8], body: &[u8], given: &str) -> bool {
    let Ok(given) = hex::decode(given) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_github_example_signature_checks() {
        // GitHub's documented example: secret "It's a Secret to Everybody",
        // payload "Hello, World!".
        let given = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            given
        ));
        assert!(!signature_matches(
            b"another secret",
            b"Hello, World!",
            given
        ));
        assert!(!signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            given
        ));
        assert!(!signature_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "zz"
        ));
    }
}
