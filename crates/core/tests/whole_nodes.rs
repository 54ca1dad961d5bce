//! Issue 14 item 6: a simulator of whole nodes. N `Service<MemStore>`s
//! with real signed entries, a virtual clock, a seeded network (delays,
//! lost gossip, lost requests and answers, a pair of nodes cut apart or
//! the mesh split in two, and heals), crashes and restarts from what each
//! `MemStore` made durable, and builds of virtual duration that pass, fail,
//! or run into their timeout. Each cell has a nature drawn from the seed
//! ([`Nature`]): most pass or fail on every builder, a few are flaky (each
//! build draws its outcome), so honest builders disagree only where the
//! world makes them. After each run, checkers:
//!
//! - **agreement**: nodes that hold the same entries show the same matrix;
//! - **verdict**: a cell that passes (fails) on every builder never shows
//!   failed (passed), `disagree` or `flaky`: honest builders agree there;
//! - **trust**: no cell counts a result by a key the project does not
//!   trust as a builder, or by a forked author;
//! - **durability**: no entry a node published is missing after it
//!   crashes and restarts;
//! - **liveness**: once the last disruption is over (all nodes up and
//!   connected), every wanted cell is settled within `SETTLE_MS`: passed,
//!   failed, error, or (a flaky cell only) `flaky`, which wants no more
//!   builds; a flaky cell may also stay `disagree` once every node has
//!   built it, for no builder is left to ask;
//! - **forks travel**: the forker's two entries are handed to different
//!   nodes, never both to one; by then every live node holds the proof.
//!
//! Each of the first five checkers is shown to fail under a sabotaged rule (the `sabotaged_*`
//! tests). `BUILDMESH_SIM_SEED=N` replays one seed and prints its trace;
//! a failing seed prints how to replay it. Figures for a few seeds:
//! `cargo test --release -p buildmesh-core --test whole_nodes -- --nocapture`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::claim::{CellKey, ClaimerConfig};
use buildmesh_core::log::{ChainStore, ChainWriter, EntryStore, MemStore};
use buildmesh_core::replicator::{self, ReplicatorConfig};
use buildmesh_core::service::{Action, Input, Notice, Service, ServiceConfig, Topic};
use buildmesh_core::view::{Acceptance, CellStatus, MatrixOptions, ProjectLog, matrix, work};
use buildmesh_protocol::{
    BlobHash, Body, BuildResult, BuilderPolicy, CommitAnnouncement, CommitId, Entry, EntryContent,
    EntryId, Outcome, ProjectDeclaration, ProjectId, PublicKey, StepResult, StepStatus, Timestamp,
    sha256,
};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PLATFORMS: [&str; 2] = ["linux", "mac"];
const T0: Timestamp = Timestamp(1_764_000_000_000);
/// After the last disruption, every wanted cell has a result within this:
/// a lapsed 30 s lease, a window and grace, a build that runs into its
/// 20 s timeout, and room for the messages in between.
const SETTLE_MS: u64 = 90_000;
/// A build that "hangs" runs this long, then ends as an error (its step
/// timeout).
const HANG_MS: u64 = 20_000;
/// How long a lost request or answer takes to be reported as failed (the
/// transport's timeout, shortened).
const REQUEST_TIMEOUT_MS: u64 = 1_000;

/// What a cell's builds find, drawn from the seed and the cell: the
/// truth the verdict checker holds the matrix to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nature {
    /// Every build passes (or errs).
    Passes,
    /// Every build fails (or errs).
    Fails,
    /// Each build passes or fails at random (or errs): builders disagree
    /// and the cell may end `flaky` (issue 18, point 1).
    Flaky,
}

/// How a run can be sabotaged, to show a checker fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sabotage {
    /// The project takes anyone's results: the rogue's count.
    OpenProject,
    /// A crash also loses the node's newest published entry.
    LoseOwnWrites,
    /// Builds never end.
    HangForever,
    /// Node 1 derives its matrix from the newest commit only.
    NarrowView,
    /// Node 1 reports every passing build as failed: a trusted liar.
    LyingBuilder,
}

#[derive(Debug, Clone)]
struct World {
    nodes: usize,
    commits: u32,
    disruptions: u32,
    /// Gossip messages lost, per thousand.
    loss: u64,
    sabotage: Option<Sabotage>,
}

impl World {
    fn small() -> World {
        World {
            nodes: 5,
            commits: 8,
            disruptions: 6,
            loss: 50,
            sabotage: None,
        }
    }
}

/// SplitMix64: small, seeded, good enough to pick delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }
}

#[derive(Debug)]
enum Event {
    Deliver(usize, u64, Input),
    Tick(usize, u64),
    Derive(usize, u64),
    BuildDone(usize, u64, CellKey),
    Commit(u32),
    Crash(usize),
    Restart(usize),
    Cut(usize, usize),
    Heal(usize, usize),
    Rogue,
}

struct Node {
    key: SigningKey,
    service: Option<Service<MemStore>>,
    /// The store a crashed node restarts from.
    crashed: Option<MemStore>,
    incarnation: u64,
    tick_at: Option<Timestamp>,
    derive_pending: bool,
    /// Builds running: cell, and whether cancelled.
    builds: BTreeMap<CellKey, bool>,
    /// Entries this node published (acknowledged to the mesh).
    published: Vec<EntryId>,
    messages: u64,
}

