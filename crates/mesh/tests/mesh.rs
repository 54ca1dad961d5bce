//! Real meshes on 127.0.0.1: every node listens on port 0, mDNS is off,
//! and every wait has a deadline (10 s unless a test says otherwise).
//!
//! Run with `RUST_LOG=buildmesh_mesh=debug` to see what the event loops do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use buildmesh_mesh::{
    Acceptance, EVENTS_HELD_MAX, GOSSIP_BYTES_MAX, MeshClient, MeshConfig, MeshError, MeshEvent,
    PublicKey, Topic, start,
};
use ed25519_dalek::SigningKey;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, timeout};

/// How long any single wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// One running node and what a test needs to talk about it.
struct Node {
    name: &'static str,
    mesh: MeshClient,
    events: Receiver<MeshEvent>,
    key: PublicKey,
    /// A listen address with `/p2p/<peer id>`, for others to bootstrap to.
    addr: String,
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The node key for `seed`, computed with ed25519-dalek (not libp2p), so
/// the tests also check the mesh's PeerId → PublicKey conversion.
fn public_key(seed: u8) -> PublicKey {
    PublicKey(
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes(),
    )
}

fn config(seed: u8, bootstrap: &[&Node]) -> MeshConfig {
    let mut config = MeshConfig::new([seed; 32]);
    config.bootstrap = bootstrap.iter().map(|node| node.addr.clone()).collect();
    config
}

async fn node(name: &'static str, seed: u8, config: MeshConfig) -> Node {
    assert!(!config.mdns, "never mDNS in tests");
    let (mesh, mut events) = start(config).await.unwrap();
    let listen = wait(name, &mut events, |event| match event {
        MeshEvent::Listening(addr) => Some(addr.clone()),
        _ => None,
    })
    .await;
    assert!(listen.starts_with("/ip4/127.0.0.1/"), "{listen}");
    let info = mesh.info().await.unwrap();
    assert_eq!(info.listen, vec![listen.clone()]);
    Node {
        name,
        mesh,
        events,
        key: public_key(seed),
        addr: format!("{listen}/p2p/{}", info.peer_id),
    }
}

/// Reads `name`'s events until `pick` returns `Some`, skipping the others;
/// fails after [`DEADLINE`].
async fn wait<T>(
    name: &str,
    events: &mut Receiver<MeshEvent>,
    mut pick: impl FnMut(&MeshEvent) -> Option<T>,
) -> T {
    let found = timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("the event loop stopped");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{name}: nothing matched within {DEADLINE:?}"))
}

impl Node {
    async fn wait<T>(&mut self, pick: impl FnMut(&MeshEvent) -> Option<T>) -> T {
        wait(self.name, &mut self.events, pick).await
    }

    async fn connected_to(&mut self, peer: PublicKey) {
        self.wait(|event| (*event == MeshEvent::PeerConnected(peer)).then_some(()))
            .await;
    }

    async fn disconnected_from(&mut self, peer: PublicKey) {
        self.wait(|event| (*event == MeshEvent::PeerDisconnected(peer)).then_some(()))
            .await;
    }

    /// The next gossip message, as (from, source, message id, bytes).
    async fn gossip(&mut self) -> (PublicKey, PublicKey, Vec<u8>, Vec<u8>) {
        self.wait(|event| match event {
            MeshEvent::Gossip {
                topic: Topic::Entries,
                from,
                source,
                message,
                bytes,
            } => Some((*from, *source, message.clone(), bytes.clone())),
            _ => None,
        })
        .await
    }

