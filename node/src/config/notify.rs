//! The `[[notify]]` and `[[status]]` tables: who is told of what, and
//! which forges get commit statuses (docs/notify.md).

use anyhow::{Context, Result, bail};
use buildmesh_core::notify::{EventKind, NotifierConfig};
use buildmesh_core::view::parse_threshold;
use buildmesh_notify::forge::ForgeKind;
use buildmesh_notify::irc::IrcConfig;
use buildmesh_notify::smtp::{Security, SmtpConfig};
use buildmesh_notify::webhook::Format;
use buildmesh_notify::{is_loopback_host, is_loopback_url};
use buildmesh_protocol::{THRESHOLDS_MAX, Threshold};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The longest age bound an operator may set: a week. The record of what
/// was sent keeps the last 10,000 messages, far more than a week holds.
const MAX_AGE_SECS_MAX: u64 = 7 * 24 * 3600;

/// A `[[notify]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileNotify {
    name: String,
    kind: String,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(default)]
    branches: Vec<String>,
    events: Option<Vec<String>>,
    #[serde(default)]
    flaky_platforms: Vec<String>,
    #[serde(default)]
    thresholds: Vec<String>,
    max_age_secs: Option<u64>,
    per_minute: Option<u32>,
    settle_secs: Option<u64>,
    // mail
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_security: Option<String>,
    smtp_user: Option<String>,
    smtp_password_file: Option<PathBuf>,
    from: Option<String>,
    #[serde(default)]
    to: Vec<String>,
    // webhook
    url: Option<String>,
    format: Option<String>,
    secret_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    // irc
    irc_host: Option<String>,
    irc_port: Option<u16>,
    irc_tls: Option<bool>,
    nick: Option<String>,
    channel: Option<String>,
    channel_key_file: Option<PathBuf>,
    password_file: Option<PathBuf>,
    // Named only to refuse them with a clear message: secrets are files.
    smtp_password: Option<toml::Value>,
    secret: Option<toml::Value>,
    token: Option<toml::Value>,
    password: Option<toml::Value>,
}

/// A `[[status]]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStatus {
    project: String,
    forge: Option<String>,
    api: Option<String>,
    repository: Option<String>,
    token_file: PathBuf,
    max_age_secs: Option<u64>,
    per_minute: Option<u32>,
    token: Option<toml::Value>,
}

/// A validated notifier: what it tells of and how.
#[derive(Debug, Clone)]
pub struct NotifySpec {
    /// Its name (its record file is named after it).
    pub name: String,
    /// The projects it covers, by name, id or id prefix (empty: all).
    pub projects: Vec<String>,
    /// The branches it covers (empty: each project's declared branches).
    pub branches: Vec<String>,
    /// The kinds of event it tells of.
    pub kinds: BTreeSet<EventKind>,
    /// Platforms whose lone failures are not called broken.
    pub flaky: BTreeSet<String>,
    /// The operator's thresholds, told as regressions on top of each
    /// project's own.
    pub thresholds: Vec<Threshold>,
    /// Age bound, rate, retries.
    pub notifier: NotifierConfig,
    /// How long an event of a row not yet decided waits for the row's
    /// other platforms, ms.
    pub settle_ms: u64,
    /// How it delivers.
    pub carrier: Carrier,
}

/// How a notifier delivers.
#[derive(Debug, Clone)]
pub enum Carrier {
    /// Mail over SMTP.
    Mail(SmtpConfig),
    /// A webhook.
    Webhook {
        /// Where.
        url: String,
        /// The body's shape.
        format: Format,
        /// Signs bodies.
        secret: Option<Vec<u8>>,
        /// Sent as a bearer token.
        token: Option<String>,
    },
    /// An IRC channel.
    Irc(IrcConfig),
}

/// A validated `[[status]]`: one project's commit statuses.
#[derive(Debug, Clone)]
pub struct StatusSpec {
    /// The project, by name, id or id prefix.
    pub project: String,
    /// The dialect, if given (else read from the repository URL).
    pub forge: Option<ForgeKind>,
    /// The API root, if given.
    pub api: Option<String>,
    /// `owner/name`, if given.
    pub repository: Option<String>,
    /// The token.
    pub token: String,
    /// Age bound, rate, retries.
    pub notifier: NotifierConfig,
}

impl FileNotify {
    /// The secret files it names, for the sandbox to hide.
    pub(super) fn secret_files(&self) -> impl Iterator<Item = &PathBuf> {
        [
            &self.smtp_password_file,
            &self.secret_file,
            &self.token_file,
            &self.channel_key_file,
            &self.password_file,
        ]
        .into_iter()
        .flatten()
    }

