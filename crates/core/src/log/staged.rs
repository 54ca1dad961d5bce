//! Many ingests, one atomic write.

use super::admission::Usage;
use super::fork::ForkProof;
use super::mem::MemState;
use super::store::{ChainStore, StoredEntry, WriteBatch};
use buildmesh_protocol::{Entry, EntryId, PublicKey};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// A store seen through the writes of a batch not yet applied.
///
/// [`super::insert_batch`] ingests into a `Staged` and applies the merged
/// batch to the real store once: for a store whose every atomic write costs
/// a log record and a wake-up of its IO threads (sled), a sync batch of a
/// thousand entries becomes one write instead of a thousand. Reads see the
/// base store with the staged writes on top, so the rules work unchanged.
#[derive(Debug)]
pub struct Staged<'s, S: ChainStore> {
    base: &'s S,
    /// The staged writes: entries (with their current linked flags),
    /// versions and fork proofs as they stand now.
    overlay: MemState,
    /// Base entries the staged writes linked.
    linked: Vec<(PublicKey, u64, EntryId)>,
    /// Index keys of entries linked by the staged writes.
    index: Vec<Vec<u8>>,
    /// Base entries the staged writes remove (a fork froze their author).
    removed: BTreeMap<EntryId, (PublicKey, u64)>,
    /// Base index keys the staged writes remove.
    unindexed: BTreeSet<Vec<u8>>,
    /// The base's `max_seq` and `version` per author, read once per batch:
    /// the base does not change while a batch is staged.
    base_authors: RefCell<BTreeMap<PublicKey, (u64, u64)>>,
}

impl<'s, S: ChainStore> Staged<'s, S> {
    /// Nothing staged yet.
    pub fn new(base: &'s S) -> Self {
        Staged {
            base,
            overlay: MemState::default(),
            linked: Vec::new(),
            index: Vec::new(),
            removed: BTreeMap::new(),
            unindexed: BTreeSet::new(),
            base_authors: RefCell::new(BTreeMap::new()),
        }
    }

    /// Everything staged, as one batch for the base store.
    ///
    /// Versions and fork proofs are written once per author, as they stand
    /// at the end of the batch: a thousand entries by one author raise its
    /// version a thousand times, but the store needs only the last value.
    pub fn into_batch(self) -> WriteBatch {
        WriteBatch {
            entries: self.overlay.entries.into_values().collect(),
            linked: self.linked,
            versions: self.overlay.versions.into_iter().collect(),
            forks: self.overlay.forks.into_iter().collect(),
            index: self.index,
            usage: self.overlay.usage.into_iter().collect(),
            removed: self
                .removed
                .into_iter()
                .map(|(id, (author, seq))| (author, seq, id))
                .collect(),
            unindex: self.unindexed.into_iter().collect(),
        }
    }

    /// The base's `(max_seq, version)` for `author`, cached.
    fn base_author(&self, author: &PublicKey) -> Result<(u64, u64), S::Error> {
        if let Some(known) = self.base_authors.borrow().get(author) {
            return Ok(*known);
        }
        let known = (self.base.max_seq(author)?, self.base.version(author)?);
        self.base_authors.borrow_mut().insert(*author, known);
        Ok(known)
    }

    /// The removed base index keys under `prefix`.
    fn unindexed_under<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = &'a Vec<u8>> {
        self.unindexed
            .range(prefix.to_vec()..)
            .take_while(move |key| key.starts_with(prefix))
    }

    /// Base entries the staged writes have linked since.
    fn mark_linked(&self, stored: &mut StoredEntry) {
        stored.linked |= self.overlay.linked_elsewhere.contains(&stored.entry.id());
    }
}

