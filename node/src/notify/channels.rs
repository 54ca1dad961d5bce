//! The configured notifiers and forges, each a sans-IO notifier with its
//! record and its carrier.

use super::notice;
use crate::config::{Carrier, NodeConfig, NotifySpec, StatusSpec};
use anyhow::{Context, Result};
use buildmesh_core::notify::{
    Event, EventKey, EventKind, Notifier, NotifyAction, NotifyInput, StatusKey, StatusUpdate,
    pull_statuses, recent_events, regressions, settled, statuses,
};
use buildmesh_core::view::{Acceptance, MatrixOptions, Policy, ProjectLog, Verdict, matrix, pulls};
use buildmesh_http::Command;
use buildmesh_http::views::Views;
use buildmesh_notify::forge::{ForgeConfig, StatusPoster, known_forge};
use buildmesh_notify::irc::IrcConfig;
use buildmesh_notify::record::SentRecord;
use buildmesh_notify::smtp::Mailer;
use buildmesh_notify::webhook::{Webhook, WebhookConfig};
use buildmesh_protocol::{ProjectId, PublicKey, Timestamp};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// The newest commits of a branch whose events are found (with one more
/// as their history); older ones are past any age bound in practice.
const EVENT_ROWS: usize = 50;

/// The newest commits (and pull requests) whose statuses are posted.
const STATUS_ROWS: usize = 50;

/// How long one delivery may take in all, fetching its log included: past
/// it, it is a failure (retried), so no message holds its slot for ever.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the task sleeps when no notifier waits for anything.
const IDLE_WAKE: Duration = Duration::from_secs(60);

/// A delivery's outcome, sent back to the task.
pub enum Report {
    /// An event notifier's delivery.
    Event(usize, EventKey, Result<(), String>),
    /// A forge's delivery.
    Status(usize, StatusKey, Result<(), String>),
}

/// Every notifier and forge of the node.
pub struct Channels {
    events: Vec<EventChannel>,
    statuses: Vec<StatusChannel>,
    commands: mpsc::Sender<Command>,
    reports: mpsc::Sender<Report>,
    public_url: Option<String>,
    /// The projects the operator accepted: names and id prefixes are
    /// looked up only among them (anyone can declare a project called
    /// "hello").
    acceptance: Acceptance,
}

struct EventChannel {
    spec: NotifySpec,
    notifier: Notifier<Event>,
    record: SentRecord,
    deliver: Deliver,
}

#[derive(Clone)]
enum Deliver {
    Mail(Mailer),
    Webhook(Webhook),
    Irc(IrcConfig),
}

struct StatusChannel {
    spec: StatusSpec,
    notifier: Notifier<StatusUpdate>,
    record: SentRecord,
    /// Found once the project is in the log.
    poster: Option<(ProjectId, StatusPoster)>,
    /// The forge could not be told from the project's repository: said
    /// once, then nothing is posted.
    unusable: bool,
}

impl Channels {
    /// Opens every record under `records` and builds every carrier.
    pub fn open(
        config: &NodeConfig,
        records: &Path,
        commands: mpsc::Sender<Command>,
        reports: mpsc::Sender<Report>,
    ) -> Result<Channels> {
        let source = config
            .public_url
            .clone()
            .unwrap_or_else(|| "urn:buildmesh:node".to_owned());
        let mut events = Vec::new();
        for spec in &config.notify {
            let (record, told) = SentRecord::open(&records.join(format!("{}.sent", spec.name)))?;
            events.push(EventChannel {
                notifier: Notifier::new(spec.notifier.clone(), told),
                record,
                deliver: deliver(&spec.carrier, &source)
                    .with_context(|| format!("[[notify]] {:?}", spec.name))?,
                spec: spec.clone(),
            });
        }
        let mut forges = Vec::new();
        for spec in &config.statuses {
            let file = format!("status-{}.sent", file_safe(&spec.project));
            let (record, told) = SentRecord::open(&records.join(file))?;
            forges.push(StatusChannel {
                notifier: Notifier::new(spec.notifier.clone(), told),
                record,
                poster: None,
                unusable: false,
                spec: spec.clone(),
            });
        }
        Ok(Channels {
            events,
            statuses: forges,
            commands,
            reports,
            public_url: config.public_url.clone(),
            acceptance: config.acceptance.clone(),
        })
    }

