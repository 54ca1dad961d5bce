//! Issue 13: a stranger with an HTTP client cannot exhaust the node.
//! Real servers on 127.0.0.x, with short timeouts; every wait is bounded,
//! so a missing bound fails the test instead of hanging it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_http::{Backend, Limits, LogReader, NodeStatus, Server, bind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;

struct FixedLog;

impl LogReader for FixedLog {
    fn digest(&self) -> Result<(u64, [u8; 32]), String> {
        Ok((1, [7; 32]))
    }
}

fn backend() -> Backend {
    let (publish, status) = watch::channel(NodeStatus::default());
    std::mem::forget(publish);
    backend_with(status)
}

/// A backend whose status comes from `status`.
fn backend_with(status: watch::Receiver<NodeStatus>) -> Backend {
    let (publish_views, views) = watch::channel(Default::default());
    std::mem::forget(publish_views);
    let (commands, node) = tokio::sync::mpsc::channel(8);
    std::mem::forget(node);
    Backend {
        status,
        commands,
        log: Arc::new(FixedLog),
        hook_secret: None,
        views,
        libp2p_metrics: Arc::new(String::new),
        blobs: None,
        live: None,
        operator: None,
        clock: || buildmesh_protocol::Timestamp(1_700_000_000_000),
    }
}

/// Short timeouts, so that the tests take a second, not ten.
fn quick() -> Limits {
    Limits {
        header: Duration::from_secs(1),
        body: Duration::from_secs(1),
        ..Limits::default()
    }
}

async fn start(server: Server) -> SocketAddr {
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend(), std::future::pending()));
    addr
}

/// Starts `server` with a status the test publishes.
async fn start_publishing(server: Server) -> (SocketAddr, watch::Sender<NodeStatus>) {
    let addr = server.local_addr().unwrap();
    let (publish, status) = watch::channel(NodeStatus::default());
    tokio::spawn(server.serve(backend_with(status), std::future::pending()));
    (addr, publish)
}

/// How long any answer may take before the test calls it missing.
const PATIENCE: Duration = Duration::from_secs(5);

/// Reads until the server closes (or resets) the connection; `None` if it
/// is still open after [`PATIENCE`].
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&got).into_owned())
}

/// A connection from `from` (a 127.0.0.x address) to `to`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One `GET` with this `Host` over a fresh connection from `from`: the
/// whole response, or `None` if none came within [`PATIENCE`].
async fn get_from(from: [u8; 4], addr: SocketAddr, host: &str, path: &str) -> Option<String> {
    let mut stream = connect_from(from, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    until_closed(&mut stream).await
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    let addr = start(bind("127.0.0.1:0").await.unwrap().with_limits(quick())).await;
    // A head sent a byte every 100 ms never completes: hyper's deadline
    // does not move with each byte.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = slow.split();
    let started = Instant::now();
    let trickle = async {
        for byte in b"GET /api/v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut got = Vec::new();
    let closed = tokio::select! {
        () = trickle => true,
        read = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut got)) => read.is_ok(),
    };
    assert!(
        closed,
        "a head trickled for {:?} and was not cut",
        started.elapsed()
    );
    drop(slow);

    // A keep-alive connection that went idle after its answer is closed
    // too; a connection that never sends anything likewise.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut idle).await;
    let answer = answer.expect("an idle keep-alive connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        until_closed(&mut silent).await.is_some(),
        "a silent connection stayed open"
    );
}

#[tokio::test]
async fn an_unfinished_body_is_answered_408_after_the_body_timeout() {
    let addr = start(bind("127.0.0.1:0").await.unwrap().with_limits(quick())).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/entries HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\n{\"ent\r\n",
        )
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    let answer = answer.expect("an unfinished body got no answer");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "a JSON error: {answer}");
}

