//! Real `buildmesh node` processes on 127.0.0.1, talking libp2p.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{PublicKey, sha256};
use std::time::{Duration, Instant};
use support::{Node, entries, http, http_raw, wait_converged};

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
fn halves_cut_apart_write_independently_then_heal_and_converge() {
    let a1 = Node::start(None);
    let a2 = Node::start(Some(&a1));
    // b1's bootstrap peer is a1: the link that is cut, then heals.
    let b1 = Node::start(Some(&a1));
    let b2 = Node::start(Some(&b1));
    let all = [&a1, &a2, &b1, &b2];
    a1.submit(&entries(5, 100));
    wait_converged(&all, 100, Duration::from_secs(60));

    // The cut: every node drops every node of the other half, live.
    let (half_a, half_b) = ([&a1, &a2], [&b1, &b2]);
    for a in half_a {
        for b in half_b {
            a.ban(b, true);
            b.ban(a, true);
        }
    }
    wait_until("the halves are cut apart", || {
        half_a
            .iter()
            .all(|a| half_b.iter().all(|b| !a.peers().contains(&b.key())))
            && half_b
                .iter()
                .all(|b| half_a.iter().all(|a| !b.peers().contains(&a.key())))
    });
    a2.submit(&entries(6, 300));
    b2.submit(&entries(7, 200));
    wait_converged(&[&a1, &a2], 400, Duration::from_secs(60));
    wait_converged(&[&b1, &b2], 300, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(a1.status()["entries"], 400, "nothing crossed the cut");
    assert_eq!(b1.status()["entries"], 300, "nothing crossed the cut");

    // The heal: bans lifted; bootstrap peers are dialed again by themselves.
    let healed = Instant::now();
    for a in half_a {
        for b in half_b {
            a.ban(b, false);
            b.ban(a, false);
        }
    }
    wait_converged(&all, 600, Duration::from_secs(60));
    eprintln!("halves healed in {:?}", healed.elapsed());
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 13, item 1: 2,000 requests for blobs nobody has used to make a
/// node ask its peer for each, until the peer banned it for flooding. Now
/// it asks within a budget, remembers misses, and keeps its peer.
#[test]
fn a_node_asked_for_2000_unknown_blobs_keeps_its_peers() {
    let a = Node::start(None);
    let b = Node::start(Some(&a));
    a.wait_connected(&b);
    // From 250 addresses, 8 each: within every client's own share, so
    // only the node's budget for all clients stands between them and b.
    for n in 0u32..2000 {
        let hash = hex::encode(sha256(&[b"nobody has this", &n.to_le_bytes()]));
        let from = support::connect_from(&a.http, [127, 0, 1, 1 + (n % 250) as u8]);
        let (code, _) = support::get_head(from, &a.http, &format!("/api/v1/blobs/{hash}"));
        assert_eq!(code, 404);
    }
    // One client alone gets its share, then is told to wait.
    let codes: Vec<u16> = (0u32..20)
        .map(|n| {
            let hash = hex::encode(sha256(&[b"one client", &n.to_le_bytes()]));
            http(&a.http, "GET", &format!("/api/v1/blobs/{hash}"), "").0
        })
        .collect();
    let answered = codes.iter().filter(|c| **c == 404).count();
    assert!((8..=12).contains(&answered), "{codes:?}");
    assert_eq!(codes.last(), Some(&429));
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.peers().contains(&b.key()), "a lost b");
    assert!(b.peers().contains(&a.key()), "b dropped a");
    assert_eq!(
        b.status()["peers_disconnected"],
        0,
        "b counted a as flooding"
    );
}

mod rogue {
    use super::*;
    use buildmesh_mesh::{MeshConfig, MeshEvent, Topic, start};

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
                // A round of lies on every event and at least every 200 ms:
                // gossip published before the honest node has grafted the
                // rogue is dropped, and no event may follow it.
                let tick = tokio::time::Instant::now() + Duration::from_millis(200);
                let event = tokio::time::timeout_at(tick.min(deadline), events.recv()).await;
                match event {
                    Err(_) if tokio::time::Instant::now() >= deadline => return false,
                    Err(_) => {}
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
                        let _ = mesh.publish(Topic::Entries, bytes).await;
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
