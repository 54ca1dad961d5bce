//! The replicator over a virtual network: no sockets, no clock, real rules.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{ChainStore, EntryStore, MemStore, SIBLINGS_MAX};
use buildmesh_core::replicator::{
    Action, BLOB_FETCHES_BURST, Input, Misbehaviour, PeerId, Replicator, ReplicatorConfig, Verdict,
};
use buildmesh_protocol::{
    BlobHash, Body, BuilderPolicy, Entry, EntryContent, EntryId, KeyCache, ProjectId, Request,
    Response, SYNC_LEASES_MAX, Timestamp, sha256,
};
use ed25519_dalek::SigningKey;
use fixtures::seed_of;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What an author writes as its entry after `n` others: first a project
/// declaration, which gives it a role (docs/protocol.md §6.1), then
/// announcements for that project.
fn nth_body(author: &PeerId, n: u64) -> Body {
    if n == 0 {
        return fixtures::declaration(&fixtures::PLATFORMS, BuilderPolicy::Open, 1);
    }
    fixtures::announce(ProjectId::derive(author, "demo"), (n % 251) as u8)
}

/// Nodes, links, and messages in flight, delivered in order.
struct Net {
    nodes: BTreeMap<PeerId, Replicator<MemStore>>,
    names: BTreeMap<String, PeerId>,
    links: BTreeSet<(PeerId, PeerId)>,
    queue: VecDeque<(PeerId, Input)>,
    requests: BTreeMap<u64, (PeerId, PeerId)>,
    gossip_source: BTreeMap<Vec<u8>, (PeerId, Vec<u8>)>,
    next_id: u64,
    now: Timestamp,
    disconnects: Vec<(PeerId, PeerId, Misbehaviour)>,
    requests_sent: u64,
    /// What each node serves when asked for a blob.
    blobs: BTreeMap<PeerId, BTreeMap<BlobHash, Vec<u8>>>,
    /// Blob outcomes seen, per node: `Some(bytes)` fetched, `None` unavailable.
    fetched: Vec<(PeerId, BlobHash, Option<Vec<u8>>)>,
    /// A node whose batch verifications are held back, and what was held.
    hold_verify: Option<PeerId>,
    held: Vec<(PeerId, Input)>,
    /// Lease renewals a node heard in sync answers: (node, peer, wires).
    leases_heard: Vec<(PeerId, PeerId, Vec<Vec<u8>>)>,
    /// Nodes as old as before fork requests: they refuse one as malformed.
    old: BTreeSet<PeerId>,
    /// Nodes whose fork answers the network tampers with.
    tampered: BTreeSet<PeerId>,
    /// Fork requests sent, and those answered `Refused(Malformed)`.
    fork_requests: u64,
    fork_refusals: u64,
}

impl Net {
    fn new(names: &[&str]) -> Net {
        let mut net = Net {
            nodes: BTreeMap::new(),
            names: BTreeMap::new(),
            links: BTreeSet::new(),
            queue: VecDeque::new(),
            requests: BTreeMap::new(),
            gossip_source: BTreeMap::new(),
            next_id: 0,
            now: Timestamp(1_000_000),
            disconnects: Vec::new(),
            requests_sent: 0,
            blobs: BTreeMap::new(),
            fetched: Vec::new(),
            hold_verify: None,
            held: Vec::new(),
            leases_heard: Vec::new(),
            old: BTreeSet::new(),
            tampered: BTreeSet::new(),
            fork_requests: 0,
            fork_refusals: 0,
        };
        for (i, name) in names.iter().enumerate() {
            net.add(name, i as u64);
        }
        net
    }

    fn add(&mut self, name: &str, seed: u64) -> PeerId {
        let key = SigningKey::from_bytes(&seed_of(name));
        let id: PeerId = key.verifying_key().into();
        let node =
            Replicator::new(ReplicatorConfig::default(), key, MemStore::default(), seed).unwrap();
        self.nodes.insert(id, node);
        self.names.insert(name.to_string(), id);
        id
    }

    fn id(&self, name: &str) -> PeerId {
        self.names[name]
    }

    fn node(&self, name: &str) -> &Replicator<MemStore> {
        &self.nodes[&self.id(name)]
    }

    fn connect(&mut self, a: &str, b: &str) {
        let (a, b) = (self.id(a), self.id(b));
        self.links.insert((a, b));
        self.links.insert((b, a));
        self.queue.push_back((a, Input::PeerConnected(b)));
        self.queue.push_back((b, Input::PeerConnected(a)));
    }

    fn cut(&mut self, a: &str, b: &str) {
        let (a, b) = (self.id(a), self.id(b));
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
        self.queue.push_back((a, Input::PeerDisconnected(b)));
        self.queue.push_back((b, Input::PeerDisconnected(a)));
    }

    fn write(&mut self, name: &str, n: u32) {
        let id = self.id(name);
        for _ in 0..n {
            self.now = self.now.plus_ms(1);
            let node = self.nodes.get_mut(&id).unwrap();
            let body = nth_body(&id, node.store().version(&id).unwrap());
            node.write(self.now, body).unwrap();
            self.drain(id);
        }
    }

