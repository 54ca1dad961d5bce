//! SledStore benchmarks: verified inserts per second, and `lacks` over a
//! 100,000-entry store.
//!
//! `cargo bench -p buildmesh-store` (a couple of minutes, most of it building
//! the signed entries). Each group signs its entries once; the insert
//! benches open a fresh store per iteration outside the timed part.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use buildmesh_core::log::{self, BatchLimits, EntryStore, Ingested, SyncCursor, VersionVector};
use buildmesh_protocol::{Entry, KeyCache};
use buildmesh_store::SledStore;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BATCH: usize = 1_000;

/// `authors` chains of `len`, author after author, signed on two threads.
fn sign(authors: u16, len: u64) -> Vec<Entry> {
    let half = authors / 2;
    std::thread::scope(|scope| {
        let first = scope.spawn(move || {
            (0..half)
                .flat_map(|n| common::chain(n, len))
                .collect::<Vec<_>>()
        });
        let mut second: Vec<Entry> = (half..authors)
            .flat_map(|n| common::chain(n, len))
            .collect();
        let mut all = first.join().unwrap();
        all.append(&mut second);
        all
    })
}

/// Runs `work` on a fresh store per iteration and times only `work`.
fn timed_on_fresh_store(iters: u64, mut work: impl FnMut(&mut SledStore)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SledStore::open(dir.path()).unwrap();
        let start = Instant::now();
        work(&mut store);
        total += start.elapsed();
        drop(store);
    }
    total
}

fn inserts(c: &mut Criterion) {
    let entries = sign(10, 1_000);
    let wires: Vec<Vec<u8>> = entries.iter().map(Entry::to_wire).collect();
    let mut group = c.benchmark_group("insert");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(wires.len() as u64));

    group.bench_function("from_wire only, 10x1000", |b| {
        b.iter(|| {
            for wire in &wires {
                black_box(Entry::from_wire(wire).unwrap());
            }
        });
    });

    group.bench_function("from_wires (batch-verified) only, 10x1000", |b| {
        let mut keys = KeyCache::default();
        b.iter(|| {
            for chunk in wires.chunks(BATCH) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                black_box(Entry::from_wires(&refs, &mut keys));
            }
        });
    });

    group.bench_function(
        "from_wires (batch-verified) + insert_batch of 1000 + flush, 10x1000",
        |b| {
            let mut keys = KeyCache::default();
            b.iter_custom(|iters| {
                timed_on_fresh_store(iters, |store| {
                    for chunk in wires.chunks(BATCH) {
                        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                        let verified = Entry::from_wires(&refs, &mut keys);
                        let outcomes =
                            log::insert_batch(store, verified.into_iter().map(|e| e.unwrap()))
                                .unwrap();
                        debug_assert!(
                            outcomes
                                .iter()
                                .all(|o| *o == Ingested::Applied { linked: 1 })
                        );
                    }
                    assert_eq!(store.len().unwrap(), 10_000);
                })
            });
        },
    );

    group.bench_function("from_wire + insert_batch of 1000 + flush, 10x1000", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh_store(iters, |store| {
                for chunk in wires.chunks(BATCH) {
                    let verified = chunk.iter().map(|w| Entry::from_wire(w).unwrap());
                    let outcomes = log::insert_batch(store, verified).unwrap();
                    debug_assert!(
                        outcomes
                            .iter()
                            .all(|o| *o == Ingested::Applied { linked: 1 })
                    );
                }
                assert_eq!(store.len().unwrap(), 10_000);
            })
        });
    });

    group.bench_function(
        "insert_batch of 1000 + flush (pre-verified), 10x1000",
        |b| {
            b.iter_custom(|iters| {
                timed_on_fresh_store(iters, |store| {
                    for chunk in entries.chunks(BATCH) {
                        log::insert_batch(store, chunk.iter().cloned()).unwrap();
                    }
                    assert_eq!(store.len().unwrap(), 10_000);
                })
            });
        },
    );

    let one_chain = &entries[..BATCH];
    group.throughput(Throughput::Elements(one_chain.len() as u64));
    group.bench_function("insert, one flush per entry, 1x1000", |b| {
        b.iter_custom(|iters| {
            timed_on_fresh_store(iters, |store| {
                for entry in one_chain {
                    log::insert(store, entry.clone()).unwrap();
                }
            })
        });
    });
    group.finish();
}

/// 100 authors x 1000 entries, in a store that outlives the group.
fn big_store() -> (tempfile::TempDir, SledStore) {
    let started = Instant::now();
    let entries = sign(100, 1_000);
    let signed = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let mut store = SledStore::open(dir.path()).unwrap();
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        log::insert_batch(&mut store, entries.by_ref().take(10_000)).unwrap();
    }
    assert_eq!(store.versions().unwrap().total(), 100_000);
    eprintln!(
        "lacks: signed 100,000 entries in {signed:.1?}, stored them in {:.1?}",
        started.elapsed() - signed
    );
    (dir, store)
}

fn lacks(c: &mut Criterion) {
    let (_dir, store) = big_store();
    let ours = store.versions().unwrap();
    // Half the authors (every other one) lack their last 500 entries.
    let theirs: VersionVector = ours
        .iter()
        .enumerate()
        .map(|(i, (author, seq))| (*author, if i % 2 == 0 { seq / 2 } else { seq }))
        .collect();
    let missing = ours.total() - theirs.total();
    let limits = BatchLimits::default();
    let first = log::lacks(&store, &theirs, None, limits).unwrap();

    let mut group = c.benchmark_group("lacks");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(first.entries.len() as u64));
    group.bench_function(
        format!("first batch ({} entries) of 100x1000", first.entries.len()),
        |b| {
            b.iter(|| black_box(log::lacks(&store, &theirs, None, limits).unwrap()));
        },
    );

    group.throughput(Throughput::Elements(missing));
    group.bench_function(format!("full walk ({missing} entries) of 100x1000"), |b| {
        b.iter(|| {
            let (mut resume, mut sent, mut batches): (Option<SyncCursor>, u64, u32) = (None, 0, 0);
            loop {
                let batch = log::lacks(&store, &theirs, resume, limits).unwrap();
                sent += batch.entries.len() as u64;
                batches += 1;
                resume = batch.resume;
                if resume.is_none() {
                    break;
                }
            }
            assert_eq!(sent, missing);
            black_box(batches)
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = inserts, lacks
}
criterion_main!(benches);
