//! The first hour's figure: with `buildmesh up` running in a checkout (its
//! own poll, every 2 s by default, no webhook), the time from `git commit`
//! to the result's line in the terminal and to the result on the page
//! (the result's own page answering 200), split into the wait for the
//! poll (commit to the "announced" line) and what follows. Real
//! processes, a real repository, 127.0.0.1; a recipe of two quick steps.
//! Commits land at spread-out points of the poll period, as a person's
//! would.
//!
//! `cargo bench -p buildmesh --bench up` (`BUILDMESH_BENCH_ROUNDS=N`,
//! default 10; `BUILDMESH_BENCH_POLL_SECS=S`, default 1).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support::Repo;

const RECIPE: &str = "[[step]]\nname = \"compile\"\ncommand = \"true\"\n\n[[step]]\nname = \"test\"\ncommand = \"test -f round\"\n";

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let rounds = env("BUILDMESH_BENCH_ROUNDS", 10);
    let poll = env("BUILDMESH_BENCH_POLL_SECS", 1);
    let repo = Repo::new();
    repo.commit_file("round", "0", "round 0");
    repo.commit_recipe(RECIPE, "the recipe");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args([
            "up",
            "--http",
            &addr,
            "--poll-interval-secs",
            &poll.to_string(),
        ])
        .current_dir(repo.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = read_lines(child.stdout.take().unwrap());
    wait_page(&lines, &addr, "the recipe");
    let mut figures: [Vec<Duration>; 4] = Default::default();
    for round in 1..=rounds {
        // Spread over the poll period (a fixed step of 0.37 periods).
        let offset = (round * 370) % 1000 * poll;
        std::thread::sleep(Duration::from_millis(offset));
        let start = Instant::now();
        let commit = repo.commit_file("round", &round.to_string(), &format!("round {round}"));
        let seen = wait_page(&lines, &addr, &commit[..10]);
        figures[0].push(seen.announced - start);
        figures[1].push(seen.result - seen.announced);
        figures[2].push(seen.result - start);
        figures[3].push(seen.page - start);
    }
    let _ = child.kill();
    let _ = child.wait();
    println!("{rounds} commits, up polling every {poll} s:");
    let [announced, built, terminal, page] = &mut figures;
    report("git commit to its \"announced\" line (the poll)", announced);
    report(
        "\"announced\" to the result line (claim, build, sign)",
        built,
    );
    report("git commit to the result line in the terminal", terminal);
    report("git commit to the result's page answering 200", page);
}

/// When each line about one commit was seen.
struct Seen {
    announced: Instant,
    result: Instant,
    page: Instant,
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_millis();
    println!(
        "  {what}: p50 {} ms, p90 {} ms, max {} ms",
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn read_lines(stdout: std::process::ChildStdout) -> Receiver<(Instant, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for the lines about the commit `marker` names (its short id, or
/// "the recipe" for whatever is built first), then for its page.
fn wait_page(lines: &Receiver<(Instant, String)>, addr: &str, marker: &str) -> Seen {
    let deadline = Instant::now() + Duration::from_secs(120);
    let ours = |line: &str| marker == "the recipe" || line.contains(marker);
    let (mut announced, mut result) = (None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = lines.recv_timeout(left).expect("a result from up");
        if line.starts_with("announced ") && ours(&line) {
            announced.get_or_insert(at);
        } else if line.starts_with("result ") && ours(&line) {
            result = Some(at);
        } else if let (Some(result), Some(url)) = (result, line.trim().strip_prefix("http://")) {
            let path = &url[url.find('/').unwrap()..];
            loop {
                let (code, _) = support::http_raw(addr, path);
                if code == 200 {
                    let announced = announced.unwrap_or(result);
                    let page = Instant::now();
                    return Seen {
                        announced,
                        result,
                        page,
                    };
                }
                assert!(Instant::now() < deadline, "no page at {url}");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
