//! `POST /api/v1/hooks/github` and `/api/v1/hooks/gitea`: push webhooks.
//!
//! A forge calls these when someone pushes. The body is checked against the
//! HMAC-SHA256 secret the node was given (GitHub's `X-Hub-Signature-256:
//! sha256=HEX`, Gitea's `X-Gitea-Signature: HEX`); a valid push makes the
//! node's poller fetch at once instead of at its next poll, so the commit is
//! announced within moments. The poller reads the commits from git itself:
//! nothing in the payload is trusted beyond "something was pushed".
//!
//! A pull request event (`X-GitHub-Event: pull_request`, `X-Gitea-Event:
//! pull_request`) opened, synchronized or reopened is passed to the node's
//! announcer as [`Command::PullRequest`]: it fetches `refs/pull/N/head`
//! and announces the head only if it is the commit the event named and
//! the project builds pull requests (see `pull`). One closed is passed as
//! [`Command::PullRequestClosed`]: the node signs a close of it, and its
//! heads are no longer built.

mod gate;
mod pull;

pub(crate) use gate::HookGate;
pub use gate::{DELIVERIES_REMEMBERED, POLL_INTERVAL_MIN};
pub use pull::{PullRequestClosed, PullRequestEvent};

use crate::{AppState, Command, error};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gate::Admit;
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
    let Some(forge) = Forge::named(&forge) else {
        return error(
            StatusCode::NOT_FOUND,
            "webhooks are /api/v1/hooks/github or /gitea",
        );
    };
    if body.len() > HOOK_BYTES_MAX {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "webhook body too large");
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(given) = header(forge.signature_header()) else {
        let name = forge.signature_header();
        return error(StatusCode::UNAUTHORIZED, &format!("no {name} header"));
    };
    let signature = forge.signature_hex(given);
    if !signature.is_some_and(|hex| signature_matches(secret, &body, hex)) {
        return error(
            StatusCode::UNAUTHORIZED,
            &format!(
                "the signature does not match the secret (the header is {})",
                forge.signature_format()
            ),
        );
    }
    let delivery = header(forge.delivery_header()).unwrap_or("");
    if header(forge.event_header()) == Some("pull_request") {
        return pull_request(&state, forge, delivery, &body).await;
    }
    match state.hooks.admit(delivery, std::time::Instant::now()) {
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            &format!(
                "no usable {} header (a forge's delivery id)",
                forge.delivery_header()
            ),
        ),
        Ok(Admit::Replay) => {
            Json(serde_json::json!({ "polling": false, "replay": true })).into_response()
        }
        Ok(Admit::Covered) => Json(serde_json::json!({ "polling": true })).into_response(),
        Ok(Admit::PollNow) => poll(&state).await,
        Ok(Admit::PollAfter(wait)) => {
            let later = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                later.hooks.polled();
                let _ = later.commands.send(Command::Poll).await;
            });
            Json(serde_json::json!({ "polling": true })).into_response()
        }
    }
}

/// A pull request event whose signature checked: replays are answered and
/// not obeyed, actions that build nothing are ignored, and the rest go to
/// the node's announcer.
async fn pull_request(state: &AppState, forge: Forge, delivery: &str, body: &[u8]) -> Response {
    match state.hooks.first_delivery(delivery) {
        Err(_) => {
            let name = forge.delivery_header();
            return error(
                StatusCode::BAD_REQUEST,
                &format!("no usable {name} header (a forge's delivery id)"),
            );
        }
        Ok(false) => {
            return Json(serde_json::json!({ "checking": false, "replay": true })).into_response();
        }
        Ok(true) => {}
    }
    let (answer, command) = match pull::parse(body) {
        Ok(pull::Parsed::Check(event)) => (
            serde_json::json!({ "checking": true, "pull_request": event.number }),
            Command::PullRequest(event),
        ),
        Ok(pull::Parsed::Close(closed)) => (
            serde_json::json!({ "closing": true, "pull_request": closed.number }),
            Command::PullRequestClosed(closed),
        ),
        Ok(pull::Parsed::Ignored(why)) => {
            return Json(serde_json::json!({ "ignored": why })).into_response();
        }
        Err(why) => return error(StatusCode::BAD_REQUEST, &why.to_string()),
    };
    if state.commands.send(command).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    Json(answer).into_response()
}

/// Asks the node to poll now.
async fn poll(state: &AppState) -> Response {
    if state.commands.send(Command::Poll).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    Json(serde_json::json!({ "polling": true })).into_response()
}

/// The forges whose push webhooks the node takes, and their exact headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    GitHub,
    Gitea,
}

impl Forge {
    fn named(name: &str) -> Option<Forge> {
        match name {
            "github" => Some(Forge::GitHub),
            "gitea" => Some(Forge::Gitea),
            _ => None,
        }
    }

    fn signature_header(self) -> &'static str {
        match self {
            Forge::GitHub => "x-hub-signature-256",
            Forge::Gitea => "x-gitea-signature",
        }
    }

    fn delivery_header(self) -> &'static str {
        match self {
            Forge::GitHub => "x-github-delivery",
            Forge::Gitea => "x-gitea-delivery",
        }
    }

    /// The header naming the event (`push`, `pull_request`, ...).
    fn event_header(self) -> &'static str {
        match self {
            Forge::GitHub => "x-github-event",
            Forge::Gitea => "x-gitea-event",
        }
    }

    fn signature_format(self) -> &'static str {
        match self {
            Forge::GitHub => "sha256= and 64 lower-case hex digits",
            Forge::Gitea => "64 lower-case hex digits",
        }
    }

    /// The signature's hex digits if `value` has exactly the forge's
    /// format: GitHub's `sha256=` then 64 lower-case hex digits, Gitea's
    /// 64 lower-case hex digits alone.
    fn signature_hex(self, value: &str) -> Option<&str> {
        let hex = match self {
            Forge::GitHub => value.strip_prefix("sha256=")?,
            Forge::Gitea => value,
        };
        let exact = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        exact.then_some(hex)
    }
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

/// [`pull::parse`], for `crate::fuzzing`.
pub(crate) fn fuzz_parse(body: &[u8]) -> bool {
    pull::parse(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_headers_have_exactly_the_forges_format() {
        let hex = "ab".repeat(32);
        let github = Forge::GitHub;
        assert_eq!(
            github.signature_hex(&format!("sha256={hex}")),
            Some(hex.as_str())
        );
        assert_eq!(github.signature_hex(&hex), None, "no prefix");
        assert_eq!(github.signature_hex(&format!("sha256=sha256={hex}")), None);
        assert_eq!(
            github.signature_hex(&format!("sha256={}", hex.to_uppercase())),
            None
        );
        assert_eq!(github.signature_hex(&format!("SHA256={hex}")), None);
        let gitea = Forge::Gitea;
        assert_eq!(gitea.signature_hex(&hex), Some(hex.as_str()));
        assert_eq!(gitea.signature_hex(&format!("sha256={hex}")), None);
        assert_eq!(gitea.signature_hex(&hex[2..]), None, "too short");
    }

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
