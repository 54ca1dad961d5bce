//! A digest of a set of entries, to compare logs cheaply.

use crate::ids::EntryId;
use sha2::{Digest, Sha256};

/// SHA-256 over the ids of a set of entries in ascending order, after a
/// domain string: two holders with equal digests hold the same entries.
#[derive(Debug, Clone)]
pub struct SetDigest {
    hasher: Sha256,
    last: Option<EntryId>,
    sorted: bool,
}

impl Default for SetDigest {
    fn default() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"buildmesh/entry-set/v1");
        SetDigest {
            hasher,
            last: None,
            sorted: true,
        }
    }
}

impl SetDigest {
    /// Adds the next id; ids must come in ascending order, each once.
    pub fn add(&mut self, id: &EntryId) {
        self.sorted &= self.last.is_none_or(|last| last < *id);
        self.last = Some(*id);
        self.hasher.update(id.as_bytes());
    }

    /// The digest, or `None` if the ids did not come in strictly ascending
    /// order (a caller bug: the result would not identify the set).
    pub fn finish(self) -> Option<[u8; 32]> {
        self.sorted.then(|| self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_checked_and_sets_differ() {
        let (a, b) = (EntryId([1; 32]), EntryId([2; 32]));
        let mut one = SetDigest::default();
        one.add(&a);
        one.add(&b);
        let mut other = SetDigest::default();
        other.add(&a);
        assert_ne!(one.finish(), other.clone().finish());
        other.add(&a);
        assert_eq!(other.finish(), None);
    }
}