    pub(super) fn validate(self) -> Result<NotifySpec> {
        let name = self.name.clone();
        let context = || format!("[[notify]] {name:?}");
        self.validate_inner().with_context(context)
    }

    fn validate_inner(self) -> Result<NotifySpec> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            bail!("name must be 1-64 letters, digits, '-' or '_' (it names the record file)");
        }
        for (field, given) in [
            ("smtp_password", &self.smtp_password),
            ("secret", &self.secret),
            ("token", &self.token),
            ("password", &self.password),
        ] {
            if given.is_some() {
                bail!(
                    "{field} is never written in the config: put it in a file readable only by \
                     the node and give {field}_file"
                );
            }
        }
        let kinds = event_kinds(self.events.as_deref())?;
        let thresholds = self
            .thresholds
            .iter()
            .map(|t| parse_threshold(t))
            .collect::<Result<Vec<_>, _>>()?;
        if thresholds.len() > THRESHOLDS_MAX {
            bail!("thresholds: at most {THRESHOLDS_MAX}");
        }
        let notifier = notifier_config(self.max_age_secs, self.per_minute, 20)?;
        let settle_secs = self.settle_secs.unwrap_or(300);
        if settle_secs > 24 * 3600 {
            bail!("settle_secs must be at most 86400 (a day)");
        }
        let carrier = match self.kind.as_str() {
            "mail" => Carrier::Mail(self.mail()?),
            "webhook" => self.webhook()?,
            "irc" => Carrier::Irc(self.irc()?),
            other => bail!("kind {other:?} is not one of mail, webhook, irc"),
        };
        Ok(NotifySpec {
            name: self.name,
            projects: self.projects,
            branches: self.branches,
            kinds,
            flaky: self.flaky_platforms.into_iter().collect(),
            thresholds,
            notifier,
            settle_ms: settle_secs * 1000,
            carrier,
        })
    }

    fn mail(&self) -> Result<SmtpConfig> {
        let host = required(&self.smtp_host, "smtp_host", "mail")?;
        let security = match self.smtp_security.as_deref().unwrap_or("starttls") {
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            "plain" if is_loopback_host(&host) => Security::Plain,
            "plain" => bail!(
                "smtp_security = \"plain\" is only for a server on this machine (127.0.0.1, \
                 ::1, localhost): mail and password would cross the network in clear; use \
                 \"starttls\" (port 587) or \"tls\" (port 465)"
            ),
            other => bail!("smtp_security {other:?} is not one of starttls, tls, plain"),
        };
        let port = self.smtp_port.unwrap_or(match security {
            Security::Tls => 465,
            Security::StartTls => 587,
            Security::Plain => 25,
        });
        let credentials = match (&self.smtp_user, &self.smtp_password_file) {
            (Some(user), Some(file)) => Some((user.clone(), read_secret(file, "smtp password")?)),
            (None, None) => None,
            _ => bail!("smtp_user and smtp_password_file go together"),
        };
        let from = required(&self.from, "from", "mail")?;
        if self.to.is_empty() {
            bail!("a mail notifier needs at least one address in to = [...]");
        }
        let config = SmtpConfig {
            host,
            port,
            security,
            credentials,
            from,
            to: self.to.clone(),
        };
        // Addresses are checked now, not at the first broken build.
        buildmesh_notify::smtp::check_addresses(&config)?;
        Ok(config)
    }

    fn webhook(&self) -> Result<Carrier> {
        let url = required(&self.url, "url", "webhook")?;
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            bail!("url {url:?} must start with https:// (or http:// on a trusted network)");
        }
        let format = match self.format.as_deref().unwrap_or("cloudevents") {
            "cloudevents" => Format::CloudEvents,
            "slack" => Format::Slack,
            "matrix" => Format::Matrix,
            other => bail!("format {other:?} is not one of cloudevents, slack, matrix"),
        };
        let secret = match &self.secret_file {
            Some(file) => Some(read_secret(file, "webhook secret")?.into_bytes()),
            None => None,
        };
        let signed_or_secret = self.token_file.is_some();
        if signed_or_secret && !url.starts_with("https://") && !is_loopback_url(&url) {
            bail!("url {url:?} carries a token: it must be https:// (or on this machine)");
        }
        let token = match &self.token_file {
            Some(file) => Some(read_secret(file, "token")?),
            None if format == Format::Matrix => {
                bail!("a matrix webhook needs token_file (the bot's access token)")
            }
            None => None,
        };
        Ok(Carrier::Webhook {
            url,
            format,
            secret,
            token,
        })
    }

    fn irc(&self) -> Result<IrcConfig> {
        let host = required(&self.irc_host, "irc_host", "irc")?;
        let tls = self.irc_tls.unwrap_or(true);
        let channel = required(&self.channel, "channel", "irc")?;
        if !channel.starts_with(['#', '&']) || channel.contains([' ', ',', '\x07']) {
            bail!("channel {channel:?} must start with # and hold no space or comma");
        }
        let nick = self.nick.clone().unwrap_or_else(|| "buildmesh".into());
        if nick.is_empty() || nick.len() > 30 || nick.contains([' ', '\r', '\n', ':']) {
            bail!("nick {nick:?} must be 1-30 characters without spaces or ':'");
        }
        if !tls && self.password_file.is_some() && !is_loopback_host(&host) {
            bail!("the server password would cross the network in clear: set irc_tls = true");
        }
        let secret = |file: &Option<PathBuf>, what| -> Result<Option<String>> {
            file.as_deref().map(|f| read_secret(f, what)).transpose()
        };
        Ok(IrcConfig {
            host,
            port: self.irc_port.unwrap_or(if tls { 6697 } else { 6667 }),
            tls,
            nick,
            channel,
            channel_key: secret(&self.channel_key_file, "channel key")?,
            password: secret(&self.password_file, "server password")?,
        })
    }
}

