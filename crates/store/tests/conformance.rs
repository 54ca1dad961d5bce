//! SledStore against MemStore, the reference: the same entries through
//! `buildmesh_core::log::ingest` must give the same outcomes, and the two
//! stores must then answer every read alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use buildmesh_core::log::{
    self, BatchLimits, ChainStore, EntryStore, ForkKind, IndexKey, Ingested, MemStore,
    PENDING_WINDOW_ENTRIES, Rejected, SIBLINGS_MAX, SyncCursor, VersionVector,
};
use buildmesh_protocol::{Entry, EntryId, PublicKey};
use buildmesh_store::SledStore;
use common::{BRANCHES, PLATFORMS, PROJECT};
use tempfile::TempDir;

/// The same store twice.
struct Pair {
    mem: MemStore,
    sled: Option<SledStore>,
    dir: TempDir,
}

impl Pair {
    fn new() -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let sled = Some(common::granted(SledStore::open(dir.path()).unwrap()));
        Pair {
            mem: common::granted(MemStore::default()),
            sled,
            dir,
        }
    }

    fn sled(&self) -> &SledStore {
        self.sled.as_ref().unwrap()
    }

    fn ingest(&mut self, entry: &Entry) -> Ingested {
        let expected = log::ingest(&mut self.mem, entry.clone()).unwrap();
        let got = log::ingest(self.sled.as_mut().unwrap(), entry.clone()).unwrap();
        assert_eq!(
            got,
            expected,
            "outcome of seq {} by {:?}",
            entry.seq(),
            entry.author()
        );
        got
    }

    fn ingest_all<'a>(&mut self, entries: impl IntoIterator<Item = &'a Entry>) -> Vec<Ingested> {
        entries.into_iter().map(|e| self.ingest(e)).collect()
    }

    fn insert_batch(&mut self, entries: &[Entry]) -> Vec<Ingested> {
        let expected = log::insert_batch(&mut self.mem, entries.iter().cloned()).unwrap();
        let got = log::insert_batch(self.sled.as_mut().unwrap(), entries.iter().cloned()).unwrap();
        assert_eq!(got, expected);
        got
    }

    /// Flushes both, closes the sled store and opens it again.
    fn reopen(&mut self) {
        self.mem.flush().unwrap();
        let mut sled = self.sled.take().unwrap();
        sled.flush().unwrap();
        drop(sled);
        self.sled = Some(SledStore::open(self.dir.path()).unwrap());
    }

    /// Every read of the trait, and `lacks`, answered alike.
    fn assert_same(&self) {
        let (mem, sled) = (&self.mem, self.sled());
        assert_eq!(sled.len().unwrap(), mem.len().unwrap());
        assert_eq!(
            sled.digest().unwrap(),
            mem.digest().unwrap(),
            "equal sets, equal digests"
        );
        assert_eq!(sled.is_empty().unwrap(), mem.is_empty().unwrap());
        assert_eq!(sled.versions().unwrap(), mem.versions().unwrap());
        assert_eq!(sled.forks().unwrap(), mem.forks().unwrap());
        // Paged one author at a time, from each author on: the same.
        let mut after = None;
        for (author, _) in mem.forks().unwrap() {
            let page = sled.forks_after(after.as_ref(), 1).unwrap();
            assert_eq!(page, mem.forks_after(after.as_ref(), 1).unwrap());
            assert_eq!(page.first().map(|(a, _)| *a), Some(author));
            after = Some(author);
        }
        assert_eq!(sled.forks_after(after.as_ref(), 1).unwrap(), Vec::new());
        assert_eq!(
            mem.forks_after(None, usize::MAX).unwrap(),
            mem.forks().unwrap()
        );

        let mut held: Vec<_> = sled.all_entries().collect::<Result<_, _>>().unwrap();
        let order: Vec<_> = held
            .iter()
            .map(|s| (s.entry.author(), s.entry.seq(), s.entry.id()))
            .collect();
        assert!(
            order.is_sorted(),
            "all_entries walks (author, seq, id) order"
        );
        held.sort_by_key(|s| s.entry.id());
        let expected: Vec<_> = mem.entries().cloned().collect();
        assert_eq!(held, expected);

        let mut authors: Vec<PublicKey> = expected.iter().map(|s| s.entry.author()).collect();
        authors.dedup();
        for author in &authors {
            assert_eq!(sled.max_seq(author).unwrap(), mem.max_seq(author).unwrap());
        }
        assert_eq!(sled.max_seq(&PublicKey([0xee; 32])).unwrap(), 0);
        authors.sort();
        authors.dedup();
        authors.push(PublicKey([0xab; 32]));
        for author in &authors {
            assert_eq!(sled.version(author).unwrap(), mem.version(author).unwrap());
            assert_eq!(sled.fork(author).unwrap(), mem.fork(author).unwrap());
            let top = mem
                .range(author, 0, usize::MAX)
                .unwrap()
                .last()
                .map_or(0, |s| s.entry.seq());
            for seq in 0..=top + 1 {
                assert_eq!(
                    sled.at(author, seq).unwrap(),
                    mem.at(author, seq).unwrap(),
                    "at {seq}"
                );
                for limit in [0, 1, 2, 5, usize::MAX] {
                    assert_eq!(
                        sled.range(author, seq, limit).unwrap(),
                        mem.range(author, seq, limit).unwrap(),
                        "range from {seq}, limit {limit}"
                    );
                }
            }
        }
        for stored in &expected {
            let id = stored.entry.id();
            assert_eq!(sled.get(&id).unwrap().as_ref(), Some(stored));
            assert!(sled.contains(&id).unwrap());
        }
        assert_eq!(sled.get(&EntryId([0x11; 32])).unwrap(), None);
        assert!(!sled.contains(&EntryId([0x11; 32])).unwrap());

        self.assert_same_indexes();
        self.assert_same_lacks(&authors);
    }

    fn assert_same_indexes(&self) {
        let (mem, sled) = (&self.mem, self.sled());
        let commits: Vec<_> = (0..4).map(common::commit).collect();
        let mut prefixes = vec![
            IndexKey::AllProjects.prefix(),
            IndexKey::Project(&PROJECT).prefix(),
            IndexKey::Commits(&PROJECT).prefix(),
            IndexKey::Forces(&PROJECT).prefix(),
            IndexKey::Trust(&PROJECT).prefix(),
            Vec::new(),
        ];
        for branch in BRANCHES {
            prefixes.push(IndexKey::BranchCommits(&PROJECT, branch).prefix());
        }
        for commit in &commits {
            prefixes.push(IndexKey::Commit(&PROJECT, commit).prefix());
            for platform in PLATFORMS {
                prefixes.push(IndexKey::Cell(&PROJECT, commit, platform).prefix());
            }
        }
        let mut nonempty = 0;
        for prefix in &prefixes {
            for newest_first in [false, true] {
                for limit in [0, 1, 3, 10_000] {
                    let expected = mem.scan_index(prefix, newest_first, limit).unwrap();
                    nonempty += usize::from(!expected.is_empty());
                    assert_eq!(
                        sled.scan_index(prefix, newest_first, limit).unwrap(),
                        expected
                    );
                }
            }
        }
        if mem.versions().unwrap().total() > 20 {
            assert!(
                nonempty > prefixes.len(),
                "the scenario exercises the indexes"
            );
        }
    }

    fn assert_same_lacks(&self, authors: &[PublicKey]) {
        let ours = self.mem.versions().unwrap();
        let mut vectors = vec![VersionVector::new(), ours.clone()];
        vectors.push(
            authors
                .iter()
                .enumerate()
                .map(|(i, a)| (*a, ours.get(a) / (i as u64 + 2)))
                .collect(),
        );
        vectors.push(authors.iter().take(1).map(|a| (*a, 1_000)).collect());
        let limits = [
            BatchLimits::default(),
            BatchLimits {
                entries_max: 3,
                ..BatchLimits::default()
            },
            BatchLimits {
                entries_max: 1,
                bytes_max: 1,
            },
        ];
        for theirs in &vectors {
            for limit in limits {
                let mut resume: Option<SyncCursor> = None;
                for round in 0.. {
                    assert!(round < 10_000, "lacks makes progress");
                    let expected = log::lacks(&self.mem, theirs, resume, limit).unwrap();
                    let got = log::lacks(self.sled(), theirs, resume, limit).unwrap();
                    assert_eq!(got, expected, "lacks round {round} for {theirs:?}");
                    resume = got.resume;
                    if resume.is_none() {
                        break;
                    }
                }
            }
        }
    }
}