    /// Delivers everything in flight, and what that causes, until quiet.
    fn settle(&mut self) {
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.drain(id);
        }
        let mut steps = 0;
        while let Some((to, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 5_000_000, "the network never settles");
            self.now = self.now.plus_ms(1);
            if let Some(node) = self.nodes.get_mut(&to) {
                node.handle(self.now, input).unwrap();
                self.drain(to);
            }
        }
    }

    fn drain(&mut self, at: PeerId) {
        while let Some(action) = self.nodes.get_mut(&at).and_then(Replicator::poll_action) {
            self.carry_out(at, action);
        }
    }

    fn carry_out(&mut self, at: PeerId, action: Action) {
        match action {
            Action::Request { peer, bytes } => {
                self.requests_sent += 1;
                let forks = matches!(Request::decode(&bytes), Ok(Request::Forks { .. }));
                self.fork_requests += u64::from(forks);
                if forks && self.old.contains(&peer) && self.links.contains(&(at, peer)) {
                    self.fork_refusals += 1;
                    let bytes = Response::Refused(buildmesh_protocol::Refusal::Malformed).encode();
                    self.queue
                        .push_back((at, Input::ResponseReceived { peer, bytes }));
                } else if self.links.contains(&(at, peer)) {
                    self.next_id += 1;
                    self.requests.insert(self.next_id, (at, peer));
                    self.queue.push_back((
                        peer,
                        Input::RequestReceived {
                            peer: at,
                            id: self.next_id,
                            bytes,
                        },
                    ));
                } else {
                    self.queue.push_back((at, Input::RequestFailed(peer)));
                }
            }
            Action::Respond { id, mut bytes } => {
                let (asker, answerer) = self.requests.remove(&id).unwrap();
                if self.tampered.contains(&answerer)
                    && let Ok(Response::Forks { mut entries }) = Response::decode(&bytes)
                {
                    for entry in &mut entries {
                        entry[90] ^= 0x40;
                    }
                    bytes = Response::Forks { entries }.encode();
                }
                if self.links.contains(&(answerer, asker)) {
                    self.queue.push_back((
                        asker,
                        Input::ResponseReceived {
                            peer: answerer,
                            bytes,
                        },
                    ));
                }
            }
            Action::ServeBlob { id, hash } => {
                let blob = self
                    .blobs
                    .get(&at)
                    .and_then(|held| held.get(&hash))
                    .cloned();
                self.carry_out(
                    at,
                    Action::Respond {
                        id,
                        bytes: Response::Blob(blob).encode(),
                    },
                );
            }
            Action::BlobFetched { hash, bytes } => self.fetched.push((at, hash, Some(bytes))),
            Action::BlobUnavailable(hash) => self.fetched.push((at, hash, None)),
            Action::LeasesHeard { peer, wires } => self.leases_heard.push((at, peer, wires)),
            Action::Publish { bytes } => {
                let message = sha256(&[&bytes]).to_vec();
                self.gossip_source
                    .insert(message.clone(), (at, bytes.clone()));
                self.forward(at, None, message);
            }
            Action::ReportGossip {
                message,
                from,
                verdict,
            } => {
                if verdict == Verdict::Accept {
                    self.forward(at, Some(from), message);
                }
            }
            Action::Disconnect { peer, reason } => {
                self.disconnects.push((at, peer, reason));
                self.links.remove(&(at, peer));
                self.links.remove(&(peer, at));
                self.queue.push_back((peer, Input::PeerDisconnected(at)));
            }
            Action::Verify { peer, wires } => {
                let wires: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
                let entries = Entry::from_wires(&wires, &mut KeyCache::default());
                let verified = (at, Input::Verified { peer, entries });
                if self.hold_verify == Some(at) {
                    self.held.push(verified);
                } else {
                    self.queue.push_back(verified);
                }
            }
            Action::Applied(_) => {}
        }
    }

    /// Gossip: hand `message` to every neighbour of `at` but `except`.
    fn forward(&mut self, at: PeerId, except: Option<PeerId>, message: Vec<u8>) {
        let (source, bytes) = self.gossip_source[&message].clone();
        let neighbours: Vec<PeerId> = self
            .links
            .iter()
            .filter(|(a, b)| *a == at && Some(*b) != except)
            .map(|(_, b)| *b)
            .collect();
        for peer in neighbours {
            let input = Input::Gossiped {
                from: at,
                source,
                message: message.clone(),
                bytes: bytes.clone(),
            };
            self.queue.push_back((peer, input));
        }
    }

    fn assert_converged(&self) {
        let mut nodes = self.nodes.values();
        let first = nodes.next().unwrap();
        for node in nodes {
            assert_eq!(
                node.store().versions().unwrap(),
                first.store().versions().unwrap()
            );
            assert_eq!(node.store().len().unwrap(), first.store().len().unwrap());
        }
    }
}

#[test]
fn two_nodes_exchange_what_each_wrote_alone() {
    let mut net = Net::new(&["alice", "bob"]);
    net.write("alice", 300);
    net.write("bob", 200);
    net.connect("alice", "bob");
    net.settle();
    net.assert_converged();
    assert_eq!(net.node("alice").store().len().unwrap(), 500);
}

#[test]
fn five_nodes_in_a_line_converge_on_entries_written_at_both_ends() {
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let mut net = Net::new(&names);
    for pair in names.windows(2) {
        net.connect(pair[0], pair[1]);
    }
    net.settle();
    net.write("n1", 500);
    net.write("n5", 500);
    net.settle();
    net.assert_converged();
    assert_eq!(net.node("n3").store().len().unwrap(), 1000);
}

