//! What a peer lacks, in bounded batches.

use super::store::EntryStore;
use buildmesh_protocol::VersionVector;
use buildmesh_protocol::{ENTRY_BYTES_MAX, Entry, SyncCursor};

/// Bounds on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most entries (siblings at one sequence number may exceed it by a few).
    pub entries_max: usize,
    /// Most wire bytes. Two exceptions, both small: a batch always holds at
    /// least one entry, and the entries at one sequence number are never
    /// split, so fork siblings may add up to `SIBLINGS_MAX - 1` entries more.
    /// A transport with a hard frame limit should allow that much slack.
    pub bytes_max: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            entries_max: 1024,
            bytes_max: 4 * 1024 * 1024,
        }
    }
}

/// One batch of entries and where to resume.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncBatch {
    /// Linked entries the peer lacks, by author then sequence number.
    pub entries: Vec<Entry>,
    /// `Some` when more remain: ask again with the same vector and this.
    pub resume: Option<SyncCursor>,
}

/// The linked entries held in `store` that the holder of `theirs` lacks,
/// starting at `resume`, within `limits`.
pub fn lacks<S: EntryStore>(
    store: &S,
    theirs: &VersionVector,
    resume: Option<SyncCursor>,
    limits: BatchLimits,
) -> Result<SyncBatch, S::Error> {
    let ours = store.versions()?;
    let mut batch = SyncBatch {
        entries: Vec::new(),
        resume: None,
    };
    let mut bytes = 0;
    let todo = ours
        .iter()
        .filter(|(author, seq)| *seq > theirs.get(author));
    for (author, head) in todo {
        let mut seq = theirs.get(author) + 1;
        if let Some(cursor) = resume {
            if *author < cursor.author {
                continue;
            }
            if *author == cursor.author {
                seq = seq.max(cursor.seq);
            }
        }
        while seq <= head {
            let room = room_for(&batch, bytes, limits);
            if room == 0 {
                batch.resume = Some(SyncCursor {
                    author: *author,
                    seq,
                });
                return Ok(batch);
            }
            let found = store.range(author, seq, room)?;
            let Some(last) = found.last() else { break };
            seq = last.entry.seq() + 1;
            for stored in found.into_iter().filter(|s| s.linked) {
                bytes += stored.entry.wire_len();
                batch.entries.push(stored.entry);
            }
        }
    }
    Ok(batch)
}

/// How many more entries fit, counting each as large as an entry may be so
/// the byte bound holds whatever the next entries weigh. A batch always
/// takes at least one entry, so a tiny byte bound still makes progress.
fn room_for(batch: &SyncBatch, bytes: usize, limits: BatchLimits) -> usize {
    let by_count = limits.entries_max.saturating_sub(batch.entries.len());
    let by_bytes = limits.bytes_max.saturating_sub(bytes) / ENTRY_BYTES_MAX;
    if batch.entries.is_empty() {
        by_count.max(1).min(by_bytes.max(1))
    } else {
        by_count.min(by_bytes)
    }
}