/// Interleaves chains: one entry of each in turn.
fn interleave(chains: &[Vec<Entry>]) -> Vec<Entry> {
    let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| chains.iter().filter_map(move |c| c.get(i).cloned()))
        .collect()
}

#[test]
fn linked_chains_in_order() {
    let mut pair = Pair::new();
    let chains: Vec<_> = (1..=3).map(|n| common::chain(n, 25)).collect();
    let outcomes = pair.ingest_all(&interleave(&chains));
    assert!(
        outcomes
            .iter()
            .all(|o| *o == Ingested::Applied { linked: 1 })
    );
    pair.assert_same();
    assert_eq!(
        pair.sled().versions().unwrap().total(),
        75 + 1,
        "the chains and the declaration that names their authors"
    );
    pair.reopen();
    pair.assert_same();
}

#[test]
fn pending_entries_link_when_the_gap_fills() {
    let mut pair = Pair::new();
    let chain = common::chain(4, 10);
    pair.ingest_all(&chain[..2]);
    let waiting = pair.ingest_all(chain[4..].iter().chain([&chain[3]]));
    assert!(
        waiting
            .iter()
            .all(|o| *o == Ingested::Pending { missing_seq: 3 }),
        "{waiting:?}"
    );
    pair.assert_same();
    assert_eq!(pair.sled().version(&common::author(4)).unwrap(), 2);
    assert!(!pair.sled().get(&chain[9].id()).unwrap().unwrap().linked);

    pair.reopen();
    assert_eq!(pair.ingest(&chain[2]), Ingested::Applied { linked: 8 });
    assert_eq!(pair.sled().version(&common::author(4)).unwrap(), 10);
    pair.assert_same();
    pair.reopen();
    assert!(pair.sled().all_entries().all(|s| s.unwrap().linked));
    pair.assert_same();
}