#[test]
fn a_late_joiner_catches_up_in_bounded_batches() {
    let mut net = Net::new(&["old", "new"]);
    net.write("old", 10_000);
    net.connect("old", "new");
    net.settle();
    net.assert_converged();
    let batches = 10_000u64.div_ceil(1024);
    let syncs = net.requests_sent - net.fork_requests;
    assert!(
        syncs <= batches + 2,
        "{syncs} sync requests for {batches} batches"
    );
    // Each side asks the other once for fork proofs after its sync.
    assert!(
        net.fork_requests <= 2,
        "{} fork requests",
        net.fork_requests
    );
}

/// Issue 14: a node that joins late learns the live leases with its first
/// sync, once per sync however many batches it takes (they are not log
/// entries, so nothing else would tell it before the next renewal).
#[test]
fn a_sync_hands_over_the_live_leases_once_with_its_first_batch() {
    let mut net = Net::new(&["old", "new"]);
    net.write("old", 3_000);
    let old = net.names["old"];
    let leases = vec![vec![1u8; 200], vec![2u8; 200]];
    net.nodes.get_mut(&old).unwrap().set_leases(leases.clone());
    net.connect("old", "new");
    net.settle();
    net.assert_converged();
    let new = net.names["new"];
    assert_eq!(
        net.leases_heard,
        vec![(new, old, leases)],
        "three batches, one handover"
    );
    // A node with no live leases sends none; one past the bound is cut.
    net.leases_heard.clear();
    let many = vec![vec![3u8; 10]; SYNC_LEASES_MAX + 5];
    net.nodes.get_mut(&new).unwrap().set_leases(many);
    net.nodes.get_mut(&old).unwrap().set_leases(Vec::new());
    net.cut("old", "new");
    net.connect("old", "new");
    net.settle();
    let to_old: Vec<usize> = net
        .leases_heard
        .iter()
        .filter(|(at, _, _)| *at == old)
        .map(|(_, _, wires)| wires.len())
        .collect();
    assert!(
        !to_old.is_empty() && to_old.iter().all(|n| *n == SYNC_LEASES_MAX),
        "{to_old:?}"
    );
    assert!(net.leases_heard.iter().all(|(at, _, _)| *at != new));
}

#[test]
fn a_catch_up_keeps_at_most_two_batches_out_for_verification() {
    let mut net = Net::new(&["source", "late"]);
    net.write("source", 5_000);
    net.settle();
    let late = net.id("late");
    net.hold_verify = Some(late);
    net.connect("source", "late");
    net.settle();
    assert_eq!(
        net.held.len(),
        2,
        "two batches out, the third not asked for"
    );
    let mut released = 0;
    while !net.held.is_empty() {
        let verified = net.held.remove(0);
        net.queue.push_back(verified);
        net.settle();
        released += 1;
        assert!(net.held.len() <= 2);
    }
    assert!(
        released >= 5,
        "5,000 entries come in batches of at most 1,024"
    );
    net.assert_converged();
}

#[test]
fn halves_that_wrote_apart_converge_after_healing() {
    let mut net = Net::new(&["a1", "a2", "b1", "b2"]);
    net.connect("a1", "a2");
    net.connect("b1", "b2");
    net.connect("a2", "b1");
    net.settle();
    net.cut("a2", "b1");
    net.settle();
    net.write("a1", 100);
    net.write("b2", 150);
    net.settle();
    assert_eq!(net.node("a2").store().len().unwrap(), 100);
    net.connect("a2", "b1");
    net.settle();
    net.assert_converged();
    assert_eq!(net.node("a1").store().len().unwrap(), 250);
}

#[test]
fn periodic_sync_repairs_what_gossip_missed() {
    let mut net = Net::new(&["alice", "bob"]);
    net.connect("alice", "bob");
    net.settle();
    // Entries written while the link is down but the nodes think it is up:
    // the gossip is lost in flight.
    let (a, b) = (net.id("alice"), net.id("bob"));
    net.links.remove(&(a, b));
    net.write("alice", 20);
    net.settle();
    net.links.insert((a, b));
    assert_eq!(net.node("bob").store().len().unwrap(), 0);
    net.now = net
        .now
        .plus_ms(ReplicatorConfig::default().sync_interval_ms * 3);
    for id in [a, b] {
        net.queue.push_back((id, Input::Tick));
    }
    net.settle();
    net.assert_converged();
}

#[test]
fn a_rogue_gossiper_is_rejected_and_disconnected() {
    let mut net = Net::new(&["honest", "rogue"]);
    net.connect("honest", "rogue");
    net.settle();
    let (honest, rogue) = (net.id("honest"), net.id("rogue"));
    // A valid entry by someone else, published by the rogue as its own.
    let mut other = Net::new(&["carol"]);
    other.write("carol", 1);
    let carol_entry = other
        .node("carol")
        .store()
        .at(&other.id("carol"), 1)
        .unwrap()[0]
        .entry
        .to_wire();
    let mut tampered = carol_entry.clone();
    tampered[100] ^= 1;
    let gossip = [
        carol_entry,
        tampered,
        vec![0xde, 0xad],
        vec![7; 70_000],
        vec![1; 200],
    ];
    for (i, bytes) in gossip.into_iter().enumerate() {
        let message = vec![i as u8];
        net.queue.push_back((
            honest,
            Input::Gossiped {
                from: rogue,
                source: rogue,
                message,
                bytes,
            },
        ));
    }
    net.settle();
    assert_eq!(
        net.node("honest").store().len().unwrap(),
        0,
        "nothing the rogue sent got in"
    );
    assert_eq!(net.node("honest").stats().disconnects, 1);
    assert!(matches!(net.disconnects.last(), Some((h, r, _)) if *h == honest && *r == rogue));
}

