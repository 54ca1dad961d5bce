//! One cell as the claimer knows it: the facts about it (want, claims,
//! results, bids) and where our own round stands. Queries only; the
//! decisions are the claimer's.

use super::io::{CellKey, Rivals};
use super::rule::{Rank, Score, rendezvous_score};
use buildmesh_protocol::{PublicKey, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Bids kept per cell: the best-ranked, since only the top `needed`
/// matter. A cell wanting more builders than this fills over rounds.
pub(crate) const BIDS_PER_CELL_MAX: usize = 64;

/// Claimers and finished builders kept per cell, each. Only trusted
/// builders' facts arrive, so this bounds a misbehaving trusted key.
pub(crate) const BUILDERS_PER_CELL_MAX: usize = 64;

/// Winners remembered as having failed to claim, per cell.
const FAILED_MAX: usize = 256;

/// What the cell asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Want {
    pub(crate) builds: u8,
    pub(crate) since: Timestamp,
}

/// A bid as kept: what the rule needs, and when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredBid {
    pub(crate) load: u32,
    pub(crate) round: u32,
    pub(crate) at: Timestamp,
    pub(crate) arrived: Timestamp,
    pub(crate) score: Score,
}

/// Our own bid in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnBid {
    /// We cannot build it (busy, built it already): we only watch.
    Watching,
    /// Scheduled ([`super::timer::Timer::SendBid`]).
    Pending,
    /// Sent.
    Sent,
    /// Enough better bids came first: not sent.
    Suppressed,
}

/// Where our part in the cell stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No round under way: the cell is claimed, done, not wanted, or we
    /// wait to be free.
    Idle,
    /// Bids are being collected until the window closes.
    Window(OwnBid),
    /// The rule picked these winners (not us); they have until the grace
    /// ends to claim.
    Grace(Vec<PublicKey>),
    /// We hold the cell and build it.
    Building,
}

/// Everything known about one cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) key: CellKey,
    pub(crate) want: Option<Want>,
    /// Who else may build it.
    pub(crate) rivals: Rivals,
    /// Others' claims: builder → lease expiry (the latest seen).
    claims: BTreeMap<PublicKey, Timestamp>,
    /// Where claims by builders this node lost were cut (see `lost.rs`).
    cuts: BTreeMap<PublicKey, Timestamp>,
    /// Results: builder → when its latest was written (ours included).
    finished: BTreeMap<PublicKey, Timestamp>,
    bids: BTreeMap<PublicKey, StoredBid>,
    /// Winners of earlier rounds that never claimed, since `since`, with
    /// when we gave up on them. A bid that arrives later readmits its
    /// bidder: it is alive and wants the cell again.
    failed: BTreeMap<PublicKey, Timestamp>,
    pub(crate) round: u32,
    /// When the current round began: when we opened it, or earlier, when
    /// the first bid we heard of it was sent.
    pub(crate) round_started: Option<Timestamp>,
    /// Bids sent before this belong to earlier rounds: they never move
    /// the current round's start.
    pub(crate) round_floor: Timestamp,
    pub(crate) phase: Phase,
    /// Our rendezvous score for the cell.
    pub(crate) score: Score,
    /// The end of our lease while we build.
    pub(crate) lease: Timestamp,
    /// The last time any input concerned the cell.
    pub(crate) touched: Timestamp,
    /// Our build never started (its claim was not written, or it could
    /// not be run): we do not claim the cell again before this.
    pub(crate) retry_at: Timestamp,
}

impl Cell {
    pub(crate) fn new(key: CellKey, me: &PublicKey, now: Timestamp) -> Cell {
        let score = rendezvous_score(me, &key);
        Cell {
            key,
            want: None,
            rivals: Rivals::Open,
            claims: BTreeMap::new(),
            cuts: BTreeMap::new(),
            finished: BTreeMap::new(),
            bids: BTreeMap::new(),
            failed: BTreeMap::new(),
            round: 0,
            round_started: None,
            round_floor: Timestamp(0),
            phase: Phase::Idle,
            score,
            lease: Timestamp(0),
            touched: now,
            retry_at: Timestamp(0),
        }
    }

    /// Results before `since` stop counting, and so do bids sent before it
    /// and the memory of failed winners: a new want, a fresh start.
    pub(crate) fn reset_since(&mut self, since: Timestamp) {
        self.bids.retain(|_, bid| bid.at >= since);
        self.failed.clear();
    }

