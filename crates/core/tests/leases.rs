//! Issue 14: leases off the permanent log. A claim is one entry; renewals
//! (`docs/protocol.md` §11) extend it from memory, and the views and the
//! node's work read the extended lease.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, ChainWriter, MemStore};
use buildmesh_core::view::{
    Acceptance, CellStatus, LEASES_MAX, LEASES_PER_BUILDER_MAX, LiveLeases, MatrixOptions,
    ProjectLog, RENEWAL_LEASE_MS_MAX, RENEWAL_SKEW_MS, matrix, renews_a_claim, work,
};
use buildmesh_protocol::{
    BuilderPolicy, Outcome, ProjectId, SYNC_LEASES_MAX, SignedRenewal, Timestamp,
};
use fixtures::{NOW, PLATFORMS, announce, claim, commit, declaration, renewal, result, writer};
use std::collections::BTreeSet;

const LINUX: &str = PLATFORMS[0];

/// A project by alice with commit 1 announced, and bob's claim on its
/// linux cell whose own lease ended a second before `NOW`.
struct World {
    store: MemStore,
    project: ProjectId,
    bob: ChainWriter,
}

impl World {
    fn new() -> World {
        let mut alice = writer("alice");
        let mut bob = writer("bob");
        let project = ProjectId::derive(&alice.author(), "demo");
        let mut store = MemStore::default();
        let mut t = NOW.0 - 40_000;
        let mut put = |w: &mut ChainWriter, body| {
            t += 1;
            log::insert(&mut store, w.write(Timestamp(t), body).unwrap()).unwrap();
        };
        put(&mut alice, declaration(&PLATFORMS, BuilderPolicy::Open, 1));
        put(&mut alice, announce(project, 1));
        put(&mut bob, claim(project, 1, LINUX, Timestamp(NOW.0 - 1_000)));
        World {
            store,
            project,
            bob,
        }
    }

    fn cell(&self, leases: &LiveLeases) -> (CellStatus, Option<Timestamp>) {
        let mut log = ProjectLog::load(&self.store, &self.project, usize::MAX).unwrap();
        log.apply_leases(leases);
        let m = matrix(&log, NOW, &MatrixOptions::default()).unwrap();
        let column = m.platforms.iter().position(|p| p == LINUX).unwrap();
        let cell = &m.rows[0].cells[column];
        (cell.status, cell.claimed_by.map(|(_, until)| until))
    }
}

#[test]
fn a_renewal_extends_its_builders_claim_in_the_matrix_and_the_work() {
    let w = World::new();
    let mut leases = LiveLeases::default();
    assert_eq!(
        w.cell(&leases),
        (CellStatus::Pending, None),
        "the claim's own lease ended"
    );

    let until = NOW.plus_ms(20_000);
    let renewed_at = Timestamp(NOW.0 - 500);
    assert!(leases.offer(NOW, &renewal(w.bob.key(), w.project, 1, renewed_at, until)));
    assert_eq!(w.cell(&leases), (CellStatus::Claimed, Some(until)));

    // The claimer is fed the lease and the time of the latest renewal.
    let me = writer("carol").author();
    let linux = BTreeSet::from([LINUX.to_string()]);
    let found = work(
        &w.store,
        &me,
        &linux,
        &Acceptance::only(w.project),
        50,
        &leases,
    )
    .unwrap();
    let claim = found
        .events
        .iter()
        .find(|e| e.builder == w.bob.author())
        .unwrap();
    assert_eq!((claim.at, claim.lease_expires), (renewed_at, Some(until)));

    // An earlier or equal renewal changes nothing.
    let earlier = renewal(
        w.bob.key(),
        w.project,
        1,
        Timestamp(NOW.0 - 900),
        NOW.plus_ms(10_000),
    );
    assert!(!leases.offer(NOW, &earlier));
    assert_eq!(w.cell(&leases), (CellStatus::Claimed, Some(until)));
}

#[test]
fn a_renewal_claims_nothing_on_its_own() {
    let w = World::new();
    let carol = writer("carol");
    let mut leases = LiveLeases::default();
    // Carol never claimed; commit 2 was never claimed by anyone.
    assert!(leases.offer(
        NOW,
        &renewal(carol.key(), w.project, 1, NOW, NOW.plus_ms(20_000))
    ));
    assert!(leases.offer(
        NOW,
        &renewal(w.bob.key(), w.project, 2, NOW, NOW.plus_ms(20_000))
    ));
    assert_eq!(w.cell(&leases), (CellStatus::Pending, None));
}

#[test]
fn a_result_ends_a_renewed_claim() {
    let mut w = World::new();
    let mut leases = LiveLeases::default();
    assert!(leases.offer(
        NOW,
        &renewal(w.bob.key(), w.project, 1, NOW, NOW.plus_ms(20_000))
    ));
    let entry = w
        .bob
        .write(
            Timestamp(NOW.0 - 100),
            result(w.project, 1, LINUX, Outcome::Passed),
        )
        .unwrap();
    log::insert(&mut w.store, entry).unwrap();
    assert_eq!(w.cell(&leases), (CellStatus::Passed, None));
}

