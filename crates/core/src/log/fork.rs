//! Proof that an author signed two histories.

use buildmesh_protocol::{EntryId, PublicKey};
use serde::{Deserialize, Serialize};

/// Two entries by one author that cannot both be honest. Anyone holding
/// both entries can check the proof with the author's key alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForkProof {
    /// Sequence number of `second`.
    pub seq: u64,
    /// What the two entries show.
    pub kind: ForkKind,
    /// For [`ForkKind::Equivocation`], the smaller id; for
    /// [`ForkKind::BrokenLink`], the entry at `seq - 1`.
    pub first: EntryId,
    /// The other entry, at `seq`.
    pub second: EntryId,
}

/// How two entries contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ForkKind {
    /// Two different entries with the same sequence number.
    Equivocation,
    /// An entry whose `prev` is not the id of the author's entry before it.
    BrokenLink,
}

impl ForkProof {
    /// Two entries at one sequence number, ordered so the proof is the same
    /// whichever arrived first.
    pub fn equivocation(seq: u64, a: EntryId, b: EntryId) -> Self {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        ForkProof {
            seq,
            kind: ForkKind::Equivocation,
            first,
            second,
        }
    }

    /// `later` at `seq` does not name `earlier` (at `seq - 1`) as its predecessor.
    pub fn broken_link(seq: u64, earlier: EntryId, later: EntryId) -> Self {
        ForkProof {
            seq,
            kind: ForkKind::BrokenLink,
            first: earlier,
            second: later,
        }
    }

    /// Of two proofs against one author, the one every node keeps: the
    /// smallest, so the verdict does not depend on arrival order.
    pub fn canonical(self, other: Option<ForkProof>) -> ForkProof {
        other.map_or(self, |o| o.min(self))
    }
}

/// The fork proofs found against one author, kept in [`super::WriteBatch`].
pub type AuthorFork = (PublicKey, ForkProof);