    /// Feeds every notifier what `views` show at `now`.
    pub fn derive(&mut self, views: &Views, now: Timestamp) {
        for channel in &mut self.events {
            let mut found = Vec::new();
            for (id, view) in &views.projects {
                let Some(policy) = Policy::of(&view.log) else {
                    continue;
                };
                if !covers(&channel.spec.projects, id, &policy, &self.acceptance) {
                    continue;
                }
                let branches = match channel.spec.branches.is_empty() {
                    true => &policy.declaration.branches,
                    false => &channel.spec.branches,
                };
                let mut thresholds = policy.thresholds().to_vec();
                thresholds.extend(channel.spec.thresholds.iter().cloned());
                for branch in branches {
                    let log = &view.log;
                    let mut events =
                        recent_events(log, now, branch, EVENT_ROWS, &channel.spec.flaky);
                    if channel.spec.kinds.contains(&EventKind::Regression) {
                        events.extend(regressions(log, now, branch, EVENT_ROWS, &thresholds));
                    }
                    found.extend(
                        events
                            .into_iter()
                            .filter(|e| channel.spec.kinds.contains(&e.kind))
                            .filter(|e| settled(e, now, channel.spec.settle_ms)),
                    );
                }
            }
            channel.notifier.handle(now, NotifyInput::Found(found));
        }
        for channel in &mut self.statuses {
            let Some(log) = channel.project_log(views, &self.acceptance) else {
                continue;
            };
            let options = MatrixOptions {
                branch: None,
                rows_max: Some(STATUS_ROWS),
            };
            let mut found = matrix(log, now, &options)
                .map(|m| statuses(&m, now))
                .unwrap_or_default();
            if let Some(open) = pulls(log, now, STATUS_ROWS) {
                found.extend(pull_statuses(&open, now));
            }
            channel.notifier.handle(now, NotifyInput::Found(found));
        }
    }

    /// Carries out what the notifiers ask: deliveries start as tasks that
    /// report back; records are written before the next action.
    pub fn carry_out(&mut self, views: &Views) {
        for (index, channel) in self.events.iter_mut().enumerate() {
            while let Some(action) = channel.notifier.poll_action() {
                match action {
                    NotifyAction::Send(event) => {
                        let draft = views.projects.get(&event.project).and_then(|view| {
                            notice::draft(&event, &view.log, views.at, self.public_url.as_deref())
                        });
                        let deliver = channel.deliver.clone();
                        let commands = self.commands.clone();
                        let key = event.key();
                        let work = async move {
                            match draft {
                                Some(draft) => {
                                    let notice = notice::finish(draft, &commands).await;
                                    send(&deliver, &notice).await
                                }
                                None => Err("the commit is no longer in the views".to_owned()),
                            }
                        };
                        spawn_delivery(work, self.reports.clone(), move |outcome| {
                            Report::Event(index, key, outcome)
                        });
                    }
                    NotifyAction::Record(key) => {
                        if let Err(error) = channel.record.append(&key) {
                            tracing::error!(%error, notifier = %channel.spec.name, "cannot record a delivery: it may be sent again after a restart");
                        }
                    }
                    NotifyAction::GaveUp(key) => tracing::error!(
                        notifier = %channel.spec.name,
                        commit = %key.commit,
                        branch = %key.branch,
                        "gave up telling of an event after repeated failures"
                    ),
                }
            }
        }
        for (index, channel) in self.statuses.iter_mut().enumerate() {
            channel.carry_out(index, &self.reports, self.public_url.as_deref());
        }
    }

    /// A delivery ended.
    pub fn reported(&mut self, report: Report, now: Timestamp) {
        match report {
            Report::Event(index, key, outcome) => {
                let Some(channel) = self.events.get_mut(index) else {
                    return;
                };
                let input = match outcome {
                    Ok(()) => {
                        tracing::info!(notifier = %channel.spec.name, commit = %key.commit, branch = %key.branch, kind = ?key.kind, "told");
                        NotifyInput::Delivered(key)
                    }
                    Err(error) => {
                        tracing::warn!(notifier = %channel.spec.name, %error, "a notification failed; it is retried");
                        NotifyInput::Failed(key)
                    }
                };
                channel.notifier.handle(now, input);
            }
            Report::Status(index, key, outcome) => {
                let Some(channel) = self.statuses.get_mut(index) else {
                    return;
                };
                let input = match outcome {
                    Ok(()) => NotifyInput::Delivered(key),
                    Err(error) => {
                        tracing::warn!(project = %channel.spec.project, %error, "posting a commit status failed; it is retried");
                        NotifyInput::Failed(key)
                    }
                };
                channel.notifier.handle(now, input);
            }
        }
    }

