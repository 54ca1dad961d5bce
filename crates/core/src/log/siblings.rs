//! Which siblings a full `(author, seq)` keeps: the lowest ids.
//!
//! At most [`SIBLINGS_MAX`] entries are kept at one `(author, seq)`. Had
//! the first to arrive been kept, an author who signs more than that at
//! one `seq` would leave nodes holding different ones for ever, whatever
//! they exchange: their logs, and so their digests, would never agree. So
//! a node keeps the [`SIBLINGS_MAX`] entries with the lowest ids it has
//! seen there: an entry with a lower id than the highest held takes its
//! place, and one with a higher id is refused. Which entries are kept is
//! then a function of the set of entries seen, whatever order they came
//! in (docs/protocol.md §6).
//!
//! A full `seq` is always the author's boundary (two entries there prove
//! a fork, and nothing past the boundary is kept), so the entry replaced
//! has no successor held; the proof is the two lowest ids seen there (an
//! equivocation is the smallest proof at a `seq`), which are never
//! replaced.

use super::admission::Usage;
use super::index::index_keys;
use super::ingest::{Rejected, SIBLINGS_MAX};
use super::store::{StoredEntry, WriteBatch};
use buildmesh_protocol::Entry;

/// Of the `siblings` held at `entry`'s `(author, seq)`, the one `entry`
/// replaces (taken out of `siblings`), if they are [`SIBLINGS_MAX`]: the
/// highest, when its id is higher than `entry`'s; else `entry` is refused.
pub(super) fn outranked(
    siblings: &mut Vec<StoredEntry>,
    entry: &Entry,
) -> Result<Option<StoredEntry>, Rejected> {
    if siblings.len() < SIBLINGS_MAX {
        return Ok(None);
    }
    let highest = siblings
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| s.entry.id())
        .map(|(i, s)| (i, s.entry.id()));
    match highest {
        Some((i, id)) if entry.id() < id => Ok(Some(siblings.remove(i))),
        _ => Err(Rejected::TooManySiblings { seq: entry.seq() }),
    }
}

/// Adds to `batch` the forgetting of `replaced` and, if it was linked, of
/// its index keys and its share of `usage`; returns the usage left.
pub(super) fn forget(replaced: &StoredEntry, usage: Usage, batch: &mut WriteBatch) -> Usage {
    let entry = &replaced.entry;
    batch
        .removed
        .push((entry.author(), entry.seq(), entry.id()));
    if !replaced.linked {
        return usage;
    }
    batch.unindex.extend(index_keys(entry));
    let usage = usage.minus(entry);
    batch.usage.push((entry.author(), usage));
    usage
}