#[test]
fn a_chain_that_starts_late_waits_for_its_first_entry() {
    let mut pair = Pair::new();
    let chain = common::chain(5, 6);
    let outcomes = pair.ingest_all(chain.iter().rev());
    assert!(
        outcomes[..5]
            .iter()
            .all(|o| *o == Ingested::Pending { missing_seq: 1 })
    );
    assert_eq!(outcomes[5], Ingested::Applied { linked: 6 });
    pair.assert_same();
}

#[test]
fn equivocations_are_kept_as_proof() {
    let mut pair = Pair::new();
    let n = 6;
    let chain = common::chain(n, 6);
    pair.ingest_all(&chain);
    let forks: Vec<_> = (1..u32::try_from(SIBLINGS_MAX).unwrap())
        .map(|v| common::equivocation(n, &chain, 3, v))
        .collect();
    for fork in &forks {
        let Ingested::Fork(proof) = pair.ingest(fork) else {
            panic!("expected a fork")
        };
        assert_eq!(proof.kind, ForkKind::Equivocation);
        assert_eq!(proof.seq, 3);
    }
    pair.assert_same();
    // A full seq keeps the lowest ids (docs/protocol.md §6): one higher
    // than all is refused, one lower takes the highest one's place.
    let author = chain[0].author();
    let highest = |pair: &Pair| {
        let held = pair.sled().at(&author, 3).unwrap();
        held.iter().map(|s| s.entry.id()).max().unwrap()
    };
    let top = highest(&pair);
    let variant = |above: bool| {
        (99..)
            .map(|v| common::equivocation(n, &chain, 3, v))
            .find(|e| (e.id() > top) == above)
            .unwrap()
    };
    assert_eq!(
        pair.ingest(&variant(true)),
        Ingested::Rejected(Rejected::TooManySiblings { seq: 3 })
    );
    let lower = variant(false);
    assert!(matches!(pair.ingest(&lower), Ingested::Fork(_)));
    assert!(pair.sled().contains(&lower.id()).unwrap());
    assert!(!pair.sled().contains(&top).unwrap());
    assert_eq!(pair.sled().at(&author, 3).unwrap().len(), SIBLINGS_MAX);
    pair.assert_same();
    // Past the fork the author is frozen: nothing more of it is kept.
    let on_branch = common::broken_link(n, 4, 7);
    assert_eq!(
        pair.ingest(&on_branch),
        Ingested::Rejected(Rejected::Frozen {
            seq: 4,
            fork_seq: 3
        })
    );
    // An equivocation at seq 1, which every node must prove the same way:
    // the boundary moves down and the entries past it are forgotten, on
    // disk as in memory.
    assert!(matches!(
        pair.ingest(&common::equivocation(n, &chain, 1, 3)),
        Ingested::Fork(_)
    ));
    pair.assert_same();
    assert_eq!(pair.sled().version(&chain[0].author()).unwrap(), 1);
    assert_eq!(pair.sled().at(&chain[0].author(), 3).unwrap(), Vec::new());
    pair.reopen();
    pair.assert_same();
}

