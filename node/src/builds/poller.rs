//! The git poller: a change source that watches the repositories this node
//! may announce for and reports new commits on their watched branches.
//!
//! It runs on a thread of its own (fetching blocks), reads what to watch
//! from a `watch` channel the driver updates from the log, and sends what
//! it finds to the driver, which signs the announcements. It does not
//! report a commit twice: not one the log already holds an announcement
//! of, nor one it reported before in this run whose announcement the log
//! does not show yet (the newest [`REPORTED_MAX`] of those).
//!
//! It is also the pull request announcer: a forge's pull request event
//! (queued by [`Builds::check_pull`](super::Builds::check_pull)) makes it
//! fetch `refs/pull/N/head` of every watched repository the event names
//! whose project builds pull requests, and report the head only if it is
//! exactly the commit the event named.

use buildmesh_core::view::Watch;
use buildmesh_http::PullRequestEvent;
use buildmesh_protocol::{CommitId, ProjectId};
use buildmesh_runner::{Cancel, CommitInfo, Mirror, is_local};
use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Most commits announced for one branch in one poll: more (a huge push,
/// a rewritten history) and only the head is announced.
pub const NEW_COMMITS_MAX: usize = 32;

/// Most commits the poller remembers reporting while the log does not
/// show them announced: the driver announces what it is sent at once, so
/// this is reached only if its announcements keep failing; past it the
/// oldest is forgotten, and reported again if it is still new.
pub const REPORTED_MAX: usize = 4096;

/// New commits on one watched branch, oldest first.
#[derive(Debug, Clone)]
pub struct NewCommits {
    /// The project.
    pub project: ProjectId,
    /// The branch they are on.
    pub branch: String,
    /// The commits, oldest first.
    pub commits: Vec<CommitInfo>,
}

/// A pull request's head, fetched and found to be what the forge said.
#[derive(Debug, Clone)]
pub struct NewPull {
    /// The project.
    pub project: ProjectId,
    /// The pull request's number.
    pub number: u64,
    /// Its base branch, as the event named it.
    pub base: String,
    /// Who opened it, as the event named them.
    pub author: String,
    /// The head.
    pub head: CommitInfo,
}

/// What the poller found.
#[derive(Debug, Clone)]
pub enum Found {
    /// New commits on a watched branch.
    Commits(NewCommits),
    /// A pull request's new head.
    Pull(NewPull),
}

/// Most pull request events waiting for the poller: more are dropped (and
/// logged); a forge sends one per push, so this is reached only by a flood.
pub const PULL_EVENTS_MAX: usize = 64;

/// How the poller runs.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Where bare mirrors live.
    pub mirrors: PathBuf,
    /// Time between polls.
    pub interval: Duration,
    /// Whether repositories on this machine may be watched.
    pub allow_local_repositories: bool,
}

/// Starts the poller thread. It stops when `found`'s receiver is dropped.
/// A message on `poke` (a webhook's push) starts a poll at once.
/// Pull request events to check (at most [`PULL_EVENTS_MAX`] wait) come
/// on `pulls`, each followed by a poke.
pub fn start(
    config: PollerConfig,
    watches: watch::Receiver<Vec<Watch>>,
    poke: std_mpsc::Receiver<()>,
    pulls: std_mpsc::Receiver<PullRequestEvent>,
    found: mpsc::Sender<Found>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || {
            let mut reported = Reported::default();
            while !found.is_closed() {
                let current = watches.borrow().clone();
                reported.forget_settled(&current);
                while let Ok(event) = pulls.try_recv() {
                    for pull in check_pull(&config, &current, &event) {
                        if found.blocking_send(Found::Pull(pull)).is_err() {
                            return;
                        }
                    }
                }
                for watch in &current {
                    for news in poll(&config, watch, &reported) {
                        for commit in &news.commits {
                            reported.insert(news.project, commit.commit.clone());
                        }
                        if found.blocking_send(Found::Commits(news)).is_err() {
                            return;
                        }
                    }
                }
                wait(&poke, config.interval);
            }
        })
        .map(drop)
}

