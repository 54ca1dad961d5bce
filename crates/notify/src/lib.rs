//! Telling people (issue 15): the carriers of buildmesh-core's notifiers.
//!
//! `buildmesh_core::notify` decides what is sent, when, and what to
//! record; this crate renders a message ([`message::Notice`]) and carries
//! it: mail over SMTP ([`smtp`]), webhooks with CloudEvents, Slack or
//! Matrix bodies ([`webhook`]), IRC ([`irc`]) and commit statuses on
//! GitHub, Gitea and Forgejo ([`forge`]). [`record`] keeps what was
//! delivered on disk. Nothing here decides anything: a delivery either
//! succeeds or returns the [`Error`] the notifier's backoff retries.

pub mod forge;
pub mod irc;
pub mod message;
pub mod record;
pub mod smtp;
pub mod webhook;

use std::path::PathBuf;
use std::time::Duration;

/// Why a delivery (or a notifier's setup) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The SMTP server refused, or could not be reached.
    #[error("mail: {0}")]
    Smtp(String),
    /// A mail address does not parse.
    #[error("{0:?} is not a mail address: {1}")]
    Address(String, String),
    /// An HTTP request could not be made or was answered with an error.
    #[error("http: {0}")]
    Http(String),
    /// The receiver answered with a status that is not 2xx.
    #[error("the receiver answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The IRC server refused, or could not be reached.
    #[error("irc: {0}")]
    Irc(String),
    /// The record of what was sent cannot be read or written.
    #[error("the record {0} cannot be written: {1}")]
    Record(PathBuf, std::io::Error),
}

/// How long one HTTP delivery may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes of an error answer's body kept for the log.
const ERROR_BODY_BYTES_MAX: usize = 300;

/// A client for `url`: http(s) only, a timeout, no redirects (a status or
/// a webhook that moved is a configuration to fix, not to follow), and no
/// proxy for loopback (a proxy cannot reach this machine's servers).
fn http_client(url: &str) -> Result<reqwest::Client, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Error::Http(format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Http(format!("{url:?} is not an http(s) URL")));
    }
    let loopback = is_loopback_host(parsed.host_str().unwrap_or(""));
    let mut builder = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("buildmesh/", env!("CARGO_PKG_VERSION")));
    if loopback {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| Error::Http(e.to_string()))
}

/// Whether `host` (a name, an address, or `[::1]`) is this machine:
/// `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `url` parses and names a host on this machine: a secret sent
/// there in clear never crosses a network.
pub fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| is_loopback_host(u.host_str().unwrap_or("")))
}

/// Ok for a 2xx answer; the status and the start of the body otherwise.
async fn expect_success(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), Error> {
    // Without the URL: a Slack or Discord webhook URL is itself a secret.
    let response = sent.map_err(|e| Error::Http(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let mut cut: String = body.chars().take(ERROR_BODY_BYTES_MAX).collect();
    cut.retain(|c| !c.is_control());
    Err(Error::Status {
        status: status.as_u16(),
        body: cut,
    })
}