#[test]
fn stale_skewed_lapsed_and_endless_renewals_are_bounded() {
    let w = World::new();
    let mut leases = LiveLeases::default();
    let skew = RENEWAL_SKEW_MS + 1;
    let old = renewal(
        w.bob.key(),
        w.project,
        1,
        Timestamp(NOW.0 - skew),
        NOW.plus_ms(9_000),
    );
    let ahead = renewal(
        w.bob.key(),
        w.project,
        1,
        NOW.plus_ms(skew),
        NOW.plus_ms(skew + 9_000),
    );
    let lapsed = renewal(w.bob.key(), w.project, 1, Timestamp(NOW.0 - 10), NOW);
    for refused in [old, ahead, lapsed] {
        assert!(!leases.offer(NOW, &refused));
    }
    assert!(leases.is_empty());
    // The end of time is cut to five minutes after the renewal.
    let endless = renewal(w.bob.key(), w.project, 1, NOW, Timestamp(u64::MAX));
    assert!(leases.offer(NOW, &endless));
    assert_eq!(w.cell(&leases).1, Some(NOW.plus_ms(RENEWAL_LEASE_MS_MAX)));
    // Lapsed leases are neither served to peers nor kept.
    let later = NOW.plus_ms(RENEWAL_LEASE_MS_MAX);
    assert_eq!(leases.wires(NOW), vec![endless.to_wire()]);
    assert!(leases.wires(later).is_empty());
    leases.prune(later);
    assert!(leases.is_empty());
}

/// One builder holds at most its share; past it, its own renewal heard
/// longest ago goes, never another builder's. The whole table is bounded
/// too, the renewal heard longest ago going first.
#[test]
fn each_builder_has_a_share_and_the_table_is_bounded() {
    let mut leases = LiveLeases::default();
    let project = |i: usize| ProjectId(sha(i));
    let bob = writer("bob");
    let carol = writer("carol");
    let carols = renewal(carol.key(), project(0), 1, NOW, NOW.plus_ms(30_000));
    assert!(leases.offer(NOW, &carols));
    for i in 0..LEASES_PER_BUILDER_MAX + 10 {
        let at = Timestamp(NOW.0 - 1_000 + i as u64);
        assert!(leases.offer(
            NOW,
            &renewal(bob.key(), project(i), 1, at, at.plus_ms(60_000))
        ));
    }
    assert_eq!(
        leases.len(),
        LEASES_PER_BUILDER_MAX + 1,
        "bob's share, and carol's one"
    );
    assert!(
        leases
            .renewed(&project(0), &commit(1), LINUX, &carol.author())
            .is_some()
    );
    assert!(
        leases
            .renewed(&project(0), &commit(1), LINUX, &bob.author())
            .is_none(),
        "bob's stalest went"
    );

    // Many builders fill the table; a fresher renewal pushes out the stalest.
    let mut table = LiveLeases::default();
    let builders: Vec<ChainWriter> = (0..LEASES_MAX / LEASES_PER_BUILDER_MAX)
        .map(|b| writer(&format!("builder-{b}")))
        .collect();
    for (b, builder) in builders.iter().enumerate() {
        for i in 0..LEASES_PER_BUILDER_MAX {
            let at = Timestamp(NOW.0 - 5_000 + (b * LEASES_PER_BUILDER_MAX + i) as u64);
            assert!(table.offer(
                NOW,
                &renewal(builder.key(), project(i), 1, at, NOW.plus_ms(30_000))
            ));
        }
    }
    assert_eq!(table.len(), LEASES_MAX);
    let stale = renewal(
        carol.key(),
        project(0),
        1,
        Timestamp(NOW.0 - 9_000),
        NOW.plus_ms(30_000),
    );
    assert!(!table.offer(NOW, &stale), "staler than everything held");
    assert!(table.offer(NOW, &carols));
    assert_eq!(table.len(), LEASES_MAX);
    let first = builders[0].author();
    assert!(
        table
            .renewed(&project(0), &commit(1), LINUX, &first)
            .is_none(),
        "the stalest went"
    );
}

/// Found by the review: the sync hand-over served the latest-ending
/// renewals first, and a renewer picks its own `lease_expires`, so one
/// builder renewing `SYNC_LEASES_MAX` claims with long leases pushed every
/// honest lease out of what a late joiner learns from its first sync.
/// Now each builder has a share of the table, and the hand-over takes
/// from each builder in turn.
#[test]
fn one_builders_long_leases_do_not_crowd_others_out_of_the_sync_hand_over() {
    let mallory = writer("mallory");
    let bob = writer("bob");
    let project = |i: usize| ProjectId(sha(i));
    let mut leases = LiveLeases::default();
    for i in 0..SYNC_LEASES_MAX {
        let until = NOW.plus_ms(60 * 60 * 1000);
        leases.offer(NOW, &renewal(mallory.key(), project(i), 1, NOW, until));
    }
    let honest = renewal(bob.key(), ProjectId([7; 32]), 1, NOW, NOW.plus_ms(30_000));
    assert!(leases.offer(NOW, &honest));
    let served = leases.wires(NOW);
    assert!(
        served.contains(&honest.to_wire()),
        "bob's live lease is handed over"
    );
    assert_eq!(served.len(), LEASES_PER_BUILDER_MAX + 1);
}

fn sha(i: usize) -> [u8; 32] {
    buildmesh_protocol::sha256(&[&i.to_le_bytes()])
}

#[test]
fn only_renewals_of_a_claim_in_the_log_are_worth_holding() {
    let w = World::new();
    let held = |r: SignedRenewal| renews_a_claim(&w.store, r.message()).unwrap();
    let until = NOW.plus_ms(20_000);
    assert!(held(renewal(w.bob.key(), w.project, 1, NOW, until)));
    assert!(
        !held(renewal(writer("carol").key(), w.project, 1, NOW, until)),
        "not carol's claim"
    );
    assert!(
        !held(renewal(w.bob.key(), w.project, 2, NOW, until)),
        "another commit"
    );
    let mut mac = renewal(w.bob.key(), w.project, 1, NOW, until).into_message();
    mac.platform = PLATFORMS[1].into();
    assert!(
        !held(SignedRenewal::sign(w.bob.key(), mac).unwrap()),
        "another platform"
    );
}
