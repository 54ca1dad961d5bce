//! Webhooks: a JSON body POSTed (or, for Matrix, PUT) to a URL.

use crate::{Error, http_client, message::Notice};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header that carries the body's HMAC-SHA256 when a secret is set,
/// as `sha256=` and 64 hex digits (GitHub's convention, so receivers that
/// check GitHub's webhooks check ours the same way).
pub const SIGNATURE_HEADER: &str = "x-buildmesh-signature-256";

/// The body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A CloudEvents 1.0 event in structured mode
    /// (`application/cloudevents+json`), the data as docs/notify.md
    /// documents.
    CloudEvents,
    /// A Slack incoming-webhook body (`{"text": …}`).
    Slack,
    /// A Matrix `m.room.message`, PUT to `<url>/<event id>` (the URL is a
    /// room's `/send/m.room.message` endpoint; the event id is the
    /// transaction id, so a resend is dropped by the homeserver).
    Matrix,
}

/// One webhook notifier.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where to send.
    pub url: String,
    /// The body's shape.
    pub format: Format,
    /// Signs the body (see [`SIGNATURE_HEADER`]).
    pub secret: Option<Vec<u8>>,
    /// Sent as `Authorization: Bearer …` (a Matrix access token, say).
    pub token: Option<String>,
    /// The CloudEvents `source`: the node's public URL, or its key.
    pub source: String,
}

/// Sends to one webhook.
#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
    config: WebhookConfig,
}

impl Webhook {
    /// A webhook sender; fails if the URL is not http(s).
    pub fn new(config: WebhookConfig) -> Result<Webhook, Error> {
        Ok(Webhook {
            client: http_client(&config.url)?,
            config,
        })
    }

    /// Sends `notice`; any answer but 2xx is a failure (retried).
    pub async fn send(&self, notice: &Notice) -> Result<(), Error> {
        let (request, body, kind) = match self.config.format {
            Format::CloudEvents => (
                self.client.post(&self.config.url),
                notice.cloudevent(&self.config.source),
                "application/cloudevents+json",
            ),
            Format::Slack => (
                self.client.post(&self.config.url),
                notice.slack(),
                "application/json",
            ),
            Format::Matrix => {
                let url = format!("{}/{}", self.config.url.trim_end_matches('/'), notice.id());
                (self.client.put(url), notice.matrix(), "application/json")
            }
        };
        let body = serde_json::to_vec(&body).map_err(|e| Error::Http(e.to_string()))?;
        let mut request = request.header("content-type", kind);
        if let Some(secret) = &self.config.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        }
        crate::expect_success(request.body(body).send().await).await
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