#[test]
fn a_peer_serving_a_forged_sync_batch_is_dropped_and_nothing_is_taken() {
    let mut net = Net::new(&["honest", "rogue"]);
    let (honest, rogue) = (net.id("honest"), net.id("rogue"));
    net.write("rogue", 5);
    let mut forged: Vec<Vec<u8>> = (1..=5)
        .map(|seq| {
            net.node("rogue").store().at(&rogue, seq).unwrap()[0]
                .entry
                .to_wire()
        })
        .collect();
    forged[3][90] ^= 0x40;
    net.links.insert((honest, rogue));
    net.links.insert((rogue, honest));
    net.queue.push_back((honest, Input::PeerConnected(rogue)));
    net.settle_only(honest);
    let response = Response::Sync {
        entries: forged,
        resume: None,
        leases: Vec::new(),
    }
    .encode();
    net.queue.push_back((
        honest,
        Input::ResponseReceived {
            peer: rogue,
            bytes: response,
        },
    ));
    net.settle_only(honest);
    assert_eq!(net.node("honest").store().len().unwrap(), 0);
    assert!(
        matches!(net.disconnects.last(), Some((_, r, Misbehaviour::BadEntry(_))) if *r == rogue)
    );
}

#[test]
fn a_flood_of_requests_is_refused_then_disconnected() {
    let mut net = Net::new(&["honest", "flooder"]);
    net.connect("honest", "flooder");
    net.settle();
    let (honest, flooder) = (net.id("honest"), net.id("flooder"));
    let request = Request::Sync {
        have: Default::default(),
        resume: None,
    }
    .encode();
    for id in 0..300 {
        net.requests.insert(10_000 + id, (flooder, honest));
        net.queue.push_back((
            honest,
            Input::RequestReceived {
                peer: flooder,
                id: 10_000 + id,
                bytes: request.clone(),
            },
        ));
    }
    net.settle();
    let dropped = net.disconnects.iter().any(|(h, f, reason)| {
        *h == honest && *f == flooder && *reason == Misbehaviour::RateExceeded
    });
    assert!(dropped, "{:?}", net.disconnects);
}

