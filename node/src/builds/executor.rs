//! Runs builds the claimer starts, each on a thread of its own, and hands
//! each report back to the driver, which signs the result.

use buildmesh_http::live::LiveOutput;
use buildmesh_protocol::{CommitId, ProjectId};
use buildmesh_runner::{BlobDir, BuildJob, BuildReport, Cancel, RunnerContext, run_build};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// A cell, as the executor names the build running for it.
pub type CellName = (ProjectId, CommitId, String);

/// A build that ended.
#[derive(Debug)]
pub struct BuildDone {
    /// The cell built.
    pub cell: CellName,
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
    /// Log blobs.
    pub blobs: PathBuf,
    /// Whether repositories on this machine may be built.
    pub allow_local_repositories: bool,
}

/// The builds running on this node.
pub struct Executor {
    config: ExecutorConfig,
    /// Where running steps' output goes, for live pages.
    live: broadcast::Sender<LiveOutput>,
    blobs: BlobDir,
    running: BTreeMap<CellName, Cancel>,
    done: mpsc::Sender<BuildDone>,
}

impl Executor {
    /// Ready to run builds; each report goes to `done`.
    pub fn new(
        config: ExecutorConfig,
        done: mpsc::Sender<BuildDone>,
        live: broadcast::Sender<LiveOutput>,
    ) -> std::io::Result<Self> {
        let blobs = BlobDir::open(&config.blobs)?;
        Ok(Executor {
            config,
            live,
            blobs,
            running: BTreeMap::new(),
            done,
        })
    }

    /// Starts building `cell` from `repository`, unless it is running.
    pub fn start(&mut self, cell: CellName, repository: String) -> std::io::Result<()> {
        if self.running.contains_key(&cell) {
            return Ok(());
        }
        let cancel = Cancel::new();
        let mut context = RunnerContext::new(
            self.config.mirrors.clone(),
            self.config.work.clone(),
            self.blobs.clone(),
        );
        context.cancel = cancel.clone();
        context.allow_local_repositories = self.config.allow_local_repositories;
        let (live, cell_of) = (self.live.clone(), cell.clone());
        context.on_output = Some(Arc::new(move |_, step: &str, bytes: &[u8]| {
            // Nobody watching is not an error.
            let _ = live.send(LiveOutput {
                project: cell_of.0,
                commit: cell_of.1.clone(),
                platform: cell_of.2.clone(),
                step: step.to_owned(),
                text: String::from_utf8_lossy(bytes).into_owned(),
            });
        }));
        let job = BuildJob {
            project: cell.0,
            repository,
            commit: cell.1.clone(),
            platform: cell.2.clone(),
        };
        let done = self.done.clone();
        let name = cell.clone();
        std::thread::Builder::new()
            .name(format!(
                "build-{}",
                &cell.1.to_string()[..8.min(cell.1.to_string().len())]
            ))
            .spawn(move || {
                let report = run_build(&job, &context);
                let cancelled = context.cancel.is_cancelled();
                let _ = done.blocking_send(BuildDone {
                    cell: name,
                    report,
                    cancelled,
                });
            })?;
        tracing::info!(commit = %cell.1, platform = %cell.2, "build started");
        self.running.insert(cell, cancel);
        Ok(())
    }

    /// Stops the build of `cell`, if running; its report still arrives.
    pub fn cancel(&mut self, cell: &CellName) {
        if let Some(cancel) = self.running.get(cell) {
            tracing::info!(commit = %cell.1, platform = %cell.2, "build cancelled");
            cancel.cancel();
        }
    }

    /// Forgets a build whose report arrived.
    pub fn ended(&mut self, cell: &CellName) {
        self.running.remove(cell);
    }

    /// Cancels every build (the node is stopping).
    pub fn cancel_all(&mut self) {
        for cancel in self.running.values() {
            cancel.cancel();
        }
    }
}
