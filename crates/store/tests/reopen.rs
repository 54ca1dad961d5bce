//! What was flushed is all there after the store is closed and opened again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buildmesh_core::log::{self, EntryStore, IndexKey, Ingested, Rejected, StoredEntry};
use buildmesh_store::{SledStore, StoreError};
use std::time::Duration;

/// Everything a store answers, as one comparable value.
fn snapshot(store: &SledStore) -> impl PartialEq + std::fmt::Debug + use<> {
    let entries: Vec<StoredEntry> = store.all_entries().collect::<Result<_, _>>().unwrap();
    let scans: Vec<_> = [
        IndexKey::Commits(&common::PROJECT),
        IndexKey::Trust(&common::PROJECT),
    ]
    .iter()
    .map(|k| store.scan_index(&k.prefix(), true, 100).unwrap())
    .collect();
    (
        entries,
        store.versions().unwrap(),
        store.forks().unwrap(),
        store.len().unwrap(),
        scans,
    )
}

#[test]
fn contents_survive_close_and_open() {
    let dir = tempfile::tempdir().unwrap();
    let chains: Vec<_> = (20..23).map(|n| common::chain(n, 40)).collect();
    let mut store = common::granted(SledStore::open(dir.path()).unwrap());
    for chain in &chains {
        // Leave a gap at seq 30 so some entries stay pending.
        let outcomes =
            log::insert_batch(&mut store, chain.iter().filter(|e| e.seq() != 30).cloned()).unwrap();
        assert_eq!(outcomes[30], Ingested::Pending { missing_seq: 30 });
    }
    // A fork at seq 5 freezes chain 21 there: its later entries are gone.
    log::insert(&mut store, common::equivocation(21, &chains[1], 5, 1)).unwrap();
    let before = snapshot(&store);
    assert_eq!(
        store.len().unwrap(),
        1 + 2 * 39 + 5 + 1,
        "roles, two chains with a gap, the forked one up to its fork, a twin"
    );
    drop(store);

    let mut store = SledStore::open(dir.path()).unwrap();
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.dir(), dir.path());

    // And it keeps working: fill the gaps, reopen, everything is linked.
    for chain in [&chains[0], &chains[2]] {
        assert_eq!(
            log::insert(&mut store, chain[29].clone()).unwrap(),
            Ingested::Applied { linked: 11 }
        );
    }
    assert_eq!(
        log::insert(&mut store, chains[1][29].clone()).unwrap(),
        Ingested::Rejected(Rejected::Frozen {
            seq: 30,
            fork_seq: 5
        })
    );
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.versions().unwrap().total(), 1 + 2 * 40 + 5);
    assert_eq!(store.len().unwrap(), 1 + 2 * 40 + 5 + 1);
    // The equivocation names a linked predecessor, so it is linked too.
    assert!(store.all_entries().all(|s| s.unwrap().linked));
}

#[test]
fn an_open_store_refuses_a_second_opener_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let second = SledStore::open_waiting(dir.path(), Duration::from_millis(50));
    assert!(matches!(second, Err(StoreError::InUse { .. })));
    drop(store);
    assert!(SledStore::open(dir.path()).is_ok());
}

#[test]
fn a_path_that_is_a_file_is_an_open_error_not_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = SledStore::open(&file).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}