/// The heads to announce for a forge's pull request `event`: for each
/// watch whose repository the event names and whose project builds pull
/// requests ([`Watch::wants_pull`]), `refs/pull/N/head` fetched from the
/// declared repository (never from a URL in the event) and kept only if
/// it is exactly the head the event named.
fn check_pull(config: &PollerConfig, watches: &[Watch], event: &PullRequestEvent) -> Vec<NewPull> {
    let Some(head) = hex::decode(&event.head)
        .ok()
        .and_then(|bytes| CommitId::from_bytes(&bytes))
    else {
        return Vec::new();
    };
    let wanted = watches.iter().filter(|watch| {
        event
            .repositories
            .iter()
            .any(|url| watch.wants_pull(url, event.number, &head))
    });
    let mut found = Vec::new();
    for watch in wanted {
        let (project, number) = (watch.project, event.number);
        match fetch_pull_head(config, watch, number) {
            Ok(Some(info)) if info.commit == head => found.push(NewPull {
                project,
                number,
                base: event.base.clone(),
                author: event.author.clone(),
                head: info,
            }),
            Ok(Some(info)) => tracing::warn!(
                %project, number, named = %head, fetched = %info.commit,
                "not announcing pull request {number}: its forge named head {head}, but \
                 refs/pull/{number}/head of {} is {} (a stale or forged event)",
                watch.repository, info.commit
            ),
            Ok(None) => tracing::warn!(
                %project, number,
                "not announcing pull request {number}: {} has no refs/pull/{number}/head",
                watch.repository
            ),
            Err(error) => tracing::warn!(
                %project, number, %error,
                "not announcing pull request {number}: cannot fetch its head"
            ),
        }
    }
    found
}

/// `refs/pull/N/head` of the watch's repository, fetched, described.
fn fetch_pull_head(
    config: &PollerConfig,
    watch: &Watch,
    number: u64,
) -> Result<Option<CommitInfo>, buildmesh_runner::MirrorError> {
    if is_local(&watch.repository) && !config.allow_local_repositories {
        return Ok(None);
    }
    let mirror = Mirror::open_or_create(&config.mirrors, &watch.repository)?;
    match mirror.fetch_pull(number, &Cancel::new())? {
        Some(commit) => mirror.commit_info(&commit).map(Some),
        None => Ok(None),
    }
}

/// Commits this poller reported whose announcements the log does not show
/// yet, oldest first: once it does, the watch's `announced` knows them.
#[derive(Debug, Default)]
struct Reported {
    order: VecDeque<(ProjectId, CommitId)>,
    set: BTreeSet<(ProjectId, CommitId)>,
}

impl Reported {
    fn contains(&self, project: ProjectId, commit: &CommitId) -> bool {
        self.set.contains(&(project, commit.clone()))
    }

