//! One notifier's decisions: what to send, when, and what to record.

use super::{Event, EventKey};
use buildmesh_protocol::Timestamp;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;

/// Something a notifier sends: an event, or a commit status.
pub trait Message: Clone + Debug + PartialEq {
    /// What names it for "sent once": found again by a later derivation,
    /// it is the same message.
    type Key: Ord + Clone + Debug;
    /// Messages of one slot replace each other: only the newest matters
    /// (a commit status), so a newer one drops an older one not yet
    /// delivered, and a slot has one delivery in flight at a time, so the
    /// forge never ends on the older.
    type Slot: Ord + Clone + Debug;

    /// Its key.
    fn key(&self) -> Self::Key;
    /// Its slot.
    fn slot(&self) -> Self::Slot;
    /// The slot of the message with this key.
    fn slot_of(key: &Self::Key) -> Self::Slot;
    /// When what it tells of happened.
    fn at(&self) -> Timestamp;
}

impl Message for Event {
    type Key = EventKey;
    type Slot = EventKey;

    fn key(&self) -> EventKey {
        Event::key(self)
    }

    fn slot(&self) -> EventKey {
        Event::key(self)
    }

    fn slot_of(key: &EventKey) -> EventKey {
        key.clone()
    }

    fn at(&self) -> Timestamp {
        self.at
    }
}

/// Messages waiting for the rate to let them go, at most: past it the
/// oldest is dropped (a mesh that breaks faster than anyone can read is
/// told of its newest news).
pub const WAITING_MAX: usize = 1_000;

/// One notifier's settings, as its operator wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// Messages older than this are not sent, ms: a node that starts, or
    /// comes back from a long partition, does not tell of the past.
    pub max_age_ms: u64,
    /// At most this many messages a minute.
    pub per_minute: u32,
    /// The first retry of a failed delivery waits this long, ms; each next
    /// one twice as long, up to `retry_max_ms`.
    pub retry_first_ms: u64,
    /// The longest wait between retries, ms.
    pub retry_max_ms: u64,
    /// Deliveries tried before a message is given up.
    pub attempts_max: u32,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            max_age_ms: 60 * 60 * 1000,
            per_minute: 20,
            retry_first_ms: 1_000,
            retry_max_ms: 5 * 60 * 1000,
            attempts_max: 10,
        }
    }
}

/// What a notifier is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyInput<M: Message> {
    /// The messages a derivation found (all of them, every time: those
    /// seen before are recognised).
    Found(Vec<M>),
    /// The message with this key was delivered.
    Delivered(M::Key),
    /// Delivering it failed (the server refused, or did not answer).
    Failed(M::Key),
    /// Time passed; see [`Notifier::poll_timeout`].
    Tick,
}

/// What a notifier asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAction<M: Message> {
    /// Deliver this message, then feed `Delivered` or `Failed`.
    Send(M),
    /// Record durably that this message was delivered, so a restart does
    /// not send it again. (A crash between delivery and record sends it
    /// once more: at least once, never a storm.)
    Record(M::Key),
    /// This message was given up after `attempts_max` failed deliveries.
    GaveUp(M::Key),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Deliveries that failed (each retry counts).
    pub failed: u64,
    /// Messages not sent for being older than `max_age_ms`.
    pub too_old: u64,
    /// Messages given up after `attempts_max` failed deliveries.
    pub given_up: u64,
    /// Messages dropped before delivery for a newer one of their slot.
    pub superseded: u64,
    /// Messages dropped for more than [`WAITING_MAX`] waiting.
    pub overflowed: u64,
}

/// One notifier's decisions. See the module docs.
#[derive(Debug, Clone)]
pub struct Notifier<M: Message> {
    config: NotifierConfig,
    /// Told of (recorded, or given back at start).
    told: BTreeSet<M::Key>,
    /// Too old when first seen, given up, or superseded: never sent.
    /// Kept while derivations still find them.
    passed_over: BTreeSet<M::Key>,
    /// Slots something was delivered for: their newer states are never
    /// too old (a forge must not be left on `pending` because the verdict
    /// came after a long partition).
    posted_slots: BTreeSet<M::Slot>,
    waiting: VecDeque<M>,
    in_flight: BTreeMap<M::Key, (M, u32)>,
    retries: BTreeMap<M::Key, (Timestamp, M, u32)>,
    /// When the messages of the last minute were sent.
    sent_at: VecDeque<Timestamp>,
    outbox: VecDeque<NotifyAction<M>>,
    stats: NotifierStats,
}

