//! The claimer in scenarios: named nodes on a virtual network with fixed
//! delays, no clock, no signatures (facts are plain values). The protocol
//! is described in `docs/architecture.md`, "Claiming builds".

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_core::claim::{
    Candidate, CellKey, ClaimAction, ClaimInput, Claimer, ClaimerConfig, Rivals, pick_winners,
    rendezvous_score,
};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, Timestamp, sha256};
use std::collections::{BTreeMap, BTreeSet};

const T0: Timestamp = Timestamp(1_764_000_000_000);
const LINUX: &str = "linux-x86_64";

fn key(name: &str) -> PublicKey {
    PublicKey(sha256(&[name.as_bytes()]))
}

fn cell(n: u8) -> CellKey {
    CellKey {
        project: ProjectId([7; 32]),
        commit: CommitId::from_bytes(&[n; 20]).unwrap(),
        platform: LINUX.into(),
    }
}

/// The best of `names` for `cell` by the rule, all idle.
fn best(names: &[&str], cell: &CellKey, needed: usize) -> Vec<String> {
    let bids: Vec<Candidate> = names
        .iter()
        .map(|n| Candidate {
            bidder: key(n),
            load: 0,
        })
        .collect();
    let winners = pick_winners(cell, &bids, needed);
    winners
        .iter()
        .map(|w| names.iter().find(|n| key(n) == *w).unwrap().to_string())
        .collect()
}

struct Node {
    claimer: Claimer,
    crashed: bool,
}

/// Nodes, and inputs in flight ordered by delivery time.
struct Net {
    now: Timestamp,
    nodes: BTreeMap<String, Node>,
    queue: BTreeMap<(Timestamp, u64), (String, ClaimInput)>,
    seq: u64,
    bid_delay_ms: u64,
    fact_delay_ms: u64,
    /// Bids are lost while true.
    drop_bids: bool,
    /// Every action taken: when, by whom.
    actions: Vec<(Timestamp, String, ClaimAction)>,
}

impl Net {
    fn new(names: &[&str], config: ClaimerConfig) -> Net {
        let platforms: BTreeSet<String> = [LINUX.to_string()].into();
        let nodes = names
            .iter()
            .map(|n| {
                let claimer = Claimer::new(config.clone(), key(n), platforms.clone());
                let node = Node {
                    claimer,
                    crashed: false,
                };
                (n.to_string(), node)
            })
            .collect();
        Net {
            now: T0,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            bid_delay_ms: 20,
            fact_delay_ms: 50,
            drop_bids: false,
            actions: Vec::new(),
        }
    }

    fn send(&mut self, to: &str, delay_ms: u64, input: ClaimInput) {
        self.seq += 1;
        let at = self.now.plus_ms(delay_ms);
        self.queue.insert((at, self.seq), (to.to_string(), input));
    }

    fn send_to_all(&mut self, delay_ms: u64, input: ClaimInput) {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.send(&name, delay_ms, input.clone());
        }
    }

    fn want(&mut self, cell: &CellKey, builds: u8, since: Timestamp) {
        let input = ClaimInput::Wanted {
            cell: cell.clone(),
            builds,
            since,
            rivals: Rivals::Open,
        };
        self.send_to_all(0, input);
    }

    /// `name`'s build of `cell` ends with a result.
    fn finish(&mut self, name: &str, cell: &CellKey) {
        self.send(name, 0, ClaimInput::BuildEnded(cell.clone()));
        let finished = ClaimInput::Finished {
            cell: cell.clone(),
            builder: key(name),
            at: self.now,
        };
        self.send_to_all(self.fact_delay_ms, finished);
    }

    fn next_event(&self) -> Option<Timestamp> {
        let timers = self
            .nodes
            .values()
            .filter(|n| !n.crashed)
            .filter_map(|n| n.claimer.poll_timeout());
        let queued = self.queue.keys().next().map(|(at, _)| *at);
        timers.chain(queued).min()
    }

    /// Runs every event up to and including `until`, then sets the clock
    /// to `until`.
    fn run_until(&mut self, until: Timestamp) {
        for _ in 0..1_000_000 {
            let Some(at) = self.next_event().filter(|at| *at <= until) else {
                self.now = until;
                return;
            };
            self.now = at.max(self.now);
            self.step();
        }
        panic!("the network did not settle");
    }

    fn run_for(&mut self, ms: u64) {
        self.run_until(self.now.plus_ms(ms));
    }

    fn step(&mut self) {
        let due: Vec<(Timestamp, u64)> = self
            .queue
            .range(..=(self.now, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            let (to, input) = self.queue.remove(&k).unwrap();
            self.deliver(&to, input);
        }
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in names {
            self.deliver(&name, ClaimInput::Tick);
        }
    }

    fn deliver(&mut self, to: &str, input: ClaimInput) {
        let now = self.now;
        let node = self.nodes.get_mut(to).unwrap();
        if node.crashed {
            return;
        }
        node.claimer.handle(now, input);
        let mut actions = Vec::new();
        while let Some(action) = node.claimer.poll_action() {
            actions.push(action);
        }
        for action in actions {
            self.route(to, action);
        }
    }

    fn route(&mut self, from: &str, action: ClaimAction) {
        self.actions
            .push((self.now, from.to_string(), action.clone()));
        match action {
            ClaimAction::SendBid(bid) if !self.drop_bids => {
                let others: Vec<String> =
                    self.nodes.keys().filter(|n| *n != from).cloned().collect();
                for other in others {
                    self.send(&other, self.bid_delay_ms, ClaimInput::Bid(bid.clone()));
                }
            }
            ClaimAction::WriteClaim {
                cell,
                lease_expires,
            }
            | ClaimAction::RenewLease {
                cell,
                lease_expires,
            } => {
                let claimed = ClaimInput::Claimed {
                    cell,
                    builder: key(from),
                    at: self.now,
                    lease_expires,
                };
                self.send_to_all(self.fact_delay_ms, claimed);
            }
            _ => {}
        }
    }

    fn crash(&mut self, name: &str) {
        self.nodes.get_mut(name).unwrap().crashed = true;
    }

    fn claimer(&self, name: &str) -> &Claimer {
        &self.nodes[name].claimer
    }

    /// `(time, node)` of every action matching `pick`.
    fn when(&self, pick: impl Fn(&ClaimAction) -> bool) -> Vec<(Timestamp, String)> {
        self.actions
            .iter()
            .filter(|(_, _, a)| pick(a))
            .map(|(t, n, _)| (*t, n.clone()))
            .collect()
    }

    fn starts(&self, cell: &CellKey) -> Vec<(Timestamp, String)> {
        self.when(|a| matches!(a, ClaimAction::StartBuild(c) if c == cell))
    }

    fn cancels(&self, cell: &CellKey) -> Vec<(Timestamp, String)> {
        self.when(|a| matches!(a, ClaimAction::CancelBuild(c) if c == cell))
    }

    /// Nodes building `cell` now.
    fn building(&self, cell: &CellKey) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| !n.crashed && n.claimer.building().any(|c| c == cell))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