impl<S: ChainStore> ChainStore for Staged<'_, S> {
    type Error = S::Error;

    fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, S::Error> {
        if let Some(stored) = self.overlay.entries.get(id) {
            return Ok(Some(stored.clone()));
        }
        if self.removed.contains_key(id) {
            return Ok(None);
        }
        let mut found = self.base.get(id)?;
        if let Some(stored) = found.as_mut() {
            self.mark_linked(stored);
        }
        Ok(found)
    }

    fn contains(&self, id: &EntryId) -> Result<bool, S::Error> {
        Ok(self.overlay.entries.contains_key(id)
            || (!self.removed.contains_key(id) && self.base.contains(id)?))
    }

    /// Past the base's highest sequence number for the author, only the
    /// overlay can hold the entry: a sync batch of new entries costs the
    /// base no lookups.
    fn holds(&self, entry: &Entry) -> Result<bool, S::Error> {
        let id = entry.id();
        if self.overlay.entries.contains_key(&id) {
            return Ok(true);
        }
        let (base_max, _) = self.base_author(&entry.author())?;
        if entry.seq() > base_max || self.removed.contains_key(&id) {
            return Ok(false);
        }
        self.base.contains(&id)
    }

    fn at(&self, author: &PublicKey, seq: u64) -> Result<Vec<StoredEntry>, S::Error> {
        let (base_max, _) = self.base_author(author)?;
        let mut found = if seq > base_max {
            Vec::new()
        } else {
            self.base.at(author, seq)?
        };
        found.retain(|stored| !self.removed.contains_key(&stored.entry.id()));
        found.iter_mut().for_each(|stored| self.mark_linked(stored));
        found.extend(self.overlay.at(author, seq));
        Ok(found)
    }

    fn version(&self, author: &PublicKey) -> Result<u64, S::Error> {
        match self.overlay.versions.get(author) {
            Some(seq) => Ok(*seq),
            None => Ok(self.base_author(author)?.1),
        }
    }

    fn max_seq(&self, author: &PublicKey) -> Result<u64, S::Error> {
        let staged = self.overlay.max_seq(author);
        Ok(self.base_author(author)?.0.max(staged))
    }

    fn fork(&self, author: &PublicKey) -> Result<Option<ForkProof>, S::Error> {
        match self.overlay.forks.get(author) {
            Some(proof) => Ok(Some(*proof)),
            None => self.base.fork(author),
        }
    }

    fn usage(&self, author: &PublicKey) -> Result<Usage, S::Error> {
        match self.overlay.usage.get(author) {
            Some(usage) => Ok(*usage),
            None => self.base.usage(author),
        }
    }

    fn has_index(&self, prefix: &[u8]) -> Result<bool, S::Error> {
        if self.overlay.has_index(prefix) {
            return Ok(true);
        }
        let gone = self.unindexed_under(prefix).count();
        if gone == 0 {
            return self.base.has_index(prefix);
        }
        // Some base keys under the prefix are removed: is another left?
        let keys = self.base.index_keys_under(prefix, gone + 1)?;
        Ok(keys.iter().any(|key| !self.unindexed.contains(key)))
    }

    fn index_keys_under(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, S::Error> {
        let gone = self.unindexed_under(prefix).count();
        let mut keys = self
            .base
            .index_keys_under(prefix, limit.saturating_add(gone))?;
        keys.retain(|key| !self.unindexed.contains(key));
        keys.extend(self.overlay.index_keys_under(prefix, limit));
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys)
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), S::Error> {
        // What the batch removes is staged here if it was, else in the base.
        for (author, seq, id) in &batch.removed {
            if !self.overlay.entries.contains_key(id) {
                self.removed.insert(*id, (*author, *seq));
            }
        }
        for key in &batch.unindex {
            if !self.overlay.has_index_key(key) {
                self.unindexed.insert(key.clone());
            }
        }
        self.overlay.apply(&batch);
        let in_base =
            |link: &&(PublicKey, u64, EntryId)| !self.overlay.entries.contains_key(&link.2);
        self.linked.extend(batch.linked.iter().filter(in_base));
        self.index.extend(batch.index);
        if !batch.removed.is_empty() {
            let gone: BTreeSet<EntryId> = batch.removed.iter().map(|(_, _, id)| *id).collect();
            self.linked.retain(|(_, _, id)| !gone.contains(id));
            let unindexed: BTreeSet<&Vec<u8>> = batch.unindex.iter().collect();
            self.index.retain(|key| !unindexed.contains(key));
        }
        Ok(())
    }
}
