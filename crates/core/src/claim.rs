//! The claimer: decides, with no master, which node builds which cell.
//!
//! A sans-IO state machine like the [replicator](crate::replicator): the
//! driver feeds it [`ClaimInput`]s with the time ([`Claimer::handle`]),
//! drains [`ClaimAction`]s ([`Claimer::poll_action`]) until `None`, then
//! sleeps until [`Claimer::poll_timeout`] and feeds [`ClaimInput::Tick`].
//! It never reads a clock and needs no randomness: what all nodes must
//! agree on (who wins) is a pure function of bids ([`rule`]).
//!
//! The protocol, in short (`docs/architecture.md`, "Claiming builds"):
//! - a cell we could build and that still needs builders opens a round:
//!   we bid (our load, after a delay that grows with our rendezvous
//!   score, within the first half of the window, and only if we have not
//!   yet seen enough better bids) and collect bids for `bid_window_ms`
//!   from when the round began (the earliest bid we hear of it moves that
//!   back, so late listeners close with the first bidder);
//! - when the window closes, [`rule::pick_winners`] names the winners; a
//!   winner claims with a lease (one entry), builds, and renews the lease
//!   every `renew_ms` by gossip (`protocol::Renewal`, never an entry);
//!   the others give the winners `claim_grace_ms` to claim, then open a
//!   new round without them;
//! - more live claims than needed (lost bids, partitions) are settled by
//!   the same rule on rendezvous scores alone: the losers cancel; enough
//!   results cancel a build too;
//! - a lease that lapses with no result reopens the cell.

mod build;
mod cell;
mod facts;
mod io;
mod lost;
mod round;
pub mod rule;
mod table;
mod timer;

pub use io::{CellKey, ClaimAction, ClaimInput, Rivals};
pub use rule::{Candidate, pick_winners, rendezvous_score};

use buildmesh_protocol::{PublicKey, Timestamp};
use cell::{Cell, Phase};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use timer::{CellId, Timer, Timers};

/// Tunables, with the defaults nodes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimerConfig {
    /// How long bids are collected from when a round opens, ms. Longer
    /// than most gossip delays, so bidders mostly see the same bids.
    pub bid_window_ms: u64,
    /// How long a claim holds a cell unless renewed, ms.
    pub lease_ms: u64,
    /// How often a builder renews its lease, ms; well under `lease_ms`,
    /// so one lost renewal does not lose the cell.
    pub renew_ms: u64,
    /// How long the losers of a round wait for the winners' claims before
    /// they bid again without them, ms. Covers the delay of log gossip.
    pub claim_grace_ms: u64,
    /// Builds this node runs at once.
    pub builds_max: u32,
    /// How long a node told [`ClaimInput::WaitingForPeers`] holds its bids
    /// for its first sync, ms: a node restarting from a stale log would
    /// otherwise bid for cells its peers built while it was down.
    pub catch_up_ms: u64,
    /// How long a builder this node was connected to may stay lost before
    /// its claims are treated as lapsed, ms (see `claim/lost.rs`). Long
    /// enough for a reconnection; far shorter than a lease.
    pub orphan_ms: u64,
    /// How long after a build that never started (its claim not written,
    /// its executor failing) the cell may be claimed again here, ms.
    pub retry_ms: u64,
}

impl Default for ClaimerConfig {
    fn default() -> Self {
        let lease_ms = 30_000;
        ClaimerConfig {
            bid_window_ms: 150,
            lease_ms,
            renew_ms: lease_ms / 3,
            claim_grace_ms: 2_000,
            builds_max: 1,
            catch_up_ms: 5_000,
            orphan_ms: 2_000,
            retry_ms: 60_000,
        }
    }
}

/// Counters for metrics, tests and the simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimerStats {
    /// Bids sent.
    pub bids_sent: u64,
    /// Bids not sent because enough better ones came first.
    pub bids_suppressed: u64,
    /// Rounds opened (the first of a cell included).
    pub rounds: u64,
    /// Builds started (each after a first claim).
    pub builds_started: u64,
    /// Lease renewals sent.
    pub renewals: u64,
    /// Builds cancelled: another held the cell by the rule, or enough
    /// results came.
    pub cancels: u64,
}

/// Decides which cells this node claims and builds. See the module docs.
///
/// Methods: getters ([`Claimer::load`], [`Claimer::building`],
/// [`Claimer::stats`]), one input ([`Claimer::handle`]), and the outputs
/// ([`Claimer::poll_action`], then [`Claimer::poll_timeout`]).
#[derive(Debug, Clone)]
pub struct Claimer {
    config: ClaimerConfig,
    me: PublicKey,
    platforms: BTreeSet<String>,
    index: BTreeMap<CellKey, CellId>,
    cells: BTreeMap<CellId, Cell>,
    next_id: u64,
    timers: Timers,
    outbox: VecDeque<ClaimAction>,
    load: u32,
    stats: ClaimerStats,
    /// No bids before this: the node waits for its first sync.
    quiet_until: Option<Timestamp>,
    /// Peers whose connection was lost, and since when.
    lost: BTreeMap<PublicKey, lost::LostPeer>,
    /// A build slot came free (or bids may go out again) at this time:
    /// waiting cells decide at the next tick.
    slot_freed: Option<Timestamp>,
}

