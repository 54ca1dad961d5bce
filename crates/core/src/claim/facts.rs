//! The claimer's reactions to facts: a want, a claim, a result, a bid.

use super::cell::{Phase, StoredBid, Want};
use super::rule::rendezvous_score;
use super::{CellKey, Claimer, Rivals};
use crate::view::LEASE_MS_MAX;
use buildmesh_protocol::{Bid, ProjectId, PublicKey, Timestamp};

/// Bids further than this from our clock are ignored, ms: replays of old
/// bids, or a bidder whose clock is far off.
pub(crate) const BID_AGE_MS_MAX: u64 = 60_000;

impl Claimer {
    pub(super) fn wanted(
        &mut self,
        now: Timestamp,
        key: CellKey,
        builds: u8,
        since: Timestamp,
        rivals: Rivals,
    ) {
        let Some(id) = self.cell_id(now, key) else {
            return;
        };
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        cell.rivals = rivals;
        let builds = builds.max(1);
        match cell.want {
            Some(old) if old.since >= since => {
                cell.want = Some(Want {
                    builds,
                    since: old.since,
                });
            }
            old => {
                cell.want = Some(Want { builds, since });
                cell.reset_since(since);
                let deciding = matches!(cell.phase, Phase::Window(_) | Phase::Grace(_));
                if old.is_some() && deciding {
                    // A force during a round: start over under the new want.
                    let had_bid = cell.bid_open();
                    cell.phase = Phase::Idle;
                    self.timers.stop_round(id);
                    if had_bid {
                        self.load_freed(now);
                    }
                }
            }
        }
        // Decided at the next tick: the cell's claims and results come
        // after its want (a restarted node knows nothing of a cell it
        // built before), and a sole builder would claim it without them.
        self.reconsider(now, id);
    }

    pub(super) fn claimed(
        &mut self,
        now: Timestamp,
        key: CellKey,
        builder: PublicKey,
        at: Timestamp,
        lease_expires: Timestamp,
    ) {
        if builder == self.me {
            // We know our own lease. One we do not hold (we cancelled, or
            // restarted and lost the build) must not keep us off the cell.
            return;
        }
        let Some(id) = self.cell_id(now, key) else {
            return;
        };
        // A stamp ahead of our clock says nothing later than now: a builder
        // whose clock runs ahead must not look alive after its loss.
        let at = at.min(now);
        let lease_expires = self.believed_lease(&builder, at, lease_expires);
        let margin_ms = self.config.orphan_ms;
        if let Some(cell) = self.cells.get_mut(&id) {
            let lease_expires = cell.cut_lease(&builder, at, lease_expires, margin_ms);
            // As the views judge it: no claim holds past LEASE_MS_MAX.
            cell.add_claim(builder, lease_expires.min(at.plus_ms(LEASE_MS_MAX)));
        }
        self.reconsider(now, id);
    }

    pub(super) fn finished(
        &mut self,
        now: Timestamp,
        key: CellKey,
        builder: PublicKey,
        at: Timestamp,
    ) {
        let Some(id) = self.cell_id(now, key) else {
            return;
        };
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        cell.add_result(builder, at);
        if builder == self.me && cell.phase == Phase::Building && cell.finished_since(&builder) {
            // Our result overtook our own BuildEnded.
            self.end_build(now, id);
            self.load_freed(now);
        }
        self.reconsider(now, id);
    }

    /// `builder` wrote a result without a verdict at `at`: its claim is
    /// cut there (and stays cut as the claim is fed again), so the cell
    /// opens at once instead of when the lease lapses.
    pub(super) fn stopped(
        &mut self,
        now: Timestamp,
        key: CellKey,
        builder: PublicKey,
        at: Timestamp,
    ) {
        if builder == self.me {
            // Our own: we know whether we build it.
            return;
        }
        let Some(id) = self.cell_id(now, key) else {
            return;
        };
        if let Some(cell) = self.cells.get_mut(&id) {
            cell.cut_claim(&builder, at.min(now));
        }
        self.reconsider(now, id);
    }

    /// Facts `builder` gave stop counting here as they have in the views
    /// (a fork proven, a revocation). Without this a result by it, fed
    /// while it counted, kept its cell done in the claimer while the
    /// matrix showed it pending: nobody bid again.
    pub(super) fn withdrawn(&mut self, now: Timestamp, project: &ProjectId, builder: &PublicKey) {
        if *builder == self.me {
            // The views decline every project then: nothing is wanted here.
            return;
        }
        let touched: Vec<_> = self
            .cells
            .iter_mut()
            .filter(|(_, cell)| cell.key.project == *project)
            .filter_map(|(id, cell)| cell.forget(builder).then_some(*id))
            .collect();
        for id in touched {
            self.reconsider(now, id);
        }
    }

    pub(super) fn bid_received(&mut self, now: Timestamp, bid: Bid) {
        if bid.bidder == self.me || bid.at.0.abs_diff(now.0) > BID_AGE_MS_MAX {
            return;
        }
        let Some(id) = self.cell_id(now, CellKey::of_bid(&bid)) else {
            return;
        };
        let fresh_ms = self.window_and_grace_ms();
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if cell.want.is_some_and(|w| bid.at < w.since) {
            return; // a bid on the cell before its latest force
        }
        let stored = StoredBid {
            load: bid.load,
            round: bid.round,
            at: bid.at,
            arrived: now,
            score: rendezvous_score(&bid.bidder, &cell.key),
        };
        if !cell.add_bid(bid.bidder, stored) {
            return;
        }
        let fresh = cell.round_is_fresh(now, fresh_ms);
        match cell.phase {
            Phase::Window(_) => {
                self.anchor_round(now, id, bid.at);
                self.close_if_decided(now, id);
            }
            Phase::Idle if cell.want.is_none() => {
                // Heard of it before it is wanted here: the round is the
                // bidder's, and began when it bid.
                if !fresh {
                    cell.round_started = None;
                }
                self.anchor_round(now, id, bid.at);
            }
            Phase::Idle if !fresh && cell.needed(now) > 0 => {
                self.start_round(now, id);
                self.anchor_round(now, id, bid.at);
            }
            Phase::Idle | Phase::Grace(_) | Phase::Building => {}
        }
    }
}
