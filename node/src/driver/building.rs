//! The driver's building errands: announcing what the poller found,
//! publishing bids, writing claims and results.

use super::{Driver, tolerate};
use crate::builds::Errand;
use crate::builds::executor::BuildDone;
use crate::builds::poller::NewCommits;
use crate::clock;
use anyhow::Result;
use buildmesh_core::claim::CellKey;
use buildmesh_core::replicator::WriteError;
use buildmesh_core::view::Work;
use buildmesh_mesh::{Acceptance, Topic};
use buildmesh_protocol::{Body, CommitAnnouncement, Outcome, PublicKey};
use std::collections::{BTreeSet, VecDeque};

impl Driver {
    /// The views thread read the work from the log again: act on it.
    pub(super) async fn apply_work(&mut self, work: Work) -> Result<()> {
        let errands = self.builds.apply_work(clock::now(), work);
        let waiting = self.builds.queue() as u64;
        self.status.send_if_modified(|s| {
            let changed = s.cells_waiting != waiting;
            s.cells_waiting = waiting;
            changed
        });
        self.run_errands(errands).await
    }

    /// Signs an announcement of each new commit, oldest first.
    pub(super) async fn announce(&mut self, news: NewCommits) -> Result<()> {
        for info in news.commits {
            if self.report {
                println!(
                    "announced {} on {}: {}",
                    info.commit.short(),
                    news.branch,
                    info.title
                );
            }
            let body = Body::Announce(CommitAnnouncement {
                project: news.project,
                branch: news.branch.clone(),
                commit: info.commit,
                parents: info.parents,
                title: info.title,
                author: info.author,
                committed_at: info.committed_at,
            });
            self.write(body).await?;
        }
        Ok(())
    }

    /// A build ended: its result is signed and spread, unless it was
    /// cancelled (someone else builds the cell, or it is done).
    pub(super) async fn build_done(&mut self, done: BuildDone) -> Result<()> {
        let outcome = done.report.result.outcome;
        let cancelled = done.cancelled;
        self.status.send_modify(|s| match (cancelled, outcome) {
            (true, _) => s.builds_cancelled += 1,
            (false, Outcome::Passed) => s.builds_passed += 1,
            (false, Outcome::Failed) => s.builds_failed += 1,
            (false, Outcome::Error) => s.builds_errored += 1,
        });
        if !done.cancelled {
            let result = done.report.result;
            if self.report {
                println!("{}", describe(&result));
            }
            for warning in &done.report.warnings {
                tracing::warn!(commit = %result.commit, %warning, "build");
            }
            self.write(Body::Result(result)).await?;
        }
        let errands = self
            .builds
            .build_ended(clock::now(), &done.cell, done.generation);
        self.run_errands(errands).await?;
        self.publish_load();
        Ok(())
    }

    /// A bid gossiped to us: checked, then given to the claimer.
    pub(super) async fn on_bid(
        &mut self,
        from: PublicKey,
        source: PublicKey,
        message: Vec<u8>,
        bytes: &[u8],
    ) -> Result<()> {
        match self.builds.bid_received(clock::now(), source, bytes) {
            Ok(Some(errands)) => {
                tolerate(self.mesh.report(message, from, Acceptance::Accept).await)?;
                self.run_errands(errands).await
            }
            Ok(None) => tolerate(self.mesh.report(message, from, Acceptance::Ignore).await),
            Err(why) => {
                tracing::debug!(peer = %from, %why, "rejected a gossiped bid");
                tolerate(self.mesh.report(message, from, Acceptance::Reject).await)
            }
        }
    }

    /// Publishes how many builds run here now.
    fn publish_load(&mut self) {
        let running = u64::from(self.builds.load());
        self.status.send_if_modified(|s| {
            let changed = s.builds_running != running;
            s.builds_running = running;
            changed
        });
    }

    pub(super) async fn run_errands(&mut self, errands: Vec<Errand>) -> Result<()> {
        let started = !errands.is_empty();
        let mut errands = VecDeque::from(errands);
        // Cells whose claim this list failed to write: not built.
        let mut unclaimed = BTreeSet::new();
        while let Some(errand) = errands.pop_front() {
            let more = match errand {
                Errand::PublishBid(bytes) => {
                    tolerate(self.mesh.publish(Topic::Bids, bytes).await)?;
                    Vec::new()
                }
                Errand::Renew(signed) => {
                    self.renew(signed).await?;
                    Vec::new()
                }
                Errand::Write(body) => {
                    let claimed = match &body {
                        Body::Claim(claim) => Some(CellKey::of_claim(claim)),
                        _ => None,
                    };
                    if !self.write(body).await? {
                        unclaimed.extend(claimed);
                    }
                    Vec::new()
                }
                Errand::CancelBuild(cell) => {
                    self.builds.cancel_build(cell);
                    Vec::new()
                }
                Errand::StartBuild(cell) => {
                    let now = clock::now();
                    if unclaimed.contains(&cell) {
                        self.builds.claim_not_written(now, cell)
                    } else {
                        self.builds.start_build(now, cell)
                    }
                }
            };
            errands.extend(more);
        }
        if started {
            self.publish_load();
        }
        Ok(())
    }

    /// Signs `body` as the node's next entry, stores it and publishes it;
    /// false if it was not written (and is dropped).
    async fn write(&mut self, body: Body) -> Result<bool> {
        match self.replicator.write(clock::now(), body) {
            Ok(_) => {
                self.carry_out().await?;
                Ok(true)
            }
            Err(WriteError::Sign(error)) => {
                tracing::error!(%error, "cannot sign an entry; it is dropped");
                Ok(false)
            }
            Err(WriteError::Refused(error)) => {
                tracing::error!(%error, "the log refused this node's own entry; it is dropped");
                Ok(false)
            }
            Err(WriteError::Store(error)) => Err(error.into()),
        }
    }
}

/// One line about a result, for the terminal.
fn describe(result: &buildmesh_protocol::BuildResult) -> String {
    let outcome = match result.outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "FAILED",
        Outcome::Error => "ERROR",
    };
    let steps: Vec<String> = result
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {:?} {:.1}s",
                s.name,
                s.status,
                s.duration_ms as f64 / 1000.0
            )
        })
        .collect();
    let mut line = format!(
        "result {} {} {outcome}: {}",
        result.commit.short(),
        result.platform,
        steps.join(", ")
    );
    if let Some(error) = &result.error {
        line.push_str(&format!(" ({error})"));
    }
    line
}
