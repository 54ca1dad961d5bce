//! What a valid webhook may still not do: be obeyed twice (a replayed
//! delivery) or make the node poll back to back. The signature covers the
//! body only, so anyone who saw one delivery can send it again: remembered
//! delivery ids stop the plain replay, and the debounce bounds what any
//! number of fresh ones cost (one poll per [`POLL_INTERVAL_MIN`], the last
//! push always followed by a poll).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Delivery ids remembered; the oldest is forgotten past this.
pub const DELIVERIES_REMEMBERED: usize = 4096;
/// Shortest time between two polls that webhooks ask for.
pub const POLL_INTERVAL_MIN: Duration = Duration::from_millis(200);
/// Longest delivery id kept (forges send a UUID).
const DELIVERY_CHARS_MAX: usize = 128;

/// Remembered deliveries and when webhooks last made the node poll.
#[derive(Debug, Default)]
pub(crate) struct HookGate {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    seen: HashSet<String>,
    order: VecDeque<String>,
    last_poll: Option<Instant>,
    /// A poll is scheduled at the end of the current interval.
    trailing: bool,
}

/// What to do with a valid, signed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Seen before: ignore it.
    Replay,
    /// Poll now.
    PollNow,
    /// Poll after this long (one poll for every push in between).
    PollAfter(Duration),
    /// A poll is already scheduled that covers it.
    Covered,
}

/// Why a delivery id is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadDelivery;

impl HookGate {
    /// Decides on delivery `id` at `now`.
    pub(crate) fn admit(&self, id: &str, now: Instant) -> Result<Admit, BadDelivery> {
        if id.is_empty() || id.len() > DELIVERY_CHARS_MAX {
            return Err(BadDelivery);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.remember(id) {
            return Ok(Admit::Replay);
        }
        let since = inner.last_poll.map(|at| now.saturating_duration_since(at));
        match since {
            Some(since) if since < POLL_INTERVAL_MIN => {
                if inner.trailing {
                    return Ok(Admit::Covered);
                }
                inner.trailing = true;
                let wait = POLL_INTERVAL_MIN - since;
                inner.last_poll = Some(now + wait);
                Ok(Admit::PollAfter(wait))
            }
            _ => {
                inner.last_poll = Some(now);
                inner.trailing = false;
                Ok(Admit::PollNow)
            }
        }
    }

    /// Whether delivery `id` is new (not a replay), remembering it; what
    /// a pull request event needs of the gate (it polls nothing).
    pub(crate) fn first_delivery(&self, id: &str) -> Result<bool, BadDelivery> {
        if id.is_empty() || id.len() > DELIVERY_CHARS_MAX {
            return Err(BadDelivery);
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(inner.remember(id))
    }

    /// The scheduled poll happened.
    pub(crate) fn polled(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.trailing = false;
    }
}

impl Inner {
    /// Whether `id` is new (and now remembered).
    fn remember(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() >= DELIVERIES_REMEMBERED
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_ignored_and_polls_spaced_with_one_trailing() {
        let gate = HookGate::default();
        let start = Instant::now();
        assert_eq!(gate.admit("a", start), Ok(Admit::PollNow));
        assert_eq!(gate.admit("a", start), Ok(Admit::Replay));
        let soon = start + POLL_INTERVAL_MIN / 4;
        assert!(matches!(gate.admit("b", soon), Ok(Admit::PollAfter(_))));
        assert_eq!(gate.admit("c", soon), Ok(Admit::Covered));
        gate.polled();
        let later = start + POLL_INTERVAL_MIN * 3;
        assert_eq!(gate.admit("d", later), Ok(Admit::PollNow));
        assert_eq!(gate.admit("", later), Err(BadDelivery));
        assert_eq!(gate.admit(&"x".repeat(200), later), Err(BadDelivery));
    }

    #[test]
    fn the_oldest_deliveries_are_forgotten_first() {
        let gate = HookGate::default();
        let now = Instant::now() + Duration::from_secs(3600);
        for n in 0..=DELIVERIES_REMEMBERED {
            let _ = gate.admit(&n.to_string(), now);
        }
        assert_eq!(gate.admit("0", now).map(|a| a == Admit::Replay), Ok(false));
        assert_eq!(gate.admit("5", now), Ok(Admit::Replay));
    }
}
