//! Runs builds the claimer starts, each on a thread of its own, and hands
//! each report back to the driver, which signs the result.

use buildmesh_http::live::LiveHub;
use buildmesh_protocol::{CommitId, ProjectId};
use buildmesh_runner::{
    BlobDir, BuildJob, BuildReport, Cancel, RunnerContext, Sandbox, StepCallback, run_build,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A cell, as the executor names the build running for it.
pub type CellName = (ProjectId, CommitId, String);

/// A build that ended.
#[derive(Debug)]
pub struct BuildDone {
    /// The cell built.
    pub cell: CellName,
    /// The repository it was fetched from (its attestations name it).
    pub repository: String,
    /// Which build of the cell this was (a cell cancelled then claimed
    /// again has two, the first still winding down).
    pub generation: u64,
    /// What happened; ready to sign.
    pub report: BuildReport,
    /// Whether it was cancelled (its result is not worth publishing).
    pub cancelled: bool,
}

/// Where builds run and what they may do.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Bare mirrors.
    pub mirrors: PathBuf,
    /// Work dirs.
    pub work: PathBuf,
    /// Per-project caches.
    pub caches: PathBuf,
    /// Log blobs.
    pub blobs: PathBuf,
    /// Whether repositories on this machine may be built.
    pub allow_local_repositories: bool,
    /// The sandbox steps run in (`None`: as this node's user).
    pub sandbox: Option<Arc<Sandbox>>,
}

/// The builds running on this node.
pub struct Executor {
    config: ExecutorConfig,
    /// Where running builds report their output, for live pages.
    live: LiveHub,
    blobs: BlobDir,
    /// Each running build, by cell: its generation and its cancel switch.
    running: BTreeMap<CellName, (u64, Cancel)>,
    /// Cells claimed again while their cancelled build winds down: started
    /// as soon as the old build's report arrives.
    restart: BTreeMap<CellName, (String, Option<Arc<StepCallback>>)>,
    next_generation: u64,
    done: mpsc::Sender<BuildDone>,
    /// Set once the node stops: the results it still signs then must not
    /// start another build.
    stopping: bool,
    /// Builds (by generation) cancelled because the cell needed them no
    /// more, not by the node's stop: until their reports arrive.
    withdrawn: std::collections::BTreeSet<u64>,
}

impl Executor {
    /// Ready to run builds; each report goes to `done`.
    pub fn new(
        config: ExecutorConfig,
        done: mpsc::Sender<BuildDone>,
        live: LiveHub,
    ) -> std::io::Result<Self> {
        let blobs = BlobDir::open(&config.blobs)?;
        Ok(Executor {
            config,
            live,
            blobs,
            running: BTreeMap::new(),
            restart: BTreeMap::new(),
            next_generation: 0,
            done,
            stopping: false,
            withdrawn: std::collections::BTreeSet::new(),
        })
    }

