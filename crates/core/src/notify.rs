//! Who is told what (issue 15): the events of a branch's rows, and one
//! notifier's decisions about them.
//!
//! [`events`] turns a branch's transitions into one event per commit row
//! and kind ("main broken on linux and mac by 8d3e…"), never one per
//! platform. A [`Notifier`] is a sans-IO machine like the replicator: fed
//! the events every derivation finds, it sends each at most once (what was
//! sent is recorded durably by the node and given back at start), never
//! one older than its age bound (no storm on a first start or after a long
//! partition), at most so many a minute, and retries a failed delivery
//! with backoff. The node carries the messages (mail, webhooks, IRC).

use crate::view::{Change, Matrix, transitions};
use buildmesh_protocol::{CommitId, ProjectId, Timestamp};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What happened to a commit's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Some platform failed where it passed before (or had never been
    /// decided).
    Broken,
    /// Some platform passed where it failed before.
    Fixed,
    /// Some platform failed again.
    StillFailing,
    /// Every platform of the row is decided.
    Decided,
}

/// One message's worth: a commit's row and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The project.
    pub project: ProjectId,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: CommitId,
    /// What happened.
    pub kind: EventKind,
    /// The platforms it happened on (every platform, for `Decided`).
    pub platforms: Vec<String>,
    /// For `Broken`: the commits since the last that passed on those
    /// platforms, oldest first, this one last: who to ask.
    pub blamelist: Vec<CommitId>,
    /// When the newest result behind it was written.
    pub at: Timestamp,
}

/// What names an event for "sent once": the same row and kind found again
/// by a later derivation is the same event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    /// The project.
    pub project: ProjectId,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: CommitId,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// Its key.
    pub fn key(&self) -> EventKey {
        EventKey {
            project: self.project,
            branch: self.branch.clone(),
            commit: self.commit.clone(),
            kind: self.kind,
        }
    }
}

/// The events of `matrix`'s rows (filtered to `branch`), oldest first. A
/// platform in `flaky` is not called broken (nor still failing) on a cell
/// only one builder decided: a second builder's result must agree.
pub fn events(matrix: &Matrix<'_>, branch: &str, flaky: &BTreeSet<String>) -> Vec<Event> {
    let mut found = Vec::new();
    let mut last_pass: Vec<Option<usize>> = vec![None; matrix.platforms.len()];
    let rows = transitions(matrix);
    for (n, row) in rows.iter().enumerate() {
        let counts = |column: &usize| {
            let platform = &matrix.platforms[*column];
            !flaky.contains(platform) || row.row.cells[*column].builders().len() > 1
        };
        let named = |columns: Vec<usize>| -> Vec<String> {
            columns
                .iter()
                .map(|c| matrix.platforms[*c].clone())
                .collect()
        };
        let broken: Vec<usize> = row.columns(Change::Broken).filter(counts).collect();
        let still: Vec<usize> = row.columns(Change::StillFailing).filter(counts).collect();
        let fixed: Vec<usize> = row.columns(Change::Fixed).collect();
        let first_suspect = broken
            .iter()
            .filter_map(|c| last_pass[*c].map(|p| p + 1))
            .min()
            .unwrap_or(0);
        let at = row
            .row
            .cells
            .iter()
            .flat_map(|c| c.results.iter().map(|r| r.at))
            .max()
            .unwrap_or(row.row.announced_at);
        let event = |kind, platforms: Vec<String>, blamelist: Vec<CommitId>| Event {
            project: matrix.project,
            branch: branch.to_owned(),
            commit: row.row.commit.clone(),
            kind,
            platforms,
            blamelist,
            at,
        };
        if !broken.is_empty() {
            let blamelist = rows[first_suspect..=n]
                .iter()
                .map(|r| r.row.commit.clone())
                .collect();
            found.push(event(EventKind::Broken, named(broken), blamelist));
        }
        if !still.is_empty() {
            found.push(event(EventKind::StillFailing, named(still), Vec::new()));
        }
        if !fixed.is_empty() {
            found.push(event(EventKind::Fixed, named(fixed), Vec::new()));
        }
        if row.decided() {
            found.push(event(
                EventKind::Decided,
                matrix.platforms.to_vec(),
                Vec::new(),
            ));
        }
        for column in row
            .columns(Change::StillPassing)
            .chain(row.columns(Change::Fixed))
        {
            last_pass[column] = Some(n);
        }
    }
    found
}

