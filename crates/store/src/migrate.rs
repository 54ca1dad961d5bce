//! Bringing a store written by an older build up to [`STORE_FORMAT_VERSION`].
//!
//! Format 1 predates the rule of who may write (docs/protocol.md §6.1): it
//! may hold entries of keys without a role, which a node of format 2 must
//! neither keep nor serve. So a format-1 log is not converted in place but
//! taken again, entry by entry, through the log's rules, as if it arrived
//! from a peer: what the rules refuse is dropped, and the result is what a
//! fresh node would hold.
//!
//! Crash safety: the old entries are first copied, in chain order, to a
//! tree of their own; only then is the log cleared and marked format 2.
//! Whenever that tree is found non-empty at open (the copy finished but
//! the rebuild did not), the rebuild runs again from it.
//!
//! [`STORE_FORMAT_VERSION`]: crate::STORE_FORMAT_VERSION

use crate::error::StoreError;
use crate::keys;
use crate::sled_store::{SledStore, decode_entry};
use buildmesh_core::log::{self, Ingested, Rejected};
use buildmesh_protocol::Entry;

/// The tree the old entries wait in while the log is rebuilt.
pub(crate) const OLD_TREE: &str = "buildmesh/log-format-1";

/// Entries offered to the log at once while rebuilding.
const BATCH: usize = 1024;

/// Copies every entry of a format-1 log, in (author, seq) order, to
/// [`OLD_TREE`], then empties the log and marks it format 2 with no entry.
pub(crate) fn set_aside_format_1(db: &sled::Db, tree: &sled::Tree) -> Result<(), StoreError> {
    let old = db.open_tree(OLD_TREE)?;
    for item in tree.scan_prefix([keys::CHAIN]) {
        let (chain_key, _) = item?;
        let (_, _, id) = keys::parse_chain(&chain_key)?;
        let entry_key = keys::entry(&id);
        if let Some(record) = tree.get(entry_key)? {
            let stored = decode_entry(&entry_key, &record)?;
            old.insert(&chain_key, stored.entry.to_wire())?;
        }
    }
    old.flush()?;
    tree.clear()?;
    let mut init = sled::Batch::default();
    init.insert(
        keys::META_FORMAT,
        &crate::STORE_FORMAT_VERSION.to_be_bytes()[..],
    );
    init.insert(keys::META_COUNT, &keys::encode_u64(0)[..]);
    tree.apply_batch(init)?;
    db.flush()?;
    Ok(())
}

/// Offers what [`OLD_TREE`] holds to `store` in passes, for as long as a
/// pass takes more (an entry may wait for a role given by an author later
/// in key order), then drops the tree. Returns (kept, dropped).
pub(crate) fn rebuild(db: &sled::Db, store: &mut SledStore) -> Result<(u64, u64), StoreError> {
    let old = db.open_tree(OLD_TREE)?;
    let mut kept = 0u64;
    loop {
        let before = old.len();
        let mut batch: Vec<(sled::IVec, Entry)> = Vec::with_capacity(BATCH);
        for item in old.iter() {
            let (key, wire) = item?;
            let entry = Entry::from_stored(&wire)
                .map_err(|e| StoreError::corrupt(&key, format!("entry does not decode: {e}")))?;
            batch.push((key, entry));
            if batch.len() == BATCH {
                kept += offer(store, &old, std::mem::take(&mut batch))?;
            }
        }
        kept += offer(store, &old, batch)?;
        if old.is_empty() || old.len() == before {
            break;
        }
    }
    let dropped = old.len() as u64;
    db.drop_tree(OLD_TREE)?;
    db.flush()?;
    Ok((kept, dropped))
}