fn config() -> ClaimerConfig {
    ClaimerConfig::default()
}

#[test]
fn a_single_bidder_wins_when_the_window_closes() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(149);
    assert!(
        net.starts(&cell(1)).is_empty(),
        "not before the window closes"
    );
    net.run_for(1);
    assert_eq!(
        net.starts(&cell(1)),
        vec![(T0.plus_ms(150), "alice".into())]
    );
    let claims = net.when(|a| matches!(a, ClaimAction::WriteClaim { .. }));
    assert_eq!(claims, vec![(T0.plus_ms(150), "alice".into())]);
    assert_eq!(net.claimer("alice").load(), 1);
    assert_eq!(net.claimer("alice").stats().bids_sent, 1);
}

#[test]
fn two_bidders_agree_on_one_winner() {
    let names = ["alice", "bob"];
    let mut net = Net::new(&names, config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(5_000);
    let starts = net.starts(&cell(1));
    assert_eq!(starts.len(), 1, "exactly one build: {starts:?}");
    assert_eq!(vec![starts[0].1.clone()], best(&names, &cell(1), 1));
    assert!(net.cancels(&cell(1)).is_empty());
}

/// Issue 14: one claim entry per build; the lease is renewed by gossip
/// every renew interval until the build ends, however long it runs.
#[test]
fn the_lease_is_renewed_every_renew_interval_until_the_build_ends() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(35_000);
    let leases = |net: &Net| -> Vec<(bool, Timestamp, Timestamp)> {
        net.actions
            .iter()
            .filter_map(|(t, _, a)| match a {
                ClaimAction::WriteClaim { lease_expires, .. } => Some((true, *t, *lease_expires)),
                ClaimAction::RenewLease { lease_expires, .. } => Some((false, *t, *lease_expires)),
                _ => None,
            })
            .collect()
    };
    let expected: Vec<(bool, Timestamp, Timestamp)> = [150, 10_150, 20_150, 30_150]
        .iter()
        .map(|ms| (*ms == 150, T0.plus_ms(*ms), T0.plus_ms(ms + 30_000)))
        .collect();
    assert_eq!(leases(&net), expected, "a claim, then renewals");
    net.finish("alice", &cell(1));
    net.run_for(60_000);
    assert_eq!(leases(&net).len(), 4, "none after the build ended");
    assert_eq!(
        net.when(|a| matches!(a, ClaimAction::WriteClaim { .. }))
            .len(),
        1
    );
    assert_eq!(net.claimer("alice").load(), 0);
    assert_eq!(
        net.starts(&cell(1)).len(),
        1,
        "a finished cell is not built again"
    );
}

#[test]
fn a_lapsed_lease_reopens_the_cell_and_another_node_takes_over() {
    let names = ["alice", "bob", "carol"];
    let mut net = Net::new(&names, config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    let (claimed_at, winner) = net.starts(&cell(1))[0].clone();
    net.crash(&winner);
    net.run_for(40_000);
    let starts = net.starts(&cell(1));
    assert_eq!(starts.len(), 2, "{starts:?}");
    let (taken_at, heir) = starts[1].clone();
    assert_ne!(heir, winner);
    let rest: Vec<&str> = names.iter().copied().filter(|n| *n != winner).collect();
    assert_eq!(vec![heir.clone()], best(&rest, &cell(1), 1));
    // The lease ran 30 s from the claim; then one bid window.
    assert_eq!(taken_at, claimed_at.plus_ms(30_000 + 150));
    assert_eq!(net.building(&cell(1)), vec![heir]);
}

#[test]
fn competing_claims_settle_to_one_builder() {
    let names = ["alice", "bob", "carol"];
    let mut net = Net::new(&names, config());
    net.drop_bids = true; // each thinks it bids alone
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(5_000);
    assert_eq!(net.starts(&cell(1)).len(), 3);
    let cancels = net.cancels(&cell(1));
    assert_eq!(cancels.len(), 2, "{cancels:?}");
    assert_eq!(net.building(&cell(1)), best(&names, &cell(1), 1));
    assert!(names.iter().all(|n| net.claimer(n).load() <= 1));
}

#[test]
fn enough_results_cancel_a_running_build() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    assert_eq!(net.building(&cell(1)), vec!["alice".to_string()]);
    let result = ClaimInput::Finished {
        cell: cell(1),
        builder: key("dave"),
        at: net.now,
    };
    net.send("alice", 0, result);
    net.run_for(1);
    assert_eq!(
        net.cancels(&cell(1)),
        vec![(T0.plus_ms(1_000), "alice".into())]
    );
    assert_eq!(net.claimer("alice").load(), 0);
    net.run_for(60_000);
    assert_eq!(
        net.when(|a| matches!(a, ClaimAction::WriteClaim { .. }))
            .len(),
        1,
        "no renewal after a cancel"
    );
}

