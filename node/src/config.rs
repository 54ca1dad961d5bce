//! `buildmesh node` configuration: a TOML file plus flags, validated into
//! one [`NodeConfig`]. Flags win over the file; lists given as flags
//! replace the file's lists.

mod notify;
mod safety;

pub use notify::{Carrier, NotifySpec, StatusSpec};

use crate::cli::NodeArgs;
use crate::data_dir::DataDir;
use anyhow::{Context, Result, bail};
use buildmesh_core::schedule::Cron;
use buildmesh_core::view::Acceptance;
use buildmesh_runner::SandboxConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The TOML file, as written (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<Vec<String>>,
    bootstrap: Option<Vec<String>>,
    http: Option<String>,
    http_hosts: Option<Vec<String>>,
    platforms: Option<Vec<String>>,
    mdns: Option<bool>,
    sync_interval_secs: Option<u64>,
    poll_interval_secs: Option<u64>,
    builds_max: Option<u32>,
    lease_secs: Option<u64>,
    bid_window_ms: Option<u64>,
    allow_local_repositories: Option<bool>,
    webhook_secret_file: Option<PathBuf>,
    maintainer_key: Option<PathBuf>,
    #[serde(default)]
    schedule: Vec<FileSchedule>,
    #[serde(default)]
    accept: safety::FileAccept,
    unsandboxed: Option<bool>,
    /// `false`: build no pull request, even of accepted projects.
    pull_requests: Option<bool>,
    #[serde(default)]
    sandbox: safety::FileSandbox,
    public_url: Option<String>,
    #[serde(default)]
    notify: Vec<notify::FileNotify>,
    #[serde(default)]
    status: Vec<notify::FileStatus>,
}

/// A `[[schedule]]` table of the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchedule {
    project: String,
    branch: String,
    cron: String,
}

/// A scheduled force build: at each time `cron` names, the maintainer key
/// asks for `branch` of `project` (one of its projects, by name) to be
/// built again. The service says when; the node signs.
pub type Schedule = buildmesh_core::service::Scheduled;

/// A node's validated configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the key and the store live.
    pub data_dir: DataDir,
    /// Multiaddrs to listen on.
    pub listen: Vec<String>,
    /// Multiaddrs (ending in `/p2p/<peer id>`) to dial at start.
    pub bootstrap: Vec<String>,
    /// Where to serve HTTP.
    pub http: String,
    /// Names (or addresses) HTTP clients may give as `Host` besides the
    /// address they connect to and loopback names.
    pub http_hosts: Vec<String>,
    /// Platform labels this node builds for.
    pub platforms: Vec<String>,
    /// Whether to discover peers on the LAN by multicast DNS.
    pub mdns: bool,
    /// How often to sync with a random peer.
    pub sync_interval: Duration,
    /// How often to poll watched repositories.
    pub poll_interval: Duration,
    /// Builds this node runs at once.
    pub builds_max: u32,
    /// How long a claim holds a cell unless renewed.
    pub lease: Duration,
    /// How long bids for a cell are collected before the winner is picked.
    pub bid_window: Duration,
    /// Whether repositories on this machine may be watched and built.
    pub allow_local_repositories: bool,
    /// Print announcements, builds and results on the terminal.
    pub report: bool,
    /// The HMAC secret push webhooks are signed with (none: webhooks off).
    pub webhook_secret: Option<Vec<u8>>,
    /// A maintainer key this node signs scheduled force builds with.
    pub maintainer_key: Option<PathBuf>,
    /// Scheduled force builds.
    pub schedules: Vec<Schedule>,
    /// The projects the operator accepted: nothing else is watched or
    /// built here.
    pub acceptance: Acceptance,
    /// Run steps without a sandbox (the operator said so explicitly).
    pub unsandboxed: bool,
    /// How steps are sandboxed.
    pub sandbox: SandboxConfig,
    /// The dashboard's address as people outside reach it
    /// (`https://ci.example.org`), for links in messages and statuses.
    pub public_url: Option<String>,
    /// Who is told of what (`[[notify]]`).
    pub notify: Vec<NotifySpec>,
    /// Which projects' commit statuses go to their forge (`[[status]]`).
    pub statuses: Vec<StatusSpec>,
}