    /// True if no gossip arrives within `window`.
    async fn no_gossip_within(&mut self, window: Duration) -> bool {
        let arrived = timeout(window, async {
            loop {
                match self.events.recv().await {
                    Some(MeshEvent::Gossip { .. }) => return,
                    Some(_) => {}
                    None => std::future::pending::<()>().await,
                }
            }
        })
        .await;
        arrived.is_err()
    }
}

/// Publishes `bytes` from `publisher` until `receiver` gets it as gossip,
/// re-publishing while no subscriber is known yet (gossipsub sends nothing
/// then, and a re-publish after delivery is a no-op duplicate).
async fn publish_until_received(
    publisher: &Node,
    receiver: &mut Node,
    bytes: &[u8],
) -> (PublicKey, PublicKey, Vec<u8>, Vec<u8>) {
    let give_up = Instant::now() + DEADLINE;
    loop {
        publisher
            .mesh
            .publish(Topic::Entries, bytes.to_vec())
            .await
            .unwrap();
        if let Ok(gossip) = timeout(Duration::from_millis(200), receiver.gossip()).await {
            return gossip;
        }
        assert!(
            Instant::now() < give_up,
            "{}: no gossip from {} within {DEADLINE:?}",
            receiver.name,
            publisher.name
        );
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    buildmesh_protocol::sha256(&[bytes]).to_vec()
}

mod connect {
    use super::*;

    #[tokio::test]
    async fn bootstrap_connects_both_ways_and_gossip_arrives() {
        init_tracing();
        let mut a = node("a", 1, config(1, &[])).await;
        let mut b = node("b", 2, config(2, &[&a])).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;
        assert_eq!(a.mesh.info().await.unwrap().peers, vec![b.key]);
        assert_eq!(b.mesh.info().await.unwrap().peers, vec![a.key]);

        let bytes = b"an entry's wire bytes".to_vec();
        let (from, source, message, got) = publish_until_received(&b, &mut a, &bytes).await;
        assert_eq!(source, b.key, "source is the signing author");
        assert_eq!(from, b.key, "from is the propagation peer");
        assert_eq!(got, bytes);
        assert_eq!(message, sha256(&bytes), "ids are content hashes");
        a.mesh
            .report(message, from, Acceptance::Accept)
            .await
            .unwrap();

        // Publishing the same bytes again is a duplicate, not an error.
        b.mesh.publish(Topic::Entries, bytes).await.unwrap();

        // The largest message still fits gossipsub's frame limit.
        let largest = vec![0x42; GOSSIP_BYTES_MAX];
        b.mesh
            .publish(Topic::Entries, largest.clone())
            .await
            .unwrap();
        let (_, _, message, got) = a.gossip().await;
        assert_eq!(got, largest);
        a.mesh
            .report(message, b.key, Acceptance::Accept)
            .await
            .unwrap();
        a.mesh.shutdown().await;
        b.mesh.shutdown().await;
    }

    #[tokio::test]
    async fn quic_only_nodes_connect() {
        init_tracing();
        let quic = |seed, bootstrap: &[&Node]| {
            let mut config = config(seed, bootstrap);
            config.listen = vec!["/ip4/127.0.0.1/udp/0/quic-v1".to_owned()];
            config
        };
        let mut a = node("a", 11, quic(11, &[])).await;
        assert!(a.addr.contains("/quic-v1/p2p/"), "{}", a.addr);
        let mut b = node("b", 12, quic(12, &[&a])).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;
    }

    /// Two nodes that dial each other at the same moment still connect.
    /// With libp2p's default port reuse both dials left from the listen
    /// ports, TCP joined them into one connection with two dialers, the
    /// handshake failed, and the retries crossed again (about one pair in
    /// a few hundred, and far more often under load). Many pairs, on two
    /// threads so that the dials really race.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crossed_dials_connect() {
        init_tracing();
        for pair in 0..100u8 {
            let seed = 20 + pair * 2;
            let mut a = node("a", seed, config(seed, &[])).await;
            let b = node("b", seed + 1, config(seed + 1, &[])).await;
            let (a_mesh, b_mesh) = (a.mesh.clone(), b.mesh.clone());
            let (a_addr, b_addr) = (a.addr.clone(), b.addr.clone());
            let (from_a, from_b) = tokio::join!(
                tokio::spawn(async move { a_mesh.dial(b_addr).await }),
                tokio::spawn(async move { b_mesh.dial(a_addr).await }),
            );
            // The later of the two dials may find the peer connected already.
            let _ = (from_a.unwrap(), from_b.unwrap());
            a.connected_to(b.key).await;
            a.mesh.shutdown().await;
            b.mesh.shutdown().await;
        }
    }

    #[tokio::test]
    async fn dial_connects_and_bad_addresses_are_named() {
        init_tracing();
        let mut a = node("a", 21, config(21, &[])).await;
        let mut b = node("b", 22, config(22, &[])).await;
        b.mesh.dial(a.addr.clone()).await.unwrap();
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;

        match b.mesh.dial("/ip4/1.2.3/tcp/1".to_owned()).await {
            Err(MeshError::BadMultiaddr { addr, .. }) => assert_eq!(addr, "/ip4/1.2.3/tcp/1"),
            other => panic!("expected BadMultiaddr, got {other:?}"),
        }
        let mut bad = config(23, &[]);
        bad.bootstrap = vec!["/ip4/127.0.0.1/tcp/1".to_owned()];
        match start(bad).await {
            Err(MeshError::BadMultiaddr { reason, .. }) => assert!(reason.contains("/p2p/")),
            Err(other) => panic!("expected BadMultiaddr, got {other}"),
            Ok(_) => panic!("a bootstrap address without /p2p/ was accepted"),
        }
    }
}

mod sync {
    use super::*;