impl Claimer {
    /// The claimer of the node `me`, which builds on `platforms`.
    pub fn new(config: ClaimerConfig, me: PublicKey, platforms: BTreeSet<String>) -> Self {
        // A zero window or renewal interval would fire again at the same
        // instant, and `tick` would never return.
        let config = ClaimerConfig {
            bid_window_ms: config.bid_window_ms.max(1),
            renew_ms: config.renew_ms.clamp(1, config.lease_ms.max(1)),
            ..config
        };
        Claimer {
            config,
            me,
            platforms,
            index: BTreeMap::new(),
            cells: BTreeMap::new(),
            next_id: 0,
            timers: Timers::default(),
            outbox: VecDeque::new(),
            load: 0,
            stats: ClaimerStats::default(),
            quiet_until: None,
            lost: BTreeMap::new(),
            slot_freed: None,
        }
    }

    /// Builds running here.
    pub fn load(&self) -> u32 {
        self.load
    }

    /// The cells this node builds, in key order.
    pub fn building(&self) -> impl Iterator<Item = &CellKey> {
        self.index
            .iter()
            .filter(|(_, id)| {
                self.cells
                    .get(id)
                    .is_some_and(|c| c.phase == Phase::Building)
            })
            .map(|(key, _)| key)
    }

    /// The counters.
    pub fn stats(&self) -> &ClaimerStats {
        &self.stats
    }

    /// Cells tracked (wanted, or heard of through facts and bids).
    pub fn cells_tracked(&self) -> usize {
        self.cells.len()
    }

    /// Takes one input. Drain [`Claimer::poll_action`] after each call.
    pub fn handle(&mut self, now: Timestamp, input: ClaimInput) {
        match input {
            ClaimInput::Wanted {
                cell,
                builds,
                since,
                rivals,
            } => self.wanted(now, cell, builds, since, rivals),
            ClaimInput::Claimed {
                cell,
                builder,
                at,
                lease_expires,
            } => self.claimed(now, cell, builder, at, lease_expires),
            ClaimInput::Finished { cell, builder, at } => self.finished(now, cell, builder, at),
            ClaimInput::Stopped { cell, builder, at } => self.stopped(now, cell, builder, at),
            ClaimInput::Bid(bid) => self.bid_received(now, bid),
            ClaimInput::Withdrawn { project, builder } => self.withdrawn(now, &project, &builder),
            ClaimInput::BuildEnded(cell) => self.build_ended(now, &cell),
            ClaimInput::BuildAbandoned(cell) => self.build_abandoned(now, &cell),
            ClaimInput::Tick => self.tick(now),
            ClaimInput::WaitingForPeers => {
                self.quiet_until = Some(now.plus_ms(self.config.catch_up_ms));
            }
            ClaimInput::CaughtUp => self.end_quiet(now),
            ClaimInput::PeerLost(peer) => self.peer_lost(now, peer),
            ClaimInput::PeerBack(peer) => self.peer_back(&peer),
        }
    }

    /// Bids may go out again: every cell that waited is reconsidered,
    /// longest waiting first.
    fn end_quiet(&mut self, now: Timestamp) {
        if self.quiet_until.take().is_some() {
            self.load_freed(now);
        }
    }

    /// The next action to carry out, in order; drain until `None`.
    pub fn poll_action(&mut self) -> Option<ClaimAction> {
        self.outbox.pop_front()
    }

    /// When to feed [`ClaimInput::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.timers.next(),
            self.quiet_until,
            self.next_orphaning(),
            self.slot_freed,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Fires every timer due by `now`, earliest first; cells waiting for
    /// a slot that came free decide first.
    fn tick(&mut self, now: Timestamp) {
        if self.quiet_until.is_some_and(|until| until <= now) {
            self.end_quiet(now);
        }
        self.orphan_due(now);
        loop {
            if self.slot_freed.is_some_and(|at| at <= now) {
                self.slot_freed = None;
                self.decide_waiting(now);
                continue;
            }
            // Cells due to decide go together, longest waiting first.
            let mut deciding = Vec::new();
            while let Some((id, timer)) = self.timers.pop_due(now) {
                match timer {
                    Timer::Decide => deciding.push(id),
                    Timer::SendBid => self.send_bid(now, id),
                    Timer::WindowClose => self.close_window(now, id),
                    Timer::GraceEnd => self.grace_ended(now, id),
                    Timer::LeaseExpiry | Timer::Retry => self.reconsider(now, id),
                    Timer::Renew => self.renew(now, id),
                    Timer::Forget => self.maybe_forget(now, id),
                }
            }
            if deciding.is_empty() && self.slot_freed.is_none_or(|at| at > now) {
                return;
            }
            self.decide_in_turn(now, deciding);
        }
    }

    fn window_and_grace_ms(&self) -> u64 {
        self.config
            .bid_window_ms
            .saturating_add(self.config.claim_grace_ms)
    }
}
