//! The node's building side, wired: the poller that announces new commits
//! and the executor that runs builds. What to build, and when, is decided
//! by `core::service`; this only carries it out.

pub mod executor;
pub mod poller;

use crate::terminal::Terminal;
use buildmesh_core::claim::CellKey;
use buildmesh_core::log::EntryStore;
use buildmesh_core::view::{Acceptance, Declined, LiveLeases, Verdict, Watch, Work, work};
use buildmesh_http::PullRequestEvent;
use buildmesh_protocol::PublicKey;
use buildmesh_runner::{StepCallback, StepEvent};
use executor::{CellName, Executor};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use tokio::sync::watch;

/// How many of each project's newest announced commits are considered for
/// building: older ones were built, or are not worth building any more.
pub const COMMITS_MAX: usize = 50;

/// The work the log holds for the node `me` serving `platforms`: read by
/// the views thread, beside the driver, after entries arrive.
pub fn read_work<S: EntryStore>(
    store: &S,
    me: &PublicKey,
    platforms: &BTreeSet<String>,
    acceptance: &Acceptance,
    leases: &LiveLeases,
) -> Result<Work, S::Error> {
    work(store, me, platforms, acceptance, COMMITS_MAX, leases)
}

/// The executor and the poller, as the driver drives them.
pub struct Builds {
    executor: Executor,
    watches: watch::Sender<Vec<Watch>>,
    poke: SyncSender<()>,
    pulls: SyncSender<PullRequestEvent>,
    /// Print each build and its steps on the terminal (`buildmesh up`).
    pub terminal: Option<Arc<Terminal>>,
}

impl Builds {
    /// Ready; `watches` tells the poller what to watch, `poke` makes it
    /// poll now, `pulls` queues pull request events for it to check.
    pub fn new(
        executor: Executor,
        watches: watch::Sender<Vec<Watch>>,
        poke: SyncSender<()>,
        pulls: SyncSender<PullRequestEvent>,
    ) -> Self {
        Builds {
            executor,
            watches,
            poke,
            pulls,
            terminal: None,
        }
    }

    /// Starts the build of `cell`, whose claim is written; `false` if it
    /// could not be started.
    pub fn start(&mut self, cell: &CellKey, repository: String) -> bool {
        let on_step = self.terminal.clone().map(|terminal| {
            terminal.building(cell);
            Arc::new(move |event: StepEvent<'_>| terminal.step(event)) as Arc<StepCallback>
        });
        match self.executor.start(name_of(cell), repository, on_step) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, "cannot start a build");
                false
            }
        }
    }

    /// Stops the build of `cell`; it writes no result.
    pub fn cancel(&mut self, cell: &CellKey) {
        self.executor.cancel(&name_of(cell));
    }

    /// A build's report arrived: whether it ends the cell's build (not an
    /// older build's, nor one restarted since).
    pub fn ended(&mut self, cell: &CellName, generation: u64) -> bool {
        match self.executor.ended(cell, generation) {
            Ok(ended) => ended,
            Err(error) => {
                tracing::error!(%error, "cannot start a build again");
                true
            }
        }
    }

    /// Whether build `generation` was cancelled because its cell needed
    /// it no more, not by the node's stop.
    pub fn withdrawn(&self, generation: u64) -> bool {
        self.executor.withdrawn(generation)
    }

    /// Tells live pages that the build of `cell` is over; after its
    /// result, if any, is signed.
    pub fn live_ended(&self, cell: &CellName, cancelled: bool) {
        self.executor.live_ended(cell, cancelled);
    }

    /// Tells the poller what to watch.
    pub fn watch(&self, watches: Vec<Watch>) {
        self.watches.send_replace(watches);
    }

    /// Makes the poller poll now (a forge said something was pushed). A
    /// poll already asked for covers this one too.
    pub fn poll_now(&self) {
        tracing::debug!("a push was reported: polling now");
        let _ = self.poke.try_send(());
    }

    /// Makes the poller check a pull request a forge reported (and poll
    /// now). Past [`poller::PULL_EVENTS_MAX`] waiting events it is dropped:
    /// the forge's next event for it brings it again (a redelivery of the
    /// same delivery id is answered as a replay, so it does not).
    pub fn check_pull(&self, event: PullRequestEvent) {
        let number = event.number;
        match self.pulls.try_send(event) {
            Ok(()) => tracing::debug!(number, "a pull request was reported: checking it"),
            Err(_) => tracing::warn!(
                number,
                "dropping a pull request event: {} are waiting already",
                poller::PULL_EVENTS_MAX
            ),
        }
        let _ = self.poke.try_send(());
    }

    /// Cancels every build (the node is stopping); each still reports, once
    /// its steps are killed and its work dir removed. None starts after.
    pub fn stop(&mut self) {
        self.executor.cancel_all();
    }

    /// Whether no build is running, cancelled ones winding down included.
    pub fn idle(&self) -> bool {
        self.executor.idle()
    }
}