#[derive(Debug, Default)]
struct Counters {
    starts: BTreeMap<CellKey, u32>,
    announced: BTreeMap<CommitId, Timestamp>,
    first_result: BTreeMap<CellKey, Timestamp>,
    crashes: u32,
    lost_own: Vec<String>,
    notices: Vec<String>,
    /// Which of the forker's two entries some live node was handed.
    forker_handed: [bool; 2],
}

struct Sim {
    world: World,
    seed: u64,
    rng: Rng,
    now: Timestamp,
    queue: BTreeMap<(Timestamp, u64), Event>,
    next_event: u64,
    nodes: Vec<Node>,
    /// Links that are up (both directions listed).
    links: BTreeSet<(usize, usize)>,
    requests: BTreeMap<u64, (usize, u64, usize)>,
    next_request: u64,
    project: ProjectId,
    declaration: Entry,
    /// A trusted builder that signs two different entries at one seq.
    forker: Vec<Entry>,
    rogue: ChainWriter,
    trusted: BTreeSet<PublicKey>,
    counters: Counters,
    last_disruption: Timestamp,
    trace: Vec<String>,
    tracing: bool,
}

fn key_of(seed: u64, name: &str) -> SigningKey {
    SigningKey::from_bytes(&sha256(&[&seed.to_le_bytes(), name.as_bytes()]))
}

fn commit_of(n: u32) -> CommitId {
    CommitId::from_bytes(&sha256(&[b"commit", &n.to_le_bytes()])[..20]).unwrap()
}

impl Sim {
    fn new(world: World, seed: u64) -> Sim {
        let keys: Vec<SigningKey> = (0..world.nodes)
            .map(|i| key_of(seed, &format!("node-{i}")))
            .collect();
        let mut maintainer = ChainWriter::new(key_of(seed, "maintainer"));
        let forker_key = key_of(seed, "forker");
        let forker_pub = PublicKey::from(forker_key.verifying_key());
        let project = ProjectId::derive(&maintainer.author(), "demo");
        let mut trusted: BTreeSet<PublicKey> = keys
            .iter()
            .map(|k| PublicKey::from(k.verifying_key()))
            .collect();
        trusted.insert(forker_pub);
        let builders = match world.sabotage {
            Some(Sabotage::OpenProject) => BuilderPolicy::Open,
            _ => BuilderPolicy::Only(trusted.iter().copied().collect()),
        };
        let declaration = maintainer
            .write(
                T0,
                Body::Project(ProjectDeclaration {
                    name: "demo".into(),
                    repository: "sim://demo".into(),
                    branches: vec!["main".into()],
                    platforms: PLATFORMS.iter().map(|p| p.to_string()).collect(),
                    announcers: vec![PublicKey::from(keys[0].verifying_key())],
                    builders,
                    builds_per_cell: 1,
                }),
            )
            .unwrap();
        trusted.remove(&forker_pub);
        let forker = (0..2)
            .map(|n| {
                let content = EntryContent {
                    author: forker_pub,
                    seq: 1,
                    prev: EntryId::ZERO,
                    timestamp: T0.plus_ms(n),
                    body: result_body(project, 0, PLATFORMS[0], Outcome::Failed),
                };
                Entry::sign(&forker_key, content).unwrap()
            })
            .collect();
        let nodes = keys
            .into_iter()
            .map(|key| Node {
                key,
                service: None,
                crashed: Some(MemStore::default()),
                incarnation: 0,
                tick_at: None,
                derive_pending: false,
                builds: BTreeMap::new(),
                published: Vec::new(),
                messages: 0,
            })
            .collect();
        let tracing = std::env::var("BUILDMESH_SIM_SEED").is_ok();
        Sim {
            world,
            seed,
            rng: Rng(seed),
            now: T0,
            queue: BTreeMap::new(),
            next_event: 0,
            nodes,
            links: BTreeSet::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            project,
            declaration,
            forker,
            rogue: ChainWriter::new(key_of(seed, "rogue")),
            trusted,
            counters: Counters::default(),
            last_disruption: T0,
            trace: Vec::new(),
            tracing,
        }
    }

    fn at(&mut self, at: Timestamp, event: Event) {
        self.next_event += 1;
        self.queue.insert((at, self.next_event), event);
    }

    fn note(&mut self, line: String) {
        if self.tracing {
            println!("{:>7} {line}", self.now.0 - T0.0);
        }
        self.trace.push(format!("{:>7} {line}", self.now.0 - T0.0));
        if self.trace.len() > 400 {
            self.trace.drain(..100);
        }
    }