#[test]
fn a_force_reopens_a_finished_cell() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    net.finish("alice", &cell(1));
    net.run_for(10_000);
    net.want(&cell(1), 1, Timestamp(0)); // repeating the want changes nothing
    net.run_for(10_000);
    assert_eq!(net.starts(&cell(1)).len(), 1);
    let forced_at = net.now;
    net.want(&cell(1), 1, forced_at);
    net.run_for(1_000);
    let starts = net.starts(&cell(1));
    assert_eq!(starts.len(), 2);
    assert_eq!(starts[1].0, forced_at.plus_ms(150));
}

#[test]
fn builds_max_is_respected() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.want(&cell(2), 1, Timestamp(0));
    net.run_for(5_000);
    assert_eq!(net.claimer("alice").load(), 1);
    let first = net.claimer("alice").building().next().unwrap().clone();
    let second = if first == cell(1) { cell(2) } else { cell(1) };
    assert!(net.starts(&second).is_empty());
    net.finish("alice", &first);
    net.run_for(1_000);
    assert_eq!(
        net.starts(&second).len(),
        1,
        "the freed slot takes the waiting cell"
    );
    assert_eq!(net.claimer("alice").load(), 1);
}

#[test]
fn builds_max_two_runs_two_cells_at_once() {
    let two = ClaimerConfig {
        builds_max: 2,
        ..config()
    };
    let mut net = Net::new(&["alice"], two);
    net.want(&cell(1), 1, Timestamp(0));
    net.want(&cell(2), 1, Timestamp(0));
    net.want(&cell(3), 1, Timestamp(0));
    net.run_for(5_000);
    assert_eq!(net.claimer("alice").load(), 2);
}

#[test]
fn a_cell_wanting_two_builds_gets_two_distinct_builders() {
    let names = ["alice", "bob", "carol", "dave"];
    let mut net = Net::new(&names, config());
    net.want(&cell(1), 2, Timestamp(0));
    net.run_for(5_000);
    let mut builders: Vec<String> = net.starts(&cell(1)).into_iter().map(|(_, n)| n).collect();
    builders.sort();
    let mut expected = best(&names, &cell(1), 2);
    expected.sort();
    assert_eq!(builders, expected);
    for name in &builders {
        net.finish(name, &cell(1));
    }
    net.run_for(60_000);
    assert_eq!(net.starts(&cell(1)).len(), 2, "done after two results");
}

#[test]
fn a_winner_that_never_claims_is_passed_by_after_the_grace() {
    let names = ["alice", "bob", "carol"];
    let mut net = Net::new(&names, config());
    let winner = best(&names, &cell(1), 1).remove(0);
    net.want(&cell(1), 1, Timestamp(0));
    // The winner bids (within the first 75 ms), then dies before its
    // window closes.
    net.run_for(100);
    net.crash(&winner);
    net.run_for(10_000);
    let starts = net.starts(&cell(1));
    assert_eq!(starts.len(), 1, "{starts:?}");
    let rest: Vec<&str> = names.iter().copied().filter(|n| *n != winner).collect();
    assert_eq!(vec![starts[0].1.clone()], best(&rest, &cell(1), 1));
    // Window, grace, a second window (and its bid delay, within it).
    assert_eq!(starts[0].0, T0.plus_ms(150 + 2_000 + 150));
}

