//! [`SledStore`]: the [`EntryStore`] a node runs on.

use crate::error::{StoreError, is_lock_contention};
use crate::keys::{self, LINKED, PENDING};
use buildmesh_core::log::{
    ChainStore, EntryStore, ForkProof, StoredEntry, Usage, VersionVector, WriteBatch,
};
use buildmesh_protocol::{Entry, EntryId, PublicKey, SetDigest};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The on-disk format this build reads and writes (see the `keys` module).
/// Bump it, with a migration or a clear refusal, whenever the layout changes.
/// Format 1 (before roles and quotas) is rebuilt on open (`migrate`).
pub const STORE_FORMAT_VERSION: u32 = 2;

/// How long [`SledStore::open`] waits for a directory lock held by a
/// handle that is closing.
///
/// sled 0.34 releases its lock from a background thread some time after
/// the last handle is dropped (sled issues #1234 and #1289), so an open
/// right after a close, in this process or just after another one exited,
/// can find the lock still held. Only after this long is the directory
/// reported [`StoreError::InUse`].
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Memory sled may use to cache pages. Its default (1 GiB) lets a node's
/// memory grow with its log; a donor's machine is not ours to fill. 8 MiB
/// halved catch-up speed in `cargo bench -p buildmesh --bench mesh`; 64 MiB
/// keeps it.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The name of the sled tree that holds the log.
pub const LOG_TREE: &str = "buildmesh/log";

/// The log's entries, chains, versions, fork proofs and indexes in one sled
/// tree.
///
/// It applies each [`WriteBatch`] it is handed with one atomic
/// `apply_batch` and decides nothing itself; the rules live in
/// [`buildmesh_core::log::ingest`].
///
/// **Durability.** An applied batch is visible to every read at once, but it
/// survives a crash (a killed process, a power cut) only after
/// [`EntryStore::flush`] returns. [`buildmesh_core::log::insert`] and
/// [`buildmesh_core::log::insert_batch`] flush before they return;
/// [`buildmesh_core::log::ingest`] does not, so whoever calls it must flush
/// before telling anyone (a peer, a user, an HTTP client) that an entry is
/// stored. After a crash each batch is wholly there or wholly absent.
///
/// One handle holds the directory at a time: a second `open`, even in the
/// same process, fails with [`StoreError::InUse`] after [`LOCK_WAIT`].
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    pub(crate) tree: sled::Tree,
    dir: PathBuf,
    /// Entries held; mirrors the `count` meta record, written in the same
    /// batch as the entries it counts. Unused by a read-only handle.
    count: u64,
    /// Entries ever removed; mirrors the `removed` meta record.
    removed: u64,
    /// A handle from [`SledStore::read_only`] refuses writes.
    writable: bool,
}

