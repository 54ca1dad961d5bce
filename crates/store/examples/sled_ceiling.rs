//! What sled 0.34 can absorb on this machine, with nothing else running:
//! 50,000 entries in batches of 1,024, as one insert per entry (a record)
//! or three (a record, a chain key and an index key, as the store writes),
//! with random or clustered keys. The store's catch-up rate cannot beat the
//! three-insert figure.
//!
//! `cargo run --release -p buildmesh-store --example sled_ceiling`
#![allow(missing_docs, clippy::unwrap_used)]
use std::time::Instant;
/// Inserts `per_entry` keys per entry (the first with a `value_len`-byte
/// value) for 50,000 entries and prints the rate.
fn run(name: &str, key_of: impl Fn(u64) -> Vec<u8>, value_len: usize, per_entry: usize) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .cache_capacity(64 << 20)
        .mode(sled::Mode::HighThroughput)
        .open()
        .unwrap();
    let tree = db.open_tree("t").unwrap();
    let n = 50_000u64;
    let start = Instant::now();
    for chunk in 0..(n / 1024) {
        let mut batch = sled::Batch::default();
        for i in chunk * 1024..(chunk + 1) * 1024 {
            for k in 0..per_entry {
                let mut key = key_of(i);
                key.push(k as u8);
                batch.insert(key, vec![7u8; if k == 0 { value_len } else { 0 }]);
            }
        }
        tree.apply_batch(batch).unwrap();
    }
    let took = start.elapsed();
    println!(
        "{name}: {:.0} entries/s",
        (n / 1024 * 1024) as f64 / took.as_secs_f64()
    );
}
fn hash(i: u64) -> Vec<u8> {
    let h = buildmesh_protocol::sha256(&[&i.to_le_bytes()]);
    let mut k = vec![b'E'];
    k.extend_from_slice(&h);
    k
}
fn seq(i: u64) -> Vec<u8> {
    let mut k = vec![b'C'];
    k.extend_from_slice(&[(i % 100) as u8; 32]);
    k.extend_from_slice(&(i / 100).to_be_bytes());
    k.extend_from_slice(&hash(i)[1..]);
    k
}
fn main() {
    run("random keys, 1 insert/entry, 250B", hash, 250, 1);
    run("clustered keys, 1 insert/entry, 250B", seq, 250, 1);
    run("random keys, 3 inserts/entry", hash, 250, 3);
    run("clustered keys, 3 inserts/entry", seq, 250, 3);
}