#[test]
fn bids_that_would_lose_are_not_sent_and_the_winner_is_unchanged() {
    let names: Vec<String> = (0..20).map(|i| format!("node{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut net = Net::new(&refs, config());
    net.bid_delay_ms = 1;
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(5_000);
    let sent: u64 = refs.iter().map(|n| net.claimer(n).stats().bids_sent).sum();
    let suppressed: u64 = refs
        .iter()
        .map(|n| net.claimer(n).stats().bids_suppressed)
        .sum();
    assert_eq!(sent + suppressed, 20);
    assert!(sent <= 3, "{sent} bids sent");
    let starts = net.starts(&cell(1));
    assert_eq!(starts.len(), 1);
    assert_eq!(vec![starts[0].1.clone()], best(&refs, &cell(1), 1));
}

#[test]
fn other_platforms_stale_bids_and_our_own_echo_are_ignored() {
    let mut net = Net::new(&["alice"], config());
    let mut mac = cell(1);
    mac.platform = "macos-aarch64".into();
    net.want(&mac, 1, Timestamp(0));
    net.run_for(5_000);
    assert!(net.actions.is_empty());
    assert_eq!(net.claimer("alice").cells_tracked(), 0);
    let stale = buildmesh_protocol::Bid {
        bidder: key("bob"),
        at: Timestamp(T0.0 - 3_600_000),
        project: cell(2).project,
        round: 0,
        load: 0,
        commit: cell(2).commit,
        platform: LINUX.into(),
    };
    net.send("alice", 0, ClaimInput::Bid(stale));
    net.run_for(1);
    assert_eq!(net.claimer("alice").cells_tracked(), 0);
}

/// A builder that stopped without a verdict (a `Retry` result) ends its
/// claim: the cell opens at once, not when the lease lapses, and the
/// claim fed again (every derivation feeds it) stays ended.
#[test]
fn a_retry_ends_its_builders_claim_at_once() {
    let mut net = Net::new(&["alice"], config());
    let claimed = ClaimInput::Claimed {
        cell: cell(1),
        builder: key("bob"),
        at: T0,
        lease_expires: T0.plus_ms(30_000),
    };
    net.send("alice", 0, claimed.clone());
    net.run_for(10);
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(2_000);
    assert!(net.starts(&cell(1)).is_empty(), "bob holds it");
    let stopped = ClaimInput::Stopped {
        cell: cell(1),
        builder: key("bob"),
        at: net.now,
    };
    net.send("alice", 0, stopped);
    net.send("alice", 10, claimed);
    net.run_for(5_000);
    assert_eq!(
        net.starts(&cell(1)).len(),
        1,
        "well before bob's lease lapsed"
    );
}

#[test]
fn a_claim_seen_before_the_want_keeps_us_off_the_cell() {
    let mut net = Net::new(&["alice"], config());
    let claimed = ClaimInput::Claimed {
        cell: cell(1),
        builder: key("bob"),
        at: T0,
        lease_expires: T0.plus_ms(30_000),
    };
    net.send("alice", 0, claimed);
    net.run_for(10);
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(10_000);
    assert!(net.starts(&cell(1)).is_empty());
    net.run_for(30_000);
    assert_eq!(net.starts(&cell(1)).len(), 1, "bob's lease lapsed");
}

#[test]
fn a_node_that_hears_of_the_cell_late_watches_instead_of_bidding() {
    let mut net = Net::new(&["alice", "bob"], config());
    let wanted = ClaimInput::Wanted {
        cell: cell(1),
        builds: 1,
        since: Timestamp(0),
        rivals: Rivals::Open,
    };
    net.send("alice", 0, wanted.clone());
    net.send("bob", 300, wanted); // alice's bid reaches bob first
    net.run_for(5_000);
    assert_eq!(net.claimer("bob").stats().bids_sent, 0);
    assert_eq!(
        net.starts(&cell(1)),
        vec![(T0.plus_ms(150), "alice".into())]
    );
}

#[test]
fn a_done_cell_is_forgotten_after_ten_quiet_minutes() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    net.finish("alice", &cell(1));
    net.run_for(9 * 60_000);
    assert_eq!(net.claimer("alice").cells_tracked(), 1);
    net.run_for(2 * 60_000);
    assert_eq!(net.claimer("alice").cells_tracked(), 0);
    assert_eq!(net.claimer("alice").poll_timeout(), None);
}

#[test]
fn bids_on_unknown_cells_cannot_grow_the_table_without_bound() {
    let mut claimer = Claimer::new(config(), key("alice"), [LINUX.to_string()].into());
    for n in 0..5_000u32 {
        let mut commit = [0u8; 20];
        commit[..4].copy_from_slice(&n.to_be_bytes());
        let bid = buildmesh_protocol::Bid {
            bidder: key("mallory"),
            at: T0,
            project: ProjectId([7; 32]),
            round: 0,
            load: 0,
            commit: CommitId::from_bytes(&commit).unwrap(),
            platform: LINUX.into(),
        };
        claimer.handle(T0, ClaimInput::Bid(bid));
    }
    assert_eq!(claimer.cells_tracked(), 4096);
    // A cell we want still gets in, pushing out one nobody wants.
    claimer.handle(
        T0,
        ClaimInput::Wanted {
            cell: cell(200),
            builds: 1,
            since: Timestamp(0),
            rivals: Rivals::Open,
        },
    );
    assert_eq!(claimer.cells_tracked(), 4096);
    claimer.handle(T0, ClaimInput::Tick);
    claimer.handle(T0.plus_ms(1_000), ClaimInput::Tick);
    let mut started = false;
    while let Some(action) = claimer.poll_action() {
        started |= action == ClaimAction::StartBuild(cell(200));
    }
    assert!(started);
}

/// Issue 14: one node with one build slot and thirty commits announced at
/// once. Each build takes 31 ms. Before, every commit but the first won
/// its round while the slot was busy, then waited out the 2 s grace for
/// its own claim: one build every 2.1 s. Now the node bids for one cell at
/// a time and a freed slot takes the longest-waiting cell at once, so the
/// backlog costs a bid window per build, not a grace.
#[test]
fn a_backlog_on_one_node_is_built_back_to_back() {
    let me = key("lone");
    let config = ClaimerConfig::default();
    let window = config.bid_window_ms;
    let mut claimer = Claimer::new(config, me, BTreeSet::from([LINUX.to_string()]));
    for n in 0..30 {
        let wanted = ClaimInput::Wanted {
            cell: cell(n),
            builds: 1,
            since: Timestamp(T0.0 + u64::from(n)),
            rivals: Rivals::Open,
        };
        claimer.handle(T0, wanted);
    }
    let (build_ms, mut now) = (31, T0);
    let (mut built, mut bids) = (Vec::new(), 0);
    while built.len() < 30 && now.0 < T0.0 + 120_000 {
        while let Some(action) = claimer.poll_action() {
            match action {
                ClaimAction::SendBid(bid) => {
                    bids += 1;
                    claimer.handle(now, ClaimInput::Bid(bid));
                }
                ClaimAction::StartBuild(key) => {
                    built.push((now, key.clone()));
                    now = now.plus_ms(build_ms);
                    let finished = ClaimInput::Finished {
                        cell: key.clone(),
                        builder: me,
                        at: now,
                    };
                    claimer.handle(now, ClaimInput::BuildEnded(key));
                    claimer.handle(now, finished);
                }
                _ => {}
            }
        }
        match claimer.poll_timeout() {
            Some(at) if built.len() < 30 => {
                now = now.max(at);
                claimer.handle(now, ClaimInput::Tick);
            }
            _ => break,
        }
    }
    assert_eq!(built.len(), 30, "built {}", built.len());
    let took = now.0 - T0.0;
    let each = window + build_ms;
    assert!(
        took <= 30 * each + window,
        "{took} ms for 30 builds of {build_ms} ms"
    );
    assert_eq!(
        bids, 30,
        "one bid per cell, none wasted on cells it could not build"
    );
    let oldest_first: Vec<CellKey> = (0..30).map(cell).collect();
    let order: Vec<CellKey> = built.into_iter().map(|(_, k)| k).collect();
    assert_eq!(order, oldest_first, "the longest waiting first");
}

/// Issue 14: when the project names this node as its only builder, no
/// one can bid against it: the cell is claimed and built at the next
/// tick (once the facts fed with its want are in), with no bid sent and
/// no window waited.
#[test]
fn the_only_builder_claims_without_a_window() {
    let me = key("sole");
    let config = ClaimerConfig::default();
    let mut claimer = Claimer::new(config, me, BTreeSet::from([LINUX.to_string()]));
    let wanted = ClaimInput::Wanted {
        cell: cell(1),
        builds: 1,
        since: T0,
        rivals: Rivals::Only(BTreeSet::new()),
    };
    claimer.handle(T0, wanted);
    assert_eq!(claimer.poll_action(), None, "not before the facts are in");
    assert_eq!(claimer.poll_timeout(), Some(T0));
    claimer.handle(T0, ClaimInput::Tick);
    let actions: Vec<ClaimAction> = std::iter::from_fn(|| claimer.poll_action()).collect();
    assert!(
        matches!(
            actions.as_slice(),
            [ClaimAction::WriteClaim { .. }, ClaimAction::StartBuild(_)]
        ),
        "{actions:?}"
    );
}

/// A restarted node is told each wanted cell before its claims and
/// results (the driver feeds all wants, then all facts, cell by cell). The
/// only builder of cells it built before its restart must claim none of
/// them again. Found by `a_force_on_an_old_commit_is_built_once_also_across_restarts`,
/// which rebuilt the forced cell and every cell after it about one run in
/// three: the forced cell's older result (before the force) made it look
/// open, it was claimed at once, its newer result then ended that "build"
/// and freed the slot, and the next cell, whose facts had not come yet,
/// was claimed in turn.
#[test]
fn a_want_is_decided_with_all_the_facts_fed_after_it() {
    let me = key("sole");
    let mut claimer = Claimer::new(
        ClaimerConfig::default(),
        me,
        BTreeSet::from([LINUX.to_string()]),
    );
    let force = T0.plus_ms(10_000);
    for (n, since) in [(1, force), (2, T0), (3, T0)] {
        let wanted = ClaimInput::Wanted {
            cell: cell(n),
            builds: 1,
            since,
            rivals: Rivals::Only(BTreeSet::new()),
        };
        claimer.handle(force.plus_ms(5_000), wanted);
    }
    let results = [
        (1, T0.plus_ms(100)),
        (1, force.plus_ms(100)),
        (2, T0),
        (3, T0),
    ];
    for (n, at) in results {
        let finished = ClaimInput::Finished {
            cell: cell(n),
            builder: me,
            at,
        };
        claimer.handle(force.plus_ms(5_000), finished);
    }
    claimer.handle(force.plus_ms(5_000), ClaimInput::Tick);
    let actions: Vec<ClaimAction> = std::iter::from_fn(|| claimer.poll_action()).collect();
    assert_eq!(actions, [], "built already: nothing to do");
    assert_eq!(claimer.load(), 0);
}

/// Issue 14 item 7: a node that restarts with peers to reach bids nothing
/// until its first sync (or until `catch_up_ms`), so what its peers built
/// while it was down reaches it before it claims the same cells.
#[test]
fn a_restarted_node_waits_for_its_first_sync_before_bidding() {
    let bids = |net: &Net| net.when(|a| matches!(a, ClaimAction::SendBid(_))).len();

    // Caught up by a sync that brings the cell's result: never built here.
    let mut net = Net::new(&["alice"], config());
    net.send("alice", 0, ClaimInput::WaitingForPeers);
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    assert_eq!(bids(&net), 0, "no bid while waiting for peers");
    let built_elsewhere = ClaimInput::Finished {
        cell: cell(1),
        builder: key("bob"),
        at: net.now,
    };
    net.send("alice", 0, built_elsewhere);
    net.send("alice", 0, ClaimInput::CaughtUp);
    net.run_for(10_000);
    assert_eq!(bids(&net), 0, "the sync brought the result");
    assert!(net.starts(&cell(1)).is_empty());

    // Caught up with nothing new: it bids and builds at once.
    let mut net = Net::new(&["alice"], config());
    net.send("alice", 0, ClaimInput::WaitingForPeers);
    net.want(&cell(2), 1, Timestamp(0));
    net.run_for(1_000);
    net.send("alice", 0, ClaimInput::CaughtUp);
    net.run_for(200);
    assert_eq!(net.building(&cell(2)), ["alice"], "built after the sync");

    // No peer answers: it waits `catch_up_ms` and no longer.
    let mut net = Net::new(&["alice"], config());
    net.send("alice", 0, ClaimInput::WaitingForPeers);
    net.want(&cell(3), 1, Timestamp(0));
    net.run_for(config().catch_up_ms - 1);
    assert_eq!(bids(&net), 0);
    net.run_for(200);
    assert_eq!(net.building(&cell(3)), ["alice"], "built after the wait");
}

/// Issue 14 item 4: a builder whose connection is lost, and stays lost
/// for `orphan_ms`, loses its cell then, not when its 30 s lease lapses;
/// one that comes back in time keeps it.
#[test]
fn a_lost_builder_loses_its_cell_after_orphan_ms_and_a_returning_one_keeps_it() {
    for comes_back in [false, true] {
        let mut net = Net::new(&["alice", "bob"], config());
        net.want(&cell(1), 1, Timestamp(0));
        net.run_for(1_000);
        let first = net.building(&cell(1));
        assert_eq!(first.len(), 1, "{first:?}");
        let (builder, other) = if first[0] == "alice" {
            ("alice", "bob")
        } else {
            ("bob", "alice")
        };
        net.send(other, 0, ClaimInput::PeerLost(key(builder)));
        if comes_back {
            net.run_for(1_000);
            net.send(other, 0, ClaimInput::PeerBack(key(builder)));
            net.run_for(10_000);
            assert_eq!(net.building(&cell(1)), [builder], "kept by its builder");
            continue;
        }
        net.crash(builder);
        net.run_for(config().orphan_ms - 1);
        assert!(net.starts(&cell(1)).iter().all(|(_, n)| n == builder));
        net.run_for(400);
        let started: Vec<String> = net.starts(&cell(1)).into_iter().map(|(_, n)| n).collect();
        assert_eq!(started, [builder, other], "taken over after orphan_ms");
    }
}

/// Issue 14 item 3: when the project names its builders, the round ends
/// as soon as every named rival has bid: no other bid can count, so the
/// outcome is known. The same cell in an open project waits out the
/// window. Either way exactly one node builds it.
#[test]
fn a_round_ends_once_every_named_rival_has_bid() {
    let names = ["alice", "bob", "carol"];
    let started = |named: bool| {
        let mut net = Net::new(&names, config());
        for name in names {
            let rivals = if named {
                let others = names.iter().filter(|n| **n != name).map(|n| key(n));
                Rivals::Only(others.collect())
            } else {
                Rivals::Open
            };
            let wanted = ClaimInput::Wanted {
                cell: cell(1),
                builds: 1,
                since: Timestamp(0),
                rivals,
            };
            net.send(name, 0, wanted);
        }
        net.run_for(1_000);
        let starts = net.starts(&cell(1));
        assert_eq!(starts.len(), 1, "one build: {starts:?}");
        starts[0].0.0 - T0.0
    };
    let window = config().bid_window_ms;
    let open = started(false);
    let named = started(true);
    assert!(
        open >= window,
        "an open project waits the window: {open} ms"
    );
    assert!(named < window, "all rivals bid: {named} ms");
}

// Lost builders and rounds that end early, in the corners an independent
// review found: a lost builder that reconnects, a full table of lost
// peers, a clock a little ahead, and a stale bid. One claimer, fed by
// hand.

/// A cell on which bob ranks better than alice.
fn bob_better() -> CellKey {
    (0..=255u8)
        .map(cell)
        .find(|c| rendezvous_score(&key("bob"), c) < rendezvous_score(&key("alice"), c))
        .unwrap()
}

struct One {
    c: Claimer,
    now: Timestamp,
    actions: Vec<(Timestamp, ClaimAction)>,
}

impl One {
    fn new() -> One {
        let platforms: BTreeSet<String> = [LINUX.to_string()].into();
        One {
            c: Claimer::new(ClaimerConfig::default(), key("alice"), platforms),
            now: T0,
            actions: Vec::new(),
        }
    }
    /// Feeds `input` alone: timers fire only in [`One::run_until`], so a
    /// test says when time passes.
    fn feed(&mut self, input: ClaimInput) {
        self.c.handle(self.now, input);
        while let Some(a) = self.c.poll_action() {
            self.actions.push((self.now, a));
        }
    }
    fn run_until(&mut self, until: Timestamp) {
        while let Some(t) = self.c.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.feed(ClaimInput::Tick);
        }
        self.now = until;
    }
    fn count(&self, f: impl Fn(&ClaimAction) -> bool) -> usize {
        self.actions.iter().filter(|(_, a)| f(a)).count()
    }
}

