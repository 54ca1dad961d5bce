//! Build figures from real `buildmesh node` processes on 127.0.0.1 and a
//! real git repository: commit-to-result latency for a trivial recipe on
//! one node and on a 3-node mesh, and the overhead per build compared with
//! running the same step by hand.
//!
//! `cargo bench -p buildmesh --bench builds` (`BUILDMESH_BENCH_ROUNDS=N`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, declare, http};

const SECRET: &str = "a bench webhook secret";
const RECIPE: &str = "[[step]]\nname = \"check\"\ncommand = \"test -f round\"\n";

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let rounds: u32 = std::env::var("BUILDMESH_BENCH_ROUNDS")
        .unwrap_or_else(|_| "20".into())
        .parse()
        .unwrap();
    let by_hand = by_hand(rounds);
    println!("the step by hand (sh -c, fresh process): p50 {by_hand:.1?}");
    if std::env::var_os("BUILDMESH_BENCH_BACKLOG_ONLY").is_some() {
        let took = backlog(30);
        println!("30 commits pushed at once to 1 node: all built in {took:.1?}");
        return;
    }
    let one = latency(1, rounds);
    report("1 node", &one, by_hand);
    let three = latency(3, rounds);
    report("3-node mesh", &three, by_hand);
    let took = backlog(30);
    println!(
        "30 commits pushed at once to 1 node: all built in {took:.1?} ({:.1?} a commit; the \
         step by hand takes {by_hand:.1?})",
        took / 30
    );
}

fn report(what: &str, latencies: &[Duration], by_hand: Duration) {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "commit-to-result on {what}: p50 {:.1?}, p99 {:.1?} over {} commits; overhead per build over the step by hand: {:.1?} (p50)",
        at(0.5),
        at(0.99),
        latencies.len(),
        at(0.5).saturating_sub(by_hand)
    );
}

/// The recipe's step run directly, as a person would.
fn by_hand(rounds: u32) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("round"), "1").unwrap();
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let status = Command::new("/bin/sh")
                .args(["-c", "test -f round"])
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// A mesh of `nodes` nodes ready to build one project of a fresh repository.
struct Bench {
    repo: Repo,
    watcher: Node,
    _builders: Vec<Node>,
    project: String,
    _secrets: tempfile::TempDir,
    _maintainer: Maintainer,
}

/// `nodes` nodes: the first watches the repository (and builds, when
/// alone); with more, the others build and compete for each cell.
fn bench_mesh(nodes: usize) -> Bench {
    let repo = Repo::new();
    repo.commit_recipe(RECIPE, "round 0");
    repo.commit_file("round", "0", "round 0 file");
    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook-secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    // Nodes build only what their operators accept (docs/trust.md).
    let maintainer = Maintainer::new();
    let watcher_platform = if nodes == 1 { "here" } else { "elsewhere" };
    let watcher = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &[
            "--allow-local-repositories",
            "--poll-interval-secs",
            "3600",
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
            "--platform",
            watcher_platform,
            "--accept-maintainer",
            &maintainer.key,
        ],
    );
    let builders: Vec<Node> = (1..nodes)
        .map(|_| {
            Node::launch(
                tempfile::tempdir().unwrap(),
                vec![&watcher],
                &[
                    "--allow-local-repositories",
                    "--platform",
                    "here",
                    "--accept-maintainer",
                    &maintainer.key,
                ],
            )
        })
        .collect();
    let mut trusted: Vec<&Node> = builders.iter().collect();
    if nodes == 1 {
        trusted.push(&watcher);
    }
    let project = declare(
        maintainer.path(),
        &watcher,
        "bench",
        &repo,
        &["here"],
        &watcher,
        &trusted,
    );
    std::thread::sleep(Duration::from_secs(2));
    Bench {
        repo,
        watcher,
        _builders: builders,
        project,
        _secrets: secrets,
        _maintainer: maintainer,
    }
}

/// Each round commits, pokes the watcher with a push webhook and times
/// until the watcher's matrix shows the commit's result.
///
/// Rounds are spaced by more than the webhook debounce (one poll per
/// 200 ms, issue 13): back to back, each push would wait out the rest of
/// the previous one's window, and the bench would time the debounce.
fn latency(nodes: usize, rounds: u32) -> Vec<Duration> {
    let bench = bench_mesh(nodes);
    let mut latencies = Vec::new();
    for round in 1..=rounds {
        std::thread::sleep(Duration::from_millis(250));
        let message = format!("round {round}");
        let commit = bench
            .repo
            .commit_file("round", &round.to_string(), &message);
        let start = Instant::now();
        bench.watcher.poke(SECRET);
        wait_result(&bench.watcher, &bench.project, &commit);
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies
}

/// One node, `commits` commits pushed at once (one webhook): the time from
/// the push to the last result.
fn backlog(commits: u32) -> Duration {
    let bench = bench_mesh(1);
    // The first poll of a branch announces its head only: let it happen
    // before the backlog, so the backlog's commits are new to the node.
    let head = bench.repo.git(&["rev-parse", "HEAD"]);
    bench.watcher.poke(SECRET);
    wait_result(&bench.watcher, &bench.project, head.trim());
    std::thread::sleep(Duration::from_millis(250));
    for n in 1..=commits {
        bench
            .repo
            .commit_file("round", &format!("b{n}"), &format!("backlog {n}"));
    }
    // One push of all the commits, as the issue measured: one poll
    // announces them at once, and the node builds them one by one.
    let start = Instant::now();
    bench.watcher.poke(SECRET);
    let matrix = format!("/api/v1/projects/{}/matrix", bench.project);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, m) = http(&bench.watcher.http, "GET", &matrix, "");
        let rows = m["rows"].as_array().cloned().unwrap_or_default();
        let passed = rows.iter().filter(|r| r["cells"][0]["status"] == "passed");
        if passed.count() as u32 >= commits {
            return start.elapsed();
        }
        assert!(Instant::now() < deadline, "the backlog did not clear: {m}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_result(node: &Node, project: &str, commit: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, matrix) = http(
            &node.http,
            "GET",
            &format!("/api/v1/projects/{project}/matrix"),
            "",
        );
        let done = matrix["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|row| row["commit"] == commit && row["cells"][0]["status"] == "passed");
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no result for {commit}: {matrix}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