#[test]
fn an_equivocation_that_arrives_before_the_chain() {
    let mut pair = Pair::new();
    let n = 7;
    let chain = common::chain(n, 5);
    let fork = common::equivocation(n, &chain, 4, 1);
    assert_eq!(pair.ingest(&fork), Ingested::Pending { missing_seq: 1 });
    let outcomes = pair.ingest_all(&chain);
    assert!(
        outcomes.iter().any(|o| matches!(o, Ingested::Fork(_))),
        "{outcomes:?}"
    );
    pair.assert_same();
}

#[test]
fn broken_links_either_way_round() {
    let mut pair = Pair::new();
    let (a, b) = (8, 9);
    let chain_a = common::chain(a, 3);
    pair.ingest_all(&chain_a);
    let Ingested::Fork(proof) = pair.ingest(&common::broken_link(a, 4, 1)) else {
        panic!("expected a fork")
    };
    assert_eq!(
        (proof.kind, proof.seq, proof.first),
        (ForkKind::BrokenLink, 4, chain_a[2].id())
    );

    // The bad successor first, then the chain that contradicts it.
    let chain_b = common::chain(b, 3);
    assert_eq!(
        pair.ingest(&common::broken_link(b, 4, 1)),
        Ingested::Pending { missing_seq: 1 }
    );
    let outcomes = pair.ingest_all(&chain_b);
    let Ingested::Fork(proof) = outcomes[2] else {
        panic!("expected a fork: {outcomes:?}")
    };
    assert_eq!(proof.kind, ForkKind::BrokenLink);
    pair.assert_same();
    assert_eq!(pair.sled().forks().unwrap().len(), 2);
    pair.reopen();
    pair.assert_same();
}

#[test]
fn duplicates_change_nothing() {
    let mut pair = Pair::new();
    let chain = common::chain(10, 8);
    pair.ingest_all(chain.iter().filter(|e| e.seq() != 4));
    // At the head, so the fork freezes nothing that comes again below.
    let fork = common::equivocation(10, &chain, 8, 1);
    pair.ingest(&fork);
    let before = pair.sled().len().unwrap();
    let again = pair.ingest_all(chain.iter().filter(|e| e.seq() != 4).chain([&fork]));
    assert!(again.iter().all(|o| *o == Ingested::Duplicate), "{again:?}");
    assert_eq!(pair.sled().len().unwrap(), before);
    pair.assert_same();
}

#[test]
fn entries_too_far_ahead_are_refused() {
    let mut pair = Pair::new();
    let far = common::broken_link(11, PENDING_WINDOW_ENTRIES + 2, 1);
    assert_eq!(
        pair.ingest(&far),
        Ingested::Rejected(Rejected::TooFarAhead {
            seq: PENDING_WINDOW_ENTRIES + 2,
            head: 0
        })
    );
    assert_eq!(pair.sled().len().unwrap(), 1, "only the roles declaration");
    pair.assert_same();
}

#[test]
fn a_mixed_history_through_insert_batch() {
    let mut pair = Pair::new();
    let chains: Vec<_> = (12..=14).map(|n| common::chain(n, 30)).collect();
    let mut all = interleave(&chains);
    all.push(common::equivocation(12, &chains[0], 10, 1));
    all.push(common::broken_link(13, 31, 2));
    all.extend(all.clone().into_iter().step_by(7));
    // A deterministic scramble: reverse every block of 11.
    for block in all.chunks_mut(11) {
        block.reverse();
    }
    for batch in all.chunks(17) {
        pair.insert_batch(batch);
        pair.assert_same();
    }
    pair.reopen();
    pair.assert_same();
    assert_eq!(pair.sled().forks().unwrap().len(), 2);
}
