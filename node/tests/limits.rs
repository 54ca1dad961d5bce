//! Issue 13: a stranger with a key and an HTTP client cannot exhaust a
//! node. Real nodes on 127.0.0.1, under load their limits must absorb.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{Node, connect_from, get_head, owned_log, read_chunked};

/// Commits of the test log: each an announcement and a ~40 KB result,
/// ~12 MB of entries in all (~25 MB of export text).
const COMMITS: u32 = 300;
/// The node's resident memory must stay under this while 16 clients
/// export its log slowly. Its store's page cache alone may take 64 MiB;
/// before exports were bounded in bytes and streamed entry by entry, 16
/// exports of this log took it past 300 MB.
const RSS_MAX: u64 = 150 * 1024 * 1024;

/// Issue 13, item "exports eat memory": 16 concurrent slow exports of a
/// ~12 MB log, each read to its end, keep the node's memory bounded, and
/// `GET /api/v1/node` answers meanwhile. A 17th export, and a 5th from one
/// client, are refused.
#[test]
fn sixteen_slow_exports_keep_memory_bounded_and_status_answering() {
    let node = Node::start(None);
    let (_, log) = owned_log(41, "big", COMMITS, 40_000);
    let total = log.len() as u64;
    let start = Instant::now();
    node.submit_large(&log);
    node.wait_entries(total, Duration::from_secs(60));
    eprintln!(
        "{total} entries submitted in {:.1?}; RSS {} MB",
        start.elapsed(),
        node.rss() >> 20
    );

    // Four clients, four exports each: the most either may hold.
    let mut exports = Vec::new();
    for client in 0..16u8 {
        let stream = connect_from(&node.http, [127, 0, 0, 10 + client / 4]);
        let (code, reader) = get_head(stream, &node.http, "/api/v1/entries");
        assert_eq!(code, 200, "export {client}");
        exports.push(reader);
    }
    let refused = |from: [u8; 4]| {
        get_head(
            connect_from(&node.http, from),
            &node.http,
            "/api/v1/entries",
        )
        .0
    };
    assert_eq!(
        refused([127, 0, 0, 10]),
        503,
        "a fifth export of one client"
    );
    assert_eq!(refused([127, 0, 0, 20]), 503, "a seventeenth export");

    let done = Arc::new(AtomicBool::new(false));
    let watcher = watch(&node, done.clone());
    let start = Instant::now();
    let readers: Vec<_> = exports
        .into_iter()
        .map(|mut reader| {
            std::thread::spawn(move || read_chunked(&mut reader, Duration::from_millis(1)))
        })
        .collect();
    for reader in readers {
        let (bytes, lines) = reader.join().unwrap();
        assert_eq!(
            lines,
            1 + total,
            "a header line, then every entry ({bytes} bytes)"
        );
    }
    done.store(true, Ordering::Relaxed);
    let (peak, times) = watcher.join().unwrap();
    let worst = times.iter().max().copied().unwrap_or_default();
    eprintln!(
        "16 exports read in {:.1?}: peak RSS {} MB, after {} MB; /api/v1/node answered {} \
         times meanwhile, slowest {worst:.1?}",
        start.elapsed(),
        peak >> 20,
        node.rss() >> 20,
        times.len()
    );
    assert!(peak < RSS_MAX, "peak RSS {} MB", peak >> 20);
    assert!(!times.is_empty(), "the status never answered");
    // Generous, for a loaded machine: it took over 7 s when 16 exports
    // formatted 4 MiB batches on the runtime's threads.
    assert!(worst < Duration::from_secs(4), "the status took {worst:?}");
}

/// Until `done`: the node's peak RSS, sampled every 20 ms, and the answer
/// times of `GET /api/v1/node`, asked every 100 ms (each must be a 200).
fn watch(node: &Node, done: Arc<AtomicBool>) -> std::thread::JoinHandle<(u64, Vec<Duration>)> {
    let (addr, pid) = (node.http.clone(), node.pid());
    let asking = done.clone();
    let status = std::thread::spawn(move || {
        let mut times = Vec::new();
        while !asking.load(Ordering::Relaxed) {
            let asked = Instant::now();
            let (code, body) = support::http(&addr, "GET", "/api/v1/node", "");
            assert_eq!(code, 200, "{body}");
            times.push(asked.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
        times
    });
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(Ordering::Relaxed) {
            peak = support::rss_of(pid).max(peak);
            std::thread::sleep(Duration::from_millis(20));
        }
        (peak, status.join().unwrap())
    })
}

