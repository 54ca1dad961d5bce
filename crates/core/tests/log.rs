//! Scenarios of the log's merge rules (docs/protocol.md §6), one per rule.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{
    self, BatchLimits, ChainStore, ChainWriter, EntryStore, EvidenceLimits, ForkKind, Ingested,
    PENDING_WINDOW_ENTRIES, Rejected, SIBLINGS_MAX, VersionVector, lacks,
};
use buildmesh_protocol::{Entry, EntryContent, ProjectId, Timestamp};
use ed25519_dalek::SigningKey;
use fixtures::{announce, granted, seed_of, writer};

fn chain(w: &mut ChainWriter, n: u8) -> Vec<Entry> {
    let project = ProjectId([1; 32]);
    (0..n)
        .map(|i| {
            w.write(Timestamp(u64::from(i)), announce(project, i))
                .unwrap()
        })
        .collect()
}

/// An entry by `name` at `seq` chained to `prev`, whatever the real chain says.
fn rogue(name: &str, seq: u64, prev: &Entry, n: u8) -> Entry {
    let key = SigningKey::from_bytes(&seed_of(name));
    let content = EntryContent {
        author: prev.author(),
        seq,
        prev: prev.id(),
        timestamp: Timestamp(99),
        body: announce(ProjectId([1; 32]), n),
    };
    Entry::sign(&key, content).unwrap()
}

#[test]
fn a_chain_in_order_links_entry_by_entry() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let entries = chain(&mut writer("alice"), 3);
    for entry in &entries {
        assert_eq!(
            log::insert(&mut store, entry.clone()).unwrap(),
            Ingested::Applied { linked: 1 }
        );
    }
    assert_eq!(store.version(&entries[0].author()).unwrap(), 3);
    assert_eq!(store.len().unwrap(), 4, "root's declaration and the chain");
}

#[test]
fn duplicates_change_nothing() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let entry = chain(&mut writer("alice"), 1).remove(0);
    log::insert(&mut store, entry.clone()).unwrap();
    let before = store.clone();
    assert_eq!(log::insert(&mut store, entry).unwrap(), Ingested::Duplicate);
    assert!(store.same_contents(&before));
}

#[test]
fn a_gap_holds_entries_pending_until_it_fills() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 4);
    assert_eq!(
        log::insert(&mut store, e[3].clone()).unwrap(),
        Ingested::Pending { missing_seq: 1 }
    );
    assert_eq!(
        log::insert(&mut store, e[1].clone()).unwrap(),
        Ingested::Pending { missing_seq: 1 }
    );
    assert_eq!(store.version(&e[0].author()).unwrap(), 0);
    assert_eq!(
        log::insert(&mut store, e[0].clone()).unwrap(),
        Ingested::Applied { linked: 2 }
    );
    assert_eq!(store.version(&e[0].author()).unwrap(), 2);
    assert_eq!(
        log::insert(&mut store, e[2].clone()).unwrap(),
        Ingested::Applied { linked: 2 }
    );
    assert_eq!(store.version(&e[0].author()).unwrap(), 4);
    assert!(store.entries().all(|s| s.linked));
}

#[test]
fn two_entries_at_one_seq_are_a_fork_and_both_are_kept() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 2);
    let twin = rogue("alice", 2, &e[0], 7);
    log::insert(&mut store, e[0].clone()).unwrap();
    log::insert(&mut store, e[1].clone()).unwrap();
    let Ingested::Fork(proof) = log::insert(&mut store, twin.clone()).unwrap() else {
        panic!("no fork")
    };
    assert_eq!(proof.kind, ForkKind::Equivocation);
    assert_eq!(proof.seq, 2);
    assert!(store.contains(&twin.id()).unwrap() && store.contains(&e[1].id()).unwrap());
    assert_eq!(store.fork(&e[0].author()).unwrap(), Some(proof));
}

