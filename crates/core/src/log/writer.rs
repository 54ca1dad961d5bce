//! Writing one's own chain.

use super::store::ChainStore;
use buildmesh_protocol::{Body, Entry, EntryContent, EntryId, PublicKey, SignError, Timestamp};
use ed25519_dalek::SigningKey;

/// Signs an author's next entries: knows the next sequence number and the
/// id to chain to, so callers only say what and when.
#[derive(Debug, Clone)]
pub struct ChainWriter {
    key: SigningKey,
    author: PublicKey,
    next_seq: u64,
    prev: EntryId,
}

impl ChainWriter {
    /// A writer for a key that has written nothing yet.
    pub fn new(key: SigningKey) -> Self {
        let author = key.verifying_key().into();
        ChainWriter {
            key,
            author,
            next_seq: 1,
            prev: EntryId::ZERO,
        }
    }

    /// A writer that continues the key's chain as `store` holds it.
    ///
    /// If the store holds a fork of our own key (two entries at our head),
    /// the smallest id is chained to; that cannot happen unless the key was
    /// used by two processes at once.
    pub fn resume<S: ChainStore>(key: SigningKey, store: &S) -> Result<Self, S::Error> {
        let mut writer = ChainWriter::new(key);
        let head = store.version(&writer.author)?;
        if let Some(last) = store
            .at(&writer.author, head)?
            .into_iter()
            .filter(|s| s.linked)
            .min_by_key(|s| s.entry.id())
        {
            writer.next_seq = head + 1;
            writer.prev = last.entry.id();
        }
        Ok(writer)
    }

    /// A writer that continues after `last`, an entry `key` signed: for a
    /// key whose chain is kept outside any store (a maintainer's key on the
    /// command line keeps its own record of what it signed).
    pub fn after(key: SigningKey, last: &Entry) -> Self {
        let mut writer = ChainWriter::new(key);
        writer.next_seq = last.seq() + 1;
        writer.prev = last.id();
        writer
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The author.
    pub fn author(&self) -> PublicKey {
        self.author
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Signs the next entry. The writer advances only on success.
    pub fn write(&mut self, timestamp: Timestamp, body: Body) -> Result<Entry, SignError> {
        let content = EntryContent {
            author: self.author,
            seq: self.next_seq,
            prev: self.prev,
            timestamp,
            body,
        };
        let entry = Entry::sign(&self.key, content)?;
        self.next_seq += 1;
        self.prev = entry.id();
        Ok(entry)
    }
}
