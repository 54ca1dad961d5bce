//! Real `buildmesh node` processes on 127.0.0.1, talking libp2p.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{Body, ProjectId, PublicKey, Role, Timestamp, TrustChange, sha256};
use ed25519_dalek::SigningKey;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running node and what it printed about itself.
struct Node {
    child: Child,
    http: String,
    listen: String,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(bootstrap: Option<&Node>) -> Node {
        Node::start_in(tempfile::tempdir().unwrap(), bootstrap)
    }

    fn start_in(dir: tempfile::TempDir, bootstrap: Option<&Node>) -> Node {
        Node::start_with(dir, bootstrap.into_iter().collect())
    }

    fn start_with(dir: tempfile::TempDir, bootstrap: Vec<&Node>) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_buildmesh"));
        command.args(["node", "--data-dir", dir.path().to_str().unwrap()]);
        command.args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--http",
            "127.0.0.1:0",
            "--sync-interval-secs",
            "2",
        ]);
        for peer in bootstrap {
            command.args(["--bootstrap", &peer.listen]);
        }
        command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut peer_id, mut listen) = (None, None, None);
        while http.is_none() || peer_id.is_none() || listen.is_none() {
            let line = lines
                .next()
                .expect("the node exited before it was ready")
                .unwrap();
            if let Some(rest) = line.strip_prefix("http ") {
                http = Some(rest.trim_start_matches("http://").to_string());
            } else if let Some(rest) = line.strip_prefix("node ") {
                peer_id = rest.split(['(', ')']).nth(1).map(str::to_string);
            } else if let Some(rest) = line.strip_prefix("listen ") {
                listen = Some(rest.to_string());
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let listen = format!("{}/p2p/{}", listen.unwrap(), peer_id.unwrap());
        Node {
            child,
            http: http.unwrap(),
            listen,
            _dir: dir,
        }
    }

    fn status(&self) -> serde_json::Value {
        http(&self.http, "GET", "/api/v1/node", "").1
    }

    fn submit(&self, entries: &[Vec<u8>]) {
        for chunk in entries.chunks(1000) {
            let hexes: Vec<String> = chunk.iter().map(hex::encode).collect();
            let body = serde_json::json!({ "entries": hexes }).to_string();
            let (code, reply) = http(&self.http, "POST", "/api/v1/entries", &body);
            assert_eq!(code, 200, "{reply}");
        }
    }

    /// Stops with SIGTERM and waits, as an operator would.
    fn stop(mut self) -> tempfile::TempDir {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// `n` entries signed by the author with this seed byte.
fn entries(seed: u8, n: u32) -> Vec<Vec<u8>> {
    let mut writer = ChainWriter::new(SigningKey::from_bytes(&[seed; 32]));
    (0..n)
        .map(|i| {
            let body = Body::Trust(TrustChange {
                project: ProjectId(sha256(&[&i.to_le_bytes()])),
                subject: PublicKey([seed; 32]),
                role: Role::Builder,
            });
            writer
                .write(Timestamp(u64::from(i) + 1), body)
                .unwrap()
                .to_wire()
        })
        .collect()
}

/// Waits until every node reports `count` entries and one digest.
fn wait_converged(nodes: &[&Node], count: u64, deadline: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let statuses: Vec<serde_json::Value> = nodes.iter().map(|n| n.status()).collect();
        let done = statuses
            .iter()
            .all(|s| s["entries"] == count && s["digest"] == statuses[0]["digest"]);
        if done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "not converged after {deadline:?}: {statuses:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn five_nodes_in_a_line_converge_on_entries_written_at_both_ends() {
    let first = Node::start(None);
    let mut line = vec![first];
    for _ in 1..5 {
        let next = Node::start(line.last());
        line.push(next);
    }
    line[0].submit(&entries(1, 500));
    line[4].submit(&entries(2, 500));
    let nodes: Vec<&Node> = line.iter().collect();
    let took = wait_converged(&nodes, 1000, Duration::from_secs(60));
    eprintln!("5-node line converged on 1,000 entries in {took:?}");
}

#[test]
fn a_late_joiner_catches_up_and_a_restart_fetches_nothing_again() {
    let old = Node::start(None);
    old.submit(&entries(3, 10_000));
    let late = Node::start(Some(&old));
    let took = wait_converged(&[&old, &late], 10_000, Duration::from_secs(120));
    eprintln!("late joiner caught up on 10,000 entries in {took:?}");

    let dir = late.stop();
    old.submit(&entries(4, 10));
    let restarted = Node::start_in(dir, Some(&old));
    assert!(
        restarted.status()["entries"].as_u64().unwrap() >= 10_000,
        "the store survived the restart"
    );
    wait_converged(&[&old, &restarted], 10_010, Duration::from_secs(60));
    assert_eq!(
        restarted.status()["entries_received"],
        10,
        "it fetched only what it lacked"
    );
}

#[test]
fn halves_that_wrote_apart_converge_once_a_bridge_joins_them() {
    let a1 = Node::start(None);
    let a2 = Node::start(Some(&a1));
    let b1 = Node::start(None);
    let b2 = Node::start(Some(&b1));
    a1.submit(&entries(5, 300));
    b2.submit(&entries(6, 200));
    wait_converged(&[&a1, &a2], 300, Duration::from_secs(30));
    wait_converged(&[&b1, &b2], 200, Duration::from_secs(30));
    let bridge = Node::start_with(tempfile::tempdir().unwrap(), vec![&a2, &b1]);
    let took = wait_converged(&[&a1, &a2, &b1, &b2, &bridge], 500, Duration::from_secs(60));
    eprintln!("halves healed in {took:?}");
}

mod rogue {
    use super::*;
    use buildmesh_mesh::{MeshConfig, MeshEvent, start};

    /// A libp2p peer that speaks the protocol's transport but lies: it
    /// publishes forged, tampered and garbage entries and malformed requests.
    #[test]
    fn a_rogue_peer_gets_nothing_in_and_is_disconnected() {
        let honest = Node::start(None);
        let honest_key: PublicKey = honest.status()["public_key"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dropped = runtime.block_on(async {
            let mut config = MeshConfig::new([66; 32]);
            config.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
            config.bootstrap = vec![honest.listen.clone()];
            let (mesh, mut events) = start(config).await.unwrap();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let mut connected = false;
            let mut round = 0u32;
            loop {
                let event = tokio::time::timeout_at(deadline, events.recv()).await;
                match event {
                    Err(_) => return false,
                    Ok(Some(MeshEvent::PeerConnected(peer))) if peer == honest_key => {
                        connected = true
                    }
                    Ok(Some(MeshEvent::PeerDisconnected(peer)))
                        if peer == honest_key && connected =>
                    {
                        return true;
                    }
                    Ok(None) => return false,
                    _ => {}
                }
                if connected {
                    round += 1;
                    for bytes in lies(round) {
                        let _ = mesh.publish(bytes).await;
                    }
                    let _ = mesh
                        .request(honest_key, vec![0xff; round as usize % 50 + 1])
                        .await;
                }
            }
        });
        assert!(dropped, "the honest node never disconnected the rogue");
        let start = Instant::now();
        let status = loop {
            let status = honest.status();
            if status["peers_disconnected"].as_u64().unwrap() >= 1
                || start.elapsed() > Duration::from_secs(5)
            {
                break status;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status["entries"], 0,
            "nothing the rogue sent got in: {status}"
        );
        assert!(
            status["peers_disconnected"].as_u64().unwrap() >= 1,
            "dropped for misbehaving: {status}"
        );
    }

    /// Round `n`'s lies, each different so gossip does not deduplicate them.
    fn lies(n: u32) -> Vec<Vec<u8>> {
        let someone_else = entries(7, 1).remove(0); // valid, but not the rogue's own
        let mut tampered = entries(66, 1).remove(0);
        tampered[100] ^= (n % 255) as u8 + 1;
        let mut garbage = n.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"not an entry at all");
        let mut forged_someone_else = someone_else.clone();
        forged_someone_else[0] ^= 1;
        vec![someone_else, tampered, garbage, forged_someone_else]
    }
}

#[test]
fn a_blob_held_by_one_node_is_served_by_another() {
    let holder_dir = tempfile::tempdir().unwrap();
    let log = b"step `test`: 128 passed, 0 failed\n".to_vec();
    let hash = hex::encode(sha256(&[&log]));
    std::fs::create_dir_all(holder_dir.path().join("blobs")).unwrap();
    std::fs::write(holder_dir.path().join("blobs").join(&hash), &log).unwrap();
    let holder = Node::start_in(holder_dir, None);
    let reader = Node::start(Some(&holder));
    wait_converged(&[&holder, &reader], 0, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (code, body) = http_raw(&reader.http, &format!("/api/v1/blobs/{hash}"));
        if code == 200 || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100)); // until the peers are connected
    };
    assert_eq!(body, log);
    let (code, _) = http_raw(&reader.http, &format!("/api/v1/blobs/{}", "00".repeat(32)));
    assert_eq!(code, 404);
    let (code, _) = http_raw(&reader.http, "/api/v1/blobs/nothex");
    assert_eq!(code, 400);
}

/// A GET returning the raw body bytes.
fn http_raw(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let code = String::from_utf8_lossy(&response[9..12]).parse().unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    (code, response[split..].to_vec())
}
