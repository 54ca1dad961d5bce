//! Version vectors: what a node holds, author by author.

use crate::ids::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// For each author, the highest sequence number up to which the holder has
/// a linked chain. Authors absent from the map count as 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<PublicKey, u64>);

impl VersionVector {
    /// The empty vector: holds nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The holder's sequence number for `author`.
    pub fn get(&self, author: &PublicKey) -> u64 {
        self.0.get(author).copied().unwrap_or(0)
    }

    /// Raises `author` to `seq` (never lowers it).
    pub fn raise(&mut self, author: PublicKey, seq: u64) {
        if seq == 0 {
            return; // absent already means 0; keeping maps minimal keeps `==` meaningful
        }
        let slot = self.0.entry(author).or_insert(0);
        *slot = (*slot).max(seq);
    }

    /// Every author with a non-zero sequence number, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, u64)> {
        self.0
            .iter()
            .filter(|(_, seq)| **seq > 0)
            .map(|(k, s)| (k, *s))
    }

    /// Number of authors with a non-zero sequence number.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether the vector holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total linked entries the vector stands for (forks aside).
    pub fn total(&self) -> u64 {
        self.iter().map(|(_, seq)| seq).sum()
    }

    /// Whether the holder of `self` has everything `other` has.
    pub fn covers(&self, other: &VersionVector) -> bool {
        other.iter().all(|(author, seq)| self.get(author) >= seq)
    }
}

impl FromIterator<(PublicKey, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (PublicKey, u64)>>(iter: I) -> Self {
        let mut vector = VersionVector::new();
        for (author, seq) in iter {
            vector.raise(author, seq);
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_never_lowers_and_zero_is_absent() {
        let a = PublicKey([1; 32]);
        let mut v = VersionVector::new();
        v.raise(a, 5);
        v.raise(a, 3);
        assert_eq!(v.get(&a), 5);
        v.raise(PublicKey([2; 32]), 0);
        assert_eq!(v.len(), 1);
        assert_eq!(
            VersionVector::new(),
            [(PublicKey([2; 32]), 0)].into_iter().collect()
        );
    }

    #[test]
    fn covers_compares_author_by_author() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let big: VersionVector = [(a, 3), (b, 1)].into_iter().collect();
        let small: VersionVector = [(a, 2)].into_iter().collect();
        assert!(big.covers(&small));
        assert!(!small.covers(&big));
    }
}