    pub(crate) fn add_claim(&mut self, builder: PublicKey, expires: Timestamp) {
        insert_bounded(&mut self.claims, builder, expires);
    }

    /// Ends `builder`'s claim at `at` if it runs past it (the builder was
    /// lost then), and remembers the cut, so that the same claim fed again
    /// (every derivation feeds all claims) stays cut; whether there was
    /// such a claim.
    pub(crate) fn cut_claim(&mut self, builder: &PublicKey, at: Timestamp) -> bool {
        insert_bounded(&mut self.cuts, *builder, at);
        match self.claims.get_mut(builder) {
            Some(expires) if *expires > at => {
                *expires = at;
                true
            }
            _ => false,
        }
    }

    /// We are the only builder whose results count: no bid window.
    pub(crate) fn sole(&self) -> bool {
        matches!(&self.rivals, Rivals::Only(others) if others.is_empty())
    }

    /// The window's outcome is known before it closes: the project names
    /// its builders, and none of the rivals that have not bid could rank
    /// among the winners, even idle (its best possible bid). Every node
    /// holding the same bids reaches the same answer, and later bids
    /// cannot change the winners.
    pub(crate) fn outcome_known(&self, now: Timestamp) -> bool {
        let Rivals::Only(others) = &self.rivals else {
            return false;
        };
        // Only bids of this round count: an older bid (a round this node
        // took no part in) may be replaced by a better one any moment.
        let Some(started) = self.round_started else {
            return false;
        };
        let fresh = |bid: &StoredBid| bid.arrived >= started;
        let needed = self.needed(now);
        let mut ranks = self.candidates_where(now, fresh);
        ranks.sort_unstable();
        let cutoff = needed.checked_sub(1).and_then(|last| ranks.get(last));
        let mut missing = others
            .iter()
            .filter(|o| !self.bids.get(*o).is_some_and(fresh) && !self.finished_since(o));
        match cutoff {
            Some(cutoff) => {
                missing.all(|o| Rank::new(0, rendezvous_score(o, &self.key), *o) > *cutoff)
            }
            // Fewer bids than builders needed: known only if nobody else
            // can bid.
            None => needed > 0 && missing.next().is_none(),
        }
    }

    /// The lease to believe for `builder`'s claim written at `at`: cut
    /// where this cell's claims by the builder were cut, unless the claim
    /// was written more than `margin_ms` after that (clocks differ by a
    /// little; a claim written well after the cut proves the builder
    /// alive).
    pub(crate) fn cut_lease(
        &self,
        builder: &PublicKey,
        at: Timestamp,
        lease: Timestamp,
        margin_ms: u64,
    ) -> Timestamp {
        match self.cuts.get(builder) {
            Some(cut) if at <= cut.plus_ms(margin_ms) => lease.min(*cut),
            _ => lease,
        }
    }

    /// Drops everything `builder` told about the cell (its fork is proven:
    /// nothing it signed counts); whether there was anything.
    pub(crate) fn forget(&mut self, builder: &PublicKey) -> bool {
        let known = [
            self.claims.remove(builder).is_some(),
            self.cuts.remove(builder).is_some(),
            self.finished.remove(builder).is_some(),
            self.bids.remove(builder).is_some(),
            self.failed.remove(builder).is_some(),
        ];
        known.contains(&true)
    }

    pub(crate) fn add_result(&mut self, builder: PublicKey, at: Timestamp) {
        insert_bounded(&mut self.finished, builder, at);
    }

    /// Keeps `bid` if it is the bidder's latest and, when the cell is
    /// full, ranks better than the worst kept. Returns whether it was kept.
    pub(crate) fn add_bid(&mut self, bidder: PublicKey, bid: StoredBid) -> bool {
        if let Some(old) = self.bids.get(&bidder) {
            if (old.at, old.round) >= (bid.at, bid.round) {
                return false;
            }
        } else if self.bids.len() >= BIDS_PER_CELL_MAX {
            let rank = Rank::new(bid.load, bid.score, bidder);
            let Some(worst) = self
                .bids
                .iter()
                .map(|(k, b)| Rank::new(b.load, b.score, *k))
                .max()
            else {
                return false;
            };
            if rank >= worst {
                return false;
            }
            self.bids.remove(&worst.bidder());
        }
        self.bids.insert(bidder, bid);
        true
    }

    /// Forgets bids that came before `moment` (the last round's close).
    pub(crate) fn drop_bids_before(&mut self, moment: Timestamp) {
        self.bids.retain(|_, bid| bid.arrived >= moment);
    }