#[test]
fn an_entry_that_does_not_chain_to_its_predecessor_is_a_fork() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 3);
    let stray = rogue("alice", 3, &e[0], 9); // seq 3 but chained to seq 1
    for entry in &e[..2] {
        log::insert(&mut store, entry.clone()).unwrap();
    }
    let Ingested::Fork(proof) = log::insert(&mut store, stray.clone()).unwrap() else {
        panic!("no fork")
    };
    assert_eq!(
        (proof.kind, proof.first, proof.second),
        (ForkKind::BrokenLink, e[1].id(), stray.id())
    );
    assert!(
        !store.get(&stray.id()).unwrap().unwrap().linked,
        "a broken link never links"
    );
    assert_eq!(store.version(&e[0].author()).unwrap(), 2);
}

#[test]
fn entries_far_past_the_head_are_refused_and_forks_are_bounded() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 1);
    let far = rogue("alice", PENDING_WINDOW_ENTRIES + 2, &e[0], 1);
    assert_eq!(
        log::insert(&mut store, far).unwrap(),
        Ingested::Rejected(Rejected::TooFarAhead {
            seq: PENDING_WINDOW_ENTRIES + 2,
            head: 0
        })
    );
    log::insert(&mut store, e[0].clone()).unwrap();
    let mut twins: Vec<Entry> = (0..SIBLINGS_MAX as u8 + 1)
        .map(|n| rogue("alice", 2, &e[0], n))
        .collect();
    // Highest id last: the lower ones fill the seq, and it is refused.
    twins.sort_by_key(Entry::id);
    let outcomes: Vec<Ingested> = twins
        .iter()
        .map(|t| log::insert(&mut store, t.clone()).unwrap())
        .collect();
    assert_eq!(
        outcomes.last(),
        Some(&Ingested::Rejected(Rejected::TooManySiblings { seq: 2 }))
    );
    assert_eq!(store.at(&e[0].author(), 2).unwrap().len(), SIBLINGS_MAX);
}

/// Review 3, L2: the entries kept at a full `(author, seq)` are those with
/// the lowest ids, whatever order they came in: a lower one takes the
/// highest one's place (its links, index keys and quota share go with
/// it), so two nodes that saw the same siblings hold the same log
/// (docs/protocol.md §6).
#[test]
fn a_full_seq_keeps_the_lowest_ids_in_any_order() {
    let e = chain(&mut writer("alice"), 1);
    // Linked siblings (they follow e[0]) and unlinked ones (they follow
    // an entry that is not there), so that what is replaced may be either.
    let mut twins: Vec<Entry> = (0..SIBLINGS_MAX as u8 + 3)
        .map(|n| rogue("alice", 2, &e[0], n))
        .collect();
    let stray = rogue("alice", 2, &e[0], 99);
    twins.extend((0..2).map(|n| rogue("alice", 2, &stray, 50 + n)));
    let mut lowest: Vec<_> = twins.iter().map(Entry::id).collect();
    lowest.sort();
    lowest.truncate(SIBLINGS_MAX);
    let ingest_all = |order: &[Entry], batched: bool| {
        let (mut store, _) = granted(&["alice", "bob"]);
        log::insert(&mut store, e[0].clone()).unwrap();
        if batched {
            log::insert_batch(&mut store, order.iter().cloned()).unwrap();
        } else {
            for twin in order {
                log::insert(&mut store, twin.clone()).unwrap();
            }
        }
        store
    };
    let mut sorted = twins.clone();
    sorted.sort_by_key(Entry::id);
    let expected = ingest_all(&sorted, false);
    let mut held: Vec<_> = expected
        .at(&e[0].author(), 2)
        .unwrap()
        .iter()
        .map(|s| s.entry.id())
        .collect();
    held.sort();
    assert_eq!(held, lowest);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..64 {
        let mut order = twins.clone();
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let store = ingest_all(&order, round % 2 == 1);
        assert!(store.same_contents(&expected), "round {round}: {order:?}");
    }
}

#[test]
fn a_crash_loses_exactly_what_was_not_flushed() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 3);
    log::insert(&mut store, e[0].clone()).unwrap();
    log::ingest(&mut store, e[1].clone()).unwrap();
    store.crash();
    assert_eq!(store.version(&e[0].author()).unwrap(), 1);
    assert!(!store.contains(&e[1].id()).unwrap());
}