    async fn pair(seed: u8, request_timeout: Duration) -> (Node, Node) {
        let mut config_a = config(seed, &[]);
        config_a.request_timeout = request_timeout;
        let mut a = node("a", seed, config_a).await;
        let mut config_b = config(seed + 1, &[&a]);
        config_b.request_timeout = request_timeout;
        let mut b = node("b", seed + 1, config_b).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;
        (a, b)
    }

    /// `asker` asks, `answerer` answers with the request reversed.
    async fn round_trip(asker: &mut Node, answerer: &mut Node, bytes: &[u8]) {
        asker
            .mesh
            .request(answerer.key, bytes.to_vec())
            .await
            .unwrap();
        let asker_key = asker.key;
        let (id, request) = answerer
            .wait(|event| match event {
                MeshEvent::Request { peer, id, bytes } if *peer == asker_key => {
                    Some((*id, bytes.clone()))
                }
                _ => None,
            })
            .await;
        assert_eq!(request, bytes);
        let answer: Vec<u8> = bytes.iter().rev().copied().collect();
        answerer.mesh.respond(id, answer.clone()).await.unwrap();
        let answerer_key = answerer.key;
        let response = asker
            .wait(|event| match event {
                MeshEvent::Response { peer, bytes } if *peer == answerer_key => Some(bytes.clone()),
                MeshEvent::RequestFailed(peer) => panic!("request to {peer:?} failed"),
                _ => None,
            })
            .await;
        assert_eq!(response, answer);
    }

    #[tokio::test]
    async fn requests_round_trip_both_ways() {
        init_tracing();
        let (mut a, mut b) = pair(31, Duration::from_secs(5)).await;
        round_trip(&mut b, &mut a, b"from b").await;
        round_trip(&mut a, &mut b, b"from a").await;
        // Larger than one yamux frame and than a gossip message.
        let big = vec![0x5a; 300_000];
        round_trip(&mut a, &mut b, &big).await;
        // An unknown id is logged, not an error.
        a.mesh.respond(999_999, vec![1]).await.unwrap();
    }

    #[tokio::test]
    async fn unanswered_request_fails_within_the_timeout() {
        init_tracing();
        let request_timeout = Duration::from_secs(2);
        let (mut a, mut b) = pair(41, request_timeout).await;
        let sent = Instant::now();
        a.mesh.request(b.key, b"hello?".to_vec()).await.unwrap();
        let a_key = a.key;
        let id = b
            .wait(|event| match event {
                MeshEvent::Request { peer, id, .. } if *peer == a_key => Some(*id),
                _ => None,
            })
            .await;
        // b holds the request and never answers.
        let b_key = b.key;
        a.wait(|event| match event {
            MeshEvent::RequestFailed(peer) if *peer == b_key => Some(()),
            MeshEvent::Response { .. } => panic!("got a response nobody sent"),
            _ => None,
        })
        .await;
        let took = sent.elapsed();
        assert!(
            took >= request_timeout - Duration::from_millis(200),
            "{took:?}"
        );
        assert!(took < request_timeout * 2, "{took:?}");
        // Answering after the timeout is logged, not an error.
        b.mesh.respond(id, b"too late".to_vec()).await.unwrap();
    }

