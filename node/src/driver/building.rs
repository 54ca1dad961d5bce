//! What the poller found and what the executor reported, for the service.

use super::Driver;
use crate::attester::Attested;
use crate::builds::executor::BuildDone;
use crate::builds::key_of;
use crate::builds::poller::{NewCommits, NewPull};
use crate::terminal::printable;
use anyhow::Result;
use buildmesh_core::service::Input;
use buildmesh_protocol::{CommitAnnouncement, Outcome, PullAnnouncement};

impl Driver {
    /// New commits: the service signs an announcement of each, oldest
    /// first.
    pub(super) async fn announce(&mut self, news: NewCommits) -> Result<()> {
        let mut commits = Vec::with_capacity(news.commits.len());
        for info in news.commits {
            if self.terminal.is_some() {
                println!(
                    "announced {} on {}: {}",
                    info.commit.short(),
                    printable(&news.branch, 100),
                    printable(&info.title, 100)
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
        if self.terminal.is_some() {
            println!(
                "announced {} as pull request {} into {}: {}",
                pull.head.commit.short(),
                pull.number,
                printable(&pull.base, 100),
                printable(&pull.head.title, 100)
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
        self.count_ended(&done);
        if !self.builds.ended(&done.cell, done.generation) {
            return Ok(());
        }
        let result = (!done.cancelled).then(|| {
            let result = done.report.result;
            if let Some(terminal) = &self.terminal {
                terminal.result(&result);
                if let Some(tests) = &done.report.tests {
                    terminal.tests(tests);
                }
            }
            for warning in &done.report.warnings {
                tracing::warn!(commit = %result.commit, %warning, "build");
            }
            Box::new(result)
        });
        // Printed after the result's page, which signing it names.
        let tail = result.clone().zip(self.terminal.clone());
        let cell = key_of(&done.cell);
        let tests = (!done.cancelled)
            .then(|| done.report.tests.clone())
            .flatten();
        // Before the entry: it names them.
        let attestation = match &result {
            Some(result) => {
                let what = Attested {
                    repository: done.repository,
                    result: (**result).clone(),
                    tests: tests.clone(),
                    recipe_sha256: done.report.recipe_sha256,
                };
                self.attester.attest_off_task(what).await
            }
            None => None,
        };
        let handled = self
            .handle(Input::BuildEnded {
                cell,
                result,
                tests,
                attestation,
            })
            .await;
        // After the result is signed: its live page goes to it.
        self.builds.live_ended(&done.cell, done.cancelled);
        handled?;
        if let Some((result, terminal)) = tail {
            terminal.failing_tail(&result);
        }
        Ok(())
    }

    /// Counts a build that ran, for the status: every one is, also one
    /// cancelled and started again since.
    pub(super) fn count_ended(&self, done: &BuildDone) {
        let outcome = done.report.result.outcome;
        self.status
            .send_modify(|s| match (done.cancelled, outcome) {
                (true, _) => s.builds_cancelled += 1,
                (false, Outcome::Passed | Outcome::Warnings) => s.builds_passed += 1,
                (false, Outcome::Failed) => s.builds_failed += 1,
                (false, Outcome::Error) => s.builds_errored += 1,
                (false, Outcome::Skipped | Outcome::Retry | Outcome::Cancelled) => {
                    s.builds_cancelled += 1
                }
            });
    }
}
