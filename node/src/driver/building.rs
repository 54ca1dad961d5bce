//! What the poller found and what the executor reported, for the service.

use super::Driver;
use crate::builds::executor::BuildDone;
use crate::builds::key_of;
use crate::builds::poller::{NewCommits, NewPull};
use anyhow::Result;
use buildmesh_core::service::Input;
use buildmesh_protocol::{CommitAnnouncement, Outcome, PullAnnouncement};

impl Driver {
    /// New commits: the service signs an announcement of each, oldest
    /// first.
    pub(super) async fn announce(&mut self, news: NewCommits) -> Result<()> {
        let mut commits = Vec::with_capacity(news.commits.len());
        for info in news.commits {
            if self.report {
                println!(
                    "announced {} on {}: {}",
                    info.commit.short(),
                    news.branch,
                    info.title
                );
            }
            commits.push(CommitAnnouncement {
                project: news.project,
                branch: news.branch.clone(),
                commit: info.commit,
                parents: info.parents,
                title: info.title,
                author: info.author,
                committed_at: info.committed_at,
            });
        }
        self.handle(Input::NewCommits(commits)).await
    }

    /// A pull request's head, checked against its ref: the service signs
    /// an announcement of it if the project builds pull requests.
    pub(super) async fn announce_pull(&mut self, pull: NewPull) -> Result<()> {
        if self.report {
            println!(
                "announced {} as pull request {} into {}: {}",
                pull.head.commit.short(),
                pull.number,
                pull.base,
                pull.head.title
            );
        }
        let announcement = PullAnnouncement {
            project: pull.project,
            number: pull.number,
            base: pull.base,
            commit: pull.head.commit,
            parents: pull.head.parents,
            title: pull.head.title,
            author: pull.author,
            committed_at: pull.head.committed_at,
        };
        self.handle(Input::NewPull(announcement)).await
    }

    /// A build ended: its result goes to the service to sign and spread,
    /// unless it was cancelled (someone else builds the cell, or it is
    /// done) or it is an older build's report.
    pub(super) async fn build_done(&mut self, done: BuildDone) -> Result<()> {
        // Every build that ran is counted, also one cancelled and started
        // again since.
        let outcome = done.report.result.outcome;
        self.status
            .send_modify(|s| match (done.cancelled, outcome) {
                (true, _) => s.builds_cancelled += 1,
                (false, Outcome::Passed) => s.builds_passed += 1,
                (false, Outcome::Failed) => s.builds_failed += 1,
                (false, Outcome::Error) => s.builds_errored += 1,
            });
        if !self.builds.ended(&done.cell, done.generation) {
            return Ok(());
        }
        let result = (!done.cancelled).then(|| {
            let result = done.report.result;
            if self.report {
                println!("{}", describe(&result));
            }
            for warning in &done.report.warnings {
                tracing::warn!(commit = %result.commit, %warning, "build");
            }
            Box::new(result)
        });
        let cell = key_of(&done.cell);
        let handled = self.handle(Input::BuildEnded { cell, result }).await;
        // After the result is signed: its live page goes to it.
        self.builds.live_ended(&done.cell, done.cancelled);
        handled
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
        "result {} {} {outcome}",
        result.commit.short(),
        result.platform
    );
    if !steps.is_empty() {
        line.push_str(&format!(": {}", steps.join(", ")));
    }
    let reason = result
        .error
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match (reason, steps.is_empty()) {
        (Some(reason), true) => line.push_str(&format!(": {reason}")),
        (Some(reason), false) => line.push_str(&format!(" ({reason})")),
        (None, _) if result.outcome == Outcome::Error => {
            line.push_str(": the build could not judge the commit (no reason given)");
        }
        (None, _) => {}
    }
    line
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use buildmesh_protocol::{BuildResult, CommitId, ProjectId};

    fn result(outcome: Outcome, error: Option<&str>) -> BuildResult {
        BuildResult {
            project: ProjectId([1; 32]),
            commit: CommitId::from_bytes(&[0xab; 20]).unwrap(),
            platform: "linux".into(),
            outcome,
            steps: Vec::new(),
            artifacts: Vec::new(),
            metrics: Default::default(),
            environment: Default::default(),
            error: error.map(str::to_owned),
        }
    }

    /// Issue 16, item 5: an error with no steps said "ERROR:  (…)".
    #[test]
    fn an_error_result_says_why_in_one_clause() {
        assert_eq!(
            describe(&result(
                Outcome::Error,
                Some("no .buildmesh.toml in the commit")
            )),
            "result ababababab linux ERROR: no .buildmesh.toml in the commit"
        );
        assert_eq!(
            describe(&result(Outcome::Error, Some("  "))),
            "result ababababab linux ERROR: the build could not judge the commit (no reason given)"
        );
        assert_eq!(
            describe(&result(Outcome::Passed, None)),
            "result ababababab linux passed"
        );
    }
}
