//! What this node asks its peers for blobs, bounded: HTTP clients ask for
//! blobs by hash, and every miss would otherwise become a request to each
//! peer in turn. Enough of those and a peer counts this node as flooding
//! it and bans it, for asking on a stranger's behalf.
//!
//! So fetches come out of a token bucket well under what a peer allows
//! (`ReplicatorConfig::requests_per_second`), and a blob no peer had is
//! remembered as missing for a while (until a new peer connects), so that
//! asking again costs nothing.

use super::limiter::TokenBucket;
use buildmesh_protocol::{BlobHash, Timestamp};
use std::collections::BTreeMap;

/// Blob fetches this node starts at once at most.
pub const BLOB_FETCHES_BURST: u32 = 16;
/// Blob fetches this node starts per second, on average: a quarter of what
/// a peer serves one node by default, so a fetch that asks every peer in
/// turn stays under each peer's limit.
pub const BLOB_FETCHES_PER_SECOND: u32 = 16;
/// How long a blob no peer had is answered as missing without asking.
pub const BLOB_MISS_MS: u64 = 60_000;
/// Misses remembered at most; the oldest goes first.
pub const BLOB_MISSES_MAX: usize = 4096;

/// The budget and the misses.
#[derive(Debug, Clone)]
pub(crate) struct BlobFetches {
    budget: TokenBucket,
    misses: BTreeMap<BlobHash, Timestamp>,
}

impl BlobFetches {
    pub(crate) fn new(now: Timestamp) -> Self {
        BlobFetches {
            budget: TokenBucket::new(BLOB_FETCHES_BURST, BLOB_FETCHES_PER_SECOND, now),
            misses: BTreeMap::new(),
        }
    }

    /// Whether a fetch of `hash` may start at `now` (if not, it is
    /// answered as unavailable at once).
    pub(crate) fn may_start(&mut self, now: Timestamp, hash: &BlobHash) -> bool {
        let missed = self
            .misses
            .get(hash)
            .is_some_and(|at| now.ms_since(*at) < BLOB_MISS_MS);
        !missed && self.budget.take(now)
    }

    /// No peer had `hash` at `now`.
    pub(crate) fn missed(&mut self, now: Timestamp, hash: BlobHash) {
        if self.misses.len() >= BLOB_MISSES_MAX && !self.misses.contains_key(&hash) {
            let oldest = self
                .misses
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(h, _)| *h);
            if let Some(oldest) = oldest {
                self.misses.remove(&oldest);
            }
        }
        self.misses.insert(hash, now);
    }

    /// A peer connected: it may hold what the others did not.
    pub(crate) fn peer_connected(&mut self) {
        self.misses.clear();
    }
}