fn wanted(c: &CellKey, rivals: Rivals) -> ClaimInput {
    ClaimInput::Wanted {
        cell: c.clone(),
        builds: 1,
        since: Timestamp(0),
        rivals,
    }
}

fn bobs_claim(c: &CellKey, at: Timestamp) -> ClaimInput {
    ClaimInput::Claimed {
        cell: c.clone(),
        builder: key("bob"),
        at,
        lease_expires: at.plus_ms(30_000),
    }
}

/// alice takes over bob's cell after bob is lost; bob then reconnects
/// (restarted, its build gone) and the driver re-feeds bob's old claim.
fn takeover(bob_returns: bool, evict: bool) -> One {
    let c = bob_better();
    let mut n = One::new();
    n.feed(wanted(&c, Rivals::Only([key("bob")].into())));
    n.feed(bobs_claim(&c, T0));
    n.now = T0.plus_ms(1_000);
    n.feed(ClaimInput::PeerLost(key("bob")));
    n.run_until(T0.plus_ms(4_000));
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::StartBuild(_))),
        1,
        "alice took over: {:?}",
        n.actions
    );
    if bob_returns {
        n.feed(ClaimInput::PeerBack(key("bob")));
    }
    if evict {
        for i in 0..1024u32 {
            n.feed(ClaimInput::PeerLost(PublicKey(sha256(&[&i.to_le_bytes()]))));
        }
    }
    // the next derivation re-feeds everything
    n.feed(wanted(&c, Rivals::Only([key("bob")].into())));
    n.feed(bobs_claim(&c, T0));
    n.run_until(T0.plus_ms(5_000));
    n
}

