//! An in-memory [`EntryStore`] for tests, benches and the simulator.

use super::admission::Usage;
use super::fork::{AuthorFork, ForkProof};
use super::index::id_of_key;
use super::store::{ChainStore, EntryStore, StoredEntry, WriteBatch};
use buildmesh_protocol::VersionVector;
use buildmesh_protocol::{EntryId, PublicKey, SetDigest};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::Bound;

/// A store in memory that, like a real disk, distinguishes what was written
/// from what was made durable: [`MemStore::crash`] forgets every batch
/// applied since the last [`EntryStore::flush`].
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    current: MemState,
    unflushed: Vec<WriteBatch>,
    durable: MemState,
}

/// The maps a store keeps. `PartialEq` lets tests compare whole stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MemState {
    pub(crate) entries: BTreeMap<EntryId, StoredEntry>,
    chains: BTreeSet<(PublicKey, u64, EntryId)>,
    pub(crate) versions: BTreeMap<PublicKey, u64>,
    pub(crate) forks: BTreeMap<PublicKey, ForkProof>,
    index: BTreeSet<Vec<u8>>,
    pub(crate) usage: BTreeMap<PublicKey, Usage>,
    /// Entries a batch linked that this state does not hold: only ever
    /// non-empty as the overlay of [`super::Staged`], whose base holds them.
    pub(crate) linked_elsewhere: BTreeSet<EntryId>,
}

impl MemStore {
    /// Loses what was not flushed, as a killed process would.
    pub fn crash(&mut self) {
        self.current = self.durable.clone();
        self.unflushed.clear();
    }

    /// Whether two stores hold the same entries, links, versions, forks
    /// and indexes (what the log's laws are stated over).
    pub fn same_contents(&self, other: &MemStore) -> bool {
        self.current == other.current
    }

    /// Every entry held, in id order.
    pub fn entries(&self) -> impl Iterator<Item = &StoredEntry> {
        self.current.entries.values()
    }
}

impl MemState {
    pub(crate) fn apply(&mut self, batch: &WriteBatch) {
        for stored in &batch.entries {
            let entry = &stored.entry;
            self.chains
                .insert((entry.author(), entry.seq(), entry.id()));
            self.entries.insert(entry.id(), stored.clone());
        }
        for (_, _, id) in &batch.linked {
            match self.entries.get_mut(id) {
                Some(stored) => stored.linked = true,
                None => _ = self.linked_elsewhere.insert(*id),
            }
        }
        self.versions.extend(batch.versions.iter().copied());
        self.forks.extend(batch.forks.iter().copied());
        self.index.extend(batch.index.iter().cloned());
        self.usage.extend(batch.usage.iter().copied());
        for (author, seq, id) in &batch.removed {
            self.chains.remove(&(*author, *seq, *id));
            self.entries.remove(id);
            self.linked_elsewhere.remove(id);
        }
        for key in &batch.unindex {
            self.index.remove(key);
        }
    }

    /// Whether this state holds index key `key`.
    pub(crate) fn has_index_key(&self, key: &[u8]) -> bool {
        self.index.contains(key)
    }

    pub(crate) fn index_keys_under(&self, prefix: &[u8], limit: usize) -> Vec<Vec<u8>> {
        self.index
            .range(prefix.to_vec()..)
            .take_while(|key| key.starts_with(prefix))
            .take(limit)
            .cloned()
            .collect()
    }

    pub(crate) fn has_index(&self, prefix: &[u8]) -> bool {
        self.index
            .range(prefix.to_vec()..)
            .next()
            .is_some_and(|key| key.starts_with(prefix))
    }

    fn ids_from(
        &self,
        author: &PublicKey,
        from_seq: u64,
    ) -> impl DoubleEndedIterator<Item = (u64, EntryId)> {
        let start = (*author, from_seq, EntryId::ZERO);
        let end = (*author, u64::MAX, EntryId([0xff; 32]));
        self.chains
            .range(start..=end)
            .map(|(_, seq, id)| (*seq, *id))
    }

