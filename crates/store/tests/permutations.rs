//! Merge is set union: any arrival order of the same entries gives
//! SledStore the state MemStore reaches from the chains in order, forks
//! included.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buildmesh_core::log::{self, EntryStore, MemStore};
use buildmesh_protocol::{Entry, EntryContent, EntryId, Timestamp};
use buildmesh_store::SledStore;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Three authors' chains of 12, 8 and 5 entries, signed once.
fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        [(30, 12), (31, 8), (32, 5)]
            .iter()
            .flat_map(|(n, len)| common::chain(*n, *len))
            .collect()
    })
}

/// Two chains with forks of both kinds: an equivocation at seq 3 with a
/// branch of three more entries built on it, one at seq 6, and two broken
/// links. Each author is frozen at its lowest fork (3 and 4), so what lies
/// past it is refused or forgotten, depending on the order.
fn forked() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let (a, b) = (common::chain(40, 8), common::chain(41, 6));
        let mut branch = vec![common::equivocation(40, &a, 3, 1)];
        for n in 0..3 {
            let previous = &branch[branch.len() - 1];
            let body = common::body(common::author(40), n, 9);
            let content = EntryContent::after(previous, Timestamp(5 + n), body);
            branch.push(Entry::sign(&common::key(40), content).unwrap());
        }
        let others = [
            common::equivocation(40, &a, 6, 2),
            common::broken_link(41, 4, 1),
            common::broken_link(41, 6, 2),
        ];
        a.into_iter().chain(b).chain(branch).chain(others).collect()
    })
}

/// The reference: every entry of `set` in the order given, into MemStore.
fn reference(set: &[Entry]) -> MemStore {
    let mut mem = common::granted(MemStore::default());
    log::insert_batch(&mut mem, set.iter().cloned()).unwrap();
    mem
}

fn linked_flags(store: &SledStore) -> BTreeMap<EntryId, bool> {
    store
        .all_entries()
        .map(|s| s.map(|s| (s.entry.id(), s.linked)))
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every index of `set` once, a few twice, in any order.
fn arrival_orders(set: &'static [Entry]) -> impl Strategy<Value = Vec<usize>> {
    let n = set.len();
    prop::collection::vec(0..n, 0..8)
        .prop_map(move |extra| (0..n).chain(extra).collect::<Vec<_>>())
        .prop_shuffle()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_arrival_order_gives_the_same_store(order in arrival_orders(entries())) {
        let dir = tempfile::tempdir().unwrap();
        let mut sled = common::granted(SledStore::open(dir.path()).unwrap());
        let mut mem = common::granted(MemStore::default());
        for &i in &order {
            let entry = entries()[i].clone();
            let expected = log::ingest(&mut mem, entry.clone()).unwrap();
            prop_assert_eq!(log::ingest(&mut sled, entry).unwrap(), expected);
        }
        sled.flush().unwrap();

        let reference = reference(entries());
        prop_assert_eq!(sled.versions().unwrap(), reference.versions().unwrap());
        prop_assert_eq!(sled.len().unwrap(), reference.len().unwrap());
        prop_assert!(sled.forks().unwrap().is_empty());
        let expected: BTreeMap<EntryId, bool> = reference.entries().map(|s| (s.entry.id(), s.linked)).collect();
        prop_assert!(expected.values().all(|linked| *linked));
        prop_assert_eq!(linked_flags(&sled), expected);
        prop_assert!(mem.same_contents(&reference));
    }

    #[test]
    fn forks_are_found_whatever_the_order(order in arrival_orders(forked())) {
        let dir = tempfile::tempdir().unwrap();
        let mut sled = common::granted(SledStore::open(dir.path()).unwrap());
        let outcomes = log::insert_batch(&mut sled, order.iter().map(|&i| forked()[i].clone())).unwrap();
        let refused_otherwise = outcomes.iter().any(|o| {
            matches!(o, log::Ingested::Rejected(r) if !matches!(r, log::Rejected::Frozen { .. }))
        });
        prop_assert!(!refused_otherwise, "only what lies past a fork is refused");
        prop_assert_eq!(
            sled.forks().unwrap().iter().map(|(_, proof)| proof.seq).collect::<Vec<_>>(),
            vec![3, 4]
        );

        let reference = reference(forked());
        prop_assert_eq!(sled.versions().unwrap(), reference.versions().unwrap());
        prop_assert_eq!(sled.forks().unwrap(), reference.forks().unwrap());
        prop_assert_eq!(sled.forks().unwrap().len(), 2);
        prop_assert_eq!(sled.len().unwrap(), reference.len().unwrap());
        let expected: BTreeMap<EntryId, bool> = reference.entries().map(|s| (s.entry.id(), s.linked)).collect();
        prop_assert_eq!(linked_flags(&sled), expected);
    }
}