#[test]
fn feeding_the_old_claim_again_keeps_the_takeover() {
    let n = takeover(false, false);
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::CancelBuild(_))),
        0,
        "{:?}",
        n.actions
    );
}

#[test]
fn a_restarted_builder_reconnecting_does_not_get_its_old_claim_back() {
    let n = takeover(true, false);
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::CancelBuild(_))),
        0,
        "{:?}",
        n.actions
    );
}

#[test]
fn a_full_table_of_lost_peers_does_not_restore_a_cut_claim() {
    let n = takeover(false, true);
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::CancelBuild(_))),
        0,
        "{:?}",
        n.actions
    );
}

/// bob's last renewal is stamped 5 ms after alice saw the connection drop
/// (bob's clock 5 ms ahead; bob died right after renewing).
#[test]
fn a_last_claim_stamped_just_after_the_loss_is_still_cut() {
    let c = bob_better();
    let mut n = One::new();
    n.feed(wanted(&c, Rivals::Only([key("bob")].into())));
    n.now = T0.plus_ms(1_000);
    n.feed(ClaimInput::PeerLost(key("bob")));
    n.now = T0.plus_ms(1_050);
    n.feed(bobs_claim(&c, T0.plus_ms(1_005)));
    n.run_until(T0.plus_ms(10_000));
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::StartBuild(_))),
        1,
        "not taken over: {:?}",
        n.actions
    );
}

