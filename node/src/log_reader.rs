//! What the HTTP server reads from the log without asking the driver.

use buildmesh_core::log::{BatchLimits, ChainStore, EvidenceLimits, lacks, unlinked_evidence};
use buildmesh_http::LogReader;
use buildmesh_protocol::{Entry, PublicKey, SyncCursor, VersionVector};
use buildmesh_store::{SledReader, SledStore};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How stale a digest may be served while the log is growing: a digest
/// reads every entry key, and status pollers must not turn a catch-up into
/// a stream of full scans.
pub const DIGEST_AGE_MAX: Duration = Duration::from_millis(250);

/// The entry-set digest, recomputed only when the log has changed, and
/// then at most once per [`DIGEST_AGE_MAX`]. Entries are removed only when
/// a fork freezes their author, and the store counts those removals, so an
/// equal count of entries and of removals means an equal set. Each digest
/// comes with the count it covers, so a stale one is never mistaken for a
/// current one.
pub struct CachedDigest {
    reader: SledReader,
    /// For serving entries (`GET /api/v1/entries`).
    store: SledStore,
    last: Mutex<Option<Computed>>,
}

#[derive(Clone, Copy)]
struct Computed {
    entries: u64,
    /// Entries ever removed when it was computed.
    removed: u64,
    digest: [u8; 32],
    at: Instant,
}

impl CachedDigest {
    /// Nothing computed yet; `store` is a read-only handle.
    pub fn new(reader: SledReader, store: SledStore) -> Self {
        CachedDigest {
            reader,
            store,
            last: Mutex::new(None),
        }
    }
}

impl LogReader for CachedDigest {
    fn lacks(
        &self,
        have: &VersionVector,
        resume: Option<SyncCursor>,
    ) -> Result<(Vec<Entry>, Option<SyncCursor>), String> {
        // Each export holds one batch: bounded in bytes for HTTP, not
        // only in entries (a peer's batch may be 4 MiB).
        let limits = BatchLimits {
            bytes_max: buildmesh_http::EXPORT_BATCH_BYTES,
            ..BatchLimits::default()
        };
        let batch = lacks(&self.store, have, resume, limits).map_err(|e| e.to_string())?;
        Ok((batch.entries, batch.resume))
    }

    fn evidence(
        &self,
        after: Option<PublicKey>,
    ) -> Result<(Vec<Entry>, Option<PublicKey>), String> {
        // One batch near the size of an entries batch.
        let limits = EvidenceLimits {
            bytes_max: buildmesh_http::EXPORT_BATCH_BYTES,
            ..EvidenceLimits::default()
        };
        let batch =
            unlinked_evidence(&self.store, after.as_ref(), limits).map_err(|e| e.to_string())?;
        let entries = batch.entries.into_iter().map(|(_, entry)| entry).collect();
        Ok((entries, batch.resume))
    }

    fn version(&self, author: &PublicKey) -> Result<u64, String> {
        self.store.version(author).map_err(|e| e.to_string())
    }

    fn digest(&self) -> Result<(u64, [u8; 32]), String> {
        // Held while computing: concurrent pollers wait for one scan
        // rather than each starting their own.
        let mut last = self.last.lock().map_err(|_| "a digest reader panicked")?;
        let removed = self.reader.removed().map_err(|e| e.to_string())?;
        let count = self.reader.entries().map_err(|e| e.to_string())?;
        if let Some(known) = *last
            && ((known.entries == count && known.removed == removed)
                || known.at.elapsed() < DIGEST_AGE_MAX)
        {
            return Ok((known.entries, known.digest));
        }
        let (entries, digest) = self.reader.digest().map_err(|e| e.to_string())?;
        *last = Some(Computed {
            entries,
            removed,
            digest,
            at: Instant::now(),
        });
        Ok((entries, digest))
    }
}