    /// The script: nodes start, commits arrive, disruptions come and go,
    /// a rogue and a forker write; then the run goes on until every cell
    /// should have settled.
    fn script(&mut self) -> Timestamp {
        for node in 0..self.nodes.len() {
            self.at(T0.plus_ms(node as u64 * 10), Event::Restart(node));
        }
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.at(T0.plus_ms(100), Event::Heal(a, b));
            }
        }
        for n in 0..self.world.commits {
            let at = T0.plus_ms(1_000 + u64::from(n) * self.rng.between(500, 4_000));
            self.at(at, Event::Commit(n));
        }
        self.at(T0.plus_ms(8_000), Event::Rogue);
        let mut end = T0.plus_ms(1_000);
        for _ in 0..self.world.disruptions {
            let start = T0.plus_ms(self.rng.between(2_000, 40_000));
            let length = self.rng.between(500, 15_000);
            let a = self.rng.below(self.nodes.len() as u64) as usize;
            match self.rng.below(3) {
                0 => {
                    self.at(start, Event::Crash(a));
                    self.at(start.plus_ms(length), Event::Restart(a));
                }
                1 => {
                    let b = (a + 1 + self.rng.below(self.nodes.len() as u64 - 1) as usize)
                        % self.nodes.len();
                    self.at(start, Event::Cut(a, b));
                    self.at(start.plus_ms(length), Event::Heal(a, b));
                }
                _ => self.split(start, length),
            }
            end = end.max(start.plus_ms(length));
        }
        let last_commit = T0.plus_ms(1_000 + u64::from(self.world.commits) * 4_000);
        end.max(last_commit).plus_ms(SETTLE_MS)
    }

    /// The mesh splits into two groups (each node joins one at random)
    /// for `length`, then heals.
    fn split(&mut self, start: Timestamp, length: u64) {
        let side: Vec<bool> = (0..self.nodes.len())
            .map(|_| self.rng.below(2) == 0)
            .collect();
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                if side[a] != side[b] {
                    self.at(start, Event::Cut(a, b));
                    self.at(start.plus_ms(length), Event::Heal(a, b));
                }
            }
        }
    }

    /// A request or answer lost on the way (half as likely as a gossip
    /// message): the asker hears of it when its transport gives up.
    fn lost_request(&mut self, asker: usize, peer: PublicKey) -> bool {
        if self.rng.below(2_000) >= self.world.loss {
            return false;
        }
        self.send(asker, REQUEST_TIMEOUT_MS, Input::RequestFailed(peer));
        true
    }

    fn run(&mut self) -> Timestamp {
        let horizon = self.script();
        let mut same_instant = 0u32;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > horizon {
                break;
            }
            same_instant = if at <= self.now { same_instant + 1 } else { 0 };
            assert!(
                same_instant < 100_000,
                "seed {}: no progress at {} ms: {event:?}",
                self.seed,
                self.now.0 - T0.0
            );
            self.now = self.now.max(at);
            self.event(event);
            if !self.counters.lost_own.is_empty() {
                // Final: and a node whose chain lost an entry forks itself
                // from here on, which is not what this run is about.
                break;
            }
        }
        self.now = horizon;
        horizon
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Deliver(node, inc, input) if self.alive(node, inc) => self.feed(node, input),
            Event::Tick(node, inc) if self.alive(node, inc) => {
                self.nodes[node].tick_at = None;
                self.feed(node, Input::Tick);
            }
            Event::Derive(node, inc) if self.alive(node, inc) => self.derive(node),
            Event::BuildDone(node, inc, cell) if self.alive(node, inc) => {
                self.build_done(node, cell)
            }
            Event::Deliver(..) | Event::Tick(..) | Event::Derive(..) | Event::BuildDone(..) => {}
            Event::Commit(n) => self.commit(n),
            Event::Crash(node) => self.crash(node),
            Event::Restart(node) => self.restart(node),
            Event::Cut(a, b) => self.cut(a, b),
            Event::Heal(a, b) => self.heal(a, b),
            Event::Rogue => self.rogue(),
        }
    }

    fn alive(&self, node: usize, incarnation: u64) -> bool {
        self.nodes[node].service.is_some() && self.nodes[node].incarnation == incarnation
    }

    fn public(&self, node: usize) -> PublicKey {
        PublicKey::from(self.nodes[node].key.verifying_key())
    }

    fn index_of(&self, key: &PublicKey) -> Option<usize> {
        (0..self.nodes.len()).find(|i| self.public(*i) == *key)
    }

    fn connected(&self, a: usize, b: usize) -> bool {
        self.links.contains(&(a, b))
            && self.nodes[a].service.is_some()
            && self.nodes[b].service.is_some()
    }

    fn send(&mut self, to: usize, delay_ms: u64, input: Input) {
        let inc = self.nodes[to].incarnation;
        self.nodes[to].messages += 1;
        let at = self.now.plus_ms(delay_ms);
        self.at(at, Event::Deliver(to, inc, input));
    }

    fn delay(&mut self) -> u64 {
        self.rng.between(5, 50)
    }

    fn feed(&mut self, node: usize, input: Input) {
        let now = self.now;
        let Some(service) = self.nodes[node].service.as_mut() else {
            return;
        };
        service.handle(now, input).unwrap();
        self.carry_out(node);
    }

    fn carry_out(&mut self, node: usize) {
        while let Some(action) = self.nodes[node]
            .service
            .as_mut()
            .and_then(Service::poll_action)
        {
            self.act(node, action);
        }
        let Some(service) = self.nodes[node].service.as_ref() else {
            return;
        };
        let next = service.poll_timeout();
        let node_state = &self.nodes[node];
        if let Some(at) = next.filter(|at| node_state.tick_at.is_none_or(|t| *at < t)) {
            let inc = node_state.incarnation;
            self.nodes[node].tick_at = Some(at);
            self.at(at.max(self.now), Event::Tick(node, inc));
        }
    }

    fn act(&mut self, node: usize, action: Action) {
        match action {
            Action::Net(action) => self.net(node, action),
            Action::Publish { topic, bytes } => self.gossip(node, topic, bytes),
            Action::DeriveWork | Action::LeasesChanged(_) => {
                if !self.nodes[node].derive_pending {
                    self.nodes[node].derive_pending = true;
                    let inc = self.nodes[node].incarnation;
                    self.at(self.now.plus_ms(2), Event::Derive(node, inc));
                }
            }
            Action::StartBuild { cell, .. } => self.start_build(node, cell),
            Action::CancelBuild(cell) => {
                if let Some(cancelled) = self.nodes[node].builds.get_mut(&cell) {
                    *cancelled = true;
                }
            }
            Action::Watch(_) | Action::ForceDue { .. } => {}
            Action::Notice(notice) => self.notice(node, notice),
        }
    }

    fn notice(&mut self, node: usize, notice: Notice) {
        match notice {
            Notice::BadGossip { .. } | Notice::Declined(_) | Notice::ResultWritten { .. } => {}
            other => {
                let line = format!("node {node}: {other:?}");
                self.note(line.clone());
                self.counters.notices.push(line);
            }
        }
    }

    fn net(&mut self, node: usize, action: replicator::Action) {
        match action {
            replicator::Action::Request { peer, bytes } => {
                let Some(to) = self.index_of(&peer) else {
                    return;
                };
                let delay = self.delay();
                if self.connected(node, to) && !self.lost_request(node, peer) {
                    self.next_request += 1;
                    let id = self.next_request;
                    let inc = self.nodes[node].incarnation;
                    self.requests.insert(id, (node, inc, to));
                    let asker = self.public(node);
                    self.send(
                        to,
                        delay,
                        Input::Request {
                            peer: asker,
                            id,
                            bytes,
                        },
                    );
                } else {
                    self.send(node, delay, Input::RequestFailed(peer));
                }
            }
            replicator::Action::Respond { id, bytes } => self.respond(node, id, bytes),
            replicator::Action::ServeBlob { id, .. } => {
                let bytes = buildmesh_protocol::Response::Blob(None).encode();
                self.respond(node, id, bytes);
            }
            replicator::Action::Verify { peer, wires } => {
                let slices: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
                let entries = Entry::from_wires(&slices, &mut Default::default());
                self.send(node, 1, Input::Verified { peer, entries });
            }
            replicator::Action::Publish { bytes } => {
                if let Ok(entry) = Entry::from_wire(&bytes) {
                    self.nodes[node].published.push(entry.id());
                    self.note_result(node, &entry);
                }
                self.gossip(node, Topic::Entries, bytes);
            }
            replicator::Action::Disconnect { peer, reason } => {
                let line = format!("node {node} disconnects {peer}: {reason:?}");
                self.note(line.clone());
                self.counters.notices.push(line);
            }
            replicator::Action::ReportGossip { .. }
            | replicator::Action::Applied(_)
            | replicator::Action::BlobFetched { .. }
            | replicator::Action::BlobUnavailable(_)
            | replicator::Action::LeasesHeard { .. } => {}
        }
    }

    fn respond(&mut self, node: usize, id: u64, bytes: Vec<u8>) {
        let Some((asker, inc, answerer)) = self.requests.remove(&id) else {
            return;
        };
        if answerer != node || !self.alive(asker, inc) {
            return;
        }
        let delay = self.delay();
        let peer = self.public(node);
        if self.connected(asker, node) && !self.lost_request(asker, peer) {
            self.send(asker, delay, Input::Response { peer, bytes });
        } else {
            self.send(asker, delay, Input::RequestFailed(peer));
        }
    }

    /// Gossip in a full mesh: each connected peer gets it, or loses it.
    fn gossip(&mut self, node: usize, topic: Topic, bytes: Vec<u8>) {
        let source = self.public(node);
        for to in 0..self.nodes.len() {
            if to == node || !self.connected(node, to) || self.rng.below(1000) < self.world.loss {
                continue;
            }
            let delay = self.delay();
            let input = Input::Gossiped {
                topic,
                from: source,
                source,
                message: sha256(&[&bytes]).to_vec(),
                bytes: bytes.clone(),
            };
            self.send(to, delay, input);
        }
    }

    fn derive(&mut self, node: usize) {
        self.nodes[node].derive_pending = false;
        let me = self.public(node);
        let platforms: BTreeSet<String> = PLATFORMS.iter().map(|p| p.to_string()).collect();
        let Some(service) = self.nodes[node].service.as_ref() else {
            return;
        };
        let acceptance = Acceptance::only(self.project);
        let mut found = work(
            service.replicator().store(),
            &me,
            &platforms,
            &acceptance,
            50,
            service.leases(),
        )
        .unwrap();
        found.read_at = self.now;
        self.feed(node, Input::WorkDerived(Arc::new(found)));
    }

    fn start_build(&mut self, node: usize, cell: CellKey) {
        *self.counters.starts.entry(cell.clone()).or_default() += 1;
        self.nodes[node].builds.insert(cell.clone(), false);
        if self.world.sabotage == Some(Sabotage::HangForever) {
            return;
        }
        let ms = if self.rng.below(10) == 0 {
            HANG_MS
        } else {
            self.rng.between(50, 2_000)
        };
        self.note(format!(
            "node {node} builds {} {} ({ms} ms)",
            cell.commit, cell.platform
        ));
        let inc = self.nodes[node].incarnation;
        self.at(self.now.plus_ms(ms), Event::BuildDone(node, inc, cell));
    }

    fn build_done(&mut self, node: usize, cell: CellKey) {
        let Some(cancelled) = self.nodes[node].builds.remove(&cell) else {
            return;
        };
        let nature = self.nature(&cell);
        let result = (!cancelled).then(|| {
            let outcome = match (self.rng.below(10), nature) {
                (9, _) => Outcome::Error,
                (_, Nature::Passes) | (0..=5, Nature::Flaky) => Outcome::Passed,
                (_, Nature::Fails | Nature::Flaky) => Outcome::Failed,
            };
            let outcome = match (self.world.sabotage, node, outcome) {
                (Some(Sabotage::LyingBuilder), 1, Outcome::Passed) => Outcome::Failed,
                _ => outcome,
            };
            Box::new(build_result(&cell, outcome))
        });
        let tests = None;
        // Builders sign attestations of results they judged (a result
        // with one is `Body::Attested`): both kinds must fill cells alike.
        let attestation = result
            .as_ref()
            .filter(|r| r.outcome != Outcome::Error)
            .map(|r| BlobHash::of(format!("{}{}", r.commit, r.platform).as_bytes()));
        self.feed(
            node,
            Input::BuildEnded {
                cell,
                result,
                tests,
                attestation,
            },
        );
    }

    /// The cell's nature: one in four flaky, one in five of the rest
    /// failing. A hash, not the run's generator, so that it does not move
    /// the random path.
    fn nature(&self, cell: &CellKey) -> Nature {
        let seed = self.seed.to_le_bytes();
        let digest = sha256(&[
            &seed,
            cell.commit.to_string().as_bytes(),
            cell.platform.as_bytes(),
        ]);
        match digest[0] {
            0..=63 => Nature::Flaky,
            64..=101 => Nature::Fails,
            _ => Nature::Passes,
        }
    }

    fn note_result(&mut self, node: usize, entry: &Entry) {
        if let Some(result) = entry.body().result() {
            let cell = CellKey {
                project: result.project,
                commit: result.commit.clone(),
                platform: result.platform.clone(),
            };
            self.counters.first_result.entry(cell).or_insert(self.now);
            self.note(format!(
                "node {node} result {} {} {:?}",
                result.commit, result.platform, result.outcome
            ));
        }
    }

    fn commit(&mut self, n: u32) {
        if self.nodes[0].service.is_none() {
            // The announcer is down: it announces when it is back.
            self.at(self.now.plus_ms(1_000), Event::Commit(n));
            return;
        }
        let commit = commit_of(n);
        self.counters.announced.insert(commit.clone(), self.now);
        self.note(format!("commit {n}: {commit}"));
        let announcement = CommitAnnouncement {
            project: self.project,
            branch: "main".into(),
            commit,
            parents: if n > 0 {
                vec![commit_of(n - 1)]
            } else {
                Vec::new()
            },
            title: format!("commit {n}"),
            author: "Dev <dev@example.invalid>".into(),
            committed_at: self.now,
        };
        self.feed(0, Input::NewCommits(vec![announcement]));
    }

    fn crash(&mut self, node: usize) {
        let Some(service) = self.nodes[node].service.take() else {
            return;
        };
        self.note(format!("node {node} crashes"));
        self.counters.crashes += 1;
        let mut store = service.into_store();
        store.crash();
        if self.world.sabotage == Some(Sabotage::LoseOwnWrites) {
            store = without_newest_of(&store, &self.public(node));
        }
        self.nodes[node].crashed = Some(store);
        self.nodes[node].builds.clear();
        for peer in 0..self.nodes.len() {
            if self.links.contains(&(node, peer)) && self.nodes[peer].service.is_some() {
                let key = self.public(node);
                let delay = self.delay();
                self.send(peer, delay, Input::PeerDisconnected(key));
            }
        }
    }

    fn restart(&mut self, node: usize) {
        let Some(mut store) = self.nodes[node].crashed.take() else {
            return;
        };
        self.note(format!("node {node} starts"));
        if store.is_empty().unwrap() {
            buildmesh_core::log::insert(&mut store, self.declaration.clone()).unwrap();
        }
        for id in self.nodes[node].published.clone() {
            if store.get(&id).unwrap().is_none() {
                let line = format!("node {node} lost its own entry {id} in a crash");
                self.counters.lost_own.push(line);
            }
        }
        let config = ServiceConfig {
            replicator: ReplicatorConfig {
                sync_interval_ms: 5_000,
                ..ReplicatorConfig::default()
            },
            claimer: ClaimerConfig::default(),
            platforms: PLATFORMS.iter().map(|p| p.to_string()).collect(),
            schedules: Vec::new(),
        };
        let key = self.nodes[node].key.clone();
        let seed = self.seed ^ node as u64;
        let mut service = Service::new(config, key, store, seed, self.now).unwrap();
        let others = (0..self.nodes.len()).any(|p| p != node && self.links.contains(&(node, p)));
        if others {
            service.wait_for_peers(self.now);
        }
        self.nodes[node].service = Some(service);
        self.nodes[node].incarnation += 1;
        self.nodes[node].tick_at = None;
        self.last_disruption = self.last_disruption.max(self.now);
        self.nodes[node].derive_pending = true;
        let inc = self.nodes[node].incarnation;
        self.at(self.now.plus_ms(1), Event::Derive(node, inc));
        for peer in 0..self.nodes.len() {
            if peer != node && self.connected(node, peer) {
                self.link_up(node, peer);
            }
        }
    }

    fn link_up(&mut self, a: usize, b: usize) {
        let (ka, kb) = (self.public(a), self.public(b));
        let delay = self.delay();
        self.send(a, delay, Input::PeerConnected(kb));
        self.send(b, delay, Input::PeerConnected(ka));
    }

    fn cut(&mut self, a: usize, b: usize) {
        self.note(format!("cut {a} - {b}"));
        let was = self.connected(a, b);
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
        if was {
            let (ka, kb) = (self.public(a), self.public(b));
            let delay = self.delay();
            self.send(a, delay, Input::PeerDisconnected(kb));
            self.send(b, delay, Input::PeerDisconnected(ka));
        }
    }

    fn heal(&mut self, a: usize, b: usize) {
        self.links.insert((a, b));
        self.links.insert((b, a));
        self.last_disruption = self.last_disruption.max(self.now);
        if self.connected(a, b) {
            self.note(format!("heal {a} - {b}"));
            self.link_up(a, b);
        }
    }

    /// The rogue (no role) and the forker (trusted, but forks) write
    /// results on every commit announced so far, through live nodes.
    fn rogue(&mut self) {
        let commits: Vec<CommitId> = self.counters.announced.keys().cloned().collect();
        let mut wires: Vec<Vec<u8>> = Vec::new();
        for commit in commits {
            for platform in PLATFORMS {
                let cell = CellKey {
                    project: self.project,
                    commit: commit.clone(),
                    platform: platform.into(),
                };
                let body = Body::Result(build_result(&cell, Outcome::Failed));
                wires.push(self.rogue.write(self.now, body).unwrap().to_wire());
            }
        }
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|n| self.nodes[*n].service.is_some())
            .collect();
        // Each live node gets one of the forker's two entries, by turns:
        // none is handed the proof, every node must come to hold it
        // (issue 18, point 3: fork proofs travel).
        for (turn, node) in live.iter().enumerate() {
            let mut mine = wires.clone();
            mine.push(self.forker[turn % 2].to_wire());
            self.counters.forker_handed[turn % 2] = true;
            let slices: Vec<&[u8]> = mine.iter().map(Vec::as_slice).collect();
            let now = self.now;
            if let Some(service) = self.nodes[*node].service.as_mut() {
                service.submit(now, &slices).unwrap();
            }
            self.carry_out(*node);
        }
    }
}