/// A bid bob sent 4 s before alice's round (while alice believed carol's
/// claim) makes bob count as "has bid" in alice's round: alice closes at
/// once on bob's stale load 1, though bob's fresh load-0 bid would win.
#[test]
fn a_bid_from_an_earlier_round_does_not_end_a_round_early() {
    let (a, b, c) = (key("alice"), key("bob"), key("carol"));
    let cl = (0..=255u8)
        .map(cell)
        .find(|x| {
            let s = |k| rendezvous_score(k, x);
            s(&b) < s(&a) && s(&a) < s(&c)
        })
        .unwrap();
    let mut n = One::new();
    n.feed(wanted(&cl, Rivals::Only([b, c].into())));
    n.feed(ClaimInput::Claimed {
        cell: cl.clone(),
        builder: c,
        at: T0,
        lease_expires: T0.plus_ms(5_000),
    });
    n.now = T0.plus_ms(1_000);
    n.feed(ClaimInput::Bid(buildmesh_protocol::Bid {
        bidder: b,
        at: n.now,
        project: cl.project,
        round: 0,
        load: 1,
        commit: cl.commit.clone(),
        platform: cl.platform.clone(),
    }));
    n.run_until(T0.plus_ms(5_100));
    let start = n
        .actions
        .iter()
        .find(|(_, a)| matches!(a, ClaimAction::StartBuild(_)))
        .map(|(t, _)| t.0 - T0.0 - 5_000);
    assert_eq!(
        start, None,
        "alice claimed {start:?} ms into a 150 ms window on a stale bid: {:?}",
        n.actions
    );
}

/// A build that never started (its claim not written, its executor
/// failing) frees the slot without counting as built: the cell is claimed
/// again after `retry_ms`, not at once and not never. Found by the review
/// for a project whose only builder is this node.
#[test]
fn an_abandoned_build_is_claimed_again_after_retry_ms() {
    let c = cell(1);
    let mut n = One::new();
    let sole = || wanted(&c, Rivals::Only(BTreeSet::new()));
    let starts = |n: &One| n.count(|a| matches!(a, ClaimAction::StartBuild(_)));
    n.feed(sole());
    n.run_until(T0);
    assert_eq!(starts(&n), 1);
    n.feed(ClaimInput::BuildAbandoned(c.clone()));
    let retry_ms = ClaimerConfig::default().retry_ms;
    n.run_until(T0.plus_ms(retry_ms - 1));
    n.feed(sole());
    n.run_until(n.now);
    assert_eq!(starts(&n), 1, "not before retry_ms");
    n.run_until(T0.plus_ms(retry_ms + 1));
    assert_eq!(starts(&n), 2, "claimed again");
}

// Review 14b: decisions at a tick, and orphaning with renewals' times.

/// A busy node (one slot, building a cell it alone builds) watches a
/// round on another cell: bob bids, wins, never claims; after the grace a
/// new round opens that the node only watches, and its window closes with
/// no winner. `close_window` then frees "a slot" (`load_freed`), the same
/// tick's `decide_waiting` finds the cell idle in a round still fresh and
/// rejoins it, `join_round` arms `WindowClose` at `now` again, and `tick`
/// never returns. Run on a thread so the test fails instead of hanging.
#[test]
fn a_busy_node_watching_a_round_with_no_winner_does_not_spin_in_tick() {
    let (sole, other) = (cell(1), cell(2));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut n = One::new();
        n.feed(wanted(&sole, Rivals::Only(BTreeSet::new())));
        n.run_until(T0);
        assert_eq!(n.c.load(), 1, "busy with the cell only it builds");
        n.feed(wanted(&other, Rivals::Open));
        n.feed(ClaimInput::Bid(buildmesh_protocol::Bid {
            bidder: key("bob"),
            at: n.now,
            project: other.project,
            round: 0,
            load: 0,
            commit: other.commit.clone(),
            platform: other.platform.clone(),
        }));
        // bob wins the window, never claims: grace ends at 2150 ms, the
        // next window (watched only) closes at 2300 ms with no winner.
        n.run_until(T0.plus_ms(5_000));
        let _ = tx.send(());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("Claimer::tick did not return within 10 s (spins at one instant)")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the scenario failed"),
    }
}