#[tokio::test]
async fn past_the_connection_caps_others_are_still_served_promptly() {
    let limits = Limits {
        connections: 6,
        connections_per_client: 3,
        ..Limits::default()
    };
    let addr = start(bind("127.0.0.1:0").await.unwrap().with_limits(limits)).await;
    // One client takes all it may, with idle connections (the default
    // header timeout, 10 s, outlasts this test).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 1], addr).await);
    }
    // Its next one is refused at once, not left waiting.
    let refused = get_from([127, 0, 0, 1], addr, "127.0.0.1", "/api/v1/node").await;
    let refused = refused.expect("a connection past the cap was left waiting");
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 503"),
        "{refused}"
    );
    // Another client is served.
    let served = get_from([127, 0, 0, 2], addr, "127.0.0.1", "/api/v1/node").await;
    let served = served.expect("another client waited");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    // Its connections closed, it is served again. (Past the cap in all,
    // see the two tests below.)
    held.clear();
    served_soon([127, 0, 0, 1], addr).await;
}

/// Asks from `from` until the answer is a 200, failing the test if none
/// is within [`PATIENCE`]: a closed connection's place is given back
/// once its task has seen it close.
async fn served_soon(from: [u8; 4], addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let again = get_from(from, addr, "127.0.0.1", "/api/v1/node").await;
        if again
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "closed connections were not counted out"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads from `stream` until what came contains `until`; what came, or
/// `None` if the stream closed or [`PATIENCE`] passed first.
async fn read_until(stream: &mut TcpStream, until: &str) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buffer = [0; 1024];
        while !String::from_utf8_lossy(&got).contains(until) {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
        }
        Some(String::from_utf8_lossy(&got).into_owned())
    };
    tokio::time::timeout(PATIENCE, read).await.ok().flatten()
}