impl SledStore {
    /// Opens the store in `dir`, creating it if needed.
    ///
    /// Fails with [`StoreError::InUse`] when another process has it open
    /// (after waiting up to [`LOCK_WAIT`] in case it is closing), and with
    /// [`StoreError::UnsupportedFormat`] when another build wrote it.
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        SledStore::open_waiting(dir, LOCK_WAIT)
    }

    /// [`SledStore::open`], waiting at most `wait` for a held lock.
    pub fn open_waiting(dir: &Path, wait: Duration) -> Result<SledStore, StoreError> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(5);
        let db = loop {
            match sled::Config::new()
                .path(dir)
                .cache_capacity(CACHE_BYTES)
                .mode(sled::Mode::HighThroughput)
                .open()
            {
                Ok(db) => break db,
                Err(source) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !is_lock_contention(&source) || left.is_zero() {
                        return Err(StoreError::opening(dir.to_path_buf(), source));
                    }
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
            }
        };
        let tree = db.open_tree(LOG_TREE)?;
        let count = match tree.get(keys::META_FORMAT)? {
            Some(format) => {
                let mut found = keys::decode_u32(keys::META_FORMAT, &format)?;
                if found == 1 {
                    crate::migrate::set_aside_format_1(&db, &tree)?;
                    found = STORE_FORMAT_VERSION;
                }
                if found != STORE_FORMAT_VERSION {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        expected: STORE_FORMAT_VERSION,
                    });
                }
                let count = tree.get(keys::META_COUNT)?.ok_or_else(|| {
                    StoreError::corrupt(keys::META_COUNT, "the entry count is missing")
                })?;
                keys::decode_u64(keys::META_COUNT, &count)?
            }
            None => {
                if let Some((key, _)) = tree.first()? {
                    return Err(StoreError::corrupt(
                        &key,
                        "records are held but the format version is missing",
                    ));
                }
                let mut init = sled::Batch::default();
                init.insert(keys::META_FORMAT, &STORE_FORMAT_VERSION.to_be_bytes()[..]);
                init.insert(keys::META_COUNT, &keys::encode_u64(0)[..]);
                tree.apply_batch(init)?;
                db.flush()?;
                0
            }
        };
        let removed = match tree.get(keys::META_REMOVED)? {
            Some(value) => keys::decode_u64(keys::META_REMOVED, &value)?,
            None => 0,
        };
        tracing::debug!(dir = %dir.display(), entries = count, "opened the entry store");
        let mut store = SledStore {
            db,
            tree,
            dir: dir.to_path_buf(),
            count,
            removed,
            writable: true,
        };
        if store
            .db
            .tree_names()
            .iter()
            .any(|n| n == crate::migrate::OLD_TREE.as_bytes())
        {
            let db = store.db.clone();
            let (kept, dropped) = crate::migrate::rebuild(&db, &mut store)?;
            tracing::info!(
                kept,
                dropped,
                "upgraded the entry store to format {STORE_FORMAT_VERSION}: its entries were \
                 taken again through the log's rules; those of keys without a role were dropped"
            );
        }
        Ok(store)
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every stored entry (linked, pending and fork evidence) in
    /// `(author, seq, id)` order, for export and audit. Entries come from
    /// [`Entry::from_stored`]: re-verify with [`Entry::from_wire`] if the
    /// point is to check the disk.
    pub fn all_entries(&self) -> impl Iterator<Item = Result<StoredEntry, StoreError>> + '_ {
        self.tree.scan_prefix([keys::CHAIN]).map(move |item| {
            let (key, _) = item?;
            let (_, _, id) = keys::parse_chain(&key)?;
            self.chained(&key, &id)
        })
    }

    /// The entry a chain record at `chain_key` names; its absence is corruption.
    fn chained(&self, chain_key: &[u8], id: &EntryId) -> Result<StoredEntry, StoreError> {
        self.get(id)?.ok_or_else(|| {
            StoreError::corrupt(chain_key, format!("names entry {id}, which is not stored"))
        })
    }
}

/// An entry record: linked flag, then the wire bytes of an entry whose id
/// is the key's.
pub(crate) fn decode_entry(key: &[u8], value: &[u8]) -> Result<StoredEntry, StoreError> {
    let (flag, wire) = value
        .split_first()
        .ok_or_else(|| StoreError::corrupt(key, "empty entry record"))?;
    let linked = match *flag {
        PENDING => false,
        LINKED => true,
        other => {
            return Err(StoreError::corrupt(
                key,
                format!("linked flag is {other}, not 0 or 1"),
            ));
        }
    };
    let entry = Entry::from_stored(wire)
        .map_err(|e| StoreError::corrupt(key, format!("entry does not decode: {e}")))?;
    if key.get(1..) != Some(entry.id().as_bytes().as_slice()) {
        return Err(StoreError::corrupt(
            key,
            format!("holds entry {}, not the one its key names", entry.id()),
        ));
    }
    Ok(StoredEntry { entry, linked })
}

fn encode_entry(stored: &StoredEntry) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + stored.entry.wire_len());
    value.push(if stored.linked { LINKED } else { PENDING });
    value.extend_from_slice(&stored.entry.to_wire());
    value
}

/// The entry id at the end of a stored index key, as core's index keys end.
fn id_of_index_key(key: &[u8]) -> Option<EntryId> {
    let core_key = key.get(1..)?;
    let start = core_key.len().checked_sub(32)?;
    core_key.get(start..)?.try_into().ok().map(EntryId)
}

impl ChainStore for SledStore {
    type Error = StoreError;

    fn get(&self, id: &EntryId) -> Result<Option<StoredEntry>, StoreError> {
        let key = keys::entry(id);
        self.tree
            .get(key)?
            .map(|value| decode_entry(&key, &value))
            .transpose()
    }

