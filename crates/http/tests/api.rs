//! The HTTP API over a real socket on 127.0.0.1.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_http::{Backend, LogReader, NodeStatus, bind};
use std::sync::Arc;

fn backend(
    status: watch::Receiver<NodeStatus>,
    commands: tokio::sync::mpsc::Sender<buildmesh_http::Command>,
) -> Backend {
    Backend {
        status,
        commands,
        log: Arc::new(FixedLog),
        hook_secret: Some(b"hush".to_vec()),
        views: {
            // The views never change in these tests, but streams end when
            // nobody can publish any more: keep the publisher alive.
            let (publish, views) = watch::channel(Default::default());
            std::mem::forget(publish);
            views
        },
        libp2p_metrics: Arc::new(|| "libp2p_swarm_connections_established_total 3\n".to_string()),
        blobs: None,
        live: None,
        operator: Some(buildmesh_http::Operator {
            token: TOKEN.to_owned(),
            token_file: "/data/operator.token".into(),
        }),
        clock: || NOW,
    }
}

/// The time by the test servers' clock: nothing in HTTP may read another.
const NOW: buildmesh_protocol::Timestamp = buildmesh_protocol::Timestamp(1_700_000_000_000);

/// The operator token the test servers hold.
const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A log of 42 entries whose digest is all sevens.
struct FixedLog;

impl LogReader for FixedLog {
    fn digest(&self) -> Result<(u64, [u8; 32]), String> {
        Ok((42, [7; 32]))
    }
}
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, serde_json::Value) {
    request(addr, "GET", path, "").await
}

/// One HTTP/1.1 request over a fresh connection; the status and the JSON body.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status: u16 = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn node_status_is_served_as_published() {
    let (publish, status) = watch::channel(NodeStatus::default());
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    let task = tokio::spawn(server.serve(backend(status, commands), async move {
        let _ = stopped.await;
    }));
    publish.send_modify(|s| {
        s.public_key = "ab".repeat(32);
        s.entries = 42;
        s.peers = vec!["cd".repeat(32)];
    });
    let (code, body) = get(addr, "/api/v1/node").await;
    assert_eq!(code, 200);
    assert_eq!(body["entries"], 42);
    assert_eq!(body["digest_entries"], 42);
    assert_eq!(body["digest"], "07".repeat(32));
    assert_eq!(body["public_key"], "ab".repeat(32));
    assert_eq!(body["peers"][0], "cd".repeat(32));

    let (code, body) = get(addr, "/api/v1/nope").await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("http-api.md"));
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Issue 14, item 8.1: HTTP tells the time by the node's clock (given in
/// the backend), never by its own read of the system's.
#[tokio::test]
async fn times_answered_are_by_the_nodes_clock() {
    let (publish, status) = watch::channel(NodeStatus::default());
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    publish.send_modify(|s| {
        s.last_sync_at = NOW.0 - 5_000;
        s.peer_details = vec![buildmesh_http::PeerDetail {
            key: "cd".repeat(32),
            connected: true,
            ..Default::default()
        }];
    });
    let (code, body) = get(addr, "/api/v1/peers").await;
    assert_eq!(code, 200);
    assert_eq!(body["peers"][0]["last_seen"], NOW.0);
    let (code, text) = get_bytes(addr, "/metrics").await;
    assert_eq!(code, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.lines().any(|l| l == "buildmesh_sync_age_seconds 5"),
        "{text}"
    );
}

#[tokio::test]
async fn a_taken_port_is_a_clear_error() {
    let first = bind("127.0.0.1:0").await.unwrap();
    let addr = first.local_addr().unwrap().to_string();
    let error = bind(&addr).await.unwrap_err();
    // As the binary prints it (anyhow's `{:#}`): the error, then its cause.
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    let said = format!("{error}: {}", cause.unwrap_or_default());
    assert!(said.contains("--http"), "{said}");
    assert_eq!(said.matches("in use").count(), 1, "the cause once: {said}");
}

