//! Mail over SMTP, with lettre.

use crate::{Error, message::Notice};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message as Mail};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP, upgraded with STARTTLS (refused if the server cannot):
    /// port 587.
    StartTls,
    /// TLS from the first byte: port 465.
    Tls,
    /// No encryption: only for a server on this machine (the node's
    /// configuration refuses it for any other host).
    Plain,
}

/// One mail notifier's server and envelope.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The server's host name.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// User name and password, if the server wants them.
    pub credentials: Option<(String, String)>,
    /// The sender (`buildmesh <ci@example.org>`).
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

/// Sends mails through one server, reusing its connections.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

/// Checks every address of `config` (the node checks them at start, not
/// at the first broken build).
pub fn check_addresses(config: &SmtpConfig) -> Result<(), Error> {
    for text in std::iter::once(&config.from).chain(&config.to) {
        text.parse::<Mailbox>()
            .map_err(|e| Error::Address(text.clone(), e.to_string()))?;
    }
    Ok(())
}

impl Mailer {
    /// A mailer for `config`; fails if an address does not parse. Call
    /// it within a tokio runtime (its connection pool runs there).
    pub fn new(config: &SmtpConfig) -> Result<Mailer, Error> {
        let builder = match config.security {
            Security::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| Error::Smtp(e.to_string()))?
            }
            Security::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| Error::Smtp(e.to_string()))?,
            Security::Plain => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(Duration::from_secs(30)));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let address = |text: &str| {
            text.parse::<Mailbox>()
                .map_err(|e| Error::Address(text.to_owned(), e.to_string()))
        };
        Ok(Mailer {
            transport: builder.build(),
            from: address(&config.from)?,
            to: config
                .to
                .iter()
                .map(|t| address(t))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Mails `notice` to every recipient.
    pub async fn send(&self, notice: &Notice) -> Result<(), Error> {
        let mut mail = Mail::builder()
            .from(self.from.clone())
            .subject(notice.subject())
            .header(ContentType::TEXT_PLAIN)
            .message_id(Some(format!("<{}@buildmesh>", notice.id())));
        for to in &self.to {
            mail = mail.to(to.clone());
        }
        let mail = mail
            .body(notice.text())
            .map_err(|e| Error::Smtp(e.to_string()))?;
        self.transport
            .send(mail)
            .await
            .map_err(|e| Error::Smtp(e.to_string()))?;
        Ok(())
    }
}
