//! Freezing a forked author: nothing of it past its fork is kept.
//!
//! Once a node holds a proof that an author signed two histories, the
//! author's entries count nowhere, and whatever it signs later would only
//! cost every node disk. So a node keeps a forked author's entries only up
//! to its *boundary*, the sequence number of the smallest proof it holds
//! against the author ([`super::ForkProof::canonical`]: the lowest `seq`
//! first). It refuses later ones ([`super::Rejected::Frozen`]) and forgets
//! those it held. A proof's own entries lie at or below its `seq`, so they
//! stay as evidence. Which entries are held is then a function of the set
//! of entries seen, whatever order they came in: the boundary is the
//! lowest contradiction among them, and it only moves down
//! (docs/protocol.md §6, "Freezing").

use super::index::index_keys;
use super::store::{ChainStore, EntryStore, WriteBatch};
use buildmesh_protocol::{EntryId, PublicKey};
use std::collections::BTreeSet;

/// Adds to `batch` the forgetting of everything `store` holds of `author`
/// past `boundary`, as it stands once `batch` is applied: the entries, the
/// index keys of those that are (or are being) linked, their share of the
/// author's quota usage, and a version above the boundary.
pub(super) fn freeze<S: ChainStore>(
    store: &S,
    author: &PublicKey,
    boundary: u64,
    batch: &mut WriteBatch,
) -> Result<(), S::Error> {
    let top = store.max_seq(author)?;
    let linking: BTreeSet<EntryId> = batch
        .linked
        .iter()
        .filter(|(a, _, _)| a == author)
        .map(|(_, _, id)| *id)
        .collect();
    let usage_before = match batch.usage.iter().rev().find(|(a, _)| a == author) {
        Some((_, usage)) => *usage,
        None => store.usage(author)?,
    };
    let mut usage = usage_before;
    let mut gone: BTreeSet<EntryId> = BTreeSet::new();
    let mut staged_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    for seq in boundary.saturating_add(1)..=top {
        for stored in store.at(author, seq)? {
            let id = stored.entry.id();
            let linked_now = linking.contains(&id);
            if stored.linked || linked_now {
                usage = usage.minus(&stored.entry);
                let keys = index_keys(&stored.entry);
                if linked_now && !stored.linked {
                    staged_keys.extend(keys);
                } else {
                    batch.unindex.extend(keys);
                }
            }
            batch.removed.push((*author, seq, id));
            gone.insert(id);
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    batch.linked.retain(|(_, _, id)| !gone.contains(id));
    batch.index.retain(|key| !staged_keys.contains(key));
    let version = match batch.versions.iter().rev().find(|(a, _)| a == author) {
        Some((_, seq)) => *seq,
        None => store.version(author)?,
    };
    if version > boundary {
        batch.versions.retain(|(a, _)| a != author);
        batch.versions.push((*author, boundary));
    }
    if usage != usage_before {
        batch.usage.retain(|(a, _)| a != author);
        batch.usage.push((*author, usage));
    }
    Ok(())
}

/// Forgets what `store` holds past each fork proof it holds: for a store
/// written before forks froze their authors. Returns how many authors had
/// something to forget. Not durable until [`EntryStore::flush`].
pub fn freeze_forked<S: EntryStore>(store: &mut S) -> Result<usize, S::Error> {
    let mut frozen = 0;
    for (author, proof) in store.forks()? {
        if store.max_seq(&author)? <= proof.seq {
            continue;
        }
        let mut batch = WriteBatch::default();
        freeze(store, &author, proof.seq, &mut batch)?;
        if !batch.is_empty() {
            store.apply(batch)?;
            frozen += 1;
        }
    }
    Ok(frozen)
}