fn build_result(cell: &CellKey, outcome: Outcome) -> BuildResult {
    BuildResult {
        project: cell.project,
        commit: cell.commit.clone(),
        platform: cell.platform.clone(),
        outcome,
        steps: vec![StepResult {
            name: "test".into(),
            command: "make test".into(),
            status: StepStatus::Exited(i32::from(outcome != Outcome::Passed)),
            duration_ms: 100,
            log: BlobHash::of(b"log"),
            log_bytes: 3,
        }],
        artifacts: Vec::new(),
        metrics: BTreeMap::new(),
        environment: BTreeMap::new(),
        error: (outcome == Outcome::Error).then(|| "timed out".to_string()),
    }
}

fn result_body(project: ProjectId, n: u32, platform: &str, outcome: Outcome) -> Body {
    let cell = CellKey {
        project,
        commit: commit_of(n),
        platform: platform.into(),
    };
    Body::Result(build_result(&cell, outcome))
}

/// `store` without `author`'s newest entry (the sabotage of a store that
/// does not make its own writes durable).
fn without_newest_of(store: &MemStore, author: &PublicKey) -> MemStore {
    let newest = store
        .entries()
        .filter(|s| s.entry.author() == *author)
        .max_by_key(|s| s.entry.seq())
        .map(|s| s.entry.id());
    let mut kept = MemStore::default();
    let mut entries: Vec<Entry> = store
        .entries()
        .map(|s| s.entry.clone())
        .filter(|e| Some(e.id()) != newest)
        .collect();
    entries.sort_by_key(|e| (e.author(), e.seq()));
    for entry in entries {
        buildmesh_core::log::insert(&mut kept, entry).unwrap();
    }
    kept
}

