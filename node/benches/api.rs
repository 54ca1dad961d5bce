//! HTTP figures from a real `buildmesh node` process on 127.0.0.1: matrix
//! JSON requests per second for a project of 1,000 commits × 10 platforms
//! whose every result states 20 metrics, from this process as the load
//! tool (keep-alive connections, one thread each), and the time to first
//! byte of the matrix and of the metrics over time (issue 17: the JSON and
//! the page, default query, 210 series of 50 commits; goal under 20 ms).
//!
//! `cargo bench -p buildmesh --bench api` (`BUILDMESH_BENCH_SECONDS`,
//! `BUILDMESH_BENCH_CONNECTIONS`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{
    Body, BuildResult, BuilderPolicy, Outcome, ProjectDeclaration, ProjectId, PublicKey, Timestamp,
};
use ed25519_dalek::SigningKey;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{Node, http};

const COMMITS: u32 = 1000;
const PLATFORMS: usize = 10;
const METRICS: usize = 20;

/// Fresh connections whose time to first byte is measured, per path
/// (`BUILDMESH_BENCH_SAMPLES`, to profile the node meanwhile).
const SAMPLES: &str = "21";

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let seconds: u64 = env("BUILDMESH_BENCH_SECONDS", "5").parse().unwrap();
    let connections: usize = env("BUILDMESH_BENCH_CONNECTIONS", "4").parse().unwrap();
    let samples: usize = env("BUILDMESH_BENCH_SAMPLES", SAMPLES).parse().unwrap();
    let node = Node::start(None);
    let (project, entries) = big_project();
    let start = Instant::now();
    node.submit(&entries);
    println!(
        "{} entries (1,000 commits × 10 platforms × 20 metrics) submitted in {:.1?}",
        entries.len(),
        start.elapsed()
    );
    let path = format!("/api/v1/projects/{project}/matrix");
    wait_for(&node, &path);
    let (bytes, ttfb) = first_byte(&node.http, &path);
    println!("matrix JSON (newest 50 rows): {bytes} bytes, time to first byte {ttfb:.2?}");
    let rate = load(&node.http, &path, connections, Duration::from_secs(seconds));
    println!(
        "matrix JSON: {rate:.0} requests/s over {connections} keep-alive connections for {seconds} s"
    );
    let page = format!("/projects/{project}");
    if http(&node.http, "GET", &page, "").0 == 200 {
        let (bytes, ttfb) = first_byte(&node.http, &page);
        println!("matrix page (HTML): {bytes} bytes, time to first byte {ttfb:.2?}");
    }
    wait_for_series(&node, &format!("/api/v1/projects/{project}/metrics"));
    for (what, path) in [
        (
            "metrics JSON",
            format!("/api/v1/projects/{project}/metrics"),
        ),
        (
            "metrics page (HTML)",
            format!("/projects/{project}/metrics"),
        ),
    ] {
        let (bytes, median, worst) = first_bytes(&node.http, &path, samples);
        println!(
            "{what} (default: newest 50 rows, every metric and platform): {bytes} bytes, time to \
             first byte median {median:.2?}, worst {worst:.2?} of {samples}"
        );
    }
}

/// [`first_byte`] over `samples` fresh connections, one after another:
/// the body's bytes, the median and the worst time to first byte.
fn first_bytes(addr: &str, path: &str, samples: usize) -> (usize, Duration, Duration) {
    let mut bytes = 0;
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let (body, ttfb) = first_byte(addr, path);
            bytes = body;
            ttfb
        })
        .collect();
    times.sort();
    (bytes, times[samples / 2], times[samples - 1])
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A maintainer's project, its commits announced by the maintainer, and a
/// passing result for every cell by one trusted builder, stating
/// [`METRICS`] metrics.
fn big_project() -> (ProjectId, Vec<Vec<u8>>) {
    let maintainer = SigningKey::from_bytes(&[21; 32]);
    let builder = SigningKey::from_bytes(&[22; 32]);
    let owner = PublicKey::from(maintainer.verifying_key());
    let platforms: Vec<String> = (0..PLATFORMS).map(|p| format!("platform-{p}")).collect();
    let project = ProjectId::derive(&owner, "big");
    let mut by_maintainer = ChainWriter::new(maintainer);
    let mut by_builder = ChainWriter::new(builder.clone());
    let mut entries = Vec::new();
    let declaration = Body::Project(ProjectDeclaration {
        name: "big".into(),
        repository: "https://example.invalid/big.git".into(),
        branches: vec!["main".into()],
        platforms: platforms.clone(),
        announcers: Vec::new(),
        builders: BuilderPolicy::Only(vec![builder.verifying_key().into()]),
        builds_per_cell: 1,
    });
    entries.push(
        by_maintainer
            .write(Timestamp(1), declaration)
            .unwrap()
            .to_wire(),
    );
    let mut results = Vec::new();
    for i in 0..COMMITS {
        let commit = support::commit_of(i);
        let at = Timestamp(1_000 + u64::from(i) * 1_000);
        let announce = support::announcement(project, i, at);
        entries.push(by_maintainer.write(at, announce).unwrap().to_wire());
        for platform in &platforms {
            let result = Body::Result(BuildResult {
                project,
                commit: commit.clone(),
                platform: platform.clone(),
                outcome: if i % 97 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Passed
                },
                steps: Vec::new(),
                artifacts: Vec::new(),
                metrics: (0..METRICS)
                    .map(|m| (format!("metric_{m:02}"), f64::from(i) * 0.5 + m as f64))
                    .collect(),
                environment: Default::default(),
                error: None,
            });
            results.push(by_builder.write(at.plus_ms(500), result).unwrap().to_wire());
        }
    }
    entries.extend(results);
    (project, entries)
}

fn wait_for(node: &Node, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while http(&node.http, "GET", path, "").0 != 200 {
        assert!(Instant::now() < deadline, "the matrix never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the views hold every result: each of the 21 metrics (the
/// 20 and the build's duration) on each platform has 50 points.
fn wait_for_series(node: &Node, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, answer) = http(&node.http, "GET", path, "");
        let series = answer["series"].as_array().cloned().unwrap_or_default();
        let full = series
            .iter()
            .all(|s| s["points"].as_array().map_or(0, Vec::len) == 50);
        if series.len() == (METRICS + 1) * PLATFORMS && full {
            return;
        }
        assert!(Instant::now() < deadline, "the series never filled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One fresh connection: bytes of the body and time to its first byte.
fn first_byte(addr: &str, path: &str) -> (usize, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).unwrap();
    let ttfb = start.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    (body, ttfb)
}

/// Requests per second from `connections` keep-alive connections.
fn load(addr: &str, path: &str, connections: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (addr, path) = (addr.to_string(), path.to_string());
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
                while !stop.load(Ordering::Relaxed) {
                    writer.write_all(request.as_bytes()).unwrap();
                    read_response(&mut reader);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for thread in threads {
        thread.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}

/// Reads one response with a Content-Length body; panics on anything else.
fn read_response(reader: &mut BufReader<TcpStream>) {
    let mut length = None;
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length.expect("a Content-Length")];
    reader.read_exact(&mut body).unwrap();
}
