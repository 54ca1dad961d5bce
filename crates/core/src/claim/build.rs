//! Our builds: claiming, renewing, settling competing claims, ending.

use super::cell::{Cell, Phase};
use super::rule::{Rank, rendezvous_score, top};
use super::timer::{CellId, Timer};
use super::{CellKey, ClaimAction, Claimer};
use buildmesh_protocol::Timestamp;

impl Claimer {
    /// We won: claim with a lease, start the build, renew on a timer.
    pub(super) fn claim_and_build(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        self.timers.stop_round(id);
        self.timers.stop(id, Timer::LeaseExpiry);
        cell.phase = Phase::Building;
        cell.lease = now.plus_ms(self.config.lease_ms);
        self.load += 1;
        self.stats.builds_started += 1;
        self.outbox.push_back(ClaimAction::WriteClaim {
            cell: cell.key.clone(),
            lease_expires: cell.lease,
        });
        self.outbox
            .push_back(ClaimAction::StartBuild(cell.key.clone()));
        self.timers
            .set(id, Timer::Renew, now.plus_ms(self.config.renew_ms));
    }

    /// Extends our lease while we build, by gossip (not an entry).
    pub(super) fn renew(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if cell.phase != Phase::Building {
            return;
        }
        cell.lease = now.plus_ms(self.config.lease_ms);
        self.stats.renewals += 1;
        self.outbox.push_back(ClaimAction::RenewLease {
            cell: cell.key.clone(),
            lease_expires: cell.lease,
        });
        self.timers
            .set(id, Timer::Renew, now.plus_ms(self.config.renew_ms));
    }

    /// Cancels our build if enough results came, or if more builders
    /// hold live claims than the cell still needs and the rule (on
    /// rendezvous scores alone: claims carry no load) ranks us out. Every
    /// claimer runs the same rule on the same claims, so exactly the
    /// best-ranked ones keep building.
    pub(super) fn check_build(&mut self, now: Timestamp, id: CellId) {
        let me = self.me;
        let Some(cell) = self.cells.get(&id) else {
            return;
        };
        let Some(want) = cell.want else {
            return;
        };
        let allowed = usize::from(want.builds).saturating_sub(cell.results());
        let mut claimers: Vec<Rank> = cell
            .live_claimers(now)
            .map(|builder| Rank::new(0, rendezvous_score(builder, &cell.key), *builder))
            .collect();
        claimers.push(Rank::new(0, cell.score, me));
        let keep = claimers.len() <= allowed || top(claimers, allowed).contains(&me);
        if !keep {
            self.outbox
                .push_back(ClaimAction::CancelBuild(cell.key.clone()));
            self.stats.cancels += 1;
            self.end_build(now, id);
            self.load_freed(now);
        }
    }

    /// Our build of `key` ended and its result is written.
    pub(super) fn build_ended(&mut self, now: Timestamp, key: &CellKey) {
        let me = self.me;
        let Some((id, cell)) = self.own_build(key) else {
            return;
        };
        // Our result is on its way back as `Finished`; until then this
        // keeps us from bidding on the cell again.
        cell.add_result(me, now);
        self.end_build(now, id);
        self.load_freed(now);
    }

    /// Our build of `key` never started (its claim was not written, or
    /// it could not be run): the slot is free, nothing counts as built,
    /// and the cell is claimed again after `retry_ms` at the earliest (a
    /// failure that lasts would otherwise be retried in a loop).
    pub(super) fn build_abandoned(&mut self, now: Timestamp, key: &CellKey) {
        let retry_at = now.plus_ms(self.config.retry_ms);
        let Some((id, cell)) = self.own_build(key) else {
            return;
        };
        cell.retry_at = retry_at;
        self.timers.set(id, Timer::Retry, retry_at);
        self.end_build(now, id);
        self.load_freed(now);
    }

    /// The cell `key` if we are building it.
    fn own_build(&mut self, key: &CellKey) -> Option<(CellId, &mut Cell)> {
        let id = self.known_id(key)?;
        let cell = self.cells.get_mut(&id)?;
        (cell.phase == Phase::Building).then_some((id, cell))
    }

    /// Leaves the building state: no more renewals, one slot free.
    pub(super) fn end_build(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if cell.phase != Phase::Building {
            return;
        }
        cell.phase = Phase::Idle;
        cell.lease = now;
        self.load = self.load.saturating_sub(1);
        self.timers.stop(id, Timer::Renew);
        self.watch_leases(now, id);
    }

    /// A slot came free: cells that waited for one may bid at the next
    /// tick (see [`Claimer::decide_waiting`]), not inside the input that
    /// freed it, whose fellow facts may not all be in yet.
    pub(super) fn load_freed(&mut self, now: Timestamp) {
        self.slot_freed = Some(self.slot_freed.map_or(now, |at| at.min(now)));
    }

    /// Cells that waited for a slot decide now, the longest waiting first
    /// (as many as slots allow: `can_bid` counts our open bids).
    pub(super) fn decide_waiting(&mut self, now: Timestamp) {
        let waiting: Vec<CellId> = self
            .cells
            .iter()
            .filter(|(_, cell)| cell.want.is_some() && cell.phase == Phase::Idle)
            .map(|(id, _)| *id)
            .collect();
        self.decide_in_turn(now, waiting);
    }

    /// `cells` decide, the longest waiting first: by their want's `since`,
    /// then in the order they were first heard of.
    pub(super) fn decide_in_turn(&mut self, now: Timestamp, mut cells: Vec<CellId>) {
        let since = |id: &CellId| self.cells.get(id).and_then(|c| c.want).map(|w| w.since);
        cells.sort_by_key(|id| (since(id), *id));
        for id in cells {
            self.decide(now, id);
        }
    }
}