impl<M: Message> Notifier<M> {
    /// A notifier that has told of `told` already (its durable record).
    pub fn new(config: NotifierConfig, told: impl IntoIterator<Item = M::Key>) -> Self {
        let told: BTreeSet<M::Key> = told.into_iter().collect();
        Notifier {
            config,
            posted_slots: told.iter().map(M::slot_of).collect(),
            told,
            passed_over: BTreeSet::new(),
            waiting: VecDeque::new(),
            in_flight: BTreeMap::new(),
            retries: BTreeMap::new(),
            sent_at: VecDeque::new(),
            outbox: VecDeque::new(),
            stats: NotifierStats::default(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> &NotifierStats {
        &self.stats
    }

    /// Takes one input; drain [`Notifier::poll_action`] after.
    pub fn handle(&mut self, now: Timestamp, input: NotifyInput<M>) {
        match input {
            NotifyInput::Found(found) => self.found(now, found),
            NotifyInput::Delivered(key) => {
                if self.in_flight.remove(&key).is_some() {
                    self.stats.delivered += 1;
                    self.posted_slots.insert(M::slot_of(&key));
                    self.told.insert(key.clone());
                    self.outbox.push_back(NotifyAction::Record(key));
                }
            }
            NotifyInput::Failed(key) => self.failed(now, key),
            NotifyInput::Tick => self.retry_due(now),
        }
        self.send_what_the_rate_allows(now);
    }

    /// The next action, in order; drain until `None`.
    pub fn poll_action(&mut self) -> Option<NotifyAction<M>> {
        self.outbox.pop_front()
    }

    /// When to feed [`NotifyInput::Tick`] next: the next retry, or when
    /// the rate lets a waiting message go.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let retry = self.retries.values().map(|(at, _, _)| *at).min();
        let rate = (!self.waiting.is_empty())
            .then(|| self.sent_at.front().map(|at| at.plus_ms(60_000)))
            .flatten();
        retry.into_iter().chain(rate).min()
    }

    fn known(&self, key: &M::Key) -> bool {
        self.told.contains(key)
            || self.passed_over.contains(key)
            || self.in_flight.contains_key(key)
            || self.retries.contains_key(key)
            || self.waiting.iter().any(|m| m.key() == *key)
    }

    fn found(&mut self, now: Timestamp, found: Vec<M>) {
        let seen: BTreeSet<M::Key> = found.iter().map(Message::key).collect();
        for message in found {
            let key = message.key();
            if self.known(&key) {
                continue;
            }
            if self.too_old(now, &message) {
                self.stats.too_old += 1;
                self.passed_over.insert(key);
                continue;
            }
            self.supersede(&message.slot());
            self.waiting.push_back(message);
            if self.waiting.len() > WAITING_MAX
                && let Some(dropped) = self.waiting.pop_front()
            {
                self.stats.overflowed += 1;
                self.passed_over.insert(dropped.key());
            }
        }
        // What derivations no longer find has left their window for good.
        self.passed_over.retain(|key| seen.contains(key));
    }

    /// Older than the age bound, unless its slot was told of before.
    fn too_old(&self, now: Timestamp, message: &M) -> bool {
        now.ms_since(message.at()) > self.config.max_age_ms
            && !self.posted_slots.contains(&message.slot())
    }

    /// Drops the waiting and retrying messages of `slot`: a newer one came.
    fn supersede(&mut self, slot: &M::Slot) {
        let mut dropped = Vec::new();
        self.waiting.retain(|m| {
            let keep = m.slot() != *slot;
            if !keep {
                dropped.push(m.key());
            }
            keep
        });
        self.retries.retain(|key, (_, m, _)| {
            let keep = m.slot() != *slot;
            if !keep {
                dropped.push(key.clone());
            }
            keep
        });
        self.stats.superseded += dropped.len() as u64;
        self.passed_over.extend(dropped);
    }

    fn failed(&mut self, now: Timestamp, key: M::Key) {
        let Some((message, attempts)) = self.in_flight.remove(&key) else {
            return;
        };
        self.stats.failed += 1;
        let slot = message.slot();
        if self.waiting.iter().any(|m| m.slot() == slot) {
            self.stats.superseded += 1;
            self.passed_over.insert(key);
            return;
        }
        if attempts >= self.config.attempts_max {
            self.stats.given_up += 1;
            self.passed_over.insert(key.clone());
            self.outbox.push_back(NotifyAction::GaveUp(key));
            return;
        }
        let shift = attempts.saturating_sub(1).min(20);
        let wait = self
            .config
            .retry_first_ms
            .saturating_mul(1 << shift)
            .min(self.config.retry_max_ms);
        self.retries
            .insert(key, (now.plus_ms(wait), message, attempts));
    }

    fn retry_due(&mut self, now: Timestamp) {
        let due: Vec<M::Key> = self
            .retries
            .iter()
            .filter(|(_, (at, _, _))| *at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some((_, message, attempts)) = self.retries.remove(&key) {
                self.deliver(now, message, attempts + 1);
            }
        }
    }

    fn send_what_the_rate_allows(&mut self, now: Timestamp) {
        while self
            .sent_at
            .front()
            .is_some_and(|at| now.ms_since(*at) >= 60_000)
        {
            self.sent_at.pop_front();
        }
        while self.sent_at.len() < self.config.per_minute as usize {
            let busy: BTreeSet<M::Slot> = self.in_flight.values().map(|(m, _)| m.slot()).collect();
            let Some(next) = self.waiting.iter().position(|m| !busy.contains(&m.slot())) else {
                return;
            };
            let Some(message) = self.waiting.remove(next) else {
                return;
            };
            // It may have waited past the age bound for the rate.
            if self.too_old(now, &message) {
                self.stats.too_old += 1;
                self.passed_over.insert(message.key());
                continue;
            }
            self.deliver(now, message, 1);
        }
    }

    fn deliver(&mut self, now: Timestamp, message: M, attempt: u32) {
        self.sent_at.push_back(now);
        self.in_flight
            .insert(message.key(), (message.clone(), attempt));
        self.outbox.push_back(NotifyAction::Send(message));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::notify::EventKind;
    use buildmesh_protocol::{CommitId, ProjectId};

    const T: Timestamp = Timestamp(1_764_000_000_000);

    fn event(n: u8, at: Timestamp) -> Event {
        Event {
            project: ProjectId([1; 32]),
            branch: "main".into(),
            commit: CommitId::from_bytes(&[n; 20]).unwrap(),
            kind: EventKind::Broken,
            platforms: vec!["linux".into()],
            blamelist: Vec::new(),
            at,
            row_decided: true,
            crossings: Vec::new(),
        }
    }

    fn drain(n: &mut Notifier<Event>) -> Vec<NotifyAction<Event>> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    #[test]
    fn each_event_is_sent_once_also_across_restarts() {
        let mut n = Notifier::new(NotifierConfig::default(), []);
        n.handle(T, NotifyInput::Found(vec![event(1, T)]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(event(1, T))]);
        n.handle(T, NotifyInput::Found(vec![event(1, T)]));
        assert_eq!(drain(&mut n), [], "in flight: not again");
        n.handle(T, NotifyInput::Delivered(event(1, T).key()));
        assert_eq!(drain(&mut n), [NotifyAction::Record(event(1, T).key())]);
        n.handle(T, NotifyInput::Found(vec![event(1, T)]));
        assert_eq!(drain(&mut n), []);
        // A restart with the record: nothing again.
        let mut again = Notifier::new(NotifierConfig::default(), [event(1, T).key()]);
        again.handle(
            T.plus_ms(5),
            NotifyInput::Found(vec![event(1, T), event(2, T)]),
        );
        assert_eq!(drain(&mut again), [NotifyAction::Send(event(2, T))]);
    }

    #[test]
    fn old_events_are_not_sent_and_the_rate_holds_the_rest_back() {
        let config = NotifierConfig {
            per_minute: 2,
            max_age_ms: 100_000,
            ..NotifierConfig::default()
        };
        let mut n = Notifier::new(config, []);
        let now = T.plus_ms(200_000);
        let events = vec![event(1, T), event(2, now), event(3, now), event(4, now)];
        n.handle(now, NotifyInput::Found(events));
        assert_eq!(
            drain(&mut n),
            [
                NotifyAction::Send(event(2, now)),
                NotifyAction::Send(event(3, now))
            ]
        );
        assert_eq!(n.stats().too_old, 1);
        assert_eq!(n.poll_timeout(), Some(now.plus_ms(60_000)));
        n.handle(now.plus_ms(60_000), NotifyInput::Tick);
        assert_eq!(drain(&mut n), [NotifyAction::Send(event(4, now))]);
    }

    /// A message that waited for the rate past the age bound is dropped,
    /// not sent late.
    #[test]
    fn a_message_that_waited_past_the_age_bound_is_dropped() {
        let config = NotifierConfig {
            per_minute: 1,
            max_age_ms: 30_000,
            ..NotifierConfig::default()
        };
        let mut n = Notifier::new(config, []);
        n.handle(T, NotifyInput::Found(vec![event(1, T), event(2, T)]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(event(1, T))]);
        n.handle(T.plus_ms(60_000), NotifyInput::Tick);
        assert_eq!(drain(&mut n), []);
        assert_eq!(n.stats().too_old, 1);
    }

    #[test]
    fn a_failed_delivery_is_retried_with_backoff_then_given_up() {
        let config = NotifierConfig {
            attempts_max: 3,
            ..NotifierConfig::default()
        };
        let mut n = Notifier::new(config, []);
        let key = event(1, T).key();
        n.handle(T, NotifyInput::Found(vec![event(1, T)]));
        drain(&mut n);
        let mut now = T;
        let mut waits = Vec::new();
        for _ in 0..2 {
            n.handle(now, NotifyInput::Failed(key.clone()));
            let at = n.poll_timeout().unwrap();
            waits.push(at.ms_since(now));
            now = at;
            n.handle(now, NotifyInput::Tick);
            assert_eq!(drain(&mut n), [NotifyAction::Send(event(1, T))]);
        }
        assert_eq!(waits, [1_000, 2_000]);
        n.handle(now, NotifyInput::Failed(key.clone()));
        assert_eq!(drain(&mut n), [NotifyAction::GaveUp(key)]);
        assert_eq!(n.poll_timeout(), None);
    }
}
