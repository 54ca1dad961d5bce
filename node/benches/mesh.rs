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
use support::{Node, Repo, declare, entries, http, wait_converged};

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
        propagation(n, 50);
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

/// N nodes, each bootstrapped to a random earlier one (a random tree that
/// Kademlia then fills in). The first watches a git repository; each round
/// commits to it and pokes it with a push webhook, so it announces the
/// commit: an entry it signs and gossips. The time from the announcement's
/// own timestamp to the last node's `last_applied_at` is the propagation.
fn propagation(n: usize, rounds: u32) {
    let repo = Repo::new();
    repo.commit_recipe("[[step]]\nname = \"x\"\ncommand = \"true\"\n", "round 0");
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let first = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &[
            "--allow-local-repositories",
            "--poll-interval-secs",
            "3600",
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
        ],
    );
    let mut nodes = vec![first];
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 1..n {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let peer = &nodes[(rng % nodes.len() as u64) as usize];
        let next = Node::start(Some(peer));
        nodes.push(next);
    }
    let all: Vec<&Node> = nodes.iter().collect();
    wait_peers(&all);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(
        keys.path(),
        &nodes[0],
        "bench",
        &repo,
        &["nowhere"],
        &nodes[0],
        &[],
    );
    wait_count(&all, 1);
    let mut latencies = Vec::new();
    for round in 1..=rounds {
        let commit = if round > 1 {
            repo.commit_file("round", &round.to_string(), &format!("round {round}"))
        } else {
            repo.git(&["rev-parse", "HEAD"])
        };
        let expected = u64::from(round) + 1;
        nodes[0].poke(SECRET);
        wait_count(&all, expected);
        let announced_at = announced_at(&nodes[0], &project, &commit);
        let arrived = all
            .iter()
            .map(|node| node.status()["last_applied_at"].as_u64().unwrap())
            .max()
            .unwrap();
        latencies.push(Duration::from_millis(arrived.saturating_sub(announced_at)));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "propagation of a gossiped entry to all of {n} nodes: p50 {:.1?}, p99 {:.1?}, max {:.1?} over {rounds} entries",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

const SECRET: &str = "a bench webhook secret";

/// When `commit` was announced, once the node's matrix shows it.
fn announced_at(node: &Node, project: &str, commit: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let matrix = http(
            &node.http,
            "GET",
            &format!("/api/v1/projects/{project}/matrix"),
            "",
        )
        .1;
        let row = matrix["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["commit"] == commit));
        if let Some(at) = row.and_then(|r| r["announced_at"].as_u64()) {
            return at;
        }
        assert!(Instant::now() < deadline, "{commit} never showed: {matrix}");
        std::thread::sleep(Duration::from_millis(5));
    }
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
