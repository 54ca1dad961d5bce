//! The lease renewals a node holds live: what extends claims between their
//! entry and their result (`docs/protocol.md` §11).
//!
//! A builder writes one claim and renews its lease by gossip, so a claim's
//! own `lease_expires` says only how long it held at first. Views and the
//! claimer read the lease a claim has now from this table
//! ([`super::ProjectLog::apply_leases`]); the node serves the table's wire
//! forms to peers that sync with it, so a node that joins late learns
//! who builds what without waiting for the next renewal.

use super::project_log::fetch;
use crate::log::{EntryStore, IndexKey};
use buildmesh_protocol::{
    Body, CommitId, ProjectId, PublicKey, Renewal, SYNC_LEASES_MAX, SignedRenewal, Timestamp,
};
use std::collections::BTreeMap;

/// Most renewals held. Only renewals by builders a project trusts get
/// here (the service checks before it offers), one per builder and cell,
/// at most [`LEASES_PER_BUILDER_MAX`] per builder; past this, the renewal
/// heard longest ago goes first.
pub const LEASES_MAX: usize = 4096;

/// Most renewals held for one builder: more builds at once than any node
/// runs. A builder that renews more claims than this (a builder of its
/// own open project can claim any number of cells) only pushes out its
/// own, never another builder's.
pub const LEASES_PER_BUILDER_MAX: usize = 64;

/// The longest lease one renewal grants, counted from its `at`, ms. A
/// builder renews every third of its lease, so leases up to this long are
/// kept alive; a renewal that asks for more (or for the end of time) gets
/// this, and a stale builder loses its cell within minutes.
pub const RENEWAL_LEASE_MS_MAX: u64 = 5 * 60 * 1000;

/// How far a renewal's `at` may be from the receiver's clock, ms, as for
/// bids: an older one is a replay, a later one a wrong clock.
pub const RENEWAL_SKEW_MS: u64 = 60_000;

/// A claim a renewal extends: the cell, and the builder who claimed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ClaimKey {
    project: ProjectId,
    commit: CommitId,
    platform: String,
    builder: PublicKey,
}

/// The newest renewal held for one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    renewed_at: Timestamp,
    lease_expires: Timestamp,
    wire: Vec<u8>,
}

/// What a claim's renewals say now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    /// When its builder last renewed it, by the builder's clock.
    pub at: Timestamp,
    /// Its lease's end, as that renewal set it.
    pub lease_expires: Timestamp,
}

/// The live renewals, one per claim, bounded. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveLeases {
    held: BTreeMap<ClaimKey, Held>,
}

impl LiveLeases {
    /// Takes a verified renewal by a builder its project trusts; true if
    /// it extends what was held (the views should derive again, and peers
    /// that sync get it). Stale, skewed and already-lapsed renewals are
    /// not taken; a lease is never held past `at` +
    /// [`RENEWAL_LEASE_MS_MAX`].
    pub fn offer(&mut self, now: Timestamp, signed: &SignedRenewal) -> bool {
        let renewal = signed.message();
        if renewal.at.ms_since(now) > RENEWAL_SKEW_MS || now.ms_since(renewal.at) > RENEWAL_SKEW_MS
        {
            return false;
        }
        let lease_expires = renewal
            .lease_expires
            .min(renewal.at.plus_ms(RENEWAL_LEASE_MS_MAX));
        if lease_expires <= now {
            return false;
        }
        let key = key_of(renewal);
        if self
            .held
            .get(&key)
            .is_some_and(|held| held.lease_expires >= lease_expires)
        {
            return false;
        }
        if !self.held.contains_key(&key) && !self.make_room(now, &key, renewal.at) {
            return false;
        }
        self.held.insert(
            key,
            Held {
                // Not later than we heard it: a builder whose clock runs
                // ahead must not look alive after it was lost.
                renewed_at: renewal.at.min(now),
                lease_expires,
                wire: signed.to_wire(),
            },
        );
        true
    }

    /// Forgets the renewals whose lease has ended.
    pub fn prune(&mut self, now: Timestamp) {
        self.held.retain(|_, held| held.lease_expires > now);
    }