    pub(crate) fn max_seq(&self, author: &PublicKey) -> u64 {
        self.ids_from(author, 0)
            .next_back()
            .map_or(0, |(seq, _)| seq)
    }

    pub(crate) fn at(&self, author: &PublicKey, seq: u64) -> Vec<StoredEntry> {
        self.ids_from(author, seq)
            .take_while(|(at, _)| *at == seq)
            .filter_map(|(_, id)| self.entries.get(&id).cloned())
            .collect()
    }

    fn range(&self, author: &PublicKey, from_seq: u64, limit: usize) -> Vec<StoredEntry> {
        let mut found: Vec<StoredEntry> = Vec::new();
        for (seq, id) in self.ids_from(author, from_seq) {
            let full = found.len() >= limit;
            if full && found.last().is_none_or(|last| last.entry.seq() != seq) {
                break;
            }
            found.extend(self.entries.get(&id).cloned());
        }
        found
    }
}

impl ChainStore for MemStore {
    type Error = Infallible;

    fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, Infallible> {
        Ok(self.current.entries.get(id).cloned())
    }

    fn contains(&self, id: &EntryId) -> Result<bool, Infallible> {
        Ok(self.current.entries.contains_key(id))
    }

    fn at(&self, author: &PublicKey, seq: u64) -> Result<Vec<StoredEntry>, Infallible> {
        Ok(self.current.at(author, seq))
    }

    fn version(&self, author: &PublicKey) -> Result<u64, Infallible> {
        Ok(self.current.versions.get(author).copied().unwrap_or(0))
    }

    fn max_seq(&self, author: &PublicKey) -> Result<u64, Infallible> {
        Ok(self.current.max_seq(author))
    }

    fn fork(&self, author: &PublicKey) -> Result<Option<ForkProof>, Infallible> {
        Ok(self.current.forks.get(author).copied())
    }

    fn usage(&self, author: &PublicKey) -> Result<Usage, Infallible> {
        Ok(self.current.usage.get(author).copied().unwrap_or_default())
    }

    fn has_index(&self, prefix: &[u8]) -> Result<bool, Infallible> {
        Ok(self.current.has_index(prefix))
    }

    fn index_keys_under(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, Infallible> {
        Ok(self.current.index_keys_under(prefix, limit))
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), Infallible> {
        self.current.apply(&batch);
        self.unflushed.push(batch);
        Ok(())
    }
}

impl EntryStore for MemStore {
    fn range(
        &self,
        author: &PublicKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, Infallible> {
        Ok(self.current.range(author, from_seq, limit))
    }

    fn versions(&self) -> Result<VersionVector, Infallible> {
        Ok(self
            .current
            .versions
            .iter()
            .map(|(a, s)| (*a, *s))
            .collect())
    }

    fn forks(&self) -> Result<Vec<AuthorFork>, Infallible> {
        Ok(self.current.forks.iter().map(|(a, p)| (*a, *p)).collect())
    }

    fn forks_after(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<AuthorFork>, Infallible> {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .current
            .forks
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(a, p)| (*a, *p))
            .collect())
    }

    fn scan_index(
        &self,
        prefix: &[u8],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<EntryId>, Infallible> {
        let matching = self
            .current
            .index
            .range(prefix.to_vec()..)
            .take_while(|key| key.starts_with(prefix));
        let ids = matching.filter_map(|key| id_of_key(key));
        Ok(if newest_first {
            let mut all: Vec<EntryId> = ids.collect();
            all.reverse();
            all.truncate(limit);
            all
        } else {
            ids.take(limit).collect()
        })
    }

    fn digest(&self) -> Result<[u8; 32], Infallible> {
        let mut digest = SetDigest::default();
        self.current.entries.keys().for_each(|id| digest.add(id));
        Ok(digest.finish().unwrap_or_default())
    }

    fn len(&self) -> Result<u64, Infallible> {
        Ok(self.current.entries.len() as u64)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        for batch in self.unflushed.drain(..) {
            self.durable.apply(&batch);
        }
        Ok(())
    }
}