    fn contains(&self, id: &EntryId) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(keys::entry(id))?)
    }

    fn at(&self, author: &PublicKey, seq: u64) -> Result<Vec<StoredEntry>, StoreError> {
        self.tree
            .scan_prefix(keys::chain_seq(author, seq))
            .map(|item| {
                let (key, _) = item?;
                let (_, _, id) = keys::parse_chain(&key)?;
                self.chained(&key, &id)
            })
            .collect()
    }

    fn max_seq(&self, author: &PublicKey) -> Result<u64, StoreError> {
        match self
            .tree
            .scan_prefix(keys::chain_author(author))
            .next_back()
        {
            Some(item) => Ok(keys::parse_chain(&item?.0)?.1),
            None => Ok(0),
        }
    }

    fn version(&self, author: &PublicKey) -> Result<u64, StoreError> {
        let key = keys::version(author);
        match self.tree.get(key)? {
            Some(value) => keys::decode_u64(&key, &value),
            None => Ok(0),
        }
    }

    fn fork(&self, author: &PublicKey) -> Result<Option<ForkProof>, StoreError> {
        let key = keys::fork(author);
        self.tree
            .get(key)?
            .map(|value| keys::decode_fork(&key, &value))
            .transpose()
    }

    fn usage(&self, author: &PublicKey) -> Result<Usage, StoreError> {
        let key = keys::usage(author);
        match self.tree.get(key)? {
            Some(value) => keys::decode_usage(&key, &value),
            None => Ok(Usage::default()),
        }
    }

    fn has_index(&self, prefix: &[u8]) -> Result<bool, StoreError> {
        Ok(self
            .tree
            .scan_prefix(keys::index(prefix))
            .next()
            .transpose()?
            .is_some())
    }

    fn index_keys_under(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(keys::index(prefix)).take(limit) {
            let (key, _) = item?;
            found.extend(key.get(1..).map(<[u8]>::to_vec));
        }
        Ok(found)
    }

    fn apply(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        if !self.writable {
            return Err(StoreError::ReadOnly);
        }
        let mut writes = sled::Batch::default();
        let mut records: BTreeMap<EntryId, Vec<u8>> = BTreeMap::new();
        let mut added = 0u64;
        for stored in &batch.entries {
            let (entry, id) = (&stored.entry, stored.entry.id());
            if !records.contains_key(&id) && !self.tree.contains_key(keys::entry(&id))? {
                added += 1;
            }
            records.insert(id, encode_entry(stored));
            writes.insert(&keys::chain(&entry.author(), entry.seq(), &id)[..], &[][..]);
        }
        for (_, _, id) in &batch.linked {
            if let Some(value) = records.get_mut(id) {
                value[0] = LINKED;
                continue;
            }
            let key = keys::entry(id);
            match self.tree.get(key)? {
                Some(old) if !old.is_empty() => {
                    let mut value = old.to_vec();
                    value[0] = LINKED;
                    records.insert(*id, value);
                }
                Some(_) => return Err(StoreError::corrupt(&key, "empty entry record")),
                // The log links only entries it read from this store.
                None => {
                    return Err(StoreError::corrupt(
                        &key,
                        "a batch links it, but it is gone",
                    ));
                }
            }
        }
        let mut gone = 0u64;
        for (_, _, id) in &batch.removed {
            if records.contains_key(id) || self.tree.contains_key(keys::entry(id))? {
                gone += 1;
            }
        }
        for (id, value) in records {
            writes.insert(&keys::entry(&id)[..], value);
        }
        for (author, seq) in &batch.versions {
            writes.insert(&keys::version(author)[..], &keys::encode_u64(*seq)[..]);
        }
        for (author, proof) in &batch.forks {
            writes.insert(&keys::fork(author)[..], &keys::encode_fork(proof)[..]);
        }
        for key in &batch.index {
            writes.insert(keys::index(key), &[][..]);
        }
        for (author, usage) in &batch.usage {
            writes.insert(&keys::usage(author)[..], &keys::encode_usage(usage)[..]);
        }
        // Removals last: in a sled batch the last write to a key wins.
        for (author, seq, id) in &batch.removed {
            writes.remove(&keys::entry(id)[..]);
            writes.remove(&keys::chain(author, *seq, id)[..]);
        }
        for key in &batch.unindex {
            writes.remove(keys::index(key));
        }
        let count = (self.count + added).saturating_sub(gone);
        if added > 0 || gone > 0 {
            writes.insert(keys::META_COUNT, &keys::encode_u64(count)[..]);
        }
        let removed = self.removed + gone;
        if gone > 0 {
            writes.insert(keys::META_REMOVED, &keys::encode_u64(removed)[..]);
        }
        self.tree.apply_batch(writes)?;
        self.count = count;
        self.removed = removed;
        Ok(())
    }
}

