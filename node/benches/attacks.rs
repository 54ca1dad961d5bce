//! Issue 13 under load: a real `buildmesh node` on 127.0.0.1 (and a peer,
//! which blob fetches need) is attacked by this process the ways a
//! stranger with a key and an HTTP client could, one attack at a time;
//! meanwhile a separate client asks `GET /api/v1/node` every 50 ms. Each
//! line gives that answer's time (p50, p99, max), the answers that failed
//! (an error, a timeout past 10 s, or not a 200), the node's RSS (peak
//! during the attack, and after it) and what the attack itself saw.
//!
//! `cargo bench -p buildmesh --bench attacks` (`BUILDMESH_BENCH_SECONDS`:
//! how long the held attacks last, 5 by default; `BUILDMESH_BENCH_FLOOD`:
//! entries of the flood, 5,000 by default; `BUILDMESH_BENCH_COMMITS`:
//! commits of the log exported, 1,000 by default, each ~45 KB).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{ProjectId, Timestamp, sha256};
use ed25519_dalek::SigningKey;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Node, connect_from, get_head, http, owned_log, read_chunked, requests_of};

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let held = Duration::from_secs(env("BUILDMESH_BENCH_SECONDS", 5));
    let flood = env("BUILDMESH_BENCH_FLOOD", 5000) as u32;
    let commits = env("BUILDMESH_BENCH_COMMITS", 1000) as u32;
    let node = Node::start(None);
    let peer = Node::start(Some(&node));
    node.wait_connected(&peer);
    let (_, log) = owned_log(41, "big", commits, 40_000);
    let start = Instant::now();
    node.submit_large(&log);
    node.wait_entries(log.len() as u64, Duration::from_secs(600));
    println!(
        "log: {} entries by a key with a role ({} MB of wire bytes), submitted in {:.1?}; \
         RSS {} MB",
        log.len(),
        log.iter().map(Vec::len).sum::<usize>() >> 20,
        start.elapsed(),
        node.rss() >> 20
    );
    println!("GET /api/v1/node every 50 ms while each attack runs:");
    attack(&node, "baseline (no attack)", || {
        std::thread::sleep(held);
        String::new()
    });
    attack(&node, "(a) 2,000 unknown blobs", || blobs(&node));
    // Before the flood, so that its figures are the exports' own.
    attack(&node, "(c) 16 concurrent exports", || exports(&node));
    attack(&node, "(b) flood by a key without role", || {
        flood_of(&node, flood)
    });
    // Held past the node's timeouts, to see it close them.
    let past = |timeout: Duration| held.max(timeout + Duration::from_secs(2));
    attack(&node, "(d) 500 slowloris, 8 addresses", || {
        slowloris(&node, past(buildmesh_http::HEADER_TIMEOUT))
    });
    attack(&node, "(e) 20 unfinished chunked POSTs", || {
        chunked(&node, past(buildmesh_http::BODY_TIMEOUT))
    });
    attack(&node, "(f) 64 event streams, 1 client", || {
        events(&node, held)
    });
    drop(peer);
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |v| v.parse().unwrap())
}

/// Runs `attack` while probing `GET /api/v1/node`; prints one line.
fn attack(node: &Node, name: &str, attack: impl FnOnce() -> String) {
    let stop = Arc::new(AtomicBool::new(false));
    let probe = probe(node.http.clone(), stop.clone());
    let peak = peak_rss(node.pid(), stop.clone());
    let start = Instant::now();
    let seen = attack();
    let took = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (mut times, failures) = probe.join().unwrap();
    let peak = peak.join().unwrap();
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:<34} {took:>7.1?}  node: n={:<4} p50={:>8.1?} p99={:>8.1?} max={:>8.1?} \
         failed={failures:<3} RSS peak {:>4} MB, after {:>4} MB  {seen}",
        times.len(),
        at(0.5),
        at(0.99),
        times.last().copied().unwrap_or_default(),
        peak >> 20,
        node.rss() >> 20,
    );
}

