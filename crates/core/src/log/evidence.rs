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

/// How much one batch of [`unlinked_evidence`] reads and holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceLimits {
    /// Most fork proofs read.
    pub authors_max: usize,
    /// Wire bytes of evidence after which the batch ends (at the end of
    /// an author: it may run over by two entries).
    pub bytes_max: usize,
}

impl Default for EvidenceLimits {
    fn default() -> Self {
        EvidenceLimits {
            authors_max: 256,
            bytes_max: 1024 * 1024,
        }
    }
}

/// One batch of evidence, and the author to resume after (`None`: done).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceBatch {
    /// Each forked author with an entry of its proof that does not link.
    pub entries: Vec<(PublicKey, Entry)>,
    /// The last author this batch covers, when more may follow.
    pub resume: Option<PublicKey>,
}

/// The entries of the fork proofs held that a sync leaves out because
/// they do not link (a sibling whose `prev` is not the linked predecessor,
/// the second entry of a broken link), by author, from the first author
/// after `after`: what an export of the linked entries adds so that a
/// verifier sees each fork the node sees. Anyone with a key can make
/// forks, so this reads a bounded batch, and the caller asks again from
/// `resume` until it is `None`: nothing is ever left out.
pub fn unlinked_evidence<S: EntryStore>(
    store: &S,
    after: Option<&PublicKey>,
    limits: EvidenceLimits,
) -> Result<EvidenceBatch, S::Error> {
    let proofs = store.forks_after(after, limits.authors_max)?;
    let full = proofs.len() >= limits.authors_max;
    let mut batch = EvidenceBatch {
        entries: Vec::new(),
        resume: None,
    };
    let mut bytes = 0;
    for (index, (author, proof)) in proofs.iter().enumerate() {
        for stored in proof_entries(store, proof)? {
            if !stored.linked {
                bytes += stored.entry.wire_len();
                batch.entries.push((*author, stored.entry));
            }
        }
        let last = index + 1 == proofs.len();
        if (bytes >= limits.bytes_max && !last) || (last && full) {
            batch.resume = Some(*author);
            break;
        }
    }
    Ok(batch)
}