/// Reads a [`SledStore`] from another thread while its owner writes.
#[derive(Debug, Clone)]
pub struct SledReader {
    tree: sled::Tree,
}

impl SledStore {
    /// A handle on the same store for another thread that only reads (the
    /// views an HTTP server serves): every read sees what the writing
    /// handle applied; `apply` fails with [`StoreError::ReadOnly`] and
    /// `flush` does nothing.
    pub fn read_only(&self) -> SledStore {
        SledStore {
            db: self.db.clone(),
            tree: self.tree.clone(),
            dir: self.dir.clone(),
            count: 0,
            removed: 0,
            writable: false,
        }
    }

    /// A reader for other threads (an HTTP server, say): sled trees are
    /// shared and safe to read while written.
    pub fn reader(&self) -> SledReader {
        SledReader {
            tree: self.tree.clone(),
        }
    }
}

impl SledReader {
    /// The number of entries held, as of the last applied batch.
    pub fn entries(&self) -> Result<u64, StoreError> {
        match self.tree.get(keys::META_COUNT)? {
            Some(count) => keys::decode_u64(keys::META_COUNT, &count),
            None => Err(StoreError::corrupt(
                keys::META_COUNT,
                "the entry count is missing",
            )),
        }
    }

    /// How many entries were ever removed from the store (a forked
    /// author's, past its fork): with [`SledReader::entries`], whether the
    /// set of entries may have changed since an earlier look.
    pub fn removed(&self) -> Result<u64, StoreError> {
        match self.tree.get(keys::META_REMOVED)? {
            Some(value) => keys::decode_u64(keys::META_REMOVED, &value),
            None => Ok(0),
        }
    }

    /// The number of entries held and the digest of their set
    /// ([`SetDigest`]), from one pass over the entry keys: the count is of
    /// the ids hashed, so the two agree even while entries arrive.
    pub fn digest(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let mut digest = SetDigest::default();
        let mut count = 0u64;
        for item in self.tree.scan_prefix([keys::ENTRY]) {
            let (key, _) = item?;
            let id = key
                .get(1..)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| StoreError::corrupt(&key, "entry key is not 33 bytes"))?;
            digest.add(&EntryId(id));
            count += 1;
        }
        let digest = digest
            .finish()
            .ok_or_else(|| StoreError::corrupt(&[keys::ENTRY], "entry keys out of order"))?;
        Ok((count, digest))
    }
}

impl EntryStore for SledStore {
    fn range(
        &self,
        author: &PublicKey,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let prefix = keys::chain_author(author);
        let mut found: Vec<StoredEntry> = Vec::new();
        for item in self.tree.range(keys::chain_seq(author, from_seq)..) {
            let (key, _) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (_, seq, id) = keys::parse_chain(&key)?;
            let full = found.len() >= limit;
            if full && found.last().is_none_or(|last| last.entry.seq() != seq) {
                break;
            }
            found.push(self.chained(&key, &id)?);
        }
        Ok(found)
    }

    fn versions(&self) -> Result<VersionVector, StoreError> {
        self.tree
            .scan_prefix([keys::VERSION])
            .map(|item| {
                let (key, value) = item?;
                Ok((keys::parse_author(&key)?, keys::decode_u64(&key, &value)?))
            })
            .collect()
    }

    fn forks(&self) -> Result<Vec<(PublicKey, ForkProof)>, StoreError> {
        self.tree
            .scan_prefix([keys::FORK])
            .map(|item| {
                let (key, value) = item?;
                Ok((keys::parse_author(&key)?, keys::decode_fork(&key, &value)?))
            })
            .collect()
    }

