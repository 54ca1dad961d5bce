//! The claimer's timers: what each one is for, and one table of them all
//! ordered by deadline (in the manner of quinn-proto's `timer.rs`).

use buildmesh_protocol::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

/// A cell's handle inside the claimer: small and `Copy`, so the timer
/// queue does not clone cell keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CellId(pub(crate) u64);

/// What a timer does when it fires. The order matters: timers due at the
/// same moment on one cell fire in this order (a bid is sent before the
/// window it belongs to closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// Send our bid, unless enough better bids came first.
    SendBid,
    /// The bid window closes: run the rule.
    WindowClose,
    /// The winners had their time to claim.
    GraceEnd,
    /// A live claim by someone else lapses.
    LeaseExpiry,
    /// Renew our lease on a cell we build.
    Renew,
    /// Our build of the cell never started: look at it again.
    Retry,
    /// The cell was wanted (again): decide at the next tick, once the
    /// facts fed with the want are in (see `ClaimInput::Wanted`).
    Decide,
    /// See whether the cell can be forgotten.
    Forget,
}

/// Every armed timer, by cell and kind, and the same ordered by deadline.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    armed: BTreeMap<(CellId, Timer), Timestamp>,
    queue: BTreeSet<(Timestamp, CellId, Timer)>,
}

impl Timers {
    /// Arms `timer` on `cell` for `at`, replacing any earlier setting.
    pub(crate) fn set(&mut self, cell: CellId, timer: Timer, at: Timestamp) {
        if let Some(old) = self.armed.insert((cell, timer), at) {
            self.queue.remove(&(old, cell, timer));
        }
        self.queue.insert((at, cell, timer));
    }

    /// Disarms `timer` on `cell`.
    pub(crate) fn stop(&mut self, cell: CellId, timer: Timer) {
        if let Some(old) = self.armed.remove(&(cell, timer)) {
            self.queue.remove(&(old, cell, timer));
        }
    }

    /// Disarms every timer of `cell` but [`Timer::Forget`].
    pub(crate) fn stop_round(&mut self, cell: CellId) {
        for timer in [Timer::SendBid, Timer::WindowClose, Timer::GraceEnd] {
            self.stop(cell, timer);
        }
    }

    /// Disarms every timer of `cell`.
    pub(crate) fn stop_all(&mut self, cell: CellId) {
        let timers: Vec<Timer> = self
            .armed
            .range((cell, Timer::SendBid)..=(cell, Timer::Forget))
            .map(|((_, timer), _)| *timer)
            .collect();
        for timer in timers {
            self.stop(cell, timer);
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.queue.first().map(|(at, _, _)| *at)
    }

    /// Takes the earliest timer due at or before `now`.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(CellId, Timer)> {
        let &(at, cell, timer) = self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, cell, timer));
        self.armed.remove(&(cell, timer));
        Some((cell, timer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_deadline_then_kind_order_and_can_be_reset() {
        let mut timers = Timers::default();
        let (a, b) = (CellId(1), CellId(2));
        timers.set(a, Timer::WindowClose, Timestamp(10));
        timers.set(a, Timer::SendBid, Timestamp(10));
        timers.set(b, Timer::Renew, Timestamp(5));
        timers.set(b, Timer::Renew, Timestamp(20));
        assert_eq!(timers.next(), Some(Timestamp(10)));
        assert_eq!(timers.pop_due(Timestamp(9)), None);
        assert_eq!(timers.pop_due(Timestamp(10)), Some((a, Timer::SendBid)));
        assert_eq!(timers.pop_due(Timestamp(10)), Some((a, Timer::WindowClose)));
        timers.stop_all(b);
        assert_eq!(timers.next(), None);
    }
}
