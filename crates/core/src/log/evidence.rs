//! The entries that prove a fork, for someone who holds neither.
//!
//! A fork proof is two entries anyone can check with the author's key
//! alone, so proving a fork to a peer or to an outside verifier is handing
//! over those two entries: peers take them through the ordinary merge
//! rules, which find the fork themselves (docs/protocol.md §6, "Forks
//! travel"; §7 for the export).

use super::fork::ForkProof;
use super::store::{ChainStore, EntryStore, StoredEntry};
use buildmesh_protocol::{Entry, PublicKey};

/// The entries of `proof` that `store` holds (both, in a store that keeps
/// the proof), in sequence order, then id order.
pub fn proof_entries<S: ChainStore>(
    store: &S,
    proof: &ForkProof,
) -> Result<Vec<StoredEntry>, S::Error> {
    let mut held = Vec::with_capacity(2);
    for id in [proof.first, proof.second] {
        held.extend(store.get(&id)?);
    }
    held.sort_by_key(|s| (s.entry.seq(), s.entry.id()));
    Ok(held)
}

/// The entries of the fork proofs held that a sync leaves out because
/// they do not link (a sibling whose `prev` is not the linked predecessor,
/// the second entry of a broken link), by author, at most `max`: what an
/// export of the linked entries adds so that a verifier sees each fork the
/// node sees. Anyone with a key can make forks, so the caller bounds what
/// it holds at once.
pub fn unlinked_evidence<S: EntryStore>(
    store: &S,
    max: usize,
) -> Result<Vec<(PublicKey, Entry)>, S::Error> {
    let mut evidence = Vec::new();
    for (author, proof) in store.forks()? {
        for stored in proof_entries(store, &proof)? {
            if evidence.len() >= max {
                return Ok(evidence);
            }
            if !stored.linked {
                evidence.push((author, stored.entry));
            }
        }
    }
    Ok(evidence)
}
