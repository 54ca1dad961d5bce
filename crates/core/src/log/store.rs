//! The storage interface the log's rules are written against.

use super::admission::Usage;
use super::fork::{AuthorFork, ForkProof};
use buildmesh_protocol::VersionVector;
use buildmesh_protocol::{Entry, EntryId, PublicKey};

/// An entry as a store holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The verified entry.
    pub entry: Entry,
    /// Whether its chain back to `seq` 1 is held.
    pub linked: bool,
}

/// Everything one ingest changes, applied by the store in one atomic step.
///
/// The rules in [`super::ingest`] compute it from reads alone; the store
/// writes it as given and decides nothing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WriteBatch {
    /// New entries, with whether each is already linked.
    pub entries: Vec<StoredEntry>,
    /// Entries held before that are linked now: `(author, seq, id)`.
    pub linked: Vec<(PublicKey, u64, EntryId)>,
    /// New highest linked sequence numbers.
    pub versions: Vec<(PublicKey, u64)>,
    /// New or replaced fork proofs (the store keeps one per author).
    pub forks: Vec<AuthorFork>,
    /// Index keys to add; see [`super::IndexKey`].
    pub index: Vec<Vec<u8>>,
    /// What authors' linked chains now use of their quotas.
    pub usage: Vec<(PublicKey, Usage)>,
    /// Entries to forget, `(author, seq, id)`: a forked author's entries
    /// past its fork (docs/protocol.md §6, "Freezing"). Applied after
    /// everything above.
    pub removed: Vec<(PublicKey, u64, EntryId)>,
    /// Index keys to forget: those of the removed entries that were linked.
    pub unindex: Vec<Vec<u8>>,
}

impl WriteBatch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.linked.is_empty()
            && self.versions.is_empty()
            && self.forks.is_empty()
            && self.index.is_empty()
            && self.usage.is_empty()
            && self.removed.is_empty()
            && self.unindex.is_empty()
    }
}

/// What the merge rules read and write: an author's chain around one
/// sequence number, and atomic batches.
///
/// Reads must see every batch applied before, flushed or not. `apply` is
/// atomic: after a crash a batch is either wholly there or wholly absent.
pub trait ChainStore {
    /// The store's own failure (IO, corruption).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The entry with this id.
    fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, Self::Error>;

    /// Whether an entry with this id is held.
    fn contains(&self, id: &EntryId) -> Result<bool, Self::Error> {
        Ok(self.get(id)?.is_some())
    }

    /// Whether `entry` is held. A store that knows an author's highest
    /// sequence number may answer for entries past it without a lookup.
    fn holds(&self, entry: &Entry) -> Result<bool, Self::Error> {
        self.contains(&entry.id())
    }

    /// All entries held at `(author, seq)`: one normally, more after a fork.
    fn at(&self, author: &PublicKey, seq: u64) -> Result<Vec<StoredEntry>, Self::Error>;

    /// The highest linked sequence number of `author` (0 if none).
    fn version(&self, author: &PublicKey) -> Result<u64, Self::Error>;

    /// The highest sequence number held for `author`, linked or not (0 if
    /// none): above it, `at` is known to be empty without asking.
    fn max_seq(&self, author: &PublicKey) -> Result<u64, Self::Error>;

    /// The fork proof held against `author`, if any.
    fn fork(&self, author: &PublicKey) -> Result<Option<ForkProof>, Self::Error>;

    /// What `author`'s linked chain uses of its quota.
    fn usage(&self, author: &PublicKey) -> Result<Usage, Self::Error>;

    /// Whether any index key starts with `prefix` (who has a role).
    fn has_index(&self, prefix: &[u8]) -> Result<bool, Self::Error>;

    /// The first `limit` index keys (whole keys) that start with `prefix`,
    /// in key order: what a store seen through staged removals needs to
    /// answer [`ChainStore::has_index`].
    fn index_keys_under(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, Self::Error>;

    /// Applies `batch` atomically.
    fn apply(&mut self, batch: WriteBatch) -> Result<(), Self::Error>;
}

/// Where the log keeps its entries: the chain reads the rules need, plus
/// what sync and views read, plus durability.
///
/// Only `flush` promises durability; callers flush before they tell anyone
/// (a peer, a user, an HTTP client) that an entry is stored.
pub trait EntryStore: ChainStore {
    /// Entries of `author` with sequence numbers `>= from_seq`, in sequence
    /// order, stopping after the sequence number at which `limit` is reached
    /// (siblings at one sequence number are never split).
    fn range(
        &self,
        author: &PublicKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, Self::Error>;

    /// The version of every author held.
    fn versions(&self) -> Result<VersionVector, Self::Error>;

    /// Every fork proof held, by author.
    fn forks(&self) -> Result<Vec<AuthorFork>, Self::Error>;

    /// At most `limit` fork proofs, by author, from the first author after
    /// `after` (from the lowest when `None`): for readers that must hold
    /// a bounded part at a time, since anyone with keys can make forks.
    fn forks_after(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<AuthorFork>, Self::Error>;

    /// Ids of the entries under index keys starting with `prefix`, in key
    /// order (`newest_first` reverses it), at most `limit`.
    fn scan_index(
        &self,
        prefix: &[u8],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<EntryId>, Self::Error>;

    /// Number of entries held (linked, pending and fork evidence).
    fn len(&self) -> Result<u64, Self::Error>;

    /// Whether no entry is held.
    fn is_empty(&self) -> Result<bool, Self::Error> {
        Ok(self.len()? == 0)
    }

    /// SHA-256 over every held entry's id in id order (see
    /// [`buildmesh_protocol::SetDigest`]): equal digests, equal logs.
    fn digest(&self) -> Result<[u8; 32], Self::Error>;

    /// Makes every applied batch durable.
    fn flush(&mut self) -> Result<(), Self::Error>;
}