/// The peak RSS of process `pid`, sampled every 20 ms until `stop`.
fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !stop.load(Ordering::Relaxed) {
            peak = support::rss_of(pid).max(peak);
            std::thread::sleep(Duration::from_millis(20));
        }
        peak.max(support::rss_of(pid))
    })
}

/// `GET /api/v1/node` every 50 ms until `stop`: answer times of the 200s
/// and how many failed.
fn probe(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<Duration>, u32)> {
    std::thread::spawn(move || {
        let (mut times, mut failures) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let start = Instant::now();
            match status_code(&addr, "/api/v1/node") {
                Some(200) => times.push(start.elapsed()),
                _ => failures += 1,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (times, failures)
    })
}

/// The status of a GET on a fresh connection, `None` on an error or a
/// wait past 10 s.
fn status_code(addr: &str, path: &str) -> Option<u16> {
    let addr: std::net::SocketAddr = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}

/// (a) 2,000 GETs of blobs nobody holds, from 16 threads.
fn blobs(node: &Node) -> String {
    let threads: Vec<_> = (0..16u32)
        .map(|t| {
            let addr = node.http.clone();
            std::thread::spawn(move || {
                let mut codes = std::collections::BTreeMap::<Option<u16>, u32>::new();
                for i in 0..125u32 {
                    let hash = hex::encode(sha256(&[&t.to_le_bytes(), &i.to_le_bytes()]));
                    let code = status_code(&addr, &format!("/api/v1/blobs/{hash}"));
                    *codes.entry(code).or_default() += 1;
                }
                codes
            })
        })
        .collect();
    let mut codes = std::collections::BTreeMap::<Option<u16>, u32>::new();
    for thread in threads {
        for (code, n) in thread.join().unwrap() {
            *codes.entry(code).or_default() += n;
        }
    }
    format!("answers: {}", counts(&codes))
}

fn counts(codes: &std::collections::BTreeMap<Option<u16>, u32>) -> String {
    codes
        .iter()
        .map(|(code, n)| match code {
            Some(code) => format!("{code}×{n}"),
            None => format!("error/timeout×{n}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// (b) `n` valid ~44 KB results by a fresh key that no project gave a
/// role, through `POST /api/v1/entries`.
fn flood_of(node: &Node, n: u32) -> String {
    let mut writer = ChainWriter::new(SigningKey::from_bytes(&[99; 32]));
    let project = ProjectId(sha256(&[b"nobody's project"]));
    let entries: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let commit = support::commit_of(i);
            let body = support::big_result(project, commit, 44_000);
            writer
                .write(Timestamp(1_000 + u64::from(i)), body)
                .unwrap()
                .to_wire()
        })
        .collect();
    let before = dir_bytes(node.dir());
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    for request in requests_of(&entries) {
        let hexes: Vec<String> = request.iter().map(hex::encode).collect();
        let body = serde_json::json!({ "entries": hexes }).to_string();
        let (code, reply) = loop {
            // Throttled past its burst: wait as the node says, and count it.
            let (code, reply) = http(&node.http, "POST", "/api/v1/entries", &body);
            if code != 429 {
                break (code, reply);
            }
            *outcomes.entry("429 (waited)".into()).or_default() += 1;
            std::thread::sleep(Duration::from_millis(500));
        };
        match reply["results"].as_array() {
            Some(results) if code == 200 => {
                for result in results {
                    let outcome = result["outcome"].as_str().unwrap_or("?");
                    let kind = outcome.split([':', ' ']).next().unwrap_or("?");
                    *outcomes.entry(kind.to_string()).or_default() += 1;
                }
            }
            _ => *outcomes.entry(format!("HTTP {code}")).or_default() += request.len() as u32,
        }
    }
    let outcomes: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    format!(
        "{n} entries: {}; store {} → {} MB",
        outcomes.join(" "),
        before >> 20,
        dir_bytes(node.dir()) >> 20
    )
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// (c) 16 exports at once (4 client addresses × 4), each read at full
/// speed to its end; a 17th is tried while they run.
fn exports(node: &Node) -> String {
    let mut readers = Vec::new();
    let mut refused = 0;
    for client in 0..16u8 {
        let stream = connect_from(&node.http, [127, 0, 0, 10 + client / 4]);
        let (code, reader) = get_head(stream, &node.http, "/api/v1/entries");
        if code == 200 {
            readers.push(reader);
        } else {
            refused += 1;
        }
    }
    let extra = get_head(
        connect_from(&node.http, [127, 0, 0, 30]),
        &node.http,
        "/api/v1/entries",
    )
    .0;
    let opened = readers.len();
    let threads: Vec<_> = readers
        .into_iter()
        .map(|mut r| std::thread::spawn(move || read_chunked(&mut r, Duration::ZERO)))
        .collect();
    let (mut bytes, mut lines) = (0, 0);
    for thread in threads {
        let (b, l) = thread.join().unwrap();
        bytes += b;
        lines += l;
    }
    format!(
        "{opened} opened ({refused} refused), a 17th: {extra}; {} MB, {lines} lines read",
        bytes >> 20
    )
}

/// (d) 500 connections sending a request's headers one byte per second,
/// from eight addresses (127.0.0.2 to .9) other than the probe's.
fn slowloris(node: &Node, held: Duration) -> String {
    let head = format!("GET /api/v1/node HTTP/1.1\r\nHost: {}\r\n", node.http);
    let mut open: Vec<TcpStream> = (0..500u16)
        .map(|i| connect_from(&node.http, [127, 0, 0, 2 + (i % 8) as u8]))
        .collect();
    let connected = open.len();
    for stream in &mut open {
        let _ = stream.write_all(head.as_bytes());
    }
    trickle(&mut open, held, b"X-Slow: ");
    format!(
        "{connected} connected, {} closed by the node",
        closed(&open)
    )
}

/// (e) 20 chunked POST bodies that announce a large chunk and send it one
/// byte per second.
fn chunked(node: &Node, held: Duration) -> String {
    let head = format!(
        "POST /api/v1/entries HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n100000\r\n{{\"entries\": [\"",
        node.http
    );
    let mut open: Vec<TcpStream> = (0..20)
        .map(|_| connect_from(&node.http, [127, 0, 0, 10]))
        .collect();
    for stream in &mut open {
        let _ = stream.write_all(head.as_bytes());
    }
    trickle(&mut open, held, b"00");
    format!(
        "{} connected, {} closed by the node",
        open.len(),
        closed(&open)
    )
}

/// Writes the next byte of `pattern` to every stream each second, for
/// `held`.
fn trickle(open: &mut [TcpStream], held: Duration, pattern: &[u8]) {
    let start = Instant::now();
    let mut next = 0;
    while start.elapsed() < held {
        std::thread::sleep(Duration::from_secs(1).min(held.saturating_sub(start.elapsed())));
        for stream in open.iter_mut() {
            let _ = stream.write_all(&pattern[next % pattern.len()..][..1]);
        }
        next += 1;
    }
}

/// How many of `open` the other end closed (or answered and closed).
fn closed(open: &[TcpStream]) -> usize {
    open.iter()
        .filter(|stream| {
            let mut stream: &TcpStream = stream;
            stream.set_nonblocking(true).unwrap();
            let mut byte = [0u8; 1];
            !matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count()
}

/// (f) 64 event streams opened by one client, held open.
fn events(node: &Node, held: Duration) -> String {
    let mut codes = std::collections::BTreeMap::<Option<u16>, u32>::new();
    let mut open = Vec::new();
    for _ in 0..64 {
        let stream = TcpStream::connect(&node.http).unwrap();
        let (code, reader) = get_head(stream, &node.http, "/api/v1/events");
        *codes.entry(Some(code)).or_default() += 1;
        if code == 200 {
            open.push(reader);
        }
    }
    std::thread::sleep(held);
    format!("answers: {}", counts(&codes))
}