    #[tokio::test]
    async fn oversize_payloads_are_refused_before_sending() {
        init_tracing();
        let a = node("a", 51, config(51, &[])).await;
        let over = buildmesh_protocol::REQUEST_BYTES_MAX + 1;
        match a.mesh.request(public_key(52), vec![0; over]).await {
            Err(MeshError::TooLarge { len, .. }) => assert_eq!(len, over),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let over = buildmesh_protocol::RESPONSE_BYTES_MAX + 1;
        assert!(matches!(
            a.mesh.respond(0, vec![0; over]).await,
            Err(MeshError::TooLarge { .. })
        ));
        assert!(matches!(
            a.mesh
                .publish(Topic::Entries, vec![0; GOSSIP_BYTES_MAX + 1])
                .await,
            Err(MeshError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn request_to_an_unreachable_peer_fails() {
        init_tracing();
        let mut a = node("a", 61, config(61, &[])).await;
        let nobody = public_key(62);
        a.mesh.request(nobody, b"anyone?".to_vec()).await.unwrap();
        a.wait(|event| (*event == MeshEvent::RequestFailed(nobody)).then_some(()))
            .await;
    }
}

mod disconnect {
    use super::*;

    #[tokio::test]
    async fn disconnect_closes_and_refuses_redials() {
        init_tracing();
        let mut a = node("a", 71, config(71, &[])).await;
        let mut b = node("b", 72, config(72, &[&a])).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;

        a.mesh.disconnect(b.key).await.unwrap();
        a.disconnected_from(b.key).await;
        b.disconnected_from(a.key).await;
        assert!(a.mesh.info().await.unwrap().peers.is_empty());

        // b tries again; a refuses it.
        b.mesh.dial(a.addr.clone()).await.unwrap();
        let b_key = b.key;
        let redial = timeout(
            Duration::from_secs(2),
            a.wait(|event| (*event == MeshEvent::PeerConnected(b_key)).then_some(())),
        )
        .await;
        assert!(redial.is_err(), "a banned peer got back in");
        assert!(a.mesh.info().await.unwrap().peers.is_empty());
        // a does not dial it either.
        assert!(matches!(
            a.mesh.dial(b.addr.clone()).await,
            Err(MeshError::Dial { .. })
        ));
    }

    #[tokio::test]
    async fn shutdown_closes_connections_and_the_client() {
        init_tracing();
        let mut a = node("a", 81, config(81, &[])).await;
        let mut b = node("b", 82, config(82, &[&a])).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;
        b.mesh.shutdown().await;
        a.disconnected_from(b.key).await;
        assert!(matches!(b.mesh.info().await, Err(MeshError::Closed)));
        assert!(matches!(
            b.mesh.publish(Topic::Entries, vec![1]).await,
            Err(MeshError::Closed)
        ));
        b.mesh.shutdown().await; // again: a no-op
        let drained = timeout(DEADLINE, async { while b.events.recv().await.is_some() {} }).await;
        assert!(drained.is_ok(), "the event channel closes");
    }
}

mod line {
    //! A - B - C: C bootstraps to B, B to A. A and C ban each other first,
    //! so Kademlia cannot connect them directly and every message from A
    //! to C must pass B's validation.

    use super::*;

    async fn line(seed: u8) -> (Node, Node, Node) {
        let mut a = node("a", seed, config(seed, &[])).await;
        let mut b = node("b", seed + 1, config(seed + 1, &[&a])).await;
        let mut c = node("c", seed + 2, config(seed + 2, &[&b])).await;
        a.mesh.disconnect(c.key).await.unwrap();
        c.mesh.disconnect(a.key).await.unwrap();
        a.connected_to(b.key).await;
        c.connected_to(b.key).await;
        let (a_key, c_key) = (a.key, c.key);
        let mut seen = (false, false);
        b.wait(|event| {
            match event {
                MeshEvent::PeerConnected(peer) if *peer == a_key => seen.0 = true,
                MeshEvent::PeerConnected(peer) if *peer == c_key => seen.1 = true,
                _ => {}
            }
            (seen == (true, true)).then_some(())
        })
        .await;
        (a, b, c)
    }

    #[tokio::test]
    async fn accepted_gossip_crosses_the_line() {
        init_tracing();
        let (a, mut b, mut c) = line(91).await;
        let bytes = b"valid entry".to_vec();
        let (from, source, message, _) = publish_until_received(&a, &mut b, &bytes).await;
        assert_eq!((from, source), (a.key, a.key));
        // Nothing moves on before B's verdict.
        assert!(c.no_gossip_within(Duration::from_millis(500)).await);
        b.mesh
            .report(message.clone(), from, Acceptance::Accept)
            .await
            .unwrap();
        let (from, source, at_c, got) = c.gossip().await;
        assert_eq!(from, b.key, "C got it from B");
        assert_eq!(source, a.key, "A is still the author");
        assert_eq!((at_c, got), (message, bytes));
    }

    #[tokio::test]
    async fn rejected_gossip_stops_at_the_validator() {
        init_tracing();
        let (a, mut b, mut c) = line(101).await;
        let bad = b"invalid entry".to_vec();
        let (from, _, message, _) = publish_until_received(&a, &mut b, &bad).await;
        b.mesh
            .report(message, from, Acceptance::Reject)
            .await
            .unwrap();
        assert!(
            c.no_gossip_within(Duration::from_secs(3)).await,
            "a rejected message reached C"
        );

        // Control: the path works, so the silence above was B's verdict.
        let good = b"valid entry".to_vec();
        let (from, _, message, _) = publish_until_received(&a, &mut b, &good).await;
        b.mesh
            .report(message, from, Acceptance::Accept)
            .await
            .unwrap();
        let (_, source, _, got) = c.gossip().await;
        assert_eq!(source, a.key);
        assert_eq!(got, good, "C's first gossip is the accepted message");
    }
}

mod stall {
    //! A node that stops reading its events: the mesh holds what it must,
    //! stops reading from peers, and still answers every command.

    use super::*;

    /// The stalled node's event channel: tiny, so a flood fills it at once.
    const CAPACITY: usize = 2;

    /// How many gossip messages `node`'s event loop has taken from the
    /// swarm, from libp2p's metrics (readable without the event loop).
    fn gossip_taken(node: &Node) -> usize {
        node.mesh
            .metrics_text()
            .lines()
            .filter_map(|line| line.split_once(' '))
            .find(|(name, _)| name.ends_with("gossipsub_messages_total"))
            .and_then(|(_, count)| count.trim().parse().ok())
            .expect("libp2p's gossipsub message counter")
    }

    #[tokio::test]
    async fn commands_are_answered_while_nobody_reads_events() {
        init_tracing();
        let mut tiny = config(111, &[]);
        tiny.events_capacity = CAPACITY;
        tiny.commands_capacity = 1;
        let mut a = node("a", 111, tiny).await;
        let mut b = node("b", 112, config(112, &[&a])).await;
        a.connected_to(b.key).await;
        b.connected_to(a.key).await;
        // b's gossip reaches a, then a's channel is emptied.
        let (_, _, message, _) = publish_until_received(&b, &mut a, b"first").await;
        a.mesh
            .report(message, b.key, Acceptance::Accept)
            .await
            .unwrap();
        while a.events.try_recv().is_ok() {}
        let before = gossip_taken(&a);

        // a reads no events while b sends more than a's channel and its
        // event loop can hold.
        let flood: Vec<Vec<u8>> = (0..CAPACITY + EVENTS_HELD_MAX + 10)
            .map(|i| format!("flood {i}").into_bytes())
            .collect();
        for bytes in &flood {
            b.mesh.publish(Topic::Entries, bytes.clone()).await.unwrap();
        }
        // Once a's loop has taken a message its full channel has no room
        // for, a loop that awaited room would answer no command any more.
        let give_up = Instant::now() + DEADLINE;
        while gossip_taken(&a) <= before + CAPACITY {
            assert!(Instant::now() < give_up, "a took too few of b's messages");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let bound = Duration::from_secs(3);
        let info = timeout(bound, a.mesh.info())
            .await
            .expect("info stalled behind the full event channel")
            .unwrap();
        assert_eq!(info.peers, vec![b.key]);
        timeout(bound, a.mesh.publish(Topic::Entries, b"from a".to_vec()))
            .await
            .expect("publish stalled behind the full event channel")
            .unwrap();
        let taken = gossip_taken(&a) - before;
        assert!(
            taken <= CAPACITY + EVENTS_HELD_MAX,
            "a kept reading from b with its channel full: {taken} messages taken"
        );

        // Read again, every message arrives: none was dropped.
        let mut got = Vec::new();
        while got.len() < flood.len() {
            let (from, _, message, bytes) = a.gossip().await;
            a.mesh
                .report(message, from, Acceptance::Accept)
                .await
                .unwrap();
            got.push(bytes);
        }
        got.sort();
        let mut sent = flood;
        sent.sort();
        assert_eq!(got, sent);
    }
}