    fn forks_after(
        &self,
        after: Option<&PublicKey>,
        limit: usize,
    ) -> Result<Vec<(PublicKey, ForkProof)>, StoreError> {
        let from = match after {
            Some(author) => Bound::Excluded(keys::fork(author).to_vec()),
            None => Bound::Included(vec![keys::FORK]),
        };
        // Fork keys are the prefix byte and an author: all lie below the
        // next prefix byte.
        let to = Bound::Excluded(vec![keys::FORK + 1]);
        self.tree
            .range::<Vec<u8>, _>((from, to))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                Ok((keys::parse_author(&key)?, keys::decode_fork(&key, &value)?))
            })
            .collect()
    }

    fn scan_index(
        &self,
        prefix: &[u8],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<EntryId>, StoreError> {
        let scan = self.tree.scan_prefix(keys::index(prefix));
        let keys: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if newest_first
        {
            Box::new(scan.rev())
        } else {
            Box::new(scan)
        };
        let mut ids = Vec::new();
        for item in keys {
            if ids.len() >= limit {
                break;
            }
            let (key, _) = item?;
            ids.extend(id_of_index_key(&key));
        }
        Ok(ids)
    }

    fn digest(&self) -> Result<[u8; 32], StoreError> {
        Ok(self.reader().digest()?.1)
    }

    fn len(&self) -> Result<u64, StoreError> {
        if self.writable {
            Ok(self.count)
        } else {
            self.reader().entries()
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.writable {
            self.db.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use buildmesh_core::log::{self, Ingested};
    use buildmesh_protocol::{Body, BuilderPolicy, EntryContent, ProjectDeclaration, Timestamp};
    use ed25519_dalek::SigningKey;

    fn chain(key: u8, len: u64) -> Vec<Entry> {
        let key = SigningKey::from_bytes(&[key; 32]);
        let author: PublicKey = key.verifying_key().into();
        // Declarations: they need no role given by anyone else, so the
        // chain may arrive in any order.
        let body = |seq: u64| {
            Body::Project(ProjectDeclaration {
                name: format!("p{seq}"),
                repository: "https://example.org/p.git".into(),
                branches: vec!["main".into()],
                platforms: vec!["linux-x86_64".into()],
                announcers: Vec::new(),
                builders: BuilderPolicy::Open,
                builds_per_cell: 1,
            })
        };
        let mut entries: Vec<Entry> = Vec::new();
        for seq in 1..=len {
            let content = match entries.last() {
                None => EntryContent::first(author, Timestamp(seq), body(seq)),
                Some(prev) => EntryContent::after(prev, Timestamp(seq), body(seq)),
            };
            entries.push(Entry::sign(&key, content).unwrap());
        }
        entries
    }

    #[test]
    fn a_read_only_handle_sees_every_write_and_refuses_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let mut reader = store.read_only();
        let entries = chain(9, 5);
        log::insert_batch(&mut store, entries[..3].iter().cloned()).unwrap();
        assert_eq!(reader.len().unwrap(), 3);
        assert!(reader.contains(&entries[2].id()).unwrap());
        let refused = log::ingest(&mut reader, entries[3].clone()).unwrap_err();
        assert!(matches!(refused, StoreError::ReadOnly), "{refused:?}");
        log::insert(&mut store, entries[3].clone()).unwrap();
        assert_eq!(reader.version(&entries[0].author()).unwrap(), 4);
    }

    #[test]
    fn a_second_handle_is_told_the_directory_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open_waiting(dir.path(), Duration::ZERO).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("in use by another buildmesh process"),
            "{text}"
        );
        assert!(text.contains("--data-dir"), "{text}");

        let started = Instant::now();
        let err = SledStore::open_waiting(dir.path(), Duration::from_millis(150)).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn an_open_right_after_a_close_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let store = SledStore::open(dir.path()).unwrap();
            drop(store);
        }
    }

    #[test]
    fn another_format_version_is_refused_by_number() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store
                .tree
                .insert(keys::META_FORMAT, &99u32.to_be_bytes()[..])
                .unwrap();
            store.db.flush().unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::UnsupportedFormat {
                    found: 99,
                    expected: STORE_FORMAT_VERSION
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_records_name_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let entries = chain(1, 2);
        log::insert(&mut store, entries[0].clone()).unwrap();
        let key = keys::entry(&entries[0].id());
        store.tree.insert(key, &[7, 1, 2, 3][..]).unwrap();
        let err = store.get(&entries[0].id()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("e/{}", entries[0].id())),
            "{err}"
        );

        let mut wrong = vec![LINKED];
        wrong.extend(entries[1].to_wire());
        store.tree.insert(key, wrong).unwrap();
        assert!(matches!(
            store.get(&entries[0].id()),
            Err(StoreError::Corrupt { .. })
        ));

        store
            .tree
            .insert(keys::version(&entries[0].author()), &[1][..])
            .unwrap();
        assert!(matches!(store.versions(), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_chain_record_without_its_entry_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let entries = chain(1, 1);
        log::insert(&mut store, entries[0].clone()).unwrap();
        store.tree.remove(keys::entry(&entries[0].id())).unwrap();
        assert!(matches!(
            store.at(&entries[0].author(), 1),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.all_entries().any(|e| e.is_err()));
    }

    /// Issue 14, item 8.5: linking an entry the store lost was only a
    /// warning; it is corruption, and nothing of the batch is written.
    #[test]
    fn a_batch_linking_an_entry_not_stored_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let entries = chain(4, 2);
        let author = entries[0].author();
        let batch = WriteBatch {
            entries: vec![StoredEntry {
                entry: entries[0].clone(),
                linked: true,
            }],
            linked: vec![(author, 2, entries[1].id())],
            versions: vec![(author, 2)],
            ..WriteBatch::default()
        };
        let err = store.apply(batch).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("e/{}", entries[1].id())),
            "{err}"
        );
        assert!(store.is_empty().unwrap(), "nothing of the batch written");
        assert_eq!(store.version(&author).unwrap(), 0);
    }

    #[test]
    fn records_without_a_format_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.tree.remove(keys::META_FORMAT).unwrap();
            store.db.flush().unwrap();
        }
        assert!(matches!(
            SledStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn the_count_and_linked_flags_follow_the_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let entries = chain(2, 3);
        let author = entries[0].author();
        assert!(store.is_empty().unwrap());
        assert_eq!(
            log::ingest(&mut store, entries[2].clone()).unwrap(),
            Ingested::Pending { missing_seq: 1 }
        );
        assert_eq!(
            log::ingest(&mut store, entries[1].clone()).unwrap(),
            Ingested::Pending { missing_seq: 1 }
        );
        assert!(!store.get(&entries[2].id()).unwrap().unwrap().linked);
        assert_eq!(
            log::ingest(&mut store, entries[0].clone()).unwrap(),
            Ingested::Applied { linked: 3 }
        );
        assert_eq!(
            log::ingest(&mut store, entries[0].clone()).unwrap(),
            Ingested::Duplicate
        );
        assert_eq!(store.len().unwrap(), 3);
        assert_eq!(store.version(&author).unwrap(), 3);
        assert!(store.all_entries().all(|e| e.unwrap().linked));
        let seqs: Vec<u64> = store
            .all_entries()
            .map(|e| e.unwrap().entry.seq())
            .collect();
        assert_eq!(seqs, [1, 2, 3]);

        // A batch that names an entry twice counts it once.
        let twice = StoredEntry {
            entry: chain(3, 1).remove(0),
            linked: true,
        };
        let batch = WriteBatch {
            entries: vec![twice.clone(), twice],
            ..WriteBatch::default()
        };
        store.apply(batch).unwrap();
        assert_eq!(store.len().unwrap(), 4);
        drop(store);
        assert_eq!(SledStore::open(dir.path()).unwrap().len().unwrap(), 4);
    }

    #[test]
    fn index_scans_run_both_ways_and_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let id = |n: u8| EntryId([n; 32]);
        let key = |p: u8, n: u8| {
            let mut k = vec![b'T', p];
            k.extend_from_slice(id(n).as_bytes());
            k
        };
        let batch = WriteBatch {
            index: vec![key(1, 3), key(1, 1), key(1, 2), key(2, 9), vec![b'T', 1, 5]],
            ..WriteBatch::default()
        };
        store.apply(batch).unwrap();
        assert_eq!(
            store.scan_index(&[b'T', 1], false, 10).unwrap(),
            [id(1), id(2), id(3)]
        );
        assert_eq!(
            store.scan_index(&[b'T', 1], true, 2).unwrap(),
            [id(3), id(2)]
        );
        assert_eq!(store.scan_index(b"T", false, 0).unwrap(), []);
        assert_eq!(store.scan_index(b"X", false, 5).unwrap(), []);
    }
}