/// One notifier's settings, as its operator wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierConfig {
    /// The kinds of event it tells of.
    pub kinds: BTreeSet<EventKind>,
    /// Events older than this are not sent, ms: a node that starts, or
    /// comes back from a long partition, does not tell of the past.
    pub max_age_ms: u64,
    /// At most this many messages a minute.
    pub per_minute: u32,
    /// The first retry of a failed delivery waits this long, ms; each next
    /// one twice as long, up to `retry_max_ms`.
    pub retry_first_ms: u64,
    /// The longest wait between retries, ms.
    pub retry_max_ms: u64,
    /// Deliveries tried before an event is given up.
    pub attempts_max: u32,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            kinds: BTreeSet::from([EventKind::Broken, EventKind::Fixed]),
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
pub enum NotifyInput {
    /// The events a derivation found (all of them, every time: those seen
    /// before are recognised).
    Events(Vec<Event>),
    /// The message for this event was delivered.
    Delivered(EventKey),
    /// Delivering it failed (the server refused, or did not answer).
    Failed(EventKey),
    /// Time passed; see [`Notifier::poll_timeout`].
    Tick,
}

/// What a notifier asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAction {
    /// Deliver a message about this event, then feed `Delivered` or
    /// `Failed`.
    Send(Event),
    /// Record durably that this event was told of, so a restart does not
    /// tell it again. (A crash between delivery and record tells it once
    /// more: at least once, never a storm.)
    Record(EventKey),
    /// This event was given up after `attempts_max` failed deliveries.
    GaveUp(EventKey),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifierStats {
    /// Messages delivered.
    pub delivered: u64,
    /// Deliveries that failed (each retry counts).
    pub failed: u64,
    /// Events not sent for being older than `max_age_ms`.
    pub too_old: u64,
}

/// One notifier's decisions. See the module docs.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotifierConfig,
    /// Told of (recorded, or given back at start).
    told: BTreeSet<EventKey>,
    /// Too old when first seen: never told.
    passed_over: BTreeSet<EventKey>,
    waiting: VecDeque<Event>,
    in_flight: BTreeMap<EventKey, (Event, u32)>,
    retries: BTreeMap<EventKey, (Timestamp, Event, u32)>,
    /// When the messages of the last minute were sent.
    sent_at: VecDeque<Timestamp>,
    outbox: VecDeque<NotifyAction>,
    stats: NotifierStats,
}