#[test]
fn lacks_walks_everything_in_bounded_batches() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let (mut a, mut b) = (writer("alice"), writer("bob"));
    let all: Vec<Entry> = chain(&mut a, 30)
        .into_iter()
        .chain(chain(&mut b, 25))
        .collect();
    log::insert_batch(&mut store, all.iter().cloned()).unwrap();
    let pending = rogue("bob", 27, &all[54], 1); // seq 27 while bob's head is 25
    log::insert(&mut store, pending).unwrap();

    let root = writer("root").author();
    let theirs: VersionVector = [(a.author(), 10), (root, 1)].into_iter().collect();
    let limits = BatchLimits {
        entries_max: 7,
        bytes_max: usize::MAX,
    };
    let (mut got, mut resume, mut rounds) = (Vec::new(), None, 0);
    loop {
        let batch = lacks(&store, &theirs, resume, limits).unwrap();
        assert!(batch.entries.len() <= 7);
        got.extend(batch.entries.iter().map(|e| (e.author(), e.seq())));
        rounds += 1;
        resume = batch.resume;
        if resume.is_none() {
            break;
        }
    }
    let mut want: Vec<_> = all
        .iter()
        .filter(|e| e.author() != a.author() || e.seq() > 10)
        .map(|e| (e.author(), e.seq()))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "every linked entry the peer lacks, once, and nothing pending"
    );
    assert_eq!(rounds, want.len().div_ceil(7));
}

#[test]
fn lacks_respects_the_byte_bound() {
    let (mut store, _) = granted(&["alice", "bob"]);
    log::insert_batch(&mut store, chain(&mut writer("alice"), 20)).unwrap();
    let limits = BatchLimits {
        entries_max: 1000,
        bytes_max: 1,
    };
    let batch = lacks(&store, &VersionVector::new(), None, limits).unwrap();
    assert_eq!(
        batch.entries.len(),
        1,
        "one entry per batch when the bound is tiny"
    );
    assert!(batch.resume.is_some());
}

#[test]
fn a_writer_resumes_its_chain_from_the_store() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let mut first = writer("alice");
    log::insert_batch(&mut store, chain(&mut first, 3)).unwrap();
    let mut again = ChainWriter::resume(SigningKey::from_bytes(&seed_of("alice")), &store).unwrap();
    assert_eq!(again.next_seq(), 4);
    let next = again
        .write(Timestamp(5), announce(ProjectId([1; 32]), 5))
        .unwrap();
    assert_eq!(
        log::insert(&mut store, next).unwrap(),
        Ingested::Applied { linked: 1 }
    );
}

/// docs/protocol.md §6, "Freezing": once a fork is proven, nothing of the
/// author past it is kept, whether it came before the proof or after.
#[test]
fn a_fork_freezes_its_author_past_the_fork() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 6);
    let author = e[0].author();
    log::insert_batch(&mut store, e.iter().cloned()).unwrap();
    let before = store.usage(&author).unwrap();
    let twin = rogue("alice", 3, &e[1], 7);
    let Ingested::Fork(proof) = log::insert(&mut store, twin.clone()).unwrap() else {
        panic!("no fork")
    };
    assert_eq!((proof.kind, proof.seq), (ForkKind::Equivocation, 3));
    assert_eq!(store.version(&author).unwrap(), 3);
    for later in &e[3..] {
        assert!(!store.contains(&later.id()).unwrap(), "seq {}", later.seq());
    }
    assert!(store.contains(&twin.id()).unwrap() && store.contains(&e[2].id()).unwrap());
    let after = store.usage(&author).unwrap();
    assert!(after.bytes < before.bytes, "the quota usage went down too");
    assert_eq!(
        log::insert(&mut store, e[4].clone()).unwrap(),
        Ingested::Rejected(Rejected::Frozen {
            seq: 5,
            fork_seq: 3
        })
    );

    // A store that saw the fork first holds exactly the same.
    let (mut fresh, _) = granted(&["alice", "bob"]);
    log::insert(&mut fresh, twin).unwrap();
    for entry in e.iter().rev() {
        log::insert(&mut fresh, entry.clone()).unwrap();
    }
    assert!(fresh.same_contents(&store), "order does not matter");
    assert_eq!(fresh.usage(&author).unwrap(), after);
}