    /// Remembers a report, forgetting the oldest past [`REPORTED_MAX`].
    fn insert(&mut self, project: ProjectId, commit: CommitId) {
        if self.set.insert((project, commit.clone())) {
            self.order.push_back((project, commit));
        }
        while self.order.len() > REPORTED_MAX {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    /// Forgets what the log now shows announced, and what belongs to
    /// projects no longer watched: neither can be reported again.
    fn forget_settled(&mut self, watches: &[Watch]) {
        let pending = |(project, commit): &(ProjectId, CommitId)| {
            watches
                .iter()
                .any(|w| w.project == *project && !w.announced.contains(commit))
        };
        self.order.retain(pending);
        self.set.retain(pending);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

/// Sleeps `interval`, or until poked: a poke wakes the thread at once
/// (the push webhook's latency). Once nobody can poke any more, it just
/// sleeps.
fn wait(poke: &std_mpsc::Receiver<()>, interval: Duration) {
    match poke.recv_timeout(interval) {
        Ok(()) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        Err(std_mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(interval),
    }
}

/// One poll of one repository: fetch, then each watched branch's new
/// commits. Failures are logged and retried at the next poll.
fn poll(config: &PollerConfig, watch: &Watch, reported: &Reported) -> Vec<NewCommits> {
    if is_local(&watch.repository) && !config.allow_local_repositories {
        tracing::debug!(repository = %watch.repository, "not watching a repository on this machine");
        return Vec::new();
    }
    let started = std::time::Instant::now();
    let mirror = match Mirror::open_or_create(&config.mirrors, &watch.repository) {
        Ok(mirror) => mirror,
        Err(error) => {
            tracing::warn!(%error, "cannot open a mirror to watch");
            return Vec::new();
        }
    };
    if let Err(error) = mirror.fetch(&Cancel::new()) {
        tracing::warn!(%error, "cannot fetch a watched repository");
        return Vec::new();
    }
    tracing::debug!(repository = %watch.repository, took = ?started.elapsed(), "fetched");
    let heads = match mirror.branch_heads() {
        Ok(heads) => heads,
        Err(error) => {
            tracing::warn!(%error, "cannot read a watched repository's branches");
            return Vec::new();
        }
    };
    let known = |commit: &CommitId| {
        watch.announced.contains(commit) || reported.contains(watch.project, commit)
    };
    heads
        .into_iter()
        .filter(|head| watch.branches.contains(&head.branch))
        .filter_map(
            |head| match mirror.new_commits(&head.head.commit, known, NEW_COMMITS_MAX) {
                Ok(commits) if commits.is_empty() => None,
                Ok(commits) => Some(NewCommits {
                    project: watch.project,
                    branch: head.branch,
                    commits,
                }),
                Err(error) => {
                    tracing::warn!(%error, "cannot walk a watched branch");
                    None
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(n: u32) -> CommitId {
        let mut bytes = [0; 20];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        CommitId::from_bytes(&bytes).unwrap_or_else(|| unreachable!("20 bytes"))
    }

    fn watch(project: ProjectId, announced: &[CommitId]) -> Watch {
        Watch {
            project,
            repository: "https://example.org/x.git".into(),
            branches: vec!["main".into()],
            announced: announced.iter().cloned().collect(),
            pull_requests: false,
            announced_pulls: BTreeSet::new(),
        }
    }

    /// Issue 14, item 8.4: what the log shows announced, and what belongs
    /// to a project no longer watched, is forgotten.
    #[test]
    fn reports_are_forgotten_once_settled() {
        let (a, b) = (ProjectId([1; 32]), ProjectId([2; 32]));
        let mut reported = Reported::default();
        for n in 0..3 {
            reported.insert(a, commit(n));
            reported.insert(b, commit(n));
        }
        reported.insert(a, commit(0));
        assert_eq!(reported.len(), 6, "a second report is not a second entry");
        reported.forget_settled(&[watch(a, &[commit(0), commit(1)])]);
        assert_eq!(reported.len(), 1);
        assert!(reported.contains(a, &commit(2)));
        assert!(!reported.contains(a, &commit(0)));
        assert!(!reported.contains(b, &commit(2)));
    }

    /// Issue 14, item 8.4: reports never announced are bounded.
    #[test]
    fn reports_never_announced_are_bounded() {
        let a = ProjectId([1; 32]);
        let mut reported = Reported::default();
        let many = u32::try_from(REPORTED_MAX).unwrap_or(u32::MAX) + 10;
        for n in 0..many {
            reported.insert(a, commit(n));
        }
        assert_eq!(reported.len(), REPORTED_MAX);
        assert_eq!(reported.set.len(), REPORTED_MAX);
        assert!(!reported.contains(a, &commit(9)), "the oldest went");
        assert!(reported.contains(a, &commit(many - 1)));
    }
}
