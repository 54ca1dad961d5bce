//! The merge rules: what one more entry does to a store.

use super::admission::{AUTHOR_ENTRIES_MAX, Usage, has_role};
use super::fork::ForkProof;
use super::freeze::freeze;
use super::index::index_keys;
use super::siblings::{forget, outranked};
use super::staged::Staged;
use super::store::{ChainStore, EntryStore, StoredEntry, WriteBatch};
use buildmesh_protocol::{Entry, PublicKey};

/// How far past an author's linked head an entry may be and still be held
/// pending. Further ahead it is refused: the author's key alone could
/// otherwise fill our disk with entries that never link. It comes again in
/// a later sync once the gap has narrowed.
pub const PENDING_WINDOW_ENTRIES: u64 = 4096;

/// Most entries kept at one `(author, seq)`: those with the lowest ids
/// (see `siblings`). Two already prove a fork; a few more cost little,
/// unbounded would let a forked author fill the disk.
pub const SIBLINGS_MAX: usize = 4;

/// What ingesting an entry did. Every outcome is normal; none is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Stored and linked, with `linked - 1` pending successors it unblocked.
    Applied {
        /// Entries linked by this ingest, this one included.
        linked: usize,
    },
    /// Already held: nothing changed.
    Duplicate,
    /// Stored, waiting for the author's entry `missing_seq`.
    Pending {
        /// The first sequence number not yet linked.
        missing_seq: u64,
    },
    /// Stored as evidence: it contradicts an entry already held.
    Fork(ForkProof),
    /// Not stored.
    Rejected(Rejected),
}

/// Why a well-signed entry was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Too far past the author's linked head; see [`PENDING_WINDOW_ENTRIES`].
    #[error(
        "sequence number {seq} is more than {PENDING_WINDOW_ENTRIES} past the linked head {head}"
    )]
    TooFarAhead {
        /// The entry's sequence number.
        seq: u64,
        /// The author's linked head.
        head: u64,
    },
    /// [`SIBLINGS_MAX`] entries with lower ids are already held at this
    /// sequence number.
    #[error("{SIBLINGS_MAX} entries with lower ids are already held at sequence number {seq}")]
    TooManySiblings {
        /// The sequence number.
        seq: u64,
    },
    /// The author has no role in any project the log holds, and the entry
    /// gives it none (docs/protocol.md §6.1). It is taken once an entry
    /// that names the author arrives.
    #[error(
        "its author is not the owner, an announcer or a builder of any project this log holds: \
         declare a project with this key first (`buildmesh project declare`), or have a \
         project's owner name it (in the declaration, or with `buildmesh project trust`)"
    )]
    NoRole,
    /// The author forked at or before `fork_seq`: nothing of it past that
    /// is kept (docs/protocol.md §6, "Freezing").
    #[error(
        "its author signed two histories (a fork proven at sequence number {fork_seq}): \
         nothing it signed past that is kept, and none of its entries count"
    )]
    Frozen {
        /// The entry's sequence number.
        seq: u64,
        /// The lowest fork proven against its author: the last sequence
        /// number kept.
        fork_seq: u64,
    },
    /// The author's chain is past one of its quotas for good.
    #[error("its author's chain is past its quota of {0}; the author needs a new key")]
    OverQuota(Quota),
    /// Held out of order, its gap could take the author past a quota: it
    /// is taken once its predecessors are.
    #[error("sequence number {seq} is too near its author's quota to be held before {head} + 1")]
    NearQuota {
        /// The entry's sequence number.
        seq: u64,
        /// The author's linked head.
        head: u64,
    },
}

/// The quota an author's chain ran past (see [`super::AUTHOR_ENTRIES_MAX`]
/// and its siblings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Entries.
    Entries,
    /// Wire bytes.
    Bytes,
    /// Declarations.
    Declarations,
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use super::admission::{AUTHOR_BYTES_MAX, AUTHOR_DECLARATIONS_MAX};
        match self {
            Quota::Entries => write!(f, "{AUTHOR_ENTRIES_MAX} entries"),
            Quota::Bytes => write!(f, "{AUTHOR_BYTES_MAX} bytes"),
            Quota::Declarations => write!(f, "{AUTHOR_DECLARATIONS_MAX} declarations"),
        }
    }
}

/// Adds `entry` to `store`. Not durable until [`EntryStore::flush`]; see
/// [`insert`] for the durable form.
pub fn ingest<S: ChainStore>(store: &mut S, entry: Entry) -> Result<Ingested, S::Error> {
    let (outcome, batch) = plan(store, entry)?;
    if !batch.is_empty() {
        store.apply(batch)?;
    }
    Ok(outcome)
}