    /// Time passed.
    pub fn tick(&mut self, now: Timestamp) {
        for channel in &mut self.events {
            channel.notifier.handle(now, NotifyInput::Tick);
        }
        for channel in &mut self.statuses {
            channel.notifier.handle(now, NotifyInput::Tick);
        }
    }

    /// How long until a notifier wants a tick.
    pub fn next_wake(&self, now: Timestamp) -> Duration {
        self.events
            .iter()
            .filter_map(|c| c.notifier.poll_timeout())
            .chain(
                self.statuses
                    .iter()
                    .filter_map(|c| c.notifier.poll_timeout()),
            )
            .min()
            .map_or(IDLE_WAKE, |at| Duration::from_millis(at.ms_since(now)))
    }
}

impl StatusChannel {
    /// The project's log, once it is in the views, finding its forge the
    /// first time. A selector that names more than one project names none.
    fn project_log<'v>(
        &mut self,
        views: &'v Views,
        acceptance: &Acceptance,
    ) -> Option<&'v ProjectLog> {
        if self.unusable {
            return None;
        }
        let selectors = std::slice::from_ref(&self.spec.project);
        let mut named = views.projects.iter().filter(|(id, view)| {
            Policy::of(&view.log).is_some_and(|p| covers(selectors, id, &p, acceptance))
        });
        let (id, view) = named.next()?;
        if named.next().is_some() {
            tracing::error!(project = %self.spec.project, "commit statuses are off: more than one accepted project has this name; give its full id");
            self.unusable = true;
            return None;
        }
        if self.poster.is_none() {
            let repository = Policy::of(&view.log)?.declaration.repository.clone();
            match self.poster_for(&repository) {
                Ok(poster) => self.poster = Some((*id, poster)),
                Err(error) => {
                    tracing::error!(project = %self.spec.project, %error, "commit statuses are off for this project");
                    self.unusable = true;
                    return None;
                }
            }
        }
        Some(&view.log)
    }

    fn poster_for(&self, repository: &str) -> Result<StatusPoster> {
        let known = known_forge(repository);
        let (kind, api, name) = match (
            &self.spec.forge,
            &self.spec.api,
            &self.spec.repository,
            known,
        ) {
            (Some(kind), Some(api), Some(name), _) => (*kind, api.clone(), name.clone()),
            (_, api, name, Some((kind, known_api, known_name))) => (
                self.spec.forge.unwrap_or(kind),
                api.clone().unwrap_or(known_api),
                name.clone().unwrap_or(known_name),
            ),
            _ => anyhow::bail!(
                "the repository {repository:?} is not on github.com or codeberg.org: give forge, \
                 api and repository in its [[status]] table"
            ),
        };
        Ok(StatusPoster::new(ForgeConfig {
            kind,
            api,
            repository: name,
            token: self.spec.token.clone(),
        })?)
    }

    fn carry_out(
        &mut self,
        index: usize,
        reports: &mpsc::Sender<Report>,
        public_url: Option<&str>,
    ) {
        while let Some(action) = self.notifier.poll_action() {
            match action {
                NotifyAction::Send(update) => {
                    let Some((_, poster)) = self.poster.clone() else {
                        continue;
                    };
                    let target = public_url.map(|url| match update.result {
                        Some(id) => format!("{url}/results/{id}"),
                        None => format!(
                            "{url}/live/{}/{}/{}",
                            update.project, update.commit, update.platform
                        ),
                    });
                    let key = update_key(&update);
                    let work = async move {
                        poster
                            .post(&update, target.as_deref())
                            .await
                            .map_err(|e| e.to_string())
                    };
                    spawn_delivery(work, reports.clone(), move |outcome| {
                        Report::Status(index, key, outcome)
                    });
                }
                NotifyAction::Record(key) => {
                    if let Err(error) = self.record.append(&key) {
                        tracing::error!(%error, "cannot record a posted status");
                    }
                }
                NotifyAction::GaveUp(key) => tracing::error!(
                    project = %self.spec.project,
                    commit = %key.1,
                    platform = %key.2,
                    "gave up posting a commit status after repeated failures"
                ),
            }
        }
    }
}

