//! The node's work, derived from the log off the driver's thread, becomes
//! the claimer's inputs.

use super::{Action, Notice, Service};
use crate::claim::{CellKey, ClaimInput};
use crate::log::EntryStore;
use crate::view::{Verdict, Work};
use buildmesh_protocol::{ProjectId, PublicKey, Timestamp};
use std::collections::BTreeSet;
use std::sync::Arc;

impl<S: EntryStore> Service<S> {
    /// Tells the claimer the wanted cells and their facts, the poller what
    /// to watch, and the operator what is declined; then, if the node
    /// holds its bids until its first sync, whether this work was read
    /// after that sync (only then does it hold what the sync brought).
    pub(super) fn work_derived(&mut self, now: Timestamp, work: Arc<Work>) {
        self.waiting = work.waiting();
        for declined in &work.declined {
            let said = (declined.project, declined.verdict);
            if declined.verdict != Verdict::Accepted && self.declined.insert(said) {
                self.outbox
                    .push_back(Action::Notice(Notice::Declined(declined.clone())));
            }
        }
        if self.work.watches != work.watches {
            self.outbox.push_back(Action::Watch(work.watches.clone()));
        }
        let withdrawn = withdrawn(&self.work, &work);
        self.work = Arc::clone(&work);
        // First: the facts fed next are all that still count of them.
        for (project, builder) in withdrawn {
            let input = ClaimInput::Withdrawn { project, builder };
            self.claimer.handle(now, input);
        }
        self.feed_claimer(now, &work);
        let synced = self.replicator.stats().last_sync_at;
        if self.catching_up && synced.is_some_and(|at| work.read_at >= at) {
            self.catching_up = false;
            self.claimer.handle(now, ClaimInput::CaughtUp);
        }
    }

    /// Every wanted cell, then every claim and result on them: the
    /// claimer decides at its next tick, with all of them in.
    fn feed_claimer(&mut self, now: Timestamp, work: &Work) {
        for cell in &work.wanted {
            self.repositories
                .insert(cell.project, cell.repository.clone());
            let rivals = self
                .work
                .builders
                .get(&cell.project)
                .map(|builders| builders.rivals_of(&self.me))
                .unwrap_or_default();
            let input = ClaimInput::Wanted {
                cell: CellKey {
                    project: cell.project,
                    commit: cell.commit.clone(),
                    platform: cell.platform.clone(),
                },
                builds: cell.builds,
                since: cell.since,
                rivals,
            };
            self.claimer.handle(now, input);
        }
        for event in &work.events {
            let cell = CellKey {
                project: event.project,
                commit: event.commit.clone(),
                platform: event.platform.clone(),
            };
            let input = match event.lease_expires {
                Some(lease_expires) => ClaimInput::Claimed {
                    cell,
                    builder: event.builder,
                    at: event.at,
                    lease_expires,
                },
                None if event.stopped => ClaimInput::Stopped {
                    cell,
                    builder: event.builder,
                    at: event.at,
                },
                None => ClaimInput::Finished {
                    cell,
                    builder: event.builder,
                    at: event.at,
                },
            };
            self.claimer.handle(now, input);
        }
    }
}

/// Builders some of whose facts the claimer was fed in a project may no
/// longer count there: newly proven to fork (in every declared project),
/// or whose uncounted facts on the project's wanted cells changed (a
/// revocation kept less of them, a declaration dropped them). Forgetting
/// one whose facts all still count costs a refeed, nothing more.
fn withdrawn(before: &Work, now: &Work) -> BTreeSet<(ProjectId, PublicKey)> {
    let changed = now
        .uncounted
        .iter()
        .filter(|(key, set)| before.uncounted.get(*key) != Some(*set))
        .map(|(key, _)| *key);
    let forked = now
        .forked
        .difference(&before.forked)
        .flat_map(|author| now.builders.keys().map(move |project| (*project, *author)));
    changed.chain(forked).collect()
}