/// The boundary is the lowest fork: a lower proof arriving later moves it
/// down (and forgets the evidence of the higher one), a higher one
/// arriving later is refused.
#[test]
fn the_lowest_fork_is_the_boundary_in_any_order() {
    let e = chain(&mut writer("alice"), 8);
    let high = rogue("alice", 6, &e[4], 1);
    let low = rogue("alice", 3, &e[1], 2);
    let mut stores = Vec::new();
    for order in [[&high, &low], [&low, &high]] {
        let (mut store, _) = granted(&["alice", "bob"]);
        log::insert_batch(&mut store, e.iter().cloned()).unwrap();
        for fork in order {
            log::insert(&mut store, (*fork).clone()).unwrap();
        }
        assert_eq!(store.fork(&e[0].author()).unwrap().map(|p| p.seq), Some(3));
        assert!(!store.contains(&high.id()).unwrap());
        stores.push(store);
    }
    assert!(stores[0].same_contents(&stores[1]));
}

/// The freeze within one atomic batch (a sync batch): the same as one by one.
#[test]
fn a_batch_that_proves_a_fork_freezes_like_single_entries() {
    let e = chain(&mut writer("alice"), 6);
    let twin = rogue("alice", 2, &e[0], 9);
    let mut batch: Vec<Entry> = e.clone();
    batch.insert(3, twin.clone());
    let (mut batched, _) = granted(&["alice", "bob"]);
    let outcomes = log::insert_batch(&mut batched, batch.iter().cloned()).unwrap();
    assert!(outcomes.contains(&Ingested::Rejected(Rejected::Frozen {
        seq: 6,
        fork_seq: 2
    })));
    let (mut single, _) = granted(&["alice", "bob"]);
    for entry in &batch {
        log::insert(&mut single, entry.clone()).unwrap();
    }
    assert!(batched.same_contents(&single));
    assert_eq!(batched.version(&e[0].author()).unwrap(), 2);
    assert_eq!(
        log::unlinked_evidence(&batched, None, EvidenceLimits::default())
            .unwrap()
            .entries,
        Vec::new(),
        "both siblings link: a sync serves them"
    );
}

/// A broken link's second entry never links: it is the evidence an export
/// of linked entries must add.
#[test]
fn unlinked_evidence_names_what_a_sync_leaves_out() {
    let (mut store, _) = granted(&["alice", "bob"]);
    let e = chain(&mut writer("alice"), 3);
    let stray = rogue("alice", 3, &e[0], 9);
    log::insert_batch(&mut store, e[..2].iter().cloned()).unwrap();
    log::insert(&mut store, stray.clone()).unwrap();
    let evidence = log::unlinked_evidence(&store, None, EvidenceLimits::default()).unwrap();
    assert_eq!(evidence.entries, vec![(e[0].author(), stray)]);
    assert_eq!(evidence.resume, None, "nothing more");
}

/// Review 3, M3: the evidence comes in bounded batches that resume where
/// the last ended, so however many authors are forked (anyone with keys
/// can fork), none is left out: read one author at a time, or all at once,
/// it is the same evidence in the same order.
#[test]
fn unlinked_evidence_comes_in_batches_that_leave_nothing_out() {
    let names: Vec<String> = (0..7).map(|i| format!("forker{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (mut store, _) = granted(&refs);
    for name in &names {
        let e = chain(&mut writer(name), 3);
        log::insert_batch(&mut store, e[..2].iter().cloned()).unwrap();
        log::insert(&mut store, rogue(name, 3, &e[0], 9)).unwrap();
    }
    let whole = log::unlinked_evidence(&store, None, EvidenceLimits::default()).unwrap();
    assert_eq!(whole.entries.len(), 7);
    assert_eq!(whole.resume, None);
    for limits in [
        EvidenceLimits {
            authors_max: 1,
            ..EvidenceLimits::default()
        },
        EvidenceLimits {
            authors_max: 3,
            bytes_max: 1,
        },
    ] {
        let mut paged = Vec::new();
        let mut after = None;
        for _ in 0..20 {
            let batch = log::unlinked_evidence(&store, after.as_ref(), limits).unwrap();
            assert!(batch.entries.len() <= limits.authors_max, "{limits:?}");
            paged.extend(batch.entries);
            after = batch.resume;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(after, None, "{limits:?}: it ends");
        assert_eq!(paged, whole.entries, "{limits:?}");
    }
}