/// What the checkers found, and the figures of the run.
#[derive(Debug, Default)]
struct Report {
    findings: Vec<String>,
    cells: usize,
    duplicates: u32,
    to_result_ms: Vec<u64>,
    entries_per_cell_max: usize,
    entries_per_cell_mean: f64,
    /// Cells some live node shows `flaky` or `disagree` at the end.
    split_cells: usize,
    /// Claim entries beyond one per build started: renewals written as
    /// entries would show here.
    claims_beyond_starts: usize,
    messages_max: u64,
}

impl Sim {
    /// One cell's matrix view, as node `node` derives it now.
    fn cells_of(&self, node: usize) -> BTreeMap<(CommitId, String), (CellStatus, Vec<PublicKey>)> {
        let Some(service) = self.nodes[node].service.as_ref() else {
            return BTreeMap::new();
        };
        let mut log = ProjectLog::load(service.replicator().store(), &self.project, 50).unwrap();
        log.apply_leases(service.leases());
        let options = MatrixOptions {
            branch: None,
            rows_max: match (self.world.sabotage, node) {
                (Some(Sabotage::NarrowView), 1) => Some(1),
                _ => None,
            },
        };
        let Some(m) = matrix(&log, self.now, &options) else {
            return BTreeMap::new();
        };
        let mut cells = BTreeMap::new();
        for row in &m.rows {
            for (platform, cell) in m.platforms.iter().zip(&row.cells) {
                let key = (row.commit.clone(), platform.clone());
                cells.insert(key, (cell.status, cell.builders()));
            }
        }
        cells
    }