/// Default listen addresses: TCP and QUIC on every interface, port 7070.
pub const DEFAULT_LISTEN: [&str; 2] = ["/ip4/0.0.0.0/tcp/7070", "/ip4/0.0.0.0/udp/7070/quic-v1"];

/// Default HTTP address: this machine only.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7878";

/// This machine's platform label, `os-arch` as Rust names them
/// (`linux-x86_64`, `macos-aarch64`, ...).
pub fn detected_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

impl NodeConfig {
    /// Reads the file named by `--config` (if any) and applies the flags.
    pub fn load(args: &NodeArgs) -> Result<NodeConfig> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut acceptance =
            safety::acceptance(file.accept, &args.accept_project, &args.accept_maintainer)?;
        acceptance.no_pull_requests = args.no_pull_requests || file.pull_requests == Some(false);
        let mut sandbox = safety::sandbox(file.sandbox, args.no_build_network)?;
        let data_dir = DataDir::resolve(args.data_dir.data_dir.clone().or(file.data_dir));
        let webhook_secret_file = args
            .webhook_secret_file
            .clone()
            .or(file.webhook_secret_file);
        let maintainer_key = args.maintainer_key.clone().or(file.maintainer_key);
        let mut named = vec![
            Some(data_dir.root().to_owned()),
            args.config.clone(),
            webhook_secret_file.clone(),
            maintainer_key.clone(),
        ];
        named.extend(
            file.notify
                .iter()
                .flat_map(|n| n.secret_files())
                .cloned()
                .map(Some),
        );
        named.extend(file.status.iter().map(|s| Some(s.secret_file().clone())));
        sandbox.hidden = hidden_paths(&named);
        let public_url = file.public_url.map(|u| u.trim_end_matches('/').to_owned());
        let notify = file
            .notify
            .into_iter()
            .map(notify::FileNotify::validate)
            .collect::<Result<Vec<_>>>()?;
        let statuses = file
            .status
            .into_iter()
            .map(notify::FileStatus::validate)
            .collect::<Result<Vec<_>>>()?;
        let config = NodeConfig {
            public_url,
            notify,
            statuses,
            data_dir,
            acceptance,
            unsandboxed: args.unsandboxed || file.unsandboxed.unwrap_or(false),
            sandbox,
            listen: pick(&args.listen, file.listen, || {
                DEFAULT_LISTEN.iter().map(|a| a.to_string()).collect()
            }),
            bootstrap: pick(&args.bootstrap, file.bootstrap, Vec::new),
            http: args
                .http
                .clone()
                .or(file.http)
                .unwrap_or_else(|| DEFAULT_HTTP.to_owned()),
            http_hosts: pick(&args.http_host, file.http_hosts, Vec::new),
            platforms: pick(&args.platform, file.platforms, || vec![detected_platform()]),
            mdns: args.mdns || file.mdns.unwrap_or(false),
            sync_interval: Duration::from_secs(
                args.sync_interval_secs
                    .or(file.sync_interval_secs)
                    .unwrap_or(30),
            ),
            poll_interval: Duration::from_secs(
                args.poll_interval_secs
                    .or(file.poll_interval_secs)
                    .unwrap_or(10),
            ),
            builds_max: args.builds_max.or(file.builds_max).unwrap_or(1),
            lease: Duration::from_secs(args.lease_secs.or(file.lease_secs).unwrap_or(30)),
            bid_window: Duration::from_millis(
                args.bid_window_ms.or(file.bid_window_ms).unwrap_or(150),
            ),
            allow_local_repositories: args.allow_local_repositories
                || file.allow_local_repositories.unwrap_or(false),
            report: false,
            webhook_secret: match &webhook_secret_file {
                Some(path) => Some(read_secret(path)?),
                None => None,
            },
            maintainer_key,
            schedules: file
                .schedule
                .into_iter()
                .map(|s| {
                    Ok(Schedule {
                        cron: Cron::parse(&s.cron)?,
                        cron_text: s.cron,
                        project: s.project,
                        branch: s.branch,
                    })
                })
                .collect::<Result<_>>()?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if self.listen.is_empty() {
            bail!("no listen address: give --listen, e.g. --listen /ip4/0.0.0.0/tcp/7070");
        }
        for label in &self.platforms {
            let fine = !label.is_empty()
                && label.len() <= 64
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !fine {
                bail!("platform label {label:?} must be 1-64 letters, digits, '-', '_' or '.'");
            }
        }
        for host in &self.http_hosts {
            let fine = !host.is_empty()
                && host.len() <= 255
                && !host.contains(|c: char| c.is_whitespace() || "/@?#".contains(c));
            if !fine {
                bail!(
                    "http host {host:?} must be a bare name or address, such as ci.example.org \
                     or 203.0.113.5 (no scheme, path or spaces)"
                );
            }
        }
        if self.sync_interval.is_zero() {
            bail!("sync interval must be at least 1 second");
        }
        if self.poll_interval.is_zero() {
            bail!("poll interval must be at least 1 second");
        }
        if !self.schedules.is_empty() && self.maintainer_key.is_none() {
            bail!(
                "scheduled builds are signed by the project's maintainer: set maintainer_key \
                 (or --maintainer-key FILE)"
            );
        }
        if self.builds_max == 0 {
            bail!("builds_max must be at least 1 (a node that builds nothing needs no platform)");
        }
        if self.bid_window.is_zero() || self.bid_window * 4 > self.lease {
            bail!("the bid window must be above 0 and at most a quarter of the lease");
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!(
                "public_url {url:?} must be the dashboard's http(s) URL, such as https://ci.example.org"
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for spec in &self.notify {
            if !names.insert(&spec.name) {
                bail!(
                    "two [[notify]] tables are named {:?}: each names its own record",
                    spec.name
                );
            }
        }
        if self.lease < Duration::from_secs(2) {
            bail!("the lease must be at least 2 seconds: renewals need time to spread");
        }
        if self.lease > Duration::from_secs(300) {
            bail!(
                "the lease must be at most 300 seconds: peers hold one renewal for 5 minutes at \
                 most (docs/protocol.md §11.3), so a longer lease would lapse between renewals"
            );
        }
        Ok(())
    }
}

/// What no sandbox may see even inside a system directory: the data dir,
/// the config file and the secrets it names (absolute, as far as they
/// can be made so).
fn hidden_paths(named: &[Option<PathBuf>]) -> Vec<PathBuf> {
    named
        .iter()
        .flatten()
        .cloned()
        .map(|path| std::path::absolute(&path).unwrap_or(path))
        .collect()
}

/// A webhook secret: the file's content without surrounding whitespace.
fn read_secret(path: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the webhook secret {}", path.display()))?;
    let secret = text.trim();
    if secret.len() < 16 {
        bail!(
            "the webhook secret in {} is shorter than 16 characters: too easy to guess",
            path.display()
        );
    }
    Ok(secret.as_bytes().to_vec())
}

fn pick(
    flags: &[String],
    file: Option<Vec<String>>,
    default: impl FnOnce() -> Vec<String>,
) -> Vec<String> {
    if flags.is_empty() {
        file.unwrap_or_else(default)
    } else {
        flags.to_vec()
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("{} is not a valid buildmesh node config", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use buildmesh_core::notify::EventKind;
    use clap::Parser;

    fn args(list: &[&str]) -> NodeArgs {
        match crate::cli::Cli::parse_from(std::iter::once("buildmesh").chain(list.iter().copied()))
            .command
        {
            crate::cli::Command::Node(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_work_on_a_laptop() {
        let config = NodeConfig::load(&args(&["node", "--data-dir", "/tmp/x"])).unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN);
        assert_eq!(config.http, DEFAULT_HTTP);
        assert_eq!(config.platforms, vec![detected_platform()]);
        assert!(!config.mdns);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "http = \"127.0.0.1:1\"\nplatforms = [\"a\", \"b\"]\nmdns = true\n",
        )
        .unwrap();
        let config = NodeConfig::load(&args(&[
            "node",
            "--config",
            file.to_str().unwrap(),
            "--platform",
            "c",
        ]))
        .unwrap();
        assert_eq!(config.http, "127.0.0.1:1");
        assert_eq!(config.platforms, vec!["c"]);
        assert!(config.mdns);
    }

    #[test]
    fn bad_files_and_labels_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "htp = \"typo\"\n").unwrap();
        let error =
            NodeConfig::load(&args(&["node", "--config", file.to_str().unwrap()])).unwrap_err();
        assert!(format!("{error:#}").contains("unknown field"), "{error:#}");
        let error = NodeConfig::load(&args(&["node", "--platform", "has space"])).unwrap_err();
        assert!(error.to_string().contains("platform label"));
    }

    /// Peers hold one lease renewal for 5 minutes at most, so a longer
    /// lease would lapse between renewals: refused, saying why.
    #[test]
    fn a_lease_is_between_two_seconds_and_five_minutes() {
        let load = |secs: &str| NodeConfig::load(&args(&["node", "--lease-secs", secs]));
        assert!(load("300").is_ok());
        let long = load("301").unwrap_err().to_string();
        assert!(long.contains("at most 300 seconds"), "{long}");
        let short = load("1").unwrap_err().to_string();
        assert!(short.contains("at least 2 seconds"), "{short}");
    }

    fn load_file(text: &str) -> anyhow::Result<NodeConfig> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        let text = text.replace("DIR", dir.path().to_str().unwrap());
        std::fs::write(&file, text).unwrap();
        for secret in ["smtp-password", "token", "hook-secret"] {
            std::fs::write(dir.path().join(secret), format!(" {secret} value\n")).unwrap();
        }
        NodeConfig::load(&args(&["node", "--config", file.to_str().unwrap()]))
    }

    /// The notifiers of docs/notify.md's worked config, and the secrets
    /// they read from files (hidden from the sandbox).
    #[test]
    fn notifiers_and_statuses_load_with_secrets_from_files() {
        let config = load_file(
            r#"
            public_url = "https://ci.example.org/"
            [[notify]]
            name = "team-mail"
            kind = "mail"
            events = ["broken", "still_failing"]
            smtp_host = "smtp.example.org"
            smtp_user = "ci"
            smtp_password_file = "DIR/smtp-password"
            from = "buildmesh <ci@example.org>"
            to = ["dev@example.org"]
            [[notify]]
            name = "hook"
            kind = "webhook"
            url = "https://hooks.example.org/x"
            secret_file = "DIR/hook-secret"
            [[status]]
            project = "hello"
            token_file = "DIR/token"
            "#,
        )
        .unwrap();
        assert_eq!(config.public_url.as_deref(), Some("https://ci.example.org"));
        let Carrier::Mail(mail) = &config.notify[0].carrier else {
            panic!("a mail notifier");
        };
        assert_eq!(mail.port, 587, "starttls by default");
        assert_eq!(
            mail.credentials,
            Some(("ci".into(), "smtp-password value".into()))
        );
        assert!(config.notify[0].kinds.contains(&EventKind::StillFailing));
        assert!(!config.notify[0].kinds.contains(&EventKind::Fixed));
        assert_eq!(config.statuses[0].token, "token value");
        assert!(
            config.sandbox.hidden.iter().any(|p| p.ends_with("token")),
            "{:?}",
            config.sandbox.hidden
        );
    }

    #[test]
    fn inline_secrets_clear_text_mail_and_unknown_events_are_refused() {
        let refused = |text: &str| format!("{:#}", load_file(text).unwrap_err());
        let inline = refused(
            "[[notify]]\nname = \"m\"\nkind = \"webhook\"\nurl = \"https://x.org\"\ntoken = \"abc\"\n",
        );
        assert!(inline.contains("token_file"), "{inline}");
        let plain = refused(
            "[[notify]]\nname = \"m\"\nkind = \"mail\"\nsmtp_host = \"smtp.example.org\"\nsmtp_security = \"plain\"\nfrom = \"a@b.org\"\nto = [\"c@d.org\"]\n",
        );
        assert!(
            plain.contains("only for a server on this machine"),
            "{plain}"
        );
        let event = refused(
            "[[notify]]\nname = \"m\"\nkind = \"irc\"\nirc_host = \"h\"\nchannel = \"#c\"\nevents = [\"borken\"]\n",
        );
        assert!(event.contains("\"borken\" is not one of"), "{event}");
        let twice = refused(
            "[[notify]]\nname = \"m\"\nkind = \"irc\"\nirc_host = \"h\"\nchannel = \"#c\"\n[[notify]]\nname = \"m\"\nkind = \"irc\"\nirc_host = \"h\"\nchannel = \"#d\"\n",
        );
        assert!(twice.contains("two [[notify]] tables"), "{twice}");
        let clear = refused(
            "[[status]]\nproject = \"p\"\nforge = \"gitea\"\napi = \"http://git.example.org/api/v1\"\ntoken_file = \"DIR/token\"\n",
        );
        assert!(clear.contains("must be https://"), "{clear}");
    }
}