/// Runs a delivery as a task of its own, bounded by [`DELIVERY_TIMEOUT`],
/// and reports how it ended: a panic or a timeout is a failure, so the
/// notifier never waits for a report that cannot come.
fn spawn_delivery(
    work: impl Future<Output = Result<(), String>> + Send + 'static,
    reports: mpsc::Sender<Report>,
    report: impl FnOnce(Result<(), String>) -> Report + Send + 'static,
) {
    tokio::spawn(async move {
        let mut task = tokio::spawn(work);
        let outcome = match tokio::time::timeout(DELIVERY_TIMEOUT, &mut task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err("the delivery stopped unexpectedly".to_owned()),
            Err(_) => {
                task.abort();
                Err(format!("no answer within {} s", DELIVERY_TIMEOUT.as_secs()))
            }
        };
        let _ = reports.send(report(outcome)).await;
    });
}

fn update_key(update: &StatusUpdate) -> StatusKey {
    buildmesh_core::notify::Message::key(update)
}

fn deliver(carrier: &Carrier, source: &str) -> Result<Deliver> {
    Ok(match carrier {
        Carrier::Mail(config) => Deliver::Mail(Mailer::new(config)?),
        Carrier::Webhook {
            url,
            format,
            secret,
            token,
        } => Deliver::Webhook(Webhook::new(WebhookConfig {
            url: url.clone(),
            format: *format,
            secret: secret.clone(),
            token: token.clone(),
            source: source.to_owned(),
        })?),
        Carrier::Irc(config) => Deliver::Irc(config.clone()),
    })
}

async fn send(deliver: &Deliver, notice: &buildmesh_notify::message::Notice) -> Result<(), String> {
    let sent = match deliver {
        Deliver::Mail(mailer) => mailer.send(notice).await,
        Deliver::Webhook(hook) => hook.send(notice).await,
        Deliver::Irc(config) => buildmesh_notify::irc::say(config, &[notice.line()]).await,
    };
    sent.map_err(|e| e.to_string())
}

/// Whether `selectors` cover the project `id` declared as `policy` says.
/// A full id (64 hex digits) names its project wherever it comes from; a
/// name or an id prefix (6 or more hex digits) only names a project the
/// operator accepted, since anyone can declare a project of any name (and
/// grind a short prefix). No selectors: every accepted project.
fn covers(
    selectors: &[String],
    id: &ProjectId,
    policy: &Policy<'_>,
    acceptance: &Acceptance,
) -> bool {
    names(
        selectors,
        id,
        &policy.owner,
        &policy.declaration.name,
        acceptance,
    )
}

/// [`covers`], for the project `id` that `owner` declared as `name`.
fn names(
    selectors: &[String],
    id: &ProjectId,
    owner: &PublicKey,
    name: &str,
    acceptance: &Acceptance,
) -> bool {
    let hex = id.to_string();
    let accepted = acceptance.verdict(id, owner) != Verdict::NotAccepted;
    if selectors.is_empty() {
        return accepted;
    }
    selectors.iter().any(|selector| {
        let selector = selector.to_ascii_lowercase();
        let is_hex = selector.len() >= 6 && selector.bytes().all(|b| b.is_ascii_hexdigit());
        selector == hex
            || (accepted
                && (selector == name.to_ascii_lowercase()
                    || (is_hex && hex.starts_with(&selector))))
    })
}

/// `text` with anything but letters, digits, `-` and `_` made `_`.
fn file_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attack: a stranger declares a project called "hello" (and
    /// grinds its id to start like ours). Only the project the operator
    /// accepted is covered by the name or a prefix; a full id is explicit.
    #[test]
    fn a_strangers_project_of_the_same_name_is_not_covered() {
        let (ours, theirs) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let (our_id, their_id) = (
            ProjectId::derive(&ours, "hello"),
            ProjectId::derive(&theirs, "hello"),
        );
        let acceptance = Acceptance {
            maintainers: [ours].into(),
            ..Acceptance::default()
        };
        let by = |selector: &str| vec![selector.to_owned()];
        let prefix = their_id.to_string()[..8].to_owned();
        assert!(names(&by("hello"), &our_id, &ours, "hello", &acceptance));
        assert!(!names(
            &by("hello"),
            &their_id,
            &theirs,
            "hello",
            &acceptance
        ));
        assert!(!names(
            &by(&prefix),
            &their_id,
            &theirs,
            "hello",
            &acceptance
        ));
        assert!(!names(&[], &their_id, &theirs, "hello", &acceptance));
        assert!(names(&[], &our_id, &ours, "hello", &acceptance));
        assert!(names(
            &by(&their_id.to_string()),
            &their_id,
            &theirs,
            "hello",
            &acceptance
        ));
    }
}