/// Removes the work dirs a previous run of this node left under `work`
/// when it died without unwinding (SIGKILL, a crash; a clean stop removes
/// its own). Call it before any build starts. Failures are logged, never
/// fatal: a leftover only costs disk.
pub async fn remove_leftover_work_dirs(work: PathBuf) {
    let root = work.clone();
    let swept =
        tokio::task::spawn_blocking(move || buildmesh_runner::remove_leftover_work_dirs(&root))
            .await;
    match swept {
        Ok(Ok(removed)) => {
            for path in removed {
                tracing::info!(path = %path.display(), "removed a work dir an earlier run left");
            }
        }
        Ok(Err(error)) => tracing::warn!(
            path = %work.display(), %error, "cannot look for work dirs an earlier run left"
        ),
        Err(error) => tracing::warn!(%error, "looking for work dirs an earlier run left stopped"),
    }
}

/// The executor's name for a cell.
fn name_of(cell: &CellKey) -> CellName {
    (cell.project, cell.commit.clone(), cell.platform.clone())
}

/// The cell an executor's name stands for.
pub fn key_of(cell: &CellName) -> CellKey {
    CellKey {
        project: cell.0,
        commit: cell.1.clone(),
        platform: cell.2.clone(),
    }
}

/// Says at `info` why a project that wants this node's platform is not
/// built here, and what would change that (once per project and reason:
/// the service says when).
pub fn say_declined(declined: &Declined) {
    let Declined {
        project,
        name,
        owner,
        verdict,
    } = declined;
    match verdict {
        Verdict::NotAccepted => tracing::info!(
            %project, %name, maintainer = %owner,
            "project {name:?} wants this node's platform but is not accepted here; to build \
             it, restart with --accept-project {project} (or --accept-maintainer {owner})"
        ),
        Verdict::NeedsSandbox => tracing::info!(
            %project, %name, maintainer = %owner,
            "project {name:?} is accepted but not built: no sandbox runs on this machine \
             and its maintainer is not this node's own (install bubblewrap, or pass \
             --unsandboxed)"
        ),
        Verdict::NotABuilder => tracing::info!(
            %project, %name, maintainer = %owner,
            "project {name:?} is accepted but not built: it takes results only from \
             builders it names, and this node is not one; its maintainer can add it with \
             `buildmesh project trust {name} KEY --role builder` (KEY: this node's public \
             key, printed at start)"
        ),
        Verdict::KeyForked => tracing::error!(
            %project, %name, maintainer = %owner,
            "project {name:?} is not built: this node's key signed two histories (its data \
             dir copied to another machine, or a backup restored after it wrote more), and \
             every node refuses what it signs now. Stop the node, move DATA_DIR/key aside, \
             start it (it makes a new key), and ask maintainers to trust the new key \
             (docs/operating.md, The node key)"
        ),
        Verdict::Accepted => {}
    }
}