/// Issue 13, item "anyone can fill every node's disk": a key that has no
/// role in any project pushes 500 valid entries of ~44 KB (~22 MB) at one
/// node of two. Every one is refused with an error that says why; neither
/// node's log changes, nothing reaches the peer, and a key given a role
/// afterwards is taken as before.
#[test]
fn a_flood_by_a_key_without_a_role_leaves_every_store_unchanged() {
    use buildmesh_protocol::{ProjectId, Timestamp, sha256};
    let node = Node::start(None);
    let peer = Node::start(Some(&node));
    node.wait_connected(&peer);
    let (_, owned) = owned_log(42, "kept", 3, 1_000);
    node.submit(&owned);
    let held = owned.len() as u64;
    peer.wait_entries(held, Duration::from_secs(20));
    let digest = |n: &Node| n.status()["digest"].as_str().unwrap().to_owned();
    let before = (digest(&node), digest(&peer));

    let mut stranger =
        buildmesh_core::log::ChainWriter::new(ed25519_dalek::SigningKey::from_bytes(&[99; 32]));
    let project = ProjectId(sha256(&[b"nobody's project"]));
    let flood: Vec<Vec<u8>> = (0..500u32)
        .map(|i| {
            let commit = support::commit_of(i);
            let body = support::big_result(project, commit, 44_000);
            stranger.write(Timestamp(1_000), body).unwrap().to_wire()
        })
        .collect();
    let mut refused = 0;
    for request in support::requests_of(&flood) {
        let hexes: Vec<String> = request.iter().map(hex::encode).collect();
        let body = serde_json::json!({ "entries": hexes }).to_string();
        let reply = support::submit_body(&node.http, &body);
        for result in reply["results"].as_array().unwrap() {
            let outcome = result["outcome"].as_str().unwrap();
            assert!(
                outcome.starts_with("refused: its author is not the owner"),
                "{outcome}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, flood.len());
    // A change to either log would show within a sync; make one happen.
    let (_, more) = owned_log(43, "later", 1, 1_000);
    node.submit(&more);
    peer.wait_entries(held + more.len() as u64, Duration::from_secs(20));
    node.wait_entries(held + more.len() as u64, Duration::from_secs(5));
    assert_ne!(
        before,
        (digest(&node), digest(&peer)),
        "the later log went in"
    );
    assert_eq!(digest(&node), digest(&peer), "and nothing else");
}

/// Issue 13, item "connections never time out": under `ulimit -n 256`,
/// 300 idle connections from another address used to leave the node no
/// descriptor to accept with, and `GET /api/v1/node` timed out. The node
/// now fits its connection cap under its limit: the idle client holds its
/// share of places, the rest are refused at once, and the status still
/// answers.
#[test]
fn a_node_with_few_descriptors_keeps_answering_under_idle_connections() {
    let launch = support::Launch {
        nofile: Some(256),
        ..support::Launch::default()
    };
    let node = Node::launch_with(tempfile::tempdir().unwrap(), Vec::new(), &[], &launch);
    let idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| connect_from(&node.http, [127, 0, 0, 2]))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = node.status();
    // The sandbox's probe step asks for limits no higher than the node's
    // own; asking for more failed it under `ulimit -n 256`.
    if status["sandbox"]["mode"] != "bubblewrap" {
        no_sandbox_under_the_limit(&status);
    }
    for _ in 0..5 {
        let start = Instant::now();
        let (code, status) = support::http(&node.http, "GET", "/api/v1/node", "");
        assert_eq!(code, 200, "{status}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    drop(idle);
}

/// The node under `ulimit -n 256` runs no sandbox: why? A sandbox that
/// runs in this test's process, without that limit, means the node's
/// probe failed only under it: the bug. Otherwise none runs here at all,
/// and the test says whether bwrap is missing or installed but refused
/// (user namespaces off), which installing bubblewrap does not fix.
fn no_sandbox_under_the_limit(status: &serde_json::Value) {
    use buildmesh_runner::{Sandbox, SandboxConfig, SandboxError};
    let error = match Sandbox::probe(SandboxConfig::default()) {
        Ok(_) => panic!("a sandbox runs here, but not in a node under ulimit -n 256: {status}"),
        Err(error) => error,
    };
    let missing = match &error {
        SandboxError::NoBubblewrap { .. } => Some("bubblewrap"),
        SandboxError::NoPrlimit(_) => Some("util-linux"),
        SandboxError::Refused(_) | SandboxError::Io(_) => None,
    };
    buildmesh_test_servers::skip_sandbox(missing, &error);
}

/// Issue 13, items 5, 6 and 8 on a real node: one client's 64 event
/// streams leave the export and the status to others; a stored 16 MiB log
/// is served whole; errors come as the documented JSON with the documented
/// status.
#[test]
fn streams_blobs_and_errors_on_a_real_node() {
    use std::io::Read;
    let node = Node::start(None);
    // Item 5: a client holding every event stream it can.
    let held: Vec<_> = (0..64)
        .map(|_| {
            let stream = connect_from(&node.http, [127, 0, 0, 2]);
            get_head(stream, &node.http, "/api/v1/events")
        })
        .collect();
    let opened = held.iter().filter(|(code, _)| *code == 200).count();
    assert_eq!(
        opened,
        buildmesh_http::EVENTS_PER_CLIENT_MAX,
        "the rest were refused"
    );
    let export = connect_from(&node.http, [127, 0, 0, 3]);
    let (code, _) = get_head(export, &node.http, "/api/v1/entries");
    assert_eq!(code, 200, "another client's export");
    assert_eq!(support::http(&node.http, "GET", "/api/v1/node", "").0, 200);
    drop(held);

    // Item 6: a 16 MiB log, as the runner stores it, served from disk.
    let log = vec![b'x'; 16 << 20];
    let hash = hex::encode(buildmesh_protocol::sha256(&[&log]));
    let blobs = node.dir().join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&hash), &log).unwrap();
    let stream = connect_from(&node.http, [127, 0, 0, 4]);
    let (code, mut body) = get_head(stream, &node.http, &format!("/api/v1/blobs/{hash}"));
    assert_eq!(code, 200);
    let mut got = Vec::new();
    body.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), log.len());

    // Item 8: the documented shapes.
    let json_error = |method: &str, path: &str, body: &str, status: u16| {
        let (code, reply) = support::http(&node.http, method, path, body);
        assert_eq!(code, status, "{method} {path}: {reply}");
        assert!(reply["error"].is_string(), "{method} {path}: {reply}");
    };
    json_error("DELETE", "/api/v1/node", "", 405);
    json_error(
        "GET",
        &format!("/api/v1/entries/{}", "z".repeat(9000)),
        "",
        414,
    );
    json_error("POST", "/api/v1/entries", &"x".repeat(3 << 20), 413);
    json_error("GET", "/api/v1/projects/zz/matrix", "", 400);
    let (code, _) = support::http(&node.http, "GET", "/projects/zz", "");
    assert_eq!(code, 400, "a page with a malformed project id");
}
