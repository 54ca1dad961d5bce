//! Deterministic simulation of claiming: many claimers, a virtual clock, a
//! seeded lossy network, builds that take time, builders that crash.
//!
//! Only claimers: no signatures and no stores, facts are plain values.
//! Bids go to the nodes of their platform after 5–200 ms, and 5% are lost;
//! log facts (announcements, claims, results) reach every node of the
//! platform after 5 ms–2 s and are never lost (gossip plus periodic sync:
//! late, not gone). Builds take 1–10 s; 10% of builders crash mid-build
//! and stay down (no renewal, no result, no bid). The check: every cell
//! ends with a result. The report: duplicate builds, time to claim and to
//! result, and bids sent.
//!
//! The full world (1,000 nodes, 5 platforms, 100 commits) runs in release
//! builds or with `BUILDMESH_SIM_FULL=1`; debug builds run a smaller one.
//! `BUILDMESH_SIM_SEED=<n>` replays a seed. To see the report:
//! `cargo test --release -p buildmesh-core --test simulation -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_core::claim::{CellKey, ClaimAction, ClaimInput, Claimer, ClaimerConfig, Rivals};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, Timestamp, sha256};
use std::collections::BTreeMap;
use std::rc::Rc;

/// xorshift64*: tiny, seeded, good enough to draw delays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The world, decided by the seed and these numbers.
#[derive(Debug, Clone)]
struct World {
    seed: u64,
    nodes: usize,
    platforms: usize,
    commits: usize,
    commit_interval_ms: u64,
    bid_delay_ms: (u64, u64),
    bid_loss_percent: u64,
    fact_delay_ms: (u64, u64),
    build_ms: (u64, u64),
    crash_percent: u64,
    claimer: ClaimerConfig,
}

impl World {
    fn full(seed: u64) -> World {
        World {
            seed,
            nodes: 1_000,
            platforms: 5,
            commits: 100,
            commit_interval_ms: 2_000,
            bid_delay_ms: (5, 200),
            bid_loss_percent: 5,
            fact_delay_ms: (5, 2_000),
            build_ms: (1_000, 10_000),
            crash_percent: 10,
            claimer: ClaimerConfig {
                bid_window_ms: 150,
                lease_ms: 30_000,
                renew_ms: 10_000,
                claim_grace_ms: 2_000,
                builds_max: 1,
                catch_up_ms: 5_000,
                orphan_ms: 2_000,
                retry_ms: 60_000,
            },
        }
    }

    /// The same world, smaller, for unoptimised builds.
    fn small(seed: u64) -> World {
        World {
            nodes: 250,
            commits: 40,
            ..World::full(seed)
        }
    }