    fn check(&self) -> Report {
        let mut report = Report::default();
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|n| self.nodes[*n].service.is_some())
            .collect();
        let views: Vec<_> = live.iter().map(|n| (*n, self.cells_of(*n))).collect();
        // Agreement: same entries, same matrix.
        for (i, (a, view_a)) in views.iter().enumerate() {
            for (b, view_b) in &views[i + 1..] {
                let store = |n: usize| self.nodes[n].service.as_ref().unwrap().replicator().store();
                if store(*a).same_contents(store(*b)) && view_a != view_b {
                    report
                        .findings
                        .push(format!("agreement: nodes {a} and {b} hold the same entries but show different matrices"));
                }
            }
        }
        // Trust: only the nodes' keys count; never the rogue, nor the
        // forker on a node that holds the proof of its fork.
        for (node, view) in &views {
            let store = self.nodes[*node]
                .service
                .as_ref()
                .unwrap()
                .replicator()
                .store();
            let forked: BTreeSet<PublicKey> = store
                .forks()
                .unwrap()
                .into_iter()
                .map(|(author, _)| author)
                .collect();
            let counts = |b: &PublicKey| {
                (self.trusted.contains(b) || *b == self.forker[0].author()) && !forked.contains(b)
            };
            for ((commit, platform), (_, builders)) in view {
                if let Some(stranger) = builders.iter().find(|b| !counts(b)) {
                    report.findings.push(format!(
                        "trust: node {node} counts a result by {stranger} on {commit} {platform}"
                    ));
                }
            }
        }
        // Durability.
        report
            .findings
            .extend(self.counters.lost_own.iter().cloned());
        // Verdict and liveness: every announced cell settled on every live
        // node, as its nature allows.
        let mut split = BTreeSet::new();
        for (node, view) in &views {
            for commit in self.counters.announced.keys() {
                for platform in PLATFORMS {
                    let cell = CellKey {
                        project: self.project,
                        commit: commit.clone(),
                        platform: platform.to_string(),
                    };
                    let nature = self.nature(&cell);
                    let shown = view.get(&(commit.clone(), platform.to_string()));
                    let status = shown.map(|c| c.0);
                    if matches!(status, Some(CellStatus::Flaky | CellStatus::Disagree)) {
                        split.insert(cell.clone());
                    }
                    if let Some(wrong) = status.filter(|s| !allowed(nature, *s)) {
                        report.findings.push(format!(
                            "verdict: node {node} shows {commit} {platform} {wrong:?}, a cell whose every build {nature:?}"
                        ));
                    }
                    let every_node_built = shown.is_some_and(|c| c.1.len() >= self.nodes.len());
                    let decided = match status {
                        Some(CellStatus::Passed | CellStatus::Failed | CellStatus::Error) => true,
                        // Settled: no further build changes a flaky cell.
                        Some(CellStatus::Flaky) => nature == Nature::Flaky,
                        // Nobody left who has not built it.
                        Some(CellStatus::Disagree) => nature == Nature::Flaky && every_node_built,
                        _ => false,
                    };
                    if !decided {
                        report.findings.push(format!(
                            "liveness: node {node} shows {commit} {platform} {status:?} {} s after the last disruption",
                            self.now.ms_since(self.last_disruption) / 1000
                        ));
                    }
                }
            }
        }
        report.split_cells = split.len();
        // Forks travel: handed half each, every live node holds the proof.
        if self.counters.forker_handed == [true, true] {
            let forker = self.forker[0].author();
            for (node, _) in &views {
                let store = self.nodes[*node]
                    .service
                    .as_ref()
                    .unwrap()
                    .replicator()
                    .store();
                if store.fork(&forker).unwrap().is_none() {
                    report.findings.push(format!(
                        "forks: node {node} holds no proof against the forker {} s after the last disruption",
                        self.now.ms_since(self.last_disruption) / 1000
                    ));
                }
            }
        }
        self.figures(&mut report);
        report
    }

    fn figures(&self, report: &mut Report) {
        report.cells = self.counters.announced.len() * PLATFORMS.len();
        report.duplicates = self
            .counters
            .starts
            .values()
            .map(|n| n.saturating_sub(1))
            .sum();
        for (cell, at) in &self.counters.first_result {
            if let Some(announced) = self.counters.announced.get(&cell.commit) {
                report.to_result_ms.push(at.ms_since(*announced));
            }
        }
        report.to_result_ms.sort_unstable();
        report.messages_max = self.nodes.iter().map(|n| n.messages).max().unwrap_or(0);
        let Some(service) = self.nodes.iter().find_map(|n| n.service.as_ref()) else {
            return;
        };
        let mut per_cell: BTreeMap<(CommitId, String), usize> = BTreeMap::new();
        let mut claims: BTreeMap<(CommitId, String), usize> = BTreeMap::new();
        for stored in service.replicator().store().entries() {
            let (commit, platform, claim) = match stored.entry.body() {
                Body::Claim(c) => (c.commit.clone(), c.platform.clone(), true),
                body => match body.result() {
                    Some(r) => (r.commit.clone(), r.platform.clone(), false),
                    None => continue,
                },
            };
            if self.trusted.contains(&stored.entry.author()) {
                *per_cell
                    .entry((commit.clone(), platform.clone()))
                    .or_default() += 1;
                *claims.entry((commit, platform)).or_default() += usize::from(claim);
            }
        }
        report.claims_beyond_starts = claims
            .iter()
            .map(|((commit, platform), n)| {
                let cell = CellKey {
                    project: self.project,
                    commit: commit.clone(),
                    platform: platform.clone(),
                };
                let starts = self.counters.starts.get(&cell).copied().unwrap_or(0);
                n.saturating_sub(starts as usize)
            })
            .sum();
        report.entries_per_cell_max = per_cell.values().copied().max().unwrap_or(0);
        report.entries_per_cell_mean =
            per_cell.values().sum::<usize>() as f64 / per_cell.len().max(1) as f64;
    }
}