/// Ingests then flushes: when this returns `Ok`, the entry survives a crash.
pub fn insert<S: EntryStore>(store: &mut S, entry: Entry) -> Result<Ingested, S::Error> {
    let outcome = ingest(store, entry)?;
    store.flush()?;
    Ok(outcome)
}

/// Ingests every entry and applies everything as one atomic batch: after a
/// crash either all of the batch is there or none of it. Not durable until
/// [`EntryStore::flush`]; see [`insert_batch`] for the durable form.
pub fn ingest_batch<S: ChainStore>(
    store: &mut S,
    entries: impl IntoIterator<Item = Entry>,
) -> Result<Vec<Ingested>, S::Error> {
    let mut staged = Staged::new(store);
    let entries: Vec<Entry> = entries.into_iter().collect();
    let mut outcomes = entries
        .iter()
        .map(|entry| ingest(&mut staged, entry.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    retry_without_role(&mut staged, &entries, &mut outcomes)?;
    let batch = staged.into_batch();
    if !batch.is_empty() {
        store.apply(batch)?;
    }
    Ok(outcomes)
}

/// Most times a batch's entries without a role are offered again. A sync
/// batch comes in author order, so a builder's entries may come before
/// the declaration that names it: one more pass takes them. Roles given
/// along a longer chain of keys inside one batch would each take a pass
/// over the batch; past this, the rest waits aside or for the next sync.
pub const RETRY_PASSES_MAX: usize = 3;

/// Takes again the entries of a batch refused for want of a role, while
/// that lets more in, at most [`RETRY_PASSES_MAX`] times.
fn retry_without_role<S: ChainStore>(
    staged: &mut S,
    entries: &[Entry],
    outcomes: &mut [Ingested],
) -> Result<(), S::Error> {
    let refused = |outcomes: &[Ingested]| {
        outcomes
            .iter()
            .filter(|o| **o == Ingested::Rejected(Rejected::NoRole))
            .count()
    };
    let mut before = refused(outcomes);
    let mut passes = 0;
    while before > 0 && passes < RETRY_PASSES_MAX {
        passes += 1;
        for (entry, outcome) in entries.iter().zip(outcomes.iter_mut()) {
            if *outcome == Ingested::Rejected(Rejected::NoRole) {
                *outcome = ingest(staged, entry.clone())?;
            }
        }
        let after = refused(outcomes);
        if after == before {
            break;
        }
        before = after;
    }
    Ok(())
}

/// [`ingest_batch`], then one flush: the cheap way to take many entries
/// durably.
pub fn insert_batch<S: EntryStore>(
    store: &mut S,
    entries: impl IntoIterator<Item = Entry>,
) -> Result<Vec<Ingested>, S::Error> {
    let outcomes = ingest_batch(store, entries)?;
    store.flush()?;
    Ok(outcomes)
}

/// Decides what `entry` does, from reads alone.
fn plan<S: ChainStore>(store: &S, entry: Entry) -> Result<(Ingested, WriteBatch), S::Error> {
    let mut batch = WriteBatch::default();
    if store.holds(&entry)? {
        return Ok((Ingested::Duplicate, batch));
    }
    let (author, seq) = (entry.author(), entry.seq());
    let held = store.fork(&author)?;
    if let Some(held) = held
        && seq > held.seq
    {
        let refused = Rejected::Frozen {
            seq,
            fork_seq: held.seq,
        };
        return Ok((Ingested::Rejected(refused), batch));
    }
    if seq > AUTHOR_ENTRIES_MAX {
        let refused = Rejected::OverQuota(Quota::Entries);
        return Ok((Ingested::Rejected(refused), batch));
    }
    let head = store.version(&author)?;
    if seq > head.saturating_add(PENDING_WINDOW_ENTRIES) {
        return Ok((
            Ingested::Rejected(Rejected::TooFarAhead { seq, head }),
            batch,
        ));
    }
    let mut siblings = store.at(&author, seq)?;
    let replaced = match outranked(&mut siblings, &entry) {
        Ok(replaced) => replaced,
        Err(refused) => return Ok((Ingested::Rejected(refused), batch)),
    };
    if !has_role(store, &entry)? {
        return Ok((Ingested::Rejected(Rejected::NoRole), batch));
    }
    let predecessors = if seq > 1 {
        store.at(&author, seq - 1)?
    } else {
        Vec::new()
    };
    let successors = store.at(&author, seq.saturating_add(1))?;

    let proof = fork_proof(&entry, &siblings, &predecessors, &successors);
    // The author's boundary moves down when this proof is lower than any
    // held (or the first): everything past it goes, once linking is done.
    let canonical = proof.map(|proof| proof.canonical(held));
    let lowered = canonical.filter(|canonical| held.is_none_or(|h| canonical.seq < h.seq));
    if let Some(canonical) = canonical {
        batch.forks.push((author, canonical));
    }
    let mut linked = seq == 1
        || predecessors
            .iter()
            .any(|p| p.linked && p.entry.id() == entry.prev());
    let mut usage = store.usage(&author)?;
    if let Some(replaced) = &replaced {
        usage = forget(replaced, usage, &mut batch);
    }
    if let Err(refused) = fits(usage, &entry, linked, head) {
        if proof.is_none() {
            return Ok((Ingested::Rejected(refused), WriteBatch::default()));
        }
        // It proves a fork: kept as evidence (at most SIBLINGS_MAX per
        // seq), but never linked, so the quota still holds.
        linked = false;
    }
    let newly_linked = if linked {
        link_successors(store, &entry, usage.plus(&entry), successors, &mut batch)?
    } else {
        0
    };
    if linked {
        batch.index.extend(index_keys(&entry));
    }
    batch.entries.push(StoredEntry { entry, linked });
    let unlinked_at_head = replaced.is_some_and(|r| r.linked)
        && !linked
        && !siblings.iter().any(|s| s.linked)
        && head == seq;
    if unlinked_at_head {
        // The entry replaced was the only one linked at the author's head.
        batch.versions.push((author, seq - 1));
    }
    if let Some(canonical) = lowered {
        freeze(store, &author, canonical.seq, &mut batch)?;
    }

    let outcome = match (proof, linked) {
        (Some(proof), _) => Ingested::Fork(proof),
        (None, true) => Ingested::Applied {
            linked: newly_linked + 1,
        },
        (None, false) => Ingested::Pending {
            missing_seq: head + 1,
        },
    };
    Ok((outcome, batch))
}

/// Whether the author's quotas leave room for `entry`: exactly when it
/// links now, and at worst (every entry of its gap a largest declaration)
/// when it waits for predecessors, so that what is held can always link.
fn fits(usage: Usage, entry: &Entry, linked: bool, head: u64) -> Result<(), Rejected> {
    if linked {
        return match usage.plus(entry).past_quota() {
            None => Ok(()),
            Some(quota) => Err(Rejected::OverQuota(quota)),
        };
    }
    let gap = entry.seq().saturating_sub(head).saturating_sub(1);
    if usage.at_worst(gap).plus(entry).within_quota() {
        Ok(())
    } else {
        Err(Rejected::NearQuota {
            seq: entry.seq(),
            head,
        })
    }
}

/// The smallest contradiction between `entry` and its neighbours, if any.
fn fork_proof(
    entry: &Entry,
    siblings: &[StoredEntry],
    predecessors: &[StoredEntry],
    successors: &[StoredEntry],
) -> Option<ForkProof> {
    let (seq, id) = (entry.seq(), entry.id());
    let equivocations = siblings
        .iter()
        .map(|s| ForkProof::equivocation(seq, s.entry.id(), id));
    let bad_predecessors = predecessors
        .iter()
        .filter(|p| p.entry.id() != entry.prev())
        .map(|p| ForkProof::broken_link(seq, p.entry.id(), id));
    let bad_successors = successors
        .iter()
        .filter(|s| s.entry.prev() != id)
        .map(|s| ForkProof::broken_link(seq + 1, id, s.entry.id()));
    equivocations
        .chain(bad_predecessors)
        .chain(bad_successors)
        .min()
}

/// Links every held descendant of a newly linked `entry`, recording each in
/// `batch` with its index keys, and raises the author's version and usage
/// (`usage` counts `entry` already). A descendant that would take the
/// author past a quota stays unlinked (only a store written before quotas
/// existed can hold one).
fn link_successors<S: ChainStore>(
    store: &S,
    entry: &Entry,
    mut usage: Usage,
    successors: Vec<StoredEntry>,
    batch: &mut WriteBatch,
) -> Result<usize, S::Error> {
    let author: PublicKey = entry.author();
    let mut top = entry.seq();
    let mut frontier = vec![entry.id()];
    let mut candidates = successors;
    let mut count = 0;
    while !frontier.is_empty() {
        let mut next: Vec<&StoredEntry> = Vec::new();
        for child in candidates
            .iter()
            .filter(|c| !c.linked && frontier.contains(&c.entry.prev()))
        {
            if usage.plus(&child.entry).within_quota() {
                usage = usage.plus(&child.entry);
                next.push(child);
            }
        }
        if next.is_empty() {
            break;
        }
        top += 1;
        frontier = next.iter().map(|c| c.entry.id()).collect();
        for child in next {
            batch.linked.push((author, top, child.entry.id()));
            batch.index.extend(index_keys(&child.entry));
            count += 1;
        }
        candidates = store.at(&author, top + 1)?;
    }
    if top > store.version(&author)? {
        batch.versions.push((author, top));
    }
    batch.usage.push((author, usage));
    Ok(count)
}
