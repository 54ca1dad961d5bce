//! A build's lifecycle: the claimer's actions carried out (bids and
//! renewals signed, the claim written before its build starts), and the
//! node's own entries (announcements, results).

use super::{Action, Notice, Service, Topic};
use crate::claim::{CellKey, ClaimAction, ClaimInput};
use crate::log::EntryStore;
use crate::replicator::WriteError;
use buildmesh_protocol::{
    BlobHash, Body, BuildResult, Claim, CommitAnnouncement, EntryId, ProjectId, PullAnnouncement,
    PullClosed, Renewal, SignedBid, SignedRenewal, TestSummary, Timestamp,
};
use std::collections::BTreeSet;

impl<S: EntryStore> Service<S> {
    /// Carries out one claimer action. `unclaimed` holds the cells whose
    /// claim failed to be written in this pump: their builds do not start.
    pub(super) fn claim_action(
        &mut self,
        now: Timestamp,
        action: ClaimAction,
        unclaimed: &mut BTreeSet<CellKey>,
    ) -> Result<(), S::Error> {
        match action {
            ClaimAction::SendBid(bid) => match SignedBid::sign(&self.key, bid) {
                Ok(signed) => self.publish(Topic::Bids, signed.to_wire()),
                Err(why) => self.notice(Notice::NotSigned(why.to_string())),
            },
            ClaimAction::WriteClaim {
                cell,
                lease_expires,
            } => {
                let claim = Body::Claim(Claim {
                    project: cell.project,
                    commit: cell.commit.clone(),
                    platform: cell.platform.clone(),
                    lease_expires,
                });
                if !self.write(now, "claim", claim)? {
                    unclaimed.insert(cell);
                }
            }
            ClaimAction::RenewLease {
                cell,
                lease_expires,
            } => self.renew(now, cell, lease_expires),
            ClaimAction::StartBuild(cell) => self.start_build(now, cell, unclaimed),
            ClaimAction::CancelBuild(cell) => self.outbox.push_back(Action::CancelBuild(cell)),
        }
        Ok(())
    }

    /// Our lease renewal: held among the live ones (our views and peers
    /// that sync see it), then gossiped. One that cannot be signed lets
    /// the lease lapse for peers; the build goes on and its result counts.
    fn renew(&mut self, now: Timestamp, cell: CellKey, lease_expires: Timestamp) {
        let renewal = Renewal {
            builder: self.me,
            at: now,
            project: cell.project,
            lease_expires,
            commit: cell.commit,
            platform: cell.platform,
        };
        match SignedRenewal::sign(&self.key, renewal) {
            Ok(signed) => {
                if self.leases.offer(now, &signed) {
                    self.leases_changed(now);
                }
                self.publish(Topic::Renewals, signed.to_wire());
            }
            Err(why) => self.notice(Notice::NotSigned(why.to_string())),
        }
    }

    /// Asks the node to build `cell`, whose claim the actions before this
    /// one wrote; a cell whose claim was not written, or whose repository
    /// is unknown, is not built now and is claimed again later.
    fn start_build(&mut self, now: Timestamp, cell: CellKey, unclaimed: &mut BTreeSet<CellKey>) {
        if unclaimed.remove(&cell) {
            self.notice(Notice::ClaimNotWritten(cell.clone()));
            self.claimer.handle(now, ClaimInput::BuildAbandoned(cell));
            return;
        }
        match self.repositories.get(&cell.project) {
            Some(repository) => {
                let repository = repository.clone();
                self.outbox
                    .push_back(Action::StartBuild { cell, repository });
            }
            None => {
                self.notice(Notice::NoRepository(cell.clone()));
                self.claimer.handle(now, ClaimInput::BuildAbandoned(cell));
            }
        }
    }