async fn post(addr: std::net::SocketAddr, path: &str, body: &str) -> (u16, serde_json::Value) {
    request(addr, "POST", path, body).await
}

#[tokio::test]
async fn submitted_entries_reach_the_node_and_bad_bodies_are_4xx() {
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, mut node) = tokio::sync::mpsc::channel(8);
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    tokio::spawn(async move {
        while let Some(buildmesh_http::Command::Submit { entries, reply }) = node.recv().await {
            let results = entries
                .iter()
                .map(|e| buildmesh_http::SubmitResult {
                    id: None,
                    outcome: format!("{} bytes", e.len()),
                })
                .collect();
            let _ = reply.send(results);
        }
    });
    let (code, body) = post(addr, "/api/v1/entries", r#"{"entries":["00ff","abcd12"]}"#).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["results"][1]["outcome"], "3 bytes");
    let (code, body) = post(addr, "/api/v1/entries", r#"{"entries":["zz"]}"#).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("not hex"));
    let (code, _) = post(addr, "/api/v1/entries", "not json").await;
    assert!((400..500).contains(&code), "{code}");
}

/// An events stream opened from `from` (any 127.x.y.z): its status.
async fn open_events(addr: std::net::SocketAddr, from: [u8; 4]) -> (u16, TcpStream) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(format!("GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    let code = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
    (code, stream)
}

/// Issue 13, item 5: one client cannot hold every stream; all clients
/// together are still bounded, event streams to their share of the places
/// (the rest is kept for exports and live output).
#[tokio::test]
async fn open_streams_are_bounded_per_client_and_in_all() {
    use buildmesh_http::{EVENTS_MAX, EVENTS_PER_CLIENT_MAX};
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    let mut open = Vec::new();
    for _ in 0..EVENTS_PER_CLIENT_MAX {
        let (code, stream) = open_events(addr, [127, 0, 0, 2]).await;
        assert_eq!(code, 200);
        open.push(stream);
    }
    let (code, _) = open_events(addr, [127, 0, 0, 2]).await;
    assert_eq!(code, 503, "one client's share is full");
    // Others still get streams, until all places for events are taken.
    let mut client = 3u8;
    while open.len() < EVENTS_MAX {
        let (code, stream) = open_events(addr, [127, 0, 0, client]).await;
        assert_eq!(code, 200, "stream {} from 127.0.0.{client}", open.len());
        open.push(stream);
        if open.len() % EVENTS_PER_CLIENT_MAX == 0 {
            client += 1;
        }
    }
    let (code, body) = get(addr, "/api/v1/events").await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("event streams"));
    // Closing one frees its place.
    drop(open.pop());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (code, _) = open_events(addr, [127, 0, 0, 1]).await;
    assert_eq!(code, 200);
}

/// One GET over a fresh connection: the status and the whole body, or as
/// much of it as arrived before the server cut the response.
async fn get_bytes(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // A cut response may end in a reset that loses what had arrived:
    // then there is no status (0) and no body.
    let _ = stream.read_to_end(&mut response).await;
    let Some(status) = response
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
    else {
        return (0, Vec::new());
    };
    let start = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(response.len(), |at| at + 4);
    (status.parse().unwrap(), response[start..].to_vec())
}

/// The status and the header lines (lower case) of a HEAD request.
async fn get_head(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_lowercase();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Issue 13, item 6: a stored 16 MiB log (and anything larger the runner
/// keeps) is served whole from disk; a damaged one is never served whole.
#[tokio::test]
async fn stored_blobs_of_any_size_stream_from_disk_and_damage_cuts_them() {
    let dir = tempfile::tempdir().unwrap();
    let log: Vec<u8> = (0..(16 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    let hash = buildmesh_protocol::BlobHash::of(&log);
    std::fs::write(dir.path().join(hash.to_string()), &log).unwrap();
    let damaged = buildmesh_protocol::BlobHash::of(b"what it should hold");
    std::fs::write(dir.path().join(damaged.to_string()), vec![1u8; 200_000]).unwrap();
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, mut node) = tokio::sync::mpsc::channel(8);
    let mut backend = backend(status, commands);
    backend.blobs = Some(dir.path().to_owned());
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend, std::future::pending()));
    // Blobs not held here are asked of the node (which asks its peers).
    tokio::spawn(async move {
        while let Some(command) = node.recv().await {
            if let buildmesh_http::Command::Blob { reply, .. } = command {
                let _ = reply.send(None);
            }
        }
    });

    let (code, body) = get_bytes(addr, &format!("/api/v1/blobs/{hash}")).await;
    assert_eq!(code, 200);
    assert_eq!(body.len(), log.len());
    assert!(body == log, "the blob arrives as stored");
    let (code, head) = get_head(addr, &format!("/api/v1/blobs/{hash}?view=text")).await;
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let (_, head) = get_head(addr, &format!("/api/v1/blobs/{hash}")).await;
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    let (code, _) = get_bytes(addr, &format!("/api/v1/blobs/{hash}?view=html")).await;
    assert_eq!(code, 400);
    let (code, body) = get_bytes(addr, &format!("/api/v1/blobs/{damaged}")).await;
    // The status goes before the check can end; the transfer is cut.
    assert!(code == 200 || code == 0, "{code}");
    assert!(
        body.len() < 200_000,
        "a damaged blob is cut, not served whole"
    );
    let missing = buildmesh_protocol::BlobHash::of(b"nowhere");
    let (code, _) = get_bytes(addr, &format!("/api/v1/blobs/{missing}")).await;
    assert_eq!(code, 404);
}

/// Issue 13, item 7: a thousand deliveries (fresh ids, valid signatures)
/// cost a handful of polls, and a replayed id none.
#[tokio::test]
async fn webhook_floods_are_debounced_and_replays_ignored() {
    use hmac::{Hmac, KeyInit, Mac};
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, mut node) = tokio::sync::mpsc::channel(2048);
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    let body = "{}";
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hush").unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let deliver = |id: String| {
        let signature = signature.clone();
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let request = format!(
                "POST /api/v1/hooks/github HTTP/1.1\r\nHost: {addr}\r\nX-Hub-Signature-256: \
                 {signature}\r\nX-GitHub-Delivery: {id}\r\nContent-Length: {}\r\nConnection: \
                 close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        }
    };
    let started = std::time::Instant::now();
    for n in 0..1000 {
        let response = deliver(format!("fresh-{n}")).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(buildmesh_http::POLL_INTERVAL_MIN * 2).await;
    let mut polls = 0;
    while let Ok(command) = node.try_recv() {
        polls += usize::from(matches!(command, buildmesh_http::Command::Poll));
    }
    let allowed =
        2 + (elapsed.as_millis() / buildmesh_http::POLL_INTERVAL_MIN.as_millis()) as usize;
    assert!(
        polls >= 1 && polls <= allowed,
        "{polls} polls for 1,000 deliveries in {elapsed:?}"
    );
    let replay = deliver("fresh-999".into()).await;
    assert!(replay.contains("\"replay\":true"), "{replay}");
    tokio::time::sleep(buildmesh_http::POLL_INTERVAL_MIN * 2).await;
    assert!(node.try_recv().is_err(), "a replay makes no poll");
}

/// Issue 13, item 9: a node on loopback answers only requests that name a
/// loopback host, so a rebinding page cannot read it.
#[tokio::test]
async fn a_loopback_node_answers_only_loopback_host_names() {
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    let port = addr.port();
    for (host, expected) in [
        (format!("127.0.0.1:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("[::1]:{port}"), 200),
        (format!("rebound.example:{port}"), 421),
        (format!("127.0.0.1.rebound.example:{port}"), 421),
    ] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /api/v1/node HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        let code: u16 = response[9..12].parse().unwrap();
        assert_eq!(code, expected, "{host}: {response}");
        if expected == 421 {
            assert!(response.contains("\"error\""), "a JSON error: {response}");
        }
    }
}

/// Issue 13, item 8: errors axum makes itself are JSON too, and a body
/// past the limit is a 413.
#[tokio::test]
async fn every_api_error_is_json_with_its_status() {
    let (_publish, status) = watch::channel(NodeStatus::default());
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(status, commands), std::future::pending()));
    let (code, body) = request(addr, "DELETE", "/api/v1/node", "").await;
    assert_eq!(code, 405);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Method Not Allowed"),
        "{body}"
    );
    let (code, body) = get(addr, "/api/v1/blobs/%FF%FE").await;
    assert!((400..500).contains(&code), "{code}");
    assert!(body["error"].is_string(), "{body}");
    // The node answers before it has read the whole body: the client may
    // find the connection closed while it still writes.
    let huge = format!("{{\"entries\": [\"{}\"]}}", "ab".repeat(3 << 20));
    let mut response = String::new();
    // A reset may also swallow the answer: try again, a few times.
    for _ in 0..5 {
        response = post_unread(addr, "/api/v1/entries", &huge).await;
        if !response.is_empty() {
            break;
        }
    }
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("\"error\""), "{response}");
}

