//! Stopping cleanly: every build under way is cancelled and waited for.
//! A build may have ended just before the stop, its report still queued:
//! that result is signed and stored like any other, before the store is
//! flushed. Thrown away, a whole test run would be lost, and the cell
//! built again once its claim expired.

use super::Driver;
use crate::builds::executor::BuildDone;
use std::time::Duration;
use tokio::time::Instant;

/// How long a stopping node waits for its cancelled builds to end. A
/// cancelled step is killed within milliseconds and its output drained
/// within seconds; what else a build does (a fetch, a checkout, copying
/// artifacts) checks the cancel flag or ends soon. Well under the 90 s a
/// service manager (systemd) gives before it sends SIGKILL.
const BUILDS_STOP_WAIT: Duration = Duration::from_secs(20);

/// What winding the builds down needs of the driver. A trait so that the
/// loop can be tested without a mesh, a store and real builds.
pub(super) trait WindDown {
    /// Whether every build has reported.
    fn idle(&self) -> bool;
    /// The next build report (`None`: none can come any more).
    async fn next_report(&mut self) -> Option<BuildDone>;
    /// A build that ended before the stop cancelled it: its result is
    /// signed and stored like any other.
    async fn finished(&mut self, done: BuildDone);
    /// A build the stop (or an earlier cancel) cut short: signed as a
    /// `Retry` result, which says why its claim ended and is no vote.
    async fn cancelled(&mut self, done: BuildDone);
}

/// Takes in build reports until every build has reported (or none can
/// any more); `false` if `deadline` came first.
pub(super) async fn wind_down(builds: &mut impl WindDown, deadline: Instant) -> bool {
    while !builds.idle() {
        match tokio::time::timeout_at(deadline, builds.next_report()).await {
            Ok(Some(done)) if done.cancelled => builds.cancelled(done).await,
            Ok(Some(done)) => builds.finished(done).await,
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
    true
}

impl Driver {
    /// Cancels every build and waits (up to [`BUILDS_STOP_WAIT`]) until
    /// each has reported: a build's thread removes its work dir, after
    /// killing its steps, before it reports. Call before flushing the
    /// store: results that ended in time are signed into it meanwhile.
    pub(super) async fn stop_builds(&mut self) {
        self.builds.stop();
        if self.builds.idle() {
            return;
        }
        tracing::info!("stopping: cancelling the builds under way");
        if !wind_down(self, Instant::now() + BUILDS_STOP_WAIT).await {
            tracing::warn!(
                "builds still running {} s after they were cancelled; stopping without them \
                 (the next start removes their work dirs)",
                BUILDS_STOP_WAIT.as_secs()
            );
        }
    }
}

impl WindDown for Driver {
    fn idle(&self) -> bool {
        self.builds.idle()
    }

    async fn next_report(&mut self) -> Option<BuildDone> {
        self.builds_done.recv().await
    }

    async fn finished(&mut self, done: BuildDone) {
        // The result is in the store by now, if it could be signed; what
        // failed after (a stopped mesh) the next sync makes up for.
        if let Err(error) = self.build_done(done).await {
            tracing::warn!(%error, "stopping: a build that ended before the stop");
        }
    }

    async fn cancelled(&mut self, done: BuildDone) {
        if self.builds.withdrawn(done.generation) {
            // Cancelled before the stop because the cell got its results
            // elsewhere: only counted, as when the node runs on.
            if let Err(error) = self.build_done(done).await {
                tracing::warn!(%error, "stopping: a cancelled build");
            }
            return;
        }
        // The log says why the claim ended before its lease: the builder
        // stopped. A retry is no vote, and any builder (this one, once
        // started again, included) may take the cell.
        if let Err(error) = self.build_done(retry(done)).await {
            tracing::warn!(%error, "stopping: a build the stop cut short");
        }
    }
}

/// A build cut short by the node's stop, as the `Retry` result that ends
/// its claim: the steps run so far (the one that was running killed), no
/// artifacts, no tests.
fn retry(mut done: BuildDone) -> BuildDone {
    let result = &mut done.report.result;
    result.outcome = buildmesh_protocol::Outcome::Retry;
    result.error = Some(
        "the builder's node stopped before the build ended; any builder may build it again".into(),
    );
    result.artifacts.clear();
    done.report.tests = None;
    done.cancelled = false;
    done
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use buildmesh_protocol::{BuildResult, CommitId, Outcome, ProjectId};
    use buildmesh_runner::BuildReport;
    use std::collections::{BTreeMap, VecDeque};

    /// Builds as the stop path sees them: reports queued, and what became
    /// of each (by generation).
    #[derive(Default)]
    struct Builds {
        running: usize,
        queued: VecDeque<BuildDone>,
        signed: Vec<u64>,
        counted: Vec<u64>,
    }

    impl WindDown for Builds {
        fn idle(&self) -> bool {
            self.running == 0
        }

        async fn next_report(&mut self) -> Option<BuildDone> {
            match self.queued.pop_front() {
                Some(done) => Some(done),
                // A build that never reports.
                None => std::future::pending().await,
            }
        }

        async fn finished(&mut self, done: BuildDone) {
            self.running -= 1;
            self.signed.push(done.generation);
        }

        async fn cancelled(&mut self, done: BuildDone) {
            self.running -= 1;
            self.counted.push(done.generation);
        }
    }

    fn report(generation: u64, cancelled: bool) -> BuildDone {
        let commit = CommitId::from_bytes(&[generation as u8; 20]).unwrap();
        let result = BuildResult {
            project: ProjectId([1; 32]),
            commit: commit.clone(),
            platform: "linux".into(),
            outcome: Outcome::Passed,
            steps: Vec::new(),
            artifacts: Vec::new(),
            metrics: BTreeMap::new(),
            environment: BTreeMap::new(),
            error: None,
        };
        BuildDone {
            cell: (ProjectId([1; 32]), commit, "linux".into()),
            repository: "/nowhere".into(),
            generation,
            report: BuildReport {
                result,
                tests: None,
                recipe_sha256: None,
                warnings: Vec::new(),
            },
            cancelled,
        }
    }

    #[tokio::test]
    async fn a_build_that_ended_before_the_stop_is_signed_a_cancelled_one_counted() {
        let mut builds = Builds {
            running: 3,
            queued: [report(1, false), report(2, true), report(3, false)].into(),
            ..Builds::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        assert!(wind_down(&mut builds, deadline).await);
        assert_eq!(builds.signed, [1, 3]);
        assert_eq!(builds.counted, [2]);
    }

    #[test]
    fn a_build_cut_short_by_the_stop_becomes_a_retry_without_artifacts_or_tests() {
        let mut done = report(4, true);
        done.report
            .result
            .artifacts
            .push(buildmesh_protocol::Artifact {
                name: "half".into(),
                hash: buildmesh_protocol::BlobHash::of(b"half"),
                bytes: 4,
            });
        let done = retry(done);
        assert!(!done.cancelled, "signed like a finished build");
        assert_eq!(done.report.result.outcome, Outcome::Retry);
        assert!(done.report.result.artifacts.is_empty());
        assert!(done.report.result.error.unwrap().contains("stopped"));
    }

    #[tokio::test]
    async fn a_build_that_never_reports_is_given_up_at_the_deadline() {
        let mut builds = Builds {
            running: 2,
            queued: [report(1, false)].into(),
            ..Builds::default()
        };
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(!wind_down(&mut builds, deadline).await);
        assert_eq!(builds.signed, [1]);
        assert_eq!(builds.running, 1);
    }
}