    /// Our build of `cell` ended: its result, if any, is signed and spread
    /// first, then the claimer frees the slot.
    pub(super) fn build_ended(
        &mut self,
        now: Timestamp,
        cell: CellKey,
        result: Option<Box<BuildResult>>,
        tests: Option<TestSummary>,
        attestation: Option<BlobHash>,
    ) -> Result<(), S::Error> {
        if let Some(result) = result
            && let Some(id) =
                self.write_entry(now, "result", Body::of_result(*result, tests, attestation))?
        {
            self.notice(Notice::ResultWritten {
                cell: cell.clone(),
                id,
            });
        }
        self.claimer.handle(now, ClaimInput::BuildEnded(cell));
        Ok(())
    }

    /// Signs an announcement of each new commit, in order.
    pub(super) fn announce(
        &mut self,
        now: Timestamp,
        commits: Vec<CommitAnnouncement>,
    ) -> Result<(), S::Error> {
        for commit in commits {
            self.write(now, "announcement", Body::Announce(commit))?;
            self.drain_replicator(now)?;
        }
        Ok(())
    }

    /// Signs an announcement of a pull request's head, if the latest work
    /// says its project builds pull requests and this node watches it:
    /// what the announcer checked against an older work is checked again.
    pub(super) fn announce_pull(
        &mut self,
        now: Timestamp,
        pull: PullAnnouncement,
    ) -> Result<(), S::Error> {
        let builds_pulls = self
            .work
            .watches
            .iter()
            .any(|w| w.project == pull.project && w.pull_requests);
        if !builds_pulls {
            let why = format!(
                "project {} does not build pull requests (its maintainer has not turned \
                 them on), or this node does not announce for it",
                pull.project
            );
            self.notice(Notice::NotWritten {
                what: "pull request announcement",
                why,
            });
            return Ok(());
        }
        self.write(now, "pull request announcement", Body::Pull(pull))?;
        self.drain_replicator(now)
    }

    /// Signs a close of pull request `number` for each project this node
    /// watches at one of `repositories` that builds pull requests and
    /// has that pull request open. Nothing is fetched: a close names no
    /// commit, and the forge's signed word is all there is to check.
    pub(super) fn close_pull(
        &mut self,
        now: Timestamp,
        repositories: &[String],
        number: u64,
    ) -> Result<(), S::Error> {
        let projects: Vec<ProjectId> = self
            .work
            .watches
            .iter()
            .filter(|w| repositories.iter().any(|r| w.wants_close(r, number)))
            .map(|w| w.project)
            .collect();
        if projects.is_empty() {
            self.notice(Notice::NotWritten {
                what: "pull request close",
                why: format!(
                    "no project this node announces for builds pull request {number} of that \
                     repository as an open one"
                ),
            });
            return Ok(());
        }
        for project in projects {
            let close = PullClosed { project, number };
            self.write(now, "pull request close", Body::PullClosed(close))?;
        }
        self.drain_replicator(now)
    }

    /// Signs `body` as the node's next entry, stores it and publishes it;
    /// false if it was not written (and is dropped: the operator is told).
    fn write(&mut self, now: Timestamp, what: &'static str, body: Body) -> Result<bool, S::Error> {
        Ok(self.write_entry(now, what, body)?.is_some())
    }

    /// [`Self::write`], naming the entry written.
    fn write_entry(
        &mut self,
        now: Timestamp,
        what: &'static str,
        body: Body,
    ) -> Result<Option<EntryId>, S::Error> {
        match self.replicator.write(now, body) {
            Ok(entry) => Ok(Some(entry.id())),
            Err(WriteError::Store(error)) => Err(error),
            Err(WriteError::Sign(why)) => {
                let why = why.to_string();
                self.notice(Notice::NotWritten { what, why });
                Ok(None)
            }
            Err(WriteError::Refused(why)) => {
                let why = why.to_string();
                self.notice(Notice::NotWritten { what, why });
                Ok(None)
            }
        }
    }

    fn publish(&mut self, topic: Topic, bytes: Vec<u8>) {
        self.outbox.push_back(Action::Publish { topic, bytes });
    }

    fn notice(&mut self, notice: Notice) {
        self.outbox.push_back(Action::Notice(notice));
    }
}