impl Net {
    /// Delivers only what is addressed to `node`, dropping its requests.
    fn settle_only(&mut self, node: PeerId) {
        while let Some((to, input)) = self.queue.pop_front() {
            if to != node {
                continue;
            }
            self.nodes
                .get_mut(&to)
                .unwrap()
                .handle(self.now, input)
                .unwrap();
            while let Some(action) = self.nodes.get_mut(&to).unwrap().poll_action() {
                match action {
                    Action::Disconnect { .. } | Action::Verify { .. } => self.carry_out(to, action),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn a_restarted_node_fetches_only_what_it_lacks() {
    let mut net = Net::new(&["alice", "bob"]);
    net.write("alice", 100);
    net.connect("alice", "bob");
    net.settle();
    net.cut("alice", "bob");
    net.settle();
    let store = net.node("bob").store().clone();
    let bob = net.id("bob");
    let key = SigningKey::from_bytes(&seed_of("bob"));
    let restarted = Replicator::new(ReplicatorConfig::default(), key, store, 9).unwrap();
    net.nodes.insert(bob, restarted);
    net.write("alice", 10);
    net.connect("alice", "bob");
    net.settle();
    net.assert_converged();
    assert_eq!(
        net.node("bob").stats().entries_received,
        10,
        "the 100 it had were not fetched again"
    );
}

#[test]
fn entries_submitted_to_one_node_reach_a_line_of_nodes() {
    let names = ["n1", "n2", "n3", "n4"];
    let mut net = Net::new(&names);
    for pair in names.windows(2) {
        net.connect(pair[0], pair[1]);
    }
    net.settle();
    let mut maintainer =
        buildmesh_core::log::ChainWriter::new(SigningKey::from_bytes(&seed_of("maintainer")));
    let wires: Vec<Vec<u8>> = (0..50u32)
        .map(|i| {
            let body = nth_body(&maintainer.author(), u64::from(i));
            maintainer
                .write(Timestamp(u64::from(i)), body)
                .unwrap()
                .to_wire()
        })
        .collect();
    let mut with_garbage: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
    with_garbage.push(b"not an entry");
    let n1 = net.id("n1");
    let results = net
        .nodes
        .get_mut(&n1)
        .unwrap()
        .submit(&with_garbage)
        .unwrap();
    assert_eq!(results.len(), 51);
    assert!(matches!(
        results[50],
        buildmesh_core::replicator::Submitted::Invalid(_)
    ));
    net.drain(n1);
    net.settle();
    net.assert_converged();
    assert_eq!(net.node("n4").store().len().unwrap(), 50);
}

#[test]
fn a_blob_is_fetched_from_whichever_peer_has_it_and_checked() {
    let mut net = Net::new(&["reader", "empty", "liar", "holder"]);
    net.connect("reader", "empty");
    net.connect("reader", "liar");
    net.settle();
    let log = b"test output: 42 passed".to_vec();
    let hash = BlobHash::of(&log);
    net.blobs
        .entry(net.id("holder"))
        .or_default()
        .insert(hash, log.clone());
    net.blobs
        .entry(net.id("liar"))
        .or_default()
        .insert(hash, b"forged output".to_vec());
    let reader = net.id("reader");
    let fetch = |net: &mut Net| {
        let now = net.now;
        net.nodes.get_mut(&reader).unwrap().fetch_blob(now, hash);
        net.drain(reader);
        net.settle();
    };
    fetch(&mut net);
    assert_eq!(
        net.fetched,
        vec![(reader, hash, None)],
        "a forged copy is never taken"
    );
    assert_eq!(
        net.node("reader").stats().offences,
        1,
        "the liar was counted"
    );
    net.connect("reader", "holder");
    net.settle();
    fetch(&mut net);
    assert_eq!(net.fetched.last(), Some(&(reader, hash, Some(log))));
}

/// Issue 13, item 1: HTTP clients asking for unknown blobs must not make
/// this node flood its peers (who would ban it). Fetches come out of a
/// budget, and a blob no peer had is not asked for again until a new peer
/// connects.
#[test]
fn blob_fetches_are_budgeted_and_misses_remembered() {
    let mut net = Net::new(&["reader", "empty", "holder"]);
    net.connect("reader", "empty");
    net.settle();
    let reader = net.id("reader");
    let before = net.requests_sent;
    let hashes: Vec<BlobHash> = (0u32..100)
        .map(|n| BlobHash::of(&n.to_le_bytes()))
        .collect();
    let now = net.now;
    for hash in &hashes {
        net.nodes.get_mut(&reader).unwrap().fetch_blob(now, *hash);
    }
    net.drain(reader);
    net.settle();
    let asked = net.requests_sent - before;
    assert!(
        asked <= u64::from(BLOB_FETCHES_BURST),
        "{asked} requests for 100 blobs at once"
    );
    assert_eq!(net.fetched.len(), 100, "every fetch is answered");
    assert!(net.fetched.iter().all(|(_, _, bytes)| bytes.is_none()));
    // A blob no peer had is answered at once, later too, without asking.
    let missed = net.fetched[0].1;
    let later = net.now.plus_ms(5_000);
    let before = net.requests_sent;
    net.nodes
        .get_mut(&reader)
        .unwrap()
        .fetch_blob(later, missed);
    net.drain(reader);
    net.settle();
    assert_eq!(net.requests_sent, before, "a known miss is not asked again");
    // A new peer may hold it: asked again.
    net.connect("reader", "holder");
    net.settle();
    let before = net.requests_sent;
    let now = net.now.plus_ms(10_000);
    net.nodes.get_mut(&reader).unwrap().fetch_blob(now, missed);
    net.drain(reader);
    net.settle();
    assert!(net.requests_sent > before, "asked again once a peer joined");
}

/// A sync request that gets neither an answer nor a failure (a report the
/// transport lost) must not stop the node syncing with that peer for good:
/// past `request_stall_ms` it is given up and the next round asks again.
#[test]
fn a_request_never_answered_is_given_up_and_asked_again() {
    let key = SigningKey::from_bytes(&seed_of("lonely"));
    let peer: PeerId = SigningKey::from_bytes(&seed_of("silent"))
        .verifying_key()
        .into();
    let config = ReplicatorConfig::default();
    let (interval, stall) = (config.sync_interval_ms, config.request_stall_ms);
    let mut node = Replicator::new(config, key, MemStore::default(), 1).unwrap();
    let requests = |node: &mut Replicator<MemStore>| {
        std::iter::from_fn(|| node.poll_action())
            .filter(|a| matches!(a, Action::Request { .. }))
            .count()
    };
    let t0 = Timestamp(1_000_000);
    node.handle(t0, Input::PeerConnected(peer)).unwrap();
    assert_eq!(requests(&mut node), 1);
    // Rounds come and go; the silent request is still out, so no new one.
    let mut now = t0;
    while now.0 < t0.0 + stall {
        now = now.plus_ms(interval);
        node.handle(now, Input::Tick).unwrap();
        if now.0 < t0.0 + stall {
            assert_eq!(requests(&mut node), 0, "at {} ms", now.0 - t0.0);
        }
    }
    assert_eq!(requests(&mut node), 1, "given up and asked again");
}

impl Net {
    /// Hands `entries` to `name` as a client would (`POST /api/v1/entries`).
    fn submit(
        &mut self,
        name: &str,
        entries: &[&Entry],
    ) -> Vec<buildmesh_core::replicator::Submitted> {
        let id = self.id(name);
        let wires: Vec<Vec<u8>> = entries.iter().map(|e| e.to_wire()).collect();
        let wires: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
        let results = self.nodes.get_mut(&id).unwrap().submit(&wires).unwrap();
        self.drain(id);
        results
    }

    fn assert_same_stores(&self) {
        let mut nodes = self.nodes.values();
        let first = nodes.next().unwrap().store();
        for node in nodes {
            assert!(
                node.store().same_contents(first),
                "two nodes hold different logs"
            );
        }
    }
}

/// An author that has a role (it declares a project), its first `n`
/// entries, and a writer for what comes next.
fn mallory(n: u64) -> (buildmesh_core::log::ChainWriter, Vec<Entry>) {
    let mut writer = fixtures::writer("mallory");
    let entries = (0..n)
        .map(|i| {
            let body = nth_body(&writer.author(), i);
            writer.write(Timestamp(i + 1), body).unwrap()
        })
        .collect();
    (writer, entries)
}

fn announce_as(writer: &mut buildmesh_core::log::ChainWriter, n: u8) -> Entry {
    let project = ProjectId::derive(&writer.author(), "demo");
    writer
        .write(
            Timestamp(1_000 + u64::from(n)),
            fixtures::announce(project, n),
        )
        .unwrap()
}

/// Issue 18, point 3: two entries at one sequence number, one handed to
/// each end of a line of five while the ends are cut off, so that no node
/// ever holds both by sync alone (a version vector says "seq 4" either
/// way). Fork requests prove the fork on every node, the middle ones
/// included, and freeze the author there everywhere.
#[test]
fn a_fork_no_node_saw_whole_is_proven_and_frozen_on_all_five() {
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let mut net = Net::new(&names);
    for pair in names.windows(2) {
        net.connect(pair[0], pair[1]);
    }
    net.settle();
    let (writer, common) = mallory(3);
    let author = writer.author();
    net.submit("n1", &common.iter().collect::<Vec<_>>());
    net.settle();
    net.cut("n1", "n2");
    net.cut("n4", "n5");
    net.settle();
    let (mut a, mut b) = (writer.clone(), writer);
    let (a4, b4) = (announce_as(&mut a, 10), announce_as(&mut b, 20));
    assert_eq!((a4.seq(), b4.seq()), (4, 4));
    net.submit("n1", &[&a4]);
    net.submit("n5", &[&b4]);
    net.settle();
    assert!(
        net.nodes
            .values()
            .all(|n| n.store().fork(&author).unwrap().is_none())
    );

    // n1's side heals first, so n2, n3 and n4 all take a4 by sync; then
    // n5 with b4 joins: every vector says "seq 4", on both sides.
    net.connect("n1", "n2");
    net.settle();
    assert!(net.node("n4").store().contains(&a4.id()).unwrap());
    net.connect("n4", "n5");
    net.settle();
    for name in names {
        let store = net.node(name).store();
        let proof = store.fork(&author).unwrap();
        assert_eq!(proof.map(|p| p.seq), Some(4), "{name} holds the proof");
        assert!(
            store.contains(&a4.id()).unwrap() && store.contains(&b4.id()).unwrap(),
            "{name}"
        );
        assert_eq!(store.version(&author).unwrap(), 4, "{name}");
    }
    net.assert_same_stores();

    // What the author signs next is refused everywhere, not stored.
    let a5 = announce_as(&mut a, 12);
    let outcome = net.submit("n3", &[&a5]);
    assert!(
        matches!(
            outcome.as_slice(),
            [buildmesh_core::replicator::Submitted::Ingested(
                _,
                buildmesh_core::log::Ingested::Rejected(buildmesh_core::log::Rejected::Frozen {
                    seq: 5,
                    fork_seq: 4
                })
            )]
        ),
        "{outcome:?}"
    );
    assert!(
        net.disconnects.is_empty(),
        "nobody was blamed: {:?}",
        net.disconnects
    );
}

/// Two histories of equal length from seq 4 on: each node's vector says
/// "seq 9", so sync sees nothing. The heads named in fork requests show
/// the fork at seq 9; the probes behind it walk the boundary down to
/// seq 4, where the histories parted, and both nodes end with one log.
#[test]
fn a_fork_at_equal_heights_is_found_and_walked_back_to_where_it_began() {
    let mut net = Net::new(&["left", "right"]);
    let (writer, common) = mallory(3);
    let author = writer.author();
    let common: Vec<&Entry> = common.iter().collect();
    net.submit("left", &common);
    net.submit("right", &common);
    let (mut a, mut b) = (writer.clone(), writer);
    let left: Vec<Entry> = (0..6).map(|n| announce_as(&mut a, n)).collect();
    let right: Vec<Entry> = (0..6).map(|n| announce_as(&mut b, 100 + n)).collect();
    net.submit("left", &left.iter().collect::<Vec<_>>());
    net.submit("right", &right.iter().collect::<Vec<_>>());
    net.settle();
    assert_eq!(net.node("left").store().version(&author).unwrap(), 9);

    net.connect("left", "right");
    net.settle();
    for name in ["left", "right"] {
        let store = net.node(name).store();
        assert_eq!(
            store.fork(&author).unwrap().map(|p| p.seq),
            Some(4),
            "{name}"
        );
        assert_eq!(store.version(&author).unwrap(), 4, "{name}");
        assert!(store.contains(&left[0].id()).unwrap() && store.contains(&right[0].id()).unwrap());
        assert_eq!(
            store.len().unwrap(),
            3 + 2,
            "{name}: the common part and both seq 4s"
        );
    }
    net.assert_same_stores();
}

/// A node that predates fork requests refuses one as malformed: it is not
/// asked again while connected, not blamed, and syncs as before.
#[test]
fn an_older_peer_that_refuses_fork_requests_is_left_alone() {
    let mut net = Net::new(&["new", "old"]);
    net.old.insert(net.id("old"));
    net.write("old", 20);
    net.connect("new", "old");
    net.settle();
    net.assert_converged();
    assert_eq!(net.fork_refusals, 1, "asked once");
    let interval = ReplicatorConfig::default().sync_interval_ms;
    for _ in 0..3 {
        net.write("old", 5);
        net.write("new", 5);
        net.now = net.now.plus_ms(interval + 1);
        for node in [net.id("new"), net.id("old")] {
            net.queue.push_back((node, Input::Tick));
        }
        net.settle();
    }
    net.assert_converged();
    assert_eq!(net.fork_refusals, 1, "and not again on this connection");
    assert!(net.disconnects.is_empty(), "{:?}", net.disconnects);
    assert_eq!(net.node("new").stats().offences, 0);
}

/// An answer to a fork request is checked like a sync batch: one entry
/// that does not verify condemns the peer, and nothing is taken.
#[test]
fn a_forged_fork_answer_is_refused_and_its_peer_dropped() {
    let mut net = Net::new(&["honest", "liar"]);
    let (writer, common) = mallory(3);
    let author = writer.author();
    let (mut a, mut b) = (writer.clone(), writer);
    let (a4, b4) = (announce_as(&mut a, 1), announce_as(&mut b, 2));
    let mut shared: Vec<&Entry> = common.iter().collect();
    shared.push(&a4);
    net.submit("honest", &shared);
    net.submit("liar", &shared);
    net.submit("liar", &[&b4]);
    net.tampered.insert(net.id("liar"));
    net.connect("honest", "liar");
    net.settle();
    assert!(net.node("liar").store().fork(&author).unwrap().is_some());
    assert!(net.node("honest").store().fork(&author).unwrap().is_none());
    assert!(net.disconnects.iter().any(|(at, peer, why)| {
        *at == net.id("honest")
            && *peer == net.id("liar")
            && matches!(why, Misbehaviour::BadEntry(_))
    }));
}

/// Review 3, M1: more forked authors than a request can name
/// (FORKS_KNOWN_MAX), all known to both nodes but one: the proof only the
/// answerer holds, against the author with the highest key, must still
/// reach the asker. An answer that walked its proofs from the lowest key
/// filled up with proofs the asker holds but did not name, for ever.
#[test]
fn a_proof_behind_more_known_forks_than_a_request_names_still_travels() {
    let mut net = Net::new(&["asker", "answerer"]);
    let mut forks: Vec<(Entry, Entry, Entry)> = (0..1101)
        .map(|i| {
            let mut w = fixtures::writer(&format!("f{i}"));
            let d = w.write(Timestamp(1), nth_body(&w.author(), 0)).unwrap();
            let (mut a, mut b) = (w.clone(), w);
            (d, announce_as(&mut a, 1), announce_as(&mut b, 2))
        })
        .collect();
    forks.sort_by_key(|(d, _, _)| d.author());
    let victim = forks.last().unwrap().0.author();
    let mut asker: Vec<&Entry> = Vec::new();
    let mut answerer: Vec<&Entry> = Vec::new();
    for (d, a, b) in &forks {
        answerer.extend([d, a, b]);
        asker.extend([d, a]);
        if d.author() != victim {
            asker.push(b);
        }
    }
    for chunk in asker.chunks(256) {
        net.submit("asker", chunk);
    }
    for chunk in answerer.chunks(256) {
        net.submit("answerer", chunk);
    }
    assert!(net.node("asker").store().fork(&victim).unwrap().is_none());
    assert_eq!(net.node("asker").store().forks().unwrap().len(), 1100);
    net.connect("asker", "answerer");
    net.settle();
    let interval = ReplicatorConfig::default().sync_interval_ms;
    for _ in 0..30 {
        net.now = net.now.plus_ms(interval + 1);
        for node in [net.id("asker"), net.id("answerer")] {
            net.queue.push_back((node, Input::Tick));
        }
        net.settle();
    }
    assert!(
        net.node("asker").store().fork(&victim).unwrap().is_some(),
        "after 30 rounds ({} fork requests) the asker still lacks the proof",
        net.fork_requests
    );
}

/// Review 3, M2: forks that never settle (a sibling whose `prev` is
/// garbage) against more authors than a request has probe slots, all with
/// lower keys than one real fork whose histories parted below where it
/// was found: both nodes must still walk the real one down to where it
/// began. Probes taken from the lowest key went to the garbage, for ever.
#[test]
fn unsettled_garbage_forks_with_low_keys_do_not_keep_a_real_fork_from_walking_down() {
    let mut net = Net::new(&["left", "right"]);
    let mut names: Vec<String> = (0..1101).map(|i| format!("g{i}")).collect();
    names.sort_by_key(|name| fixtures::writer(name).author());
    let real = names.pop().unwrap();
    let mut garbage: Vec<Entry> = Vec::new();
    for name in &names {
        let mut writer = fixtures::writer(name);
        let declaration = writer
            .write(Timestamp(1), nth_body(&writer.author(), 0))
            .unwrap();
        let linked = announce_as(&mut writer, 1);
        let content = EntryContent {
            author: writer.author(),
            seq: 2,
            prev: EntryId([1; 32]),
            timestamp: Timestamp(2),
            body: nth_body(&writer.author(), 2),
        };
        let unlinked = Entry::sign(&SigningKey::from_bytes(&seed_of(name)), content).unwrap();
        garbage.extend([declaration, linked, unlinked]);
    }
    let garbage: Vec<&Entry> = garbage.iter().collect();
    for chunk in garbage.chunks(256) {
        net.submit("left", chunk);
        net.submit("right", chunk);
    }
    assert_eq!(net.node("left").store().forks().unwrap().len(), 1100);

    let mut writer = fixtures::writer(&real);
    let author = writer.author();
    let common: Vec<Entry> = (0..3)
        .map(|i| {
            writer
                .write(Timestamp(i + 1), nth_body(&author, i))
                .unwrap()
        })
        .collect();
    let (mut a, mut b) = (writer.clone(), writer);
    let left: Vec<Entry> = (0..6).map(|n| announce_as(&mut a, n)).collect();
    let right: Vec<Entry> = (0..6).map(|n| announce_as(&mut b, 100 + n)).collect();
    for (name, own) in [("left", &left), ("right", &right)] {
        net.submit(name, &common.iter().collect::<Vec<_>>());
        net.submit(name, &own.iter().collect::<Vec<_>>());
    }
    net.connect("left", "right");
    net.settle();
    let interval = ReplicatorConfig::default().sync_interval_ms;
    for _ in 0..30 {
        net.now = net.now.plus_ms(interval + 1);
        for node in [net.id("left"), net.id("right")] {
            net.queue.push_back((node, Input::Tick));
        }
        net.settle();
    }
    for name in ["left", "right"] {
        let store = net.node(name).store();
        assert_eq!(
            store.fork(&author).unwrap().map(|p| p.seq),
            Some(4),
            "{name}: after {} fork requests",
            net.fork_requests
        );
    }
    net.assert_same_stores();
}

/// Review 3, L2 (issue 18, point 3: "however many siblings exist"): an
/// author signs four entries at one sequence number, and three nodes in a
/// line each hold a different pair of them. Every node proves the fork at
/// the same boundary from the start, so neither a proof nor a head told
/// them apart: the siblings must still travel until every node holds all
/// four, and every node keeps the same proof (the two lowest ids).
#[test]
fn every_sibling_at_a_boundary_reaches_every_node_of_a_line() {
    siblings_spread_over_a_line_converge(4, [[0, 1], [1, 2], [2, 3]]);
}

/// As above with six siblings, more than a node keeps at one sequence
/// number (SIBLINGS_MAX = 4): every node ends with the same four, those
/// with the lowest ids, whichever it was handed first.
#[test]
fn more_siblings_than_are_kept_leave_the_same_lowest_on_every_node() {
    siblings_spread_over_a_line_converge(6, [[0, 5], [1, 4], [2, 3]]);
}

/// `count` entries by one author at seq 4, each of three nodes in a line
/// (x, y, z) handed the pair `pairs` names: after settling, every node
/// holds the SIBLINGS_MAX lowest and proves the fork by the two lowest.
fn siblings_spread_over_a_line_converge(count: u8, pairs: [[usize; 2]; 3]) {
    let names = ["x", "y", "z"];
    let mut net = Net::new(&names);
    let (writer, common) = mallory(3);
    let author = writer.author();
    let siblings: Vec<Entry> = (0..count)
        .map(|n| announce_as(&mut writer.clone(), 10 + n))
        .collect();
    assert!(siblings.iter().all(|s| s.seq() == 4));
    let common: Vec<&Entry> = common.iter().collect();
    for (name, pair) in names.iter().zip(pairs) {
        net.submit(name, &common);
        net.submit(name, &[&siblings[pair[0]], &siblings[pair[1]]]);
        let proof = net.node(name).store().fork(&author).unwrap();
        assert_eq!(proof.map(|p| p.seq), Some(4), "{name}");
    }
    net.connect("x", "y");
    net.connect("y", "z");
    net.settle();
    let interval = ReplicatorConfig::default().sync_interval_ms;
    for _ in 0..3 {
        net.now = net.now.plus_ms(interval + 1);
        for name in names {
            net.queue.push_back((net.id(name), Input::Tick));
        }
        net.settle();
    }
    let mut ids: Vec<EntryId> = siblings.iter().map(Entry::id).collect();
    ids.sort();
    ids.truncate(SIBLINGS_MAX);
    for name in names {
        let store = net.node(name).store();
        let held: Vec<EntryId> = store
            .at(&author, 4)
            .unwrap()
            .iter()
            .map(|s| s.entry.id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(held, ids, "{name} holds the lowest siblings");
        let proof = store.fork(&author).unwrap().unwrap();
        assert_eq!((proof.first, proof.second), (ids[0], ids[1]), "{name}");
        assert_eq!(store.version(&author).unwrap(), 4, "{name}");
    }
    net.assert_same_stores();
    assert!(net.disconnects.is_empty(), "{:?}", net.disconnects);
}