    fn from_env() -> World {
        let seed = std::env::var("BUILDMESH_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let full = std::env::var("BUILDMESH_SIM_FULL").is_ok_and(|v| v == "1");
        let mut world = if full || !cfg!(debug_assertions) {
            World::full(seed)
        } else {
            World::small(seed)
        };
        // To explore: how the window and grace trade speed for duplicates.
        let ms = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
        if let Some(window) = ms("BUILDMESH_SIM_BID_WINDOW_MS") {
            world.claimer.bid_window_ms = window;
        }
        if let Some(grace) = ms("BUILDMESH_SIM_CLAIM_GRACE_MS") {
            world.claimer.claim_grace_ms = grace;
        }
        world
    }
}

enum Event {
    Announce(usize),
    Deliver {
        to: usize,
        input: Rc<ClaimInput>,
    },
    Tick(usize),
    BuildDone {
        node: usize,
        cell: CellKey,
        build: u64,
    },
    /// The node dies if that build is still running.
    Crash {
        node: usize,
        cell: CellKey,
        build: u64,
    },
}

struct Node {
    claimer: Claimer,
    platform: usize,
    crashed: bool,
    /// When a Tick is queued for it, so it is queued once.
    tick_at: Option<Timestamp>,
    /// Builds running, by cell, with their build number.
    builds: BTreeMap<CellKey, u64>,
}

/// What happened to one cell.
#[derive(Debug, Default)]
struct CellLog {
    announced: Timestamp,
    first_claim: Option<Timestamp>,
    first_result: Option<Timestamp>,
    starts: u32,
    /// Started while another live builder was building it.
    duplicates: u32,
    /// Started after every earlier builder crashed.
    takeovers: u32,
    cancels: u32,
    /// Build time spent on builds later cancelled, ms.
    cancelled_ms: u64,
    results: u32,
    /// Live builders and when each started.
    running: BTreeMap<usize, Timestamp>,
}

#[derive(Debug, Default)]
struct Counters {
    bids_sent: u64,
    bids_delivered: u64,
    claims_written: u64,
    results_written: u64,
    crashes: u64,
    events: u64,
}

struct Sim {
    world: World,
    rng: Rng,
    now: Timestamp,
    queue: BTreeMap<(Timestamp, u64), Event>,
    seq: u64,
    nodes: Vec<Node>,
    by_platform: Vec<Vec<usize>>,
    cells: BTreeMap<CellKey, CellLog>,
    counters: Counters,
    next_build: u64,
}

const T0: Timestamp = Timestamp(1_764_000_000_000);

fn platform_name(p: usize) -> String {
    format!("platform-{p}")
}

fn commit(n: usize) -> CommitId {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    CommitId::from_bytes(&bytes).unwrap()
}

impl Sim {
    fn new(world: World) -> Sim {
        let mut by_platform = vec![Vec::new(); world.platforms];
        let nodes = (0..world.nodes)
            .map(|i| {
                let platform = i % world.platforms;
                by_platform[platform].push(i);
                let me = PublicKey(sha256(&[format!("node-{i}").as_bytes()]));
                let platforms = [platform_name(platform)].into();
                Node {
                    claimer: Claimer::new(world.claimer.clone(), me, platforms),
                    platform,
                    crashed: false,
                    tick_at: None,
                    builds: BTreeMap::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            rng: Rng::new(world.seed),
            world,
            now: T0,
            queue: BTreeMap::new(),
            seq: 0,
            nodes,
            by_platform,
            cells: BTreeMap::new(),
            counters: Counters::default(),
            next_build: 0,
        };
        for c in 0..sim.world.commits {
            let at = T0.plus_ms(c as u64 * sim.world.commit_interval_ms);
            sim.push(at, Event::Announce(c));
        }
        sim
    }

    fn push(&mut self, at: Timestamp, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    /// Sends a log fact to every node of the cell's platform, each after
    /// its own gossip delay (the author's copy at once).
    fn publish_fact(&mut self, author: Option<usize>, cell: &CellKey, input: ClaimInput) {
        let input = Rc::new(input);
        let platform = self.platform_of(cell);
        for i in 0..self.by_platform[platform].len() {
            let to = self.by_platform[platform][i];
            let delay = if Some(to) == author {
                0
            } else {
                self.rng.between(self.world.fact_delay_ms)
            };
            let input = Rc::clone(&input);
            self.push(self.now.plus_ms(delay), Event::Deliver { to, input });
        }
    }

    fn platform_of(&self, cell: &CellKey) -> usize {
        let digits = cell.platform.trim_start_matches("platform-");
        digits.parse().unwrap()
    }

    fn run(&mut self, until: Timestamp) {
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > until || self.all_done() {
                break;
            }
            self.now = at;
            self.counters.events += 1;
            match event {
                Event::Announce(c) => self.announce(c),
                Event::Deliver { to, input } => self.deliver(to, (*input).clone()),
                Event::Tick(node) => self.tick(node),
                Event::BuildDone { node, cell, build } => self.build_done(node, cell, build),
                Event::Crash { node, cell, build } => {
                    if self.nodes[node].builds.get(&cell) == Some(&build) {
                        self.crash(node);
                    }
                }
            }
        }
    }

    fn all_done(&self) -> bool {
        let expected = self.world.commits * self.world.platforms;
        self.cells.len() == expected && self.cells.values().all(|c| c.first_result.is_some())
    }

    fn announce(&mut self, c: usize) {
        for p in 0..self.world.platforms {
            let cell = CellKey {
                project: ProjectId([7; 32]),
                commit: commit(c),
                platform: platform_name(p),
            };
            let log = CellLog {
                announced: self.now,
                ..CellLog::default()
            };
            self.cells.insert(cell.clone(), log);
            let wanted = ClaimInput::Wanted {
                cell: cell.clone(),
                builds: 1,
                since: Timestamp(0),
                rivals: Rivals::Open,
            };
            self.publish_fact(None, &cell, wanted);
        }
    }

    fn tick(&mut self, node: usize) {
        if self.nodes[node].tick_at == Some(self.now) {
            self.nodes[node].tick_at = None;
            self.deliver(node, ClaimInput::Tick);
        }
    }

    fn deliver(&mut self, to: usize, input: ClaimInput) {
        if self.nodes[to].crashed {
            return;
        }
        self.nodes[to].claimer.handle(self.now, input);
        while let Some(action) = self.nodes[to].claimer.poll_action() {
            self.act(to, action);
        }
        let next = self.nodes[to].claimer.poll_timeout();
        if let Some(at) = next.filter(|at| self.nodes[to].tick_at.is_none_or(|t| *at < t)) {
            self.nodes[to].tick_at = Some(at);
            self.push(at.max(self.now), Event::Tick(to));
        }
    }

    fn act(&mut self, node: usize, action: ClaimAction) {
        match action {
            ClaimAction::SendBid(bid) => self.gossip_bid(node, bid),
            ClaimAction::WriteClaim {
                cell,
                lease_expires,
            } => {
                self.counters.claims_written += 1;
                let log = self.cells.get_mut(&cell).unwrap();
                log.first_claim.get_or_insert(self.now);
                let claimed = ClaimInput::Claimed {
                    cell: cell.clone(),
                    builder: self.key(node),
                    at: self.now,
                    lease_expires,
                };
                self.publish_fact(Some(node), &cell, claimed);
            }
            ClaimAction::RenewLease {
                cell,
                lease_expires,
            } => {
                let renewed = ClaimInput::Claimed {
                    cell: cell.clone(),
                    builder: self.key(node),
                    at: self.now,
                    lease_expires,
                };
                self.publish_fact(Some(node), &cell, renewed);
            }
            ClaimAction::StartBuild(cell) => self.start_build(node, cell),
            ClaimAction::CancelBuild(cell) => {
                self.nodes[node].builds.remove(&cell);
                let log = self.cells.get_mut(&cell).unwrap();
                log.cancels += 1;
                if let Some(started) = log.running.remove(&node) {
                    log.cancelled_ms += self.now.ms_since(started);
                }
            }
        }
    }

    fn key(&self, node: usize) -> PublicKey {
        PublicKey(sha256(&[format!("node-{node}").as_bytes()]))
    }

    fn gossip_bid(&mut self, from: usize, bid: buildmesh_protocol::Bid) {
        self.counters.bids_sent += 1;
        let input = Rc::new(ClaimInput::Bid(bid));
        let platform = self.nodes[from].platform;
        for i in 0..self.by_platform[platform].len() {
            let to = self.by_platform[platform][i];
            if to == from || self.rng.percent(self.world.bid_loss_percent) {
                continue;
            }
            self.counters.bids_delivered += 1;
            let at = self.now.plus_ms(self.rng.between(self.world.bid_delay_ms));
            let input = Rc::clone(&input);
            self.push(at, Event::Deliver { to, input });
        }
    }

    fn start_build(&mut self, node: usize, cell: CellKey) {
        self.next_build += 1;
        let build = self.next_build;
        let log = self.cells.get_mut(&cell).unwrap();
        if !log.running.is_empty() {
            log.duplicates += 1;
        } else if log.starts > 0 {
            log.takeovers += 1;
        }
        log.starts += 1;
        log.running.insert(node, self.now);
        self.nodes[node].builds.insert(cell.clone(), build);
        let duration = self.rng.between(self.world.build_ms);
        if self.rng.percent(self.world.crash_percent) {
            let at = self.now.plus_ms(self.rng.between((0, duration - 1)));
            let crash = Event::Crash {
                node,
                cell: cell.clone(),
                build,
            };
            self.push(at, crash);
        }
        let done = Event::BuildDone { node, cell, build };
        self.push(self.now.plus_ms(duration), done);
    }

    fn build_done(&mut self, node: usize, cell: CellKey, build: u64) {
        if self.nodes[node].crashed || self.nodes[node].builds.get(&cell) != Some(&build) {
            return; // crashed, or cancelled
        }
        self.nodes[node].builds.remove(&cell);
        self.counters.results_written += 1;
        let log = self.cells.get_mut(&cell).unwrap();
        log.results += 1;
        log.running.remove(&node);
        log.first_result.get_or_insert(self.now);
        let finished = ClaimInput::Finished {
            cell: cell.clone(),
            builder: self.key(node),
            at: self.now,
        };
        self.deliver(node, ClaimInput::BuildEnded(cell.clone()));
        self.publish_fact(Some(node), &cell, finished);
    }

    fn crash(&mut self, node: usize) {
        if self.nodes[node].crashed {
            return;
        }
        self.nodes[node].crashed = true;
        self.counters.crashes += 1;
        let builds: Vec<CellKey> = self.nodes[node].builds.keys().cloned().collect();
        for cell in builds {
            self.cells.get_mut(&cell).unwrap().running.remove(&node);
        }
    }
}

/// The `q`-quantile of `values` (sorted here), in ms.
fn quantile(values: &mut [u64], q: f64) -> u64 {
    values.sort_unstable();
    if values.is_empty() {
        return 0;
    }
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index]
}

fn report(sim: &Sim) -> String {
    let cells = sim.cells.len() as u64;
    let sum = |f: fn(&CellLog) -> u32| sim.cells.values().map(|c| u64::from(f(c))).sum::<u64>();
    let starts = sum(|c| c.starts);
    let duplicates = sum(|c| c.duplicates);
    let takeovers = sum(|c| c.takeovers);
    let cancels = sum(|c| c.cancels);
    let results = sum(|c| c.results);
    let cancelled_ms: u64 = sim.cells.values().map(|c| c.cancelled_ms).sum();
    let mut to_claim: Vec<u64> = sim
        .cells
        .values()
        .filter_map(|c| c.first_claim.map(|t| t.ms_since(c.announced)))
        .collect();
    let mut to_result: Vec<u64> = sim
        .cells
        .values()
        .filter_map(|c| c.first_result.map(|t| t.ms_since(c.announced)))
        .collect();
    let stats: Vec<_> = sim
        .nodes
        .iter()
        .map(|n| n.claimer.stats().clone())
        .collect();
    let suppressed: u64 = stats.iter().map(|s| s.bids_suppressed).sum();
    let rounds: u64 = stats.iter().map(|s| s.rounds).sum();
    let renewals: u64 = stats.iter().map(|s| s.renewals).sum();
    let w = &sim.world;
    let c = &sim.counters;
    [
        format!(
            "seed {} | {} nodes, {} platforms, {} commits every {} ms -> {} cells | window {} ms, grace {} ms",
            w.seed,
            w.nodes,
            w.platforms,
            w.commits,
            w.commit_interval_ms,
            cells,
            w.claimer.bid_window_ms,
            w.claimer.claim_grace_ms
        ),
        format!(
            "builds started {starts}: {} beyond one per cell ({:.3}/cell): {takeovers} takeovers after a crash, {duplicates} duplicates while another build ran",
            starts - cells,
            (starts - cells) as f64 / cells as f64,
        ),
        format!(
            "duplicates settled by cancel {cancels} (build time lost to them: {:.0} ms/cell); results written {results} ({} redundant); builders crashed {}",
            cancelled_ms as f64 / cells as f64,
            results - cells,
            c.crashes
        ),
        format!(
            "time to claim p50 {} ms, p99 {} ms, max {} ms",
            quantile(&mut to_claim, 0.5),
            quantile(&mut to_claim, 0.99),
            quantile(&mut to_claim, 1.0)
        ),
        format!(
            "time to result p50 {} ms, p99 {} ms, max {} ms",
            quantile(&mut to_result, 0.5),
            quantile(&mut to_result, 0.99),
            quantile(&mut to_result, 1.0)
        ),
        format!(
            "bids sent {} ({:.1}/cell), suppressed {suppressed}, delivered {}; rounds opened {rounds}; claim entries written {} (renewals gossiped, not entries: {renewals}); events {}",
            c.bids_sent,
            c.bids_sent as f64 / cells as f64,
            c.bids_delivered,
            c.claims_written,
            c.events
        ),
    ]
    .join("\n")
}

#[test]
fn every_cell_ends_with_a_result() {
    let world = World::from_env();
    let seed = world.seed;
    let last_announce = world.commits as u64 * world.commit_interval_ms;
    let mut sim = Sim::new(world);
    sim.run(T0.plus_ms(last_announce + 15 * 60 * 1000));
    let report = report(&sim);
    println!("{report}");
    let unfinished: Vec<String> = sim
        .cells
        .iter()
        .filter(|(_, c)| c.first_result.is_none())
        .map(|(k, c)| format!("{} on {}: {c:?}", k.commit.short(), k.platform))
        .collect();
    assert!(
        unfinished.is_empty(),
        "cells without a result ({}); replay with BUILDMESH_SIM_SEED={seed}:\n{}",
        unfinished.len(),
        unfinished.join("\n")
    );
    assert_eq!(sim.cells.len(), sim.world.commits * sim.world.platforms);
}
