//! The git poller: a change source that watches the repositories this node
//! may announce for and reports new commits on their watched branches.
//!
//! It runs on a thread of its own (fetching blocks), reads what to watch
//! from a `watch` channel the driver updates from the log, and sends what
//! it finds to the driver, which signs the announcements. It never reports
//! a commit twice: not one the log already holds an announcement of, nor
//! one it reported before in this run.

use buildmesh_core::view::Watch;
use buildmesh_protocol::{CommitId, ProjectId};
use buildmesh_runner::{Cancel, CommitInfo, Mirror, is_local};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Most commits announced for one branch in one poll: more (a huge push,
/// a rewritten history) and only the head is announced.
pub const NEW_COMMITS_MAX: usize = 32;

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
pub fn start(
    config: PollerConfig,
    watches: watch::Receiver<Vec<Watch>>,
    mut poke: mpsc::Receiver<()>,
    found: mpsc::Sender<NewCommits>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("poller".into())
        .spawn(move || {
            let mut reported: BTreeSet<(ProjectId, CommitId)> = BTreeSet::new();
            loop {
                let current = watches.borrow().clone();
                for watch in &current {
                    for news in poll(&config, watch, &reported) {
                        reported.extend(
                            news.commits
                                .iter()
                                .map(|c| (news.project, c.commit.clone())),
                        );
                        if found.blocking_send(news).is_err() {
                            return;
                        }
                    }
                }
                if wait(&mut poke, config.interval).is_err() {
                    return;
                }
            }
        })
        .map(drop)
}

/// Sleeps `interval` or until poked; `Err` once nobody can poke any more
/// and the driver is gone.
fn wait(poke: &mut mpsc::Receiver<()>, interval: Duration) -> Result<(), ()> {
    let deadline = std::time::Instant::now() + interval;
    loop {
        match poke.try_recv() {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()));
                return Ok(());
            }
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// One poll of one repository: fetch, then each watched branch's new
/// commits. Failures are logged and retried at the next poll.
fn poll(
    config: &PollerConfig,
    watch: &Watch,
    reported: &BTreeSet<(ProjectId, CommitId)>,
) -> Vec<NewCommits> {
    if is_local(&watch.repository) && !config.allow_local_repositories {
        tracing::debug!(repository = %watch.repository, "not watching a repository on this machine");
        return Vec::new();
    }
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
    let heads = match mirror.branch_heads() {
        Ok(heads) => heads,
        Err(error) => {
            tracing::warn!(%error, "cannot read a watched repository's branches");
            return Vec::new();
        }
    };
    let known = |commit: &CommitId| {
        watch.announced.contains(commit) || reported.contains(&(watch.project, commit.clone()))
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