impl FileStatus {
    pub(super) fn secret_file(&self) -> &PathBuf {
        &self.token_file
    }

    pub(super) fn validate(self) -> Result<StatusSpec> {
        let project = self.project.clone();
        (|| {
            if self.token.is_some() {
                bail!("token is never written in the config: give token_file");
            }
            let forge = match self.forge.as_deref() {
                None => None,
                Some("github") => Some(ForgeKind::GitHub),
                Some("gitea" | "forgejo") => Some(ForgeKind::Gitea),
                Some(other) => bail!("forge {other:?} is not one of github, gitea, forgejo"),
            };
            if forge == Some(ForgeKind::Gitea) && self.api.is_none() {
                bail!("a gitea or forgejo forge needs api = \"https://HOST/api/v1\"");
            }
            if let Some(api) = &self.api
                && !api.starts_with("https://")
                && !is_loopback_url(api)
            {
                bail!("api {api:?} gets the token: it must be https:// (or on this machine)");
            }
            Ok(StatusSpec {
                project: self.project,
                forge,
                api: self.api,
                repository: self.repository,
                token: read_secret(&self.token_file, "forge token")?,
                notifier: notifier_config(self.max_age_secs, self.per_minute, 60)?,
            })
        })()
        .with_context(|| format!("[[status]] for project {project:?}"))
    }
}

fn event_kinds(given: Option<&[String]>) -> Result<BTreeSet<EventKind>> {
    let Some(given) = given else {
        return Ok(BTreeSet::from([
            EventKind::Broken,
            EventKind::Fixed,
            EventKind::Regression,
            EventKind::Disagree,
            EventKind::Flaky,
            EventKind::Differs,
        ]));
    };
    given
        .iter()
        .map(|name| {
            EventKind::ALL
                .into_iter()
                .find(|k| k.name() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "event {name:?} is not one of broken, fixed, still_failing, decided, regression, disagree, flaky, differs"
                    )
                })
        })
        .collect()
}

fn notifier_config(
    max_age_secs: Option<u64>,
    per_minute: Option<u32>,
    per_minute_default: u32,
) -> Result<NotifierConfig> {
    let max_age_secs = max_age_secs.unwrap_or(3600);
    if max_age_secs == 0 || max_age_secs > MAX_AGE_SECS_MAX {
        bail!("max_age_secs must be between 1 and {MAX_AGE_SECS_MAX} (a week)");
    }
    let per_minute = per_minute.unwrap_or(per_minute_default);
    if per_minute == 0 || per_minute > 600 {
        bail!("per_minute must be between 1 and 600");
    }
    Ok(NotifierConfig {
        max_age_ms: max_age_secs * 1000,
        per_minute,
        ..NotifierConfig::default()
    })
}

fn required(value: &Option<String>, field: &str, kind: &str) -> Result<String> {
    match value {
        Some(value) if !value.is_empty() => Ok(value.clone()),
        _ => bail!("a {kind} notifier needs {field}"),
    }
}

/// A secret: the file's content without surrounding whitespace.
fn read_secret(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(secret.to_owned())
}
