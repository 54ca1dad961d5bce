//! Where the time of checking one entry goes.
//!
//! `cargo bench -p buildmesh-protocol`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_protocol::{
    Body, Entry, EntryContent, KeyCache, ProjectId, Role, Timestamp, TrustChange, signed_message,
};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use std::hint::black_box;

fn sample() -> Entry {
    signed(7, 1)
}

fn signed(seed: u8, n: u8) -> Entry {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let author = key.verifying_key().into();
    let body = Body::Trust(TrustChange {
        project: ProjectId([n; 32]),
        subject: author,
        role: Role::Builder,
    });
    Entry::sign(&key, EntryContent::first(author, Timestamp(1), body)).unwrap()
}

fn bench(c: &mut Criterion) {
    let entry = sample();
    let wire = entry.to_wire();
    let message = signed_message(entry.content_bytes());
    let signature = Signature::from_bytes(entry.signature());
    let key = VerifyingKey::from_bytes(&entry.author().0).unwrap();
    let mut group = c.benchmark_group("one entry");
    group.bench_function("Entry::from_wire (everything)", |b| {
        b.iter(|| black_box(Entry::from_wire(black_box(&wire)).unwrap()))
    });
    group.bench_function("Entry::from_stored (decode only)", |b| {
        b.iter(|| black_box(Entry::from_stored(black_box(&wire)).unwrap()))
    });
    group.bench_function("VerifyingKey::from_bytes", |b| {
        b.iter(|| black_box(VerifyingKey::from_bytes(black_box(&entry.author().0)).unwrap()))
    });
    group.bench_function("verify_strict (key decoded)", |b| {
        b.iter(|| key.verify_strict(black_box(&message), &signature).unwrap())
    });
    let mut keys = KeyCache::default();
    group.bench_function("Entry::from_wire_cached (key decoded once)", |b| {
        b.iter(|| black_box(Entry::from_wire_cached(black_box(&wire), &mut keys).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("batches");
    for size in [16usize, 64, 256, 1024] {
        let wires: Vec<Vec<u8>> = (0..size)
            .map(|n| signed(n as u8 % 10 + 1, (n / 10) as u8).to_wire())
            .collect();
        let refs: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
        group.throughput(criterion::Throughput::Elements(size as u64));
        group.bench_function(
            format!("Entry::from_wires, {size} entries, 10 authors"),
            |b| b.iter(|| black_box(Entry::from_wires(&refs, &mut keys))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