    /// Room for a new claim's renewal heard at `at`: within its builder's
    /// share, the builder's own renewal heard longest ago goes; within the
    /// table, the one heard longest ago, if before `at`. False if there is
    /// none to drop.
    fn make_room(&mut self, now: Timestamp, key: &ClaimKey, at: Timestamp) -> bool {
        let builder = key.builder;
        let own = self.held.keys().filter(|k| k.builder == builder).count();
        if own >= LEASES_PER_BUILDER_MAX {
            return self.evict_stalest(|k| k.builder == builder, at);
        }
        if self.held.len() >= LEASES_MAX {
            self.prune(now);
        }
        self.held.len() < LEASES_MAX || self.evict_stalest(|_| true, at)
    }

    /// Drops the renewal heard longest ago among those `pick` names, if it
    /// was heard before `than`.
    fn evict_stalest(&mut self, pick: impl Fn(&ClaimKey) -> bool, than: Timestamp) -> bool {
        let stalest = self
            .held
            .iter()
            .filter(|(key, _)| pick(key))
            .min_by_key(|(_, held)| held.renewed_at)
            .filter(|(_, held)| held.renewed_at < than)
            .map(|(key, _)| key.clone());
        stalest.is_some_and(|key| self.held.remove(&key).is_some())
    }

    /// What the renewals of `builder`'s claim on the cell say, if any.
    pub fn renewed(
        &self,
        project: &ProjectId,
        commit: &CommitId,
        platform: &str,
        builder: &PublicKey,
    ) -> Option<Renewed> {
        let key = ClaimKey {
            project: *project,
            commit: commit.clone(),
            platform: platform.to_owned(),
            builder: *builder,
        };
        self.held.get(&key).map(|held| Renewed {
            at: held.renewed_at,
            lease_expires: held.lease_expires,
        })
    }

    /// The renewals of `project`'s claims: (commit, platform, builder,
    /// what they say), in key order.
    pub fn of_project<'a>(
        &'a self,
        project: &'a ProjectId,
    ) -> impl Iterator<Item = (&'a CommitId, &'a str, &'a PublicKey, Renewed)> + 'a {
        self.held
            .iter()
            .filter(move |(key, _)| key.project == *project)
            .map(|(key, held)| {
                let renewed = Renewed {
                    at: held.renewed_at,
                    lease_expires: held.lease_expires,
                };
                (&key.commit, key.platform.as_str(), &key.builder, renewed)
            })
    }

    /// The wire forms to hand a peer that syncs: the live ones, at most
    /// [`SYNC_LEASES_MAX`], taken from each builder in turn (each one's
    /// most recently heard first), so no builder crowds out another's.
    pub fn wires(&self, now: Timestamp) -> Vec<Vec<u8>> {
        let mut by_builder: BTreeMap<PublicKey, Vec<&Held>> = BTreeMap::new();
        for (key, held) in self.held.iter().filter(|(_, h)| h.lease_expires > now) {
            by_builder.entry(key.builder).or_default().push(held);
        }
        for held in by_builder.values_mut() {
            held.sort_by_key(|h| std::cmp::Reverse(h.renewed_at));
        }
        let mut wires = Vec::new();
        for turn in 0.. {
            let before = wires.len();
            for held in by_builder.values() {
                if let Some(h) = held.get(turn) {
                    wires.push(h.wire.clone());
                }
            }
            if wires.len() == before || wires.len() >= SYNC_LEASES_MAX {
                break;
            }
        }
        wires.truncate(SYNC_LEASES_MAX);
        wires
    }

    /// Renewals held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// Whether `store` holds a claim by the renewal's builder on its cell. A
/// renewal extends such a claim and nothing else, so only those are worth
/// holding: anyone can sign renewals, but a claim is an entry, bounded by
/// the log's rules on who writes how much (`docs/protocol.md` §6.1).
pub fn renews_a_claim<S: EntryStore>(store: &S, renewal: &Renewal) -> Result<bool, S::Error> {
    let prefix = IndexKey::Commit(&renewal.project, &renewal.commit).prefix();
    Ok(fetch(store, &prefix, false, usize::MAX)?
        .iter()
        .any(|entry| match entry.body() {
            Body::Claim(claim) => {
                entry.author() == renewal.builder && claim.platform == renewal.platform
            }
            _ => false,
        }))
}

fn key_of(renewal: &Renewal) -> ClaimKey {
    ClaimKey {
        project: renewal.project,
        commit: renewal.commit.clone(),
        platform: renewal.platform.clone(),
        builder: renewal.builder,
    }
}
