//! Builders this node lost its connection to.
//!
//! A builder killed mid-build holds its cell until its lease lapses (30 s
//! by default), though every node connected to it saw its connection drop
//! at once. So a node that was connected to a builder, lost it, and has
//! not seen it back within `orphan_ms` treats the builder's claims as
//! lapsed from the moment it was lost, and bids for those cells.
//!
//! The judgement is each node's own. A node never connected to the
//! builder learns nothing here and waits for the lease. A node cut off
//! from a builder that is alive (a partition between just those two) may
//! build the cell too: a duplicate build, which the settling rule cancels
//! as soon as both claims are seen, never a lost one. A builder that is
//! alive but slow stays connected, keeps its cell, and nobody duplicates
//! its build. A claim the builder writes well after it was lost (more
//! than `orphan_ms` later, so a clock a little ahead does not count)
//! proves it alive, and it is trusted again; reconnecting alone does not
//! (a restarted builder has lost its build).
//!
//! Known costs. A node whose own network goes down orphans every builder
//! it was connected to: with two nodes, losing the only peer looks the
//! same as the peer dying. And when a partition between one node and a
//! live builder lasts past `orphan_ms`, the settling rule, which ranks
//! claimers by rendezvous score alone, may cancel the builder's own build
//! rather than the newcomer's. Both cost build time, never a result.

use super::Claimer;
use buildmesh_protocol::{PublicKey, Timestamp};
use std::collections::BTreeMap;

/// Lost peers remembered at once; past this the longest lost is forgotten
/// (its claims then wait for their leases, as before this rule).
pub(crate) const LOST_MAX: usize = 1024;

/// A peer whose connection was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LostPeer {
    /// When the connection was lost.
    pub(crate) since: Timestamp,
    /// `orphan_ms` passed without it coming back: its claims from before
    /// `since` are treated as lapsed then.
    pub(crate) orphaned: bool,
}

impl Claimer {
    pub(super) fn peer_lost(&mut self, now: Timestamp, peer: PublicKey) {
        if peer == self.me || self.lost.contains_key(&peer) {
            return;
        }
        if self.lost.len() >= LOST_MAX {
            let oldest = self
                .lost
                .iter()
                .min_by_key(|(_, l)| l.since)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.lost.remove(&oldest);
            }
        }
        let lost = LostPeer {
            since: now,
            orphaned: false,
        };
        self.lost.insert(peer, lost);
    }

    /// A peer is connected. If it was lost but not yet orphaned, it is
    /// as if it never left; an orphaned one stays so until it writes a
    /// claim (see [`Claimer::believed_lease`]).
    pub(super) fn peer_back(&mut self, peer: &PublicKey) {
        if self.lost.get(peer).is_some_and(|l| !l.orphaned) {
            self.lost.remove(peer);
        }
    }

    /// When the next lost peer is orphaned.
    pub(super) fn next_orphaning(&self) -> Option<Timestamp> {
        self.lost
            .values()
            .filter(|l| !l.orphaned)
            .map(|l| l.since.plus_ms(self.config.orphan_ms))
            .min()
    }

    /// Orphans the peers lost for `orphan_ms` by `now`: their claims lapse
    /// at the moment they were lost, and the cells they held are looked
    /// at again.
    pub(super) fn orphan_due(&mut self, now: Timestamp) {
        let orphan_ms = self.config.orphan_ms;
        let due: BTreeMap<PublicKey, Timestamp> = self
            .lost
            .iter_mut()
            .filter(|(_, l)| !l.orphaned && l.since.plus_ms(orphan_ms) <= now)
            .map(|(peer, l)| {
                l.orphaned = true;
                (*peer, l.since)
            })
            .collect();
        if due.is_empty() {
            return;
        }
        let held: Vec<_> = self
            .cells
            .iter_mut()
            .filter_map(|(id, cell)| {
                let cut = due
                    .iter()
                    .filter(|(peer, since)| cell.cut_claim(peer, **since))
                    .count();
                (cut > 0).then_some(*id)
            })
            .collect();
        for id in held {
            self.reconsider(now, id);
        }
    }

    /// The lease to believe for a claim by `builder` written at `at`: cut
    /// to when the builder was lost if it is orphaned and the claim is
    /// older; a claim written more than `orphan_ms` after the loss proves
    /// it alive, and it is trusted again.
    pub(super) fn believed_lease(
        &mut self,
        builder: &PublicKey,
        at: Timestamp,
        lease_expires: Timestamp,
    ) -> Timestamp {
        let margin_ms = self.config.orphan_ms;
        match self.lost.get(builder) {
            Some(lost) if at > lost.since.plus_ms(margin_ms) => {
                self.lost.remove(builder);
                lease_expires
            }
            Some(lost) if lost.orphaned => lease_expires.min(lost.since),
            _ => lease_expires,
        }
    }
}
