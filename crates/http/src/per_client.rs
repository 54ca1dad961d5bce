//! How much work one client address may cause: a token bucket per address.
//!
//! `POST /api/v1/entries` costs the node a signature check and a store
//! write per entry, and anyone may call it. What a key may keep in the log
//! is bounded by the log's rules (docs/protocol.md §6.1); a bucket of entry
//! bytes bounds the work one address causes per second, whether its
//! entries are kept or refused. A blob this node lacks is fetched from
//! peers out of a budget shared by all clients (`core::replicator`); a
//! bucket of fetches per address keeps one client from spending it all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entry bytes one client address may submit at once (32 MiB: an import
/// of a few thousand entries goes through without waiting).
pub const SUBMIT_BURST_BYTES: u64 = 32 << 20;
/// Entry bytes per second one client address may submit on average.
pub const SUBMIT_BYTES_PER_SECOND: u64 = 8 << 20;
/// Blobs this node lacks that one client address may have it fetch from
/// peers at once.
pub const BLOB_FETCHES_PER_CLIENT_BURST: u64 = 8;
/// Such fetches per second one client address may ask for on average.
pub const BLOB_FETCHES_PER_CLIENT_PER_SECOND: u64 = 4;
/// Client addresses remembered; past it, those whose bucket is full again
/// (idle for a while) are forgotten first.
const CLIENTS_MAX: usize = 4096;

/// Each client address's bucket.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    buckets: Arc<Mutex<HashMap<IpAddr, Bucket>>>,
    burst: u64,
    per_second: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    at: Instant,
}

impl Bucket {
    fn refilled(self, now: Instant, burst: u64, per_second: u64) -> Bucket {
        let elapsed = now.saturating_duration_since(self.at);
        let earned = (elapsed.as_secs_f64() * per_second as f64) as u64;
        Bucket {
            tokens: self.tokens.saturating_add(earned).min(burst),
            at: now,
        }
    }
}

impl Buckets {
    /// Buckets of `burst` units filling at `per_second` (at least 1).
    pub(crate) fn new(burst: u64, per_second: u64) -> Self {
        Buckets {
            buckets: Arc::default(),
            burst,
            per_second: per_second.max(1),
        }
    }

    /// Takes `units` from `client`'s bucket, or says how long to wait
    /// until they would be there. A request larger than the whole bucket
    /// is let through when the bucket is full.
    pub(crate) fn take(&self, client: IpAddr, units: u64, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(()); // a panicked holder: do not refuse everyone for it
        };
        let (burst, rate) = (self.burst, self.per_second);
        if buckets.len() >= CLIENTS_MAX && !buckets.contains_key(&client) {
            forget_idle(&mut buckets, now, burst, rate);
        }
        let full = Bucket {
            tokens: burst,
            at: now,
        };
        let bucket = buckets
            .get(&client)
            .map_or(full, |b| b.refilled(now, burst, rate));
        let wanted = units.min(burst);
        if bucket.tokens >= wanted {
            buckets.insert(
                client,
                Bucket {
                    tokens: bucket.tokens - wanted,
                    at: now,
                },
            );
            return Ok(());
        }
        buckets.insert(client, bucket);
        let missing = wanted - bucket.tokens;
        Err(Duration::from_secs_f64(missing as f64 / rate as f64))
    }
}

/// Drops the buckets that are full again; if none is, an arbitrary half.
fn forget_idle(buckets: &mut HashMap<IpAddr, Bucket>, now: Instant, burst: u64, rate: u64) {
    buckets.retain(|_, b| b.refilled(now, burst, rate).tokens < burst);
    if buckets.len() >= CLIENTS_MAX {
        let keep: Vec<IpAddr> = buckets.keys().copied().take(CLIENTS_MAX / 2).collect();
        buckets.retain(|ip, _| keep.contains(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let submissions = Buckets::new(SUBMIT_BURST_BYTES, SUBMIT_BYTES_PER_SECOND);
        let (a, b) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        let now = Instant::now();
        assert_eq!(submissions.take(a, SUBMIT_BURST_BYTES, now), Ok(()));
        let wait = submissions.take(a, SUBMIT_BYTES_PER_SECOND, now);
        assert_eq!(wait, Err(Duration::from_secs(1)));
        assert_eq!(submissions.take(b, 1 << 20, now), Ok(()), "another client");
        let later = now + Duration::from_secs(1);
        assert_eq!(submissions.take(a, SUBMIT_BYTES_PER_SECOND, later), Ok(()));
    }

    #[test]
    fn the_clients_remembered_are_bounded() {
        let submissions = Buckets::new(SUBMIT_BURST_BYTES, SUBMIT_BYTES_PER_SECOND);
        let now = Instant::now();
        for i in 0..(CLIENTS_MAX as u32 * 2) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x7f00_0000 + i));
            let _ = submissions.take(ip, 1, now);
        }
        let held = submissions.buckets.lock().map(|b| b.len()).unwrap_or(0);
        assert!(held <= CLIENTS_MAX, "{held}");
    }
}