/// Caps small enough to fill from two addresses.
fn small_caps() -> Limits {
    Limits {
        connections: 8,
        connections_per_client: 4,
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_full_server_closes_its_longest_idle_connection_for_a_new_one() {
    // The default header timeout, 10 s, outlasts this test: only losing
    // its place closes an idle connection.
    let addr = start(bind("127.0.0.1:0").await.unwrap().with_limits(small_caps())).await;
    // The first has had its answer and waits on keep-alive: idle since
    // before the others opened.
    let mut first = connect_from([127, 0, 0, 1], addr).await;
    let request = b"GET /api/v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    first.write_all(request).await.unwrap();
    let answer = read_until(&mut first, "\r\n\r\n").await;
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    let mut held = vec![first];
    for from in [[127, 0, 0, 1]; 3].into_iter().chain([[127, 0, 0, 2]; 4]) {
        held.push(connect_from(from, addr).await);
    }
    let served = get_from([127, 0, 0, 3], addr, "127.0.0.1", "/api/v1/node").await;
    let served = served.expect("a new client waited");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    assert!(
        until_closed(&mut held[0]).await.is_some(),
        "the connection idle the longest stayed open"
    );
}

#[tokio::test]
async fn connections_streaming_answers_are_never_closed_to_make_room() {
    let server = bind("127.0.0.1:0").await.unwrap().with_limits(small_caps());
    let (addr, publish) = start_publishing(server).await;
    let mut streams = Vec::new();
    for from in [[127, 0, 0, 1], [127, 0, 0, 2]] {
        for _ in 0..4 {
            let mut stream = connect_from(from, addr).await;
            let request = b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
            stream.write_all(request).await.unwrap();
            let head = read_until(&mut stream, "\r\n\r\n").await;
            let head = head.expect("an event stream did not start");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            streams.push(stream);
        }
    }
    let refused = get_from([127, 0, 0, 3], addr, "127.0.0.1", "/api/v1/node").await;
    let refused = refused.expect("a connection past the cap was left waiting");
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 503"),
        "{refused}"
    );
    // Every stream still carries the next event.
    publish.send_modify(|status| status.entries = 1);
    for (i, stream) in streams.iter_mut().enumerate() {
        let event = read_until(stream, "event: entries").await;
        assert!(event.is_some(), "stream {i} was cut");
    }
    // A stream that closes gives its place back.
    streams.truncate(7);
    served_soon([127, 0, 0, 3], addr).await;
}

fn status(response: &Option<String>) -> u16 {
    response
        .as_deref()
        .and_then(|r| r.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_host_must_be_the_address_used_loopback_or_configured() {
    // The configured names are what a node on a public address answers
    // to; tests may bind loopback only, where they count just the same.
    let server = bind("127.0.0.2:0").await.unwrap();
    let server = server.with_hosts(vec!["ci.example.org".into(), "[2001:db8::1]".into()]);
    let addr = start(server).await;
    let port = addr.port();
    for (host, expected) in [
        (format!("ci.example.org:{port}"), 200),
        ("CI.Example.ORG".to_owned(), 200),
        (format!("[2001:db8::1]:{port}"), 200),
        (format!("127.0.0.2:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (format!("127.0.0.3:{port}"), 421),
        (format!("rebound.example:{port}"), 421),
        ("ci.example.org.rebound.example".to_owned(), 421),
    ] {
        let answer = get_from([127, 0, 0, 1], addr, &host, "/api/v1/node").await;
        assert_eq!(status(&answer), expected, "{host}: {answer:?}");
        if expected == 421 {
            let answer = answer.unwrap_or_default();
            assert!(answer.contains("http_hosts"), "says what to set: {answer}");
        }
    }
}

#[tokio::test]
async fn long_uris_and_malformed_page_ids_get_their_documented_answers() {
    let addr = start(bind("127.0.0.1:0").await.unwrap()).await;
    let long = format!("/api/v1/node?q={}", "a".repeat(9000));
    let answer = get_from([127, 0, 0, 1], addr, "127.0.0.1", &long).await;
    assert_eq!(status(&answer), 414, "{answer:?}");
    assert!(answer.unwrap_or_default().contains("\"error\":"));
    // Past the head hyper buffers it answers itself, with no body.
    let huge = format!("/?q={}", "a".repeat(70 * 1024));
    let answer = get_from([127, 0, 0, 1], addr, "127.0.0.1", &huge).await;
    assert_eq!(status(&answer), 431, "{answer:?}");
    // A page for something that is not a project id is a 400 page; an
    // unknown project is a 404 page.
    for (path, expected) in [
        ("/projects/zz".to_owned(), 400),
        (format!("/projects/{}", "ab".repeat(32)), 404),
        ("/projects/zz/commits/00".to_owned(), 400),
        (format!("/live/zz/{}/linux", "00".repeat(20)), 400),
    ] {
        let answer = get_from([127, 0, 0, 1], addr, "127.0.0.1", &path).await;
        assert_eq!(status(&answer), expected, "{path}: {answer:?}");
        assert!(answer.unwrap_or_default().contains("<html"), "a page");
    }
}

/// One `POST /api/v1/entries` of `body` from `from`: the whole response.
async fn post_from(from: [u8; 4], addr: SocketAddr, body: &str) -> Option<String> {
    let mut stream = connect_from(from, addr).await;
    let request = format!(
        "POST /api/v1/entries HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    until_closed(&mut stream).await
}

#[tokio::test]
async fn a_client_past_its_submission_burst_is_told_when_to_retry() {
    let limits = Limits {
        submit_burst_bytes: 1000,
        submit_bytes_per_second: 10,
        ..quick()
    };
    let addr = start(bind("127.0.0.1:0").await.unwrap().with_limits(limits)).await;
    let body = format!(r#"{{"entries":["{}"]}}"#, "ab".repeat(600));
    // The test's node never answers: past the bucket, a write times out.
    let first = post_from([127, 0, 0, 2], addr, &body).await;
    assert_eq!(status(&first), 408, "{first:?}");
    let second = post_from([127, 0, 0, 2], addr, &body).await;
    assert_eq!(status(&second), 429, "{second:?}");
    let second = second.unwrap_or_default().to_ascii_lowercase();
    // 1,000 bytes of burst, 600 taken, 10 a second back: ~19 s to wait.
    let after: u64 = second
        .split("retry-after: ")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!((15..=20).contains(&after), "{second}");
    assert!(second.contains(&format!("retry in {after} s")), "{second}");
    let other = post_from([127, 0, 0, 3], addr, &body).await;
    assert_eq!(status(&other), 408, "another address has its own bucket");
}
