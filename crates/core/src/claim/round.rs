//! Rounds: when to bid, when a window closes, what the rule says, and
//! what the losers do when the winners never claim.

use super::cell::{Cell, OwnBid, Phase, StoredBid};
use super::rule::{Rank, bid_delay_ms, top};
use super::timer::{CellId, Timer};
use super::{ClaimAction, Claimer};
use buildmesh_protocol::{Bid, Timestamp};

impl Claimer {
    /// Looks at a cell again after something changed, and opens, joins or
    /// abandons a round, or settles our build.
    pub(super) fn reconsider(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        let needed = cell.needed(now);
        match cell.phase {
            Phase::Building => self.check_build(now, id),
            Phase::Window(_) | Phase::Grace(_) if needed == 0 => {
                let had_bid = cell.bid_open();
                cell.phase = Phase::Idle;
                self.timers.stop_round(id);
                self.watch_leases(now, id);
                if had_bid {
                    self.load_freed(now);
                }
            }
            Phase::Window(_) | Phase::Grace(_) => {}
            Phase::Idle if needed == 0 => self.watch_leases(now, id),
            // Taking part is decided at a tick, never inside a fact: the
            // facts fed with this one (a derivation feeds all of them, in
            // no order that matters) must all be in first.
            Phase::Idle => self.timers.set(id, Timer::Decide, now),
        }
    }

    /// An idle cell that needs builders: claim it if we are its only
    /// builder, join a round under way, or open one; or wait for a slot.
    pub(super) fn decide(&mut self, now: Timestamp, id: CellId) {
        let fresh_ms = self.window_and_grace_ms();
        let can_bid = self.can_bid(now, id);
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if cell.phase != Phase::Idle || cell.needed(now) == 0 {
            return self.reconsider(now, id);
        }
        if cell.sole() && can_bid {
            self.claim_and_build(now, id);
        } else if cell.round_is_fresh(now, fresh_ms) {
            self.join_round(now, id);
        } else if can_bid {
            self.start_round(now, id);
        }
    }

    /// Whether we could take the cell now: it needs builders, we have a
    /// slot for it, and we have not built it already. A slot is taken by a
    /// build, and also by a bid of ours still open in another cell's
    /// window: a node with one slot and thirty new commits bids for one
    /// at a time, instead of winning thirty rounds it cannot build and
    /// making everyone wait out their grace.
    pub(super) fn can_bid(&self, now: Timestamp, id: CellId) -> bool {
        self.cells.get(&id).is_some_and(|cell| {
            let own_bid_here = cell.bid_open();
            let reserved = self.open_bids().saturating_sub(u32::from(own_bid_here));
            self.quiet_until.is_none()
                && self.load.saturating_add(reserved) < self.config.builds_max
                && cell.phase != Phase::Building
                && now >= cell.retry_at
                && !cell.finished_since(&self.me)
                && cell.needed(now) > 0
        })
    }

    /// Our bids waiting for their window to close.
    fn open_bids(&self) -> u32 {
        let open = self.cells.values().filter(|c| c.bid_open()).count();
        u32::try_from(open).unwrap_or(u32::MAX)
    }

    /// Opens a new round from now: bids that came before the last
    /// window closed are dropped (their bidders bid again if they still
    /// want the cell), and we bid if we can.
    pub(super) fn start_round(&mut self, now: Timestamp, id: CellId) {
        let window_ms = self.config.bid_window_ms;
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if let Some(started) = cell.round_started {
            let closed = started.plus_ms(window_ms);
            cell.drop_bids_before(closed);
            cell.round_floor = closed;
            cell.round = cell.round.saturating_add(1);
        }
        cell.round_started = Some(now);
        self.stats.rounds += 1;
        self.join_round(now, id);
    }

    /// Takes part in the round that began at `round_started`: collect
    /// until its window closes, and bid if we can and it is not too late.
    /// Bids go out in the first half of the window only, each after a delay
    /// in proportion to its bidder's rendezvous score, so likely winners
    /// speak first and every bid has half a window to reach the others.
    pub(super) fn join_round(&mut self, now: Timestamp, id: CellId) {
        let can_bid = self.can_bid(now, id);
        let window_ms = self.config.bid_window_ms;
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        let started = cell.round_started.unwrap_or(now);
        let closes = started.plus_ms(window_ms);
        self.timers.set(id, Timer::WindowClose, closes.max(now));
        self.timers.stop(id, Timer::LeaseExpiry);
        let bidding_ends = started.plus_ms(window_ms / 2);
        if can_bid && now <= bidding_ends {
            let send = started.plus_ms(bid_delay_ms(&cell.score, window_ms / 2));
            self.timers.set(id, Timer::SendBid, send.max(now));
            cell.phase = Phase::Window(OwnBid::Pending);
        } else {
            self.timers.stop(id, Timer::SendBid);
            cell.phase = Phase::Window(OwnBid::Watching);
        }
    }

    /// A bid of this round was sent at `at`, before the round began here:
    /// the round is older than we thought. Move its start back (no further
    /// than one window before now, so a bidder's clock cannot close our
    /// window before its bid arrived), so our window closes when the first
    /// bidder's does, and bid only if the first half of the window has not
    /// passed. This is what keeps a node that heard of the cell late from
    /// bidding after the others decided.
    pub(super) fn anchor_round(&mut self, now: Timestamp, id: CellId, at: Timestamp) {
        let window_ms = self.config.bid_window_ms;
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        let heard = at.max(Timestamp(now.0.saturating_sub(window_ms)));
        let earlier = cell.round_started.is_none_or(|started| heard < started);
        if at < cell.round_floor || !earlier {
            return;
        }
        cell.round_started = Some(heard);
        match cell.phase {
            Phase::Window(OwnBid::Pending) => self.join_round(now, id),
            Phase::Window(_) => {
                let closes = heard.plus_ms(window_ms).max(now);
                self.timers.set(id, Timer::WindowClose, closes);
            }
            _ => {}
        }
    }