/// POSTs `body`, which the node may refuse before reading it all, and
/// returns what came back (empty if the connection was reset first).
async fn post_unread(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Review 3, L3: `GET /api/v1/forks` lists at most FORKS_PAGE_MAX proofs
/// at a time (anyone with keys can make forks), and `next` pages through
/// all of them, by author, none twice.
#[tokio::test]
async fn forks_are_listed_in_pages_that_cover_them_all() {
    use buildmesh_core::log::{ForkKind, ForkProof};
    use buildmesh_http::{FORKS_PAGE_MAX, views::Views};
    use buildmesh_protocol::{EntryId, PublicKey};
    let forks: Vec<(PublicKey, ForkProof)> = (0..1500u32)
        .map(|i| {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let proof = ForkProof {
                seq: 2,
                kind: ForkKind::Equivocation,
                first: EntryId([1; 32]),
                second: EntryId([2; 32]),
            };
            (PublicKey(key), proof)
        })
        .collect();
    let (_status_publisher, status) = watch::channel(NodeStatus::default());
    let (publish, views) = watch::channel(Arc::new(Views {
        forks: forks.clone(),
        ..Views::default()
    }));
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (commands, _node) = tokio::sync::mpsc::channel(8);
    let mut backend = backend(status, commands);
    backend.views = views;
    let task = tokio::spawn(server.serve(backend, async move {
        let _ = stopped.await;
    }));

    let (code, body) = get(addr, "/api/v1/forks").await;
    assert_eq!(code, 200);
    assert_eq!(body["forks"].as_array().unwrap().len(), FORKS_PAGE_MAX);
    assert_eq!(body["total"], 1500);
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/api/v1/forks?limit=400".to_string();
    for _ in 0..10 {
        let (code, body) = get(addr, &path).await;
        assert_eq!(code, 200, "{body}");
        let page = body["forks"].as_array().unwrap();
        assert!(page.len() <= 400);
        seen.extend(
            page.iter()
                .map(|f| f["author"].as_str().unwrap().to_owned()),
        );
        match body["next"].as_str() {
            Some(next) => path = format!("/api/v1/forks?after={next}&limit=400"),
            None => break,
        }
    }
    let all: Vec<String> = forks.iter().map(|(a, _)| a.to_string()).collect();
    assert_eq!(seen, all, "every proof once, by author");

    for bad in ["?limit=0", "?limit=1001", "?after=zz", "?page=2"] {
        let (code, body) = get(addr, &format!("/api/v1/forks{bad}")).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
    drop(publish);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