    /// Remembers winners that did not claim, so later rounds pass them by.
    pub(crate) fn mark_failed(&mut self, winners: &[PublicKey], now: Timestamp) {
        for winner in winners {
            let claimed = self.claims.get(winner).is_some_and(|e| *e > now);
            if !claimed && !self.finished_since(winner) && self.failed.len() < FAILED_MAX {
                self.failed.insert(*winner, now);
            }
        }
    }

    fn since(&self) -> Timestamp {
        self.want.map_or(Timestamp(0), |w| w.since)
    }

    /// Whether `builder` wrote a result that counts.
    pub(crate) fn finished_since(&self, builder: &PublicKey) -> bool {
        self.finished
            .get(builder)
            .is_some_and(|at| *at >= self.since())
    }

    /// Distinct builders whose results count.
    pub(crate) fn results(&self) -> usize {
        let since = self.since();
        self.finished.values().filter(|at| **at >= since).count()
    }

    /// Others holding a live lease who have not finished since `since`.
    pub(crate) fn live_claimers(&self, now: Timestamp) -> impl Iterator<Item = &PublicKey> {
        self.claims
            .iter()
            .filter(move |(builder, expires)| **expires > now && !self.finished_since(builder))
            .map(|(builder, _)| builder)
    }

    /// Builders still wanted beyond results and others' live claims; 0
    /// when the cell is not wanted.
    pub(crate) fn needed(&self, now: Timestamp) -> usize {
        let Some(want) = self.want else {
            return 0;
        };
        let taken = self.results() + self.live_claimers(now).count();
        usize::from(want.builds).saturating_sub(taken)
    }

    /// Enough results: nothing more to do here until a force.
    pub(crate) fn is_done(&self) -> bool {
        self.want
            .is_some_and(|w| self.results() >= usize::from(w.builds.max(1)))
    }

    /// When the first of others' live leases lapses.
    pub(crate) fn next_lapse(&self, now: Timestamp) -> Option<Timestamp> {
        self.claims.values().copied().filter(|e| *e > now).min()
    }

    /// The bids the rule runs on: bidders that have not finished or
    /// claimed (those are counted in `needed` already), and bids newer
    /// than the round their bidder won and let pass.
    pub(crate) fn candidates(&self, now: Timestamp) -> Vec<Rank> {
        self.candidates_where(now, |_| true)
    }

    /// [`Cell::candidates`] among the bids `keep` keeps.
    fn candidates_where(&self, now: Timestamp, keep: impl Fn(&StoredBid) -> bool) -> Vec<Rank> {
        let claimers: BTreeSet<&PublicKey> = self.live_claimers(now).collect();
        self.bids
            .iter()
            .filter(|(bidder, bid)| {
                let failed = self.failed.get(*bidder).is_some_and(|t| bid.arrived <= *t);
                keep(bid) && !failed && !self.finished_since(bidder) && !claimers.contains(bidder)
            })
            .map(|(bidder, bid)| Rank::new(bid.load, bid.score, *bidder))
            .collect()
    }

    /// How many candidates rank better than `mine`.
    pub(crate) fn better_than(&self, mine: Rank, now: Timestamp) -> usize {
        self.candidates(now).iter().filter(|r| **r < mine).count()
    }

    /// Whether a round opened at `round_started` is still deciding:
    /// its window or its grace has not ended.
    /// Our bid in this cell's window is pending or sent: it holds a slot
    /// (see `Claimer::can_bid`).
    pub(crate) fn bid_open(&self) -> bool {
        matches!(self.phase, Phase::Window(OwnBid::Pending | OwnBid::Sent))
    }

    pub(crate) fn round_is_fresh(&self, now: Timestamp, window_and_grace_ms: u64) -> bool {
        self.round_started
            .is_some_and(|started| now < started.plus_ms(window_and_grace_ms))
    }
}

/// `map[key] = max(map[key], value)`; when the map is full a new key
/// displaces the smallest value if it is larger.
fn insert_bounded(map: &mut BTreeMap<PublicKey, Timestamp>, key: PublicKey, value: Timestamp) {
    if let Some(old) = map.get_mut(&key) {
        *old = (*old).max(value);
        return;
    }
    if map.len() >= BUILDERS_PER_CELL_MAX {
        let Some((&smallest_key, &smallest)) = map.iter().min_by_key(|(_, v)| **v) else {
            return;
        };
        if smallest >= value {
            return;
        }
        map.remove(&smallest_key);
    }
    map.insert(key, value);
}