    /// Starts building `cell` from `repository`. If a build of it runs, this
    /// does nothing; if that build was cancelled, a new one starts as soon
    /// as it has wound down.
    pub fn start(
        &mut self,
        cell: CellName,
        repository: String,
        on_step: Option<Arc<StepCallback>>,
    ) -> std::io::Result<()> {
        if self.stopping {
            return Err(std::io::Error::other("the node is stopping"));
        }
        if let Some((_, cancel)) = self.running.get(&cell) {
            if cancel.is_cancelled() {
                self.restart.insert(cell, (repository, on_step));
            }
            return Ok(());
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let cancel = Cancel::new();
        let mut context = RunnerContext::new(
            self.config.mirrors.clone(),
            self.config.work.clone(),
            self.blobs.clone(),
        );
        context.cancel = cancel.clone();
        context.allow_local_repositories = self.config.allow_local_repositories;
        context.sandbox = self.config.sandbox.clone();
        context.caches = Some(self.config.caches.clone());
        context.on_step = on_step;
        let (live, cell_of) = (self.live.clone(), cell.clone());
        context.on_output = Some(Arc::new(move |_, step: &str, bytes: &[u8]| {
            live.output(&cell_of, step, bytes);
        }));
        let job = BuildJob {
            project: cell.0,
            repository: repository.clone(),
            commit: cell.1.clone(),
            platform: cell.2.clone(),
        };
        let done = self.done.clone();
        let name = cell.clone();
        // Before the first output: the hub keeps only running builds'.
        self.live.started(cell.clone(), crate::clock::now());
        let spawned = std::thread::Builder::new()
            .name(format!("build-{}", cell.1.short()))
            .spawn(move || {
                let report = run_build(&job, &context);
                let cancelled = cut_short(context.cancel.is_cancelled(), &report.result);
                let _ = done.blocking_send(BuildDone {
                    cell: name,
                    repository,
                    generation,
                    report,
                    cancelled,
                });
            });
        if let Err(error) = spawned {
            self.live.ended(&cell, crate::clock::now(), true);
            return Err(error);
        }
        tracing::info!(commit = %cell.1, platform = %cell.2, "build started");
        self.running.insert(cell, (generation, cancel));
        Ok(())
    }

    /// Stops the build of `cell`, if running; its report still arrives.
    pub fn cancel(&mut self, cell: &CellName) {
        self.restart.remove(cell);
        if let Some((generation, cancel)) = self.running.get(cell) {
            tracing::info!(commit = %cell.1, platform = %cell.2, "build cancelled");
            cancel.cancel();
            self.withdrawn.insert(*generation);
        }
    }

    /// A build's report arrived. Returns whether the cell's build is over
    /// (`false`: it was an older build, or the cell was claimed again and
    /// its new build has started).
    pub fn ended(&mut self, cell: &CellName, generation: u64) -> std::io::Result<bool> {
        self.withdrawn.remove(&generation);
        if self.running.get(cell).is_none_or(|(g, _)| *g != generation) {
            return Ok(false);
        }
        self.running.remove(cell);
        match self.restart.remove(cell) {
            Some((repository, on_step)) => self
                .start(cell.clone(), repository, on_step)
                .map(|()| false),
            None => Ok(true),
        }
    }

    /// Whether build `generation` was cancelled because its cell needed it
    /// no more (not by the node's stop): such a build has no verdict to
    /// tell, not even a retry.
    pub fn withdrawn(&self, generation: u64) -> bool {
        self.withdrawn.contains(&generation)
    }

    /// Whether no build is running (a cancelled one counts until its
    /// report arrives: its thread may still be removing its work dir).
    pub fn idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Tells live pages that the build of `cell` is over (its result, if
    /// any, is signed by now): they move on to it.
    pub fn live_ended(&self, cell: &CellName, cancelled: bool) {
        self.live.ended(cell, crate::clock::now(), cancelled);
    }

    /// Cancels every build, and starts none from now on (the node is
    /// stopping).
    pub fn cancel_all(&mut self) {
        self.stopping = true;
        self.restart.clear();
        for (_, cancel) in self.running.values() {
            cancel.cancel();
        }
    }
}

/// Whether a build whose cancel switch reads `cancel_set` when it ends was
/// cut short by it, so that its result is not worth publishing. One that
/// ran to a verdict of its own (no error: passed, or a step failed by
/// itself) is whole, though a cancel or a stop came as it removed its work
/// dir, which for a large build takes seconds; one that ended in an error
/// while cancelled most likely ended so because of the cancel.
fn cut_short(cancel_set: bool, result: &buildmesh_protocol::BuildResult) -> bool {
    cancel_set && result.error.is_some()
}

#[cfg(test)]
mod cut_short_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::terminal::tests::result;
    use buildmesh_protocol::Outcome;

    /// A stop that lands after the last step keeps the build's result.
    #[test]
    fn a_build_that_reached_its_verdict_is_whole_though_cancelled_after() {
        assert!(!cut_short(true, &result(Outcome::Passed, None)));
        assert!(!cut_short(true, &result(Outcome::Failed, None)));
        assert!(cut_short(
            true,
            &result(Outcome::Error, Some("build cancelled"))
        ));
        assert!(!cut_short(
            false,
            &result(Outcome::Error, Some("no recipe"))
        ));
    }
}