    /// Sends our bid, unless enough better bids came while we waited.
    /// Those bidders would win over us anyway, so staying quiet changes no
    /// outcome and saves every other node a message.
    pub(super) fn send_bid(&mut self, now: Timestamp, id: CellId) {
        let can_bid = self.can_bid(now, id);
        let (me, load) = (self.me, self.load);
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        if cell.phase != Phase::Window(OwnBid::Pending) {
            return;
        }
        if !can_bid {
            cell.phase = Phase::Window(OwnBid::Watching);
            self.close_if_decided(now, id);
            return;
        }
        let mine = Rank::new(load, cell.score, me);
        if cell.better_than(mine, now) >= cell.needed(now) {
            cell.phase = Phase::Window(OwnBid::Suppressed);
            self.stats.bids_suppressed += 1;
            // The slot our pending bid held is free for another cell.
            self.load_freed(now);
            self.close_if_decided(now, id);
            return;
        }
        let bid = Bid {
            bidder: me,
            at: now,
            project: cell.key.project,
            round: cell.round,
            load,
            commit: cell.key.commit.clone(),
            platform: cell.key.platform.clone(),
        };
        let stored = StoredBid {
            load,
            round: cell.round,
            at: now,
            arrived: now,
            score: cell.score,
        };
        cell.add_bid(me, stored);
        cell.phase = Phase::Window(OwnBid::Sent);
        self.stats.bids_sent += 1;
        self.outbox.push_back(ClaimAction::SendBid(bid));
        self.close_if_decided(now, id);
    }

    /// Closes the window now if its outcome is known (see
    /// `Cell::outcome_known`) and ours is out, or we take no part. Each
    /// rival decides on the same bids, so all pick the same winners; a
    /// lost bid only means waiting for the window, as before.
    pub(super) fn close_if_decided(&mut self, now: Timestamp, id: CellId) {
        let decided = self.cells.get(&id).is_some_and(|cell| {
            matches!(cell.phase, Phase::Window(own) if own != OwnBid::Pending)
                && cell.outcome_known(now)
        });
        if decided {
            self.timers.stop(id, Timer::WindowClose);
            self.close_window(now, id);
        }
    }

    /// The window closed: run the rule on the bids seen. A winner claims;
    /// the others wait for the winners' claims until the grace ends.
    pub(super) fn close_window(&mut self, now: Timestamp, id: CellId) {
        let building = self.load;
        let had_bid = self.cells.get(&id).is_some_and(Cell::bid_open);
        self.settle_window(now, id);
        if had_bid && self.load == building {
            // Our bid here is no longer open: its slot may go to a cell
            // that waited for one. (Only then: a window we only watched
            // freed nothing, and a busy node would otherwise rejoin the
            // same closed round at once, and again, in one tick.)
            self.load_freed(now);
        }
    }

    fn settle_window(&mut self, now: Timestamp, id: CellId) {
        let can_bid = self.can_bid(now, id);
        let grace_ends_ms = self.window_and_grace_ms();
        let me = self.me;
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        self.timers.stop(id, Timer::SendBid);
        let needed = cell.needed(now);
        if needed == 0 {
            cell.phase = Phase::Idle;
            self.watch_leases(now, id);
            return;
        }
        let mut winners = top(cell.candidates(now), needed);
        if can_bid && winners.contains(&me) {
            self.claim_and_build(now, id);
            return;
        }
        // We won but cannot build now (our slots filled meanwhile): we
        // will not claim, so waiting out a grace for our own claim would
        // only hold the cell back. Others wait for us, then pass us by.
        winners.retain(|w| *w != me);
        if winners.is_empty() {
            cell.phase = Phase::Idle;
            if can_bid {
                self.start_round(now, id);
            }
        } else {
            let started = cell.round_started.unwrap_or(now);
            cell.phase = Phase::Grace(winners);
            let ends = started.plus_ms(grace_ends_ms).max(now);
            self.timers.set(id, Timer::GraceEnd, ends);
        }
    }

    /// The winners had their time. Those that did not claim are passed
    /// by from now on, and a new round opens if the cell still needs
    /// builders (a winner crashed, or its bid was all we saw).
    pub(super) fn grace_ended(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get_mut(&id) else {
            return;
        };
        let Phase::Grace(winners) = std::mem::replace(&mut cell.phase, Phase::Idle) else {
            return;
        };
        cell.mark_failed(&winners, now);
        if cell.needed(now) > 0 {
            self.start_round(now, id);
        } else {
            self.watch_leases(now, id);
        }
    }

    /// Arms a timer for the first of others' leases to lapse, so a lapse
    /// with no result reopens the cell.
    pub(super) fn watch_leases(&mut self, now: Timestamp, id: CellId) {
        let Some(cell) = self.cells.get(&id) else {
            return;
        };
        match cell.next_lapse(now).filter(|_| cell.want.is_some()) {
            Some(at) => self.timers.set(id, Timer::LeaseExpiry, at),
            None => self.timers.stop(id, Timer::LeaseExpiry),
        }
    }
}