/// Ingests one batch; removes from `old` every entry settled (kept, or
/// refused for a reason that another pass cannot change).
fn offer(
    store: &mut SledStore,
    old: &sled::Tree,
    batch: Vec<(sled::IVec, Entry)>,
) -> Result<u64, StoreError> {
    let outcomes = log::insert_batch(store, batch.iter().map(|(_, e)| e.clone()))?;
    let mut kept = 0;
    for ((key, _), outcome) in batch.iter().zip(outcomes) {
        match outcome {
            Ingested::Rejected(Rejected::NoRole) => {}
            Ingested::Applied { .. } | Ingested::Pending { .. } | Ingested::Fork(_) => {
                kept += 1;
                old.remove(key)?;
            }
            Ingested::Duplicate | Ingested::Rejected(_) => _ = old.remove(key)?,
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use buildmesh_core::log::{ChainStore, ChainWriter, EntryStore};
    use buildmesh_protocol::{Body, BuilderPolicy, ProjectDeclaration, ProjectId, Role};
    use buildmesh_protocol::{Timestamp, TrustChange};
    use ed25519_dalek::SigningKey;

    fn declaration(name: &str) -> Body {
        Body::Project(ProjectDeclaration {
            name: name.into(),
            repository: "https://example.org/p.git".into(),
            branches: vec!["main".into()],
            platforms: vec!["linux-x86_64".into()],
            announcers: Vec::new(),
            builders: BuilderPolicy::Only(Vec::new()),
            builds_per_cell: 1,
        })
    }

    /// A format-1 store holding an owner's chain, a builder it trusts
    /// (whose key sorts first, so its entries come before the trust), and
    /// a stranger's entries, which format 1 took: after the upgrade the
    /// first two are held as before and the stranger's are gone.
    #[test]
    fn a_format_1_store_is_rebuilt_through_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut owner = ChainWriter::new(SigningKey::from_bytes(&[0xf0; 32]));
        let mut builder = ChainWriter::new(SigningKey::from_bytes(&[0x01; 32]));
        let mut stranger = ChainWriter::new(SigningKey::from_bytes(&[0x02; 32]));
        let project = ProjectId::derive(&owner.author(), "p");
        let trust = |subject| {
            Body::Trust(TrustChange {
                project,
                subject,
                role: Role::Builder,
            })
        };
        let kept = [
            owner.write(Timestamp(1), declaration("p")).unwrap(),
            owner.write(Timestamp(2), trust(builder.author())).unwrap(),
            builder
                .write(Timestamp(3), trust(builder.author()))
                .unwrap(),
            builder
                .write(Timestamp(4), trust(builder.author()))
                .unwrap(),
        ];
        let strangers = [
            stranger
                .write(Timestamp(5), trust(stranger.author()))
                .unwrap(),
            stranger
                .write(Timestamp(6), trust(stranger.author()))
                .unwrap(),
        ];
        {
            let mut store = SledStore::open(dir.path()).unwrap();
            log::insert_batch(&mut store, kept.iter().cloned()).unwrap();
            // As format 1 would have taken them: linked, no role asked.
            let mut writes = sled::Batch::default();
            for entry in &strangers {
                let mut record = vec![keys::LINKED];
                record.extend(entry.to_wire());
                writes.insert(&keys::entry(&entry.id())[..], record);
                writes.insert(
                    &keys::chain(&entry.author(), entry.seq(), &entry.id())[..],
                    &[][..],
                );
            }
            writes.insert(
                &keys::version(&stranger.author())[..],
                &keys::encode_u64(2)[..],
            );
            writes.insert(keys::META_FORMAT, &1u32.to_be_bytes()[..]);
            writes.insert(keys::META_COUNT, &keys::encode_u64(6)[..]);
            store.tree.apply_batch(writes).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.len().unwrap(), 4);
        assert_eq!(store.version(&owner.author()).unwrap(), 2);
        assert_eq!(store.version(&builder.author()).unwrap(), 2);
        assert_eq!(store.version(&stranger.author()).unwrap(), 0);
        assert!(
            kept.iter()
                .all(|e| store.get(&e.id()).unwrap().unwrap().linked)
        );
        assert!(!store.contains(&strangers[0].id()).unwrap());
        drop(store);
        let again = SledStore::open(dir.path()).unwrap();
        assert_eq!(again.len().unwrap(), 4, "reopening changes nothing");
    }
}
