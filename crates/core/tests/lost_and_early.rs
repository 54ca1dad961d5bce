//! Lost builders and rounds that end early, in the corners an
//! independent review found: a lost builder that reconnects, a full table
//! of lost peers, a clock a little ahead, and a stale bid. One claimer,
//! fed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_core::claim::{
    CellKey, ClaimAction, ClaimInput, Claimer, ClaimerConfig, Rivals, rendezvous_score,
};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, Timestamp, sha256};
use std::collections::BTreeSet;

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
