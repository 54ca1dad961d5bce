//! Mesh figures from real `buildmesh node` processes on 127.0.0.1:
//! a late joiner's catch-up rate, how fast an entry submitted to one node
//! reaches all of N, and one node's idle memory.
//!
//! `cargo bench -p buildmesh --bench mesh` (set `BUILDMESH_BENCH_NODES=10,50`
//! and `BUILDMESH_BENCH_CATCHUP=50000` to change the sizes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::{Node, entries, wait_converged};

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` and `--list` probes: nothing to check here
    }
    let catchup: u32 = env("BUILDMESH_BENCH_CATCHUP", "50000").parse().unwrap();
    catch_up(catchup);
    for n in env("BUILDMESH_BENCH_NODES", "10,50")
        .split(',')
        .map(|n| n.trim().parse::<usize>().unwrap())
    {
        propagation(n, 30);
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn catch_up(n: u32) {
    let source = Node::start(None);
    let signed = entries(11, n);
    let start = Instant::now();
    source.submit(&signed);
    let submit = start.elapsed();
    println!(
        "submit: {n} entries over HTTP in {submit:.2?} ({:.0} entries/s, verified and stored)",
        f64::from(n) / submit.as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(3));
    println!("idle RSS: {} KiB holding {n} entries", rss_kib(&source));
    let empty = Node::start(None);
    std::thread::sleep(Duration::from_secs(3));
    println!("idle RSS: {} KiB with an empty log", rss_kib(&empty));
    drop(empty);
    let start = Instant::now();
    let late = Node::start(Some(&source));
    let started = Instant::now();
    wait_count_every(&[&late], u64::from(n), Duration::from_millis(10));
    let took = started.elapsed();
    let total = start.elapsed();
    wait_converged(&[&source, &late], u64::from(n), Duration::from_secs(60));
    println!(
        "catch-up: {n} entries in {took:.2?} after start ({total:.2?} including process start): {:.0} entries/s",
        f64::from(n) / took.as_secs_f64()
    );
}

/// N nodes, each bootstrapped to the first; entries submitted to the first
/// one at a time; time until every node holds each.
fn propagation(n: usize, rounds: u32) {
    let first = Node::start(None);
    let mut nodes = vec![first];
    for _ in 1..n {
        let next = Node::start(nodes.first());
        nodes.push(next);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    wait_peers(&all);
    let signed = entries(12, rounds);
    let mut latencies = Vec::new();
    for (i, entry) in signed.iter().enumerate() {
        let start = Instant::now();
        nodes[0].submit(std::slice::from_ref(entry));
        wait_count(&all, i as u64 + 1);
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "propagation to all of {n} nodes (submitted entry, spread by sync): p50 {:.1?}, p99 {:.1?}, max {:.1?} over {rounds} entries",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

fn wait_peers(nodes: &[&Node]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes
        .iter()
        .any(|n| n.status()["peers"].as_array().is_none_or(|p| p.is_empty()))
    {
        assert!(Instant::now() < deadline, "nodes did not connect");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_count(nodes: &[&Node], count: u64) {
    wait_count_every(nodes, count, Duration::from_millis(1));
}

/// Polls each node's status every `pause` until it holds `count` entries.
fn wait_count_every(nodes: &[&Node], count: u64, pause: Duration) {
    let deadline = Instant::now() + Duration::from_secs(600);
    for node in nodes {
        while node.status()["entries"].as_u64().unwrap_or(0) < count {
            assert!(Instant::now() < deadline, "entry {count} never arrived");
            std::thread::sleep(pause);
        }
    }
}

fn rss_kib(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