/// Whether honest builders could bring a cell of `nature` to `status`:
/// only a flaky cell's builders disagree.
fn allowed(nature: Nature, status: CellStatus) -> bool {
    match (nature, status) {
        (Nature::Flaky, _) => true,
        (_, CellStatus::Disagree | CellStatus::Flaky) => false,
        (Nature::Passes, CellStatus::Failed) | (Nature::Fails, CellStatus::Passed) => false,
        _ => true,
    }
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs one seed; the report and, if it failed, the tail of its trace.
fn run_seed(world: &World, seed: u64) -> (Report, Vec<String>) {
    let mut sim = Sim::new(world.clone(), seed);
    sim.run();
    (sim.check(), sim.trace)
}

/// The seeds CI runs (or the one `BUILDMESH_SIM_SEED` names).
fn seeds(count: u64) -> Vec<u64> {
    match std::env::var("BUILDMESH_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("BUILDMESH_SIM_SEED is a number")],
        Err(_) => (1..=count).collect(),
    }
}

#[test]
fn whole_nodes_keep_every_checker_over_many_seeds() {
    let world = World::small();
    let mut to_result = Vec::new();
    let (mut duplicates, mut cells, mut entries_max, mut messages_max) = (0, 0, 0, 0);
    let (mut claims_beyond, mut split_cells) = (0, 0);
    let mut entries_mean = 0.0;
    let seeds = seeds(24);
    for &seed in &seeds {
        let (report, trace) = run_seed(&world, seed);
        if !report.findings.is_empty() {
            for line in trace.iter().rev().take(120).rev() {
                eprintln!("{line}");
            }
            panic!(
                "seed {seed} failed (replay with BUILDMESH_SIM_SEED={seed}):\n{}",
                report.findings.join("\n")
            );
        }
        duplicates += report.duplicates;
        cells += report.cells;
        entries_max = entries_max.max(report.entries_per_cell_max);
        entries_mean += report.entries_per_cell_mean / seeds.len() as f64;
        messages_max = messages_max.max(report.messages_max);
        claims_beyond += report.claims_beyond_starts;
        split_cells += report.split_cells;
        to_result.extend(report.to_result_ms);
    }
    to_result.sort_unstable();
    println!(
        "{} seeds, {} nodes, {cells} cells: duplicate builds {duplicates} ({:.3}/cell); \
         time to first result p50 {} ms, p99 {} ms, max {} ms; entries per cell mean {entries_mean:.2}, max {entries_max}; \
         messages to one node at most {messages_max}; cells left flaky or disagree {split_cells}",
        seeds.len(),
        world.nodes,
        duplicates as f64 / cells.max(1) as f64,
        quantile(&to_result, 0.5),
        quantile(&to_result, 0.99),
        quantile(&to_result, 1.0),
    );
    assert_eq!(claims_beyond, 0, "one claim entry per build, however long");
}

/// The findings of a sabotaged world, over a few seeds.
fn sabotaged(sabotage: Sabotage) -> Vec<String> {
    let world = World {
        sabotage: Some(sabotage),
        ..World::small()
    };
    (1..=3)
        .flat_map(|seed| run_seed(&world, seed).0.findings)
        .collect()
}

#[test]
fn sabotaged_trust_is_caught() {
    let findings = sabotaged(Sabotage::OpenProject);
    assert!(
        findings.iter().any(|f| f.starts_with("trust:")),
        "{findings:?}"
    );
}

#[test]
fn sabotaged_durability_is_caught() {
    let findings = sabotaged(Sabotage::LoseOwnWrites);
    assert!(
        findings.iter().any(|f| f.contains("lost its own entry")),
        "{findings:?}"
    );
}

#[test]
fn sabotaged_liveness_is_caught() {
    let findings = sabotaged(Sabotage::HangForever);
    assert!(
        findings.iter().any(|f| f.starts_with("liveness:")),
        "{findings:?}"
    );
}

#[test]
fn sabotaged_verdict_is_caught() {
    let findings = sabotaged(Sabotage::LyingBuilder);
    assert!(
        findings.iter().any(|f| f.starts_with("verdict:")),
        "{findings:?}"
    );
}

#[test]
fn sabotaged_agreement_is_caught() {
    let findings = sabotaged(Sabotage::NarrowView);
    assert!(
        findings.iter().any(|f| f.starts_with("agreement:")),
        "{findings:?}"
    );
}