impl Notifier {
    /// A notifier that has told of `told` already (its durable record).
    pub fn new(config: NotifierConfig, told: impl IntoIterator<Item = EventKey>) -> Self {
        Notifier {
            config,
            told: told.into_iter().collect(),
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
    pub fn handle(&mut self, now: Timestamp, input: NotifyInput) {
        match input {
            NotifyInput::Events(events) => self.found(now, events),
            NotifyInput::Delivered(key) => {
                if self.in_flight.remove(&key).is_some() {
                    self.stats.delivered += 1;
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
    pub fn poll_action(&mut self) -> Option<NotifyAction> {
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

    fn known(&self, key: &EventKey) -> bool {
        self.told.contains(key)
            || self.passed_over.contains(key)
            || self.in_flight.contains_key(key)
            || self.retries.contains_key(key)
            || self.waiting.iter().any(|e| e.key() == *key)
    }

    fn found(&mut self, now: Timestamp, events: Vec<Event>) {
        for event in events {
            let key = event.key();
            if !self.config.kinds.contains(&event.kind) || self.known(&key) {
                continue;
            }
            if now.ms_since(event.at) > self.config.max_age_ms {
                self.stats.too_old += 1;
                self.passed_over.insert(key);
                continue;
            }
            self.waiting.push_back(event);
        }
    }

    fn failed(&mut self, now: Timestamp, key: EventKey) {
        let Some((event, attempts)) = self.in_flight.remove(&key) else {
            return;
        };
        self.stats.failed += 1;
        if attempts >= self.config.attempts_max {
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
            .insert(key, (now.plus_ms(wait), event, attempts));
    }

    fn retry_due(&mut self, now: Timestamp) {
        let due: Vec<EventKey> = self
            .retries
            .iter()
            .filter(|(_, (at, _, _))| *at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some((_, event, attempts)) = self.retries.remove(&key) {
                self.deliver(now, event, attempts + 1);
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
            let Some(event) = self.waiting.pop_front() else {
                return;
            };
            self.deliver(now, event, 1);
        }
    }

    fn deliver(&mut self, now: Timestamp, event: Event, attempt: u32) {
        self.sent_at.push_back(now);
        self.in_flight.insert(event.key(), (event.clone(), attempt));
        self.outbox.push_back(NotifyAction::Send(event));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::view::testing::{cell, commits, matrix, row};
    use crate::view::{CellResult, CellStatus};
    use buildmesh_protocol::{EntryId, Outcome, PublicKey};

    use CellStatus::{Claimed as B, Failed as F, Passed as P};

    const T: Timestamp = Timestamp(1_764_000_000_000);

    /// Events of rows given oldest first, on linux and mac; `by_two` names
    /// the cells (row, column) two builders decided.
    fn events_of(
        rows: &[[CellStatus; 2]],
        flaky: &[&str],
        by_two: &[(usize, usize)],
    ) -> Vec<(u8, EventKind, Vec<String>, Vec<u8>)> {
        let ids = commits(rows.len() as u8);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let mut made: Vec<_> = rows.iter().zip(&ids).map(|(s, id)| row(id, s)).collect();
        for (n, r) in made.iter_mut().enumerate() {
            for (column, c) in r.cells.iter_mut().enumerate() {
                let builders = if by_two.contains(&(n, column)) { 2 } else { 1 };
                if c.status != B {
                    *c = cell(c.status);
                    c.results = (0..builders)
                        .map(|b| CellResult {
                            id: EntryId([b; 32]),
                            builder: PublicKey([b; 32]),
                            outcome: if c.status == P {
                                Outcome::Passed
                            } else {
                                Outcome::Failed
                            },
                            at: T.plus_ms(n as u64),
                        })
                        .collect();
                }
            }
        }
        made.reverse();
        let m = matrix(&platforms, made);
        let flaky = flaky.iter().map(|p| p.to_string()).collect();
        events(&m, "main", &flaky)
            .into_iter()
            .map(|e| {
                let number = |c: &CommitId| c.as_bytes()[0];
                (
                    number(&e.commit),
                    e.kind,
                    e.platforms,
                    e.blamelist.iter().map(number).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn one_event_per_row_and_kind_with_the_blamelist_since_the_last_pass() {
        use EventKind::{Broken, Decided, Fixed, StillFailing};
        let found = events_of(&[[P, P], [B, P], [F, F], [F, P]], &[], &[]);
        let both = || vec!["linux".to_string(), "mac".to_string()];
        assert_eq!(
            found,
            [
                (0, Decided, both(), vec![]),
                (2, Broken, both(), vec![1, 2]),
                (2, Decided, both(), vec![]),
                (3, StillFailing, vec!["linux".to_string()], vec![]),
                (3, Fixed, vec!["mac".to_string()], vec![]),
                (3, Decided, both(), vec![]),
            ]
        );
    }

    #[test]
    fn a_flaky_platform_is_broken_only_when_two_builders_agree() {
        let broken = |by_two: &[(usize, usize)]| {
            events_of(&[[P, P], [F, P]], &["linux"], by_two)
                .into_iter()
                .any(|(_, kind, _, _)| kind == EventKind::Broken)
        };
        assert!(!broken(&[]), "one builder on a flaky platform");
        assert!(broken(&[(1, 0)]), "two builders agree");
    }

    fn event(n: u8, at: Timestamp) -> Event {
        Event {
            project: ProjectId([1; 32]),
            branch: "main".into(),
            commit: CommitId::from_bytes(&[n; 20]).unwrap(),
            kind: EventKind::Broken,
            platforms: vec!["linux".into()],
            blamelist: Vec::new(),
            at,
        }
    }

    fn drain(n: &mut Notifier) -> Vec<NotifyAction> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    #[test]
    fn each_event_is_sent_once_also_across_restarts() {
        let mut n = Notifier::new(NotifierConfig::default(), []);
        n.handle(T, NotifyInput::Events(vec![event(1, T)]));
        assert_eq!(drain(&mut n), [NotifyAction::Send(event(1, T))]);
        n.handle(T, NotifyInput::Events(vec![event(1, T)]));
        assert_eq!(drain(&mut n), [], "in flight: not again");
        n.handle(T, NotifyInput::Delivered(event(1, T).key()));
        assert_eq!(drain(&mut n), [NotifyAction::Record(event(1, T).key())]);
        n.handle(T, NotifyInput::Events(vec![event(1, T)]));
        assert_eq!(drain(&mut n), []);
        // A restart with the record: nothing again.
        let mut again = Notifier::new(NotifierConfig::default(), [event(1, T).key()]);
        again.handle(
            T.plus_ms(5),
            NotifyInput::Events(vec![event(1, T), event(2, T)]),
        );
        assert_eq!(drain(&mut again), [NotifyAction::Send(event(2, T))]);
    }

    #[test]
    fn old_events_are_not_sent_and_the_rate_holds_the_rest_back() {
        let config = NotifierConfig {
            per_minute: 2,
            max_age_ms: 10_000,
            ..NotifierConfig::default()
        };
        let mut n = Notifier::new(config, []);
        let now = T.plus_ms(20_000);
        let events = vec![event(1, T), event(2, now), event(3, now), event(4, now)];
        n.handle(now, NotifyInput::Events(events));
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

    #[test]
    fn a_failed_delivery_is_retried_with_backoff_then_given_up() {
        let config = NotifierConfig {
            attempts_max: 3,
            ..NotifierConfig::default()
        };
        let mut n = Notifier::new(config, []);
        let key = event(1, T).key();
        n.handle(T, NotifyInput::Events(vec![event(1, T)]));
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