/// Several cells wanted at once on an idle one-slot node decide in the
/// order their `Decide` timers fire, which is the order the claimer first
/// heard of them (`CellId`), not their want's `since`: fed newest first
/// (the service feeds wanted cells in commit-hash order), the newest is
/// built first. `decide_waiting` sorts by `since`, but only after a slot
/// is freed.
#[test]
fn cells_wanted_in_one_feed_are_decided_longest_waiting_first() {
    let me = key("lone");
    let mut c = Claimer::new(ClaimerConfig::default(), me, [LINUX.to_string()].into());
    for n in (0..3u8).rev() {
        let wanted = ClaimInput::Wanted {
            cell: cell(n),
            builds: 1,
            since: Timestamp(T0.0 + u64::from(n)),
            rivals: Rivals::Open,
        };
        c.handle(T0, wanted);
    }
    let mut first_bid = None;
    let mut now = T0;
    while first_bid.is_none() && now.0 < T0.0 + 1_000 {
        while let Some(action) = c.poll_action() {
            if let ClaimAction::SendBid(bid) = action {
                first_bid.get_or_insert(bid.commit);
            }
        }
        let Some(at) = c.poll_timeout() else { break };
        now = now.max(at);
        c.handle(now, ClaimInput::Tick);
    }
    assert_eq!(first_bid, Some(cell(0).commit), "oldest want first");
}

/// bob's clock runs 2.5 s ahead (renewals within `RENEWAL_SKEW_MS`, 60 s,
/// are taken). bob renews, then dies; alice sees the connection drop.
/// The service feeds bob's claim with `at` = that last renewal's stamp,
/// which is more than `orphan_ms` after the loss by bob's clock, so
/// `believed_lease` takes it as proof bob is alive and forgets the loss:
/// bob is never orphaned and the cell waits out the whole lease.
#[test]
fn a_dead_builder_with_a_clock_ahead_by_more_than_orphan_ms_is_still_orphaned() {
    let c = bob_better();
    let mut n = One::new();
    n.feed(wanted(&c, Rivals::Only([key("bob")].into())));
    n.feed(bobs_claim(&c, T0));
    n.now = T0.plus_ms(1_000);
    n.feed(ClaimInput::PeerLost(key("bob")));
    n.now = T0.plus_ms(1_050);
    // bob's last renewal, sent just before it died at ~1 000 ms real time
    n.feed(bobs_claim(&c, T0.plus_ms(3_500)));
    n.run_until(T0.plus_ms(10_000));
    assert_eq!(
        n.count(|a| matches!(a, ClaimAction::StartBuild(_))),
        1,
        "alice did not take over from a dead bob within 9 s: {:?}",
        n.actions
    );
}

/// alice's one slot is reserved by her bid on cell 1 (cell 2 waits, its
/// `Decide` spent). bob's claim on cell 1 ends that round in `reconsider`
/// (needed 0: `Idle`, round timers stopped), which releases the
/// reservation without `load_freed`: cell 2 waits until some other event
/// (here cell 1's lease watch, 30 s). The service masks it by feeding
/// every want before the facts of a derivation; the claimer alone does
/// not keep its promise that a freed slot takes the next waiting cell.
#[test]
fn a_reservation_released_by_a_claim_lets_the_waiting_cell_bid() {
    let (first, second) = (cell(1), cell(2));
    let mut n = One::new();
    n.feed(wanted(&first, Rivals::Open));
    n.feed(wanted(&second, Rivals::Open));
    n.run_until(T0.plus_ms(10));
    n.feed(bobs_claim(&first, n.now));
    n.run_until(T0.plus_ms(1_000));
    let bids_on_second =
        n.count(|a| matches!(a, ClaimAction::SendBid(b) if b.commit == second.commit));
    assert_eq!(bids_on_second, 1, "{:?}", n.actions);
}

/// The simulator's seed 39 (with one more draw in `forks_request`): a
/// trusted builder's result settled a cell, and alice cancelled her own
/// build of it; then a fork was proven against that builder, and the
/// matrix showed the cell pending again. The claimer must forget the
/// forker's result (and claim), or nobody ever bids for the cell.
#[test]
fn a_cell_settled_by_a_builder_proven_to_fork_opens_again() {
    let mut net = Net::new(&["alice"], config());
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(1_000);
    assert_eq!(net.building(&cell(1)), vec!["alice".to_string()]);
    let result = ClaimInput::Finished {
        cell: cell(1),
        builder: key("mallory"),
        at: net.now,
    };
    net.send("alice", 0, result);
    net.run_for(60_000);
    assert_eq!(
        net.cancels(&cell(1)).len(),
        1,
        "the forker's result counted"
    );
    assert_eq!(net.starts(&cell(1)).len(), 1, "and settled the cell");
    let forked_at = net.now;
    net.send(
        "alice",
        0,
        ClaimInput::Withdrawn {
            project: cell(1).project,
            builder: key("mallory"),
        },
    );
    net.run_for(1_000);
    assert_eq!(
        net.starts(&cell(1)),
        vec![
            (T0.plus_ms(150), "alice".into()),
            (forked_at.plus_ms(150), "alice".into())
        ],
        "built again, after one bid window"
    );
}

/// A forker's live claim holds its cell no longer once the fork is proven.
#[test]
fn a_claim_by_a_builder_proven_to_fork_does_not_hold_its_cell() {
    let mut net = Net::new(&["alice"], config());
    let claim = ClaimInput::Claimed {
        cell: cell(1),
        builder: key("mallory"),
        at: T0,
        lease_expires: T0.plus_ms(30_000),
    };
    net.send("alice", 0, claim);
    net.want(&cell(1), 1, Timestamp(0));
    net.run_for(5_000);
    assert!(net.starts(&cell(1)).is_empty(), "mallory holds the cell");
    net.send(
        "alice",
        0,
        ClaimInput::Withdrawn {
            project: cell(1).project,
            builder: key("mallory"),
        },
    );
    net.run_for(1_000);
    assert_eq!(
        net.starts(&cell(1)),
        vec![(T0.plus_ms(5_150), "alice".into())]
    );
}
