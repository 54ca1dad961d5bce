//! The platform matrix as a pure function of entries and time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, ChainWriter, MemStore};
use buildmesh_core::view::{CellStatus, Matrix, MatrixOptions, ProjectLog, matrix};
use buildmesh_protocol::{
    Body, BuilderPolicy, BuilderRevocation, Outcome, ProjectId, Role, Timestamp, TrustChange,
};
use fixtures::{NOW, PLATFORMS, announce, claim, declaration, result, writer};
use std::collections::BTreeSet;

const LINUX: &str = PLATFORMS[0];
const MAC: &str = PLATFORMS[1];

/// One node's log: what has no role yet waits aside, as on a node.
struct World {
    store: MemStore,
    aside: log::Aside,
    alice: ChainWriter,
    project: ProjectId,
    t: u64,
}

impl World {
    fn new(builders: BuilderPolicy, builds_per_cell: u8) -> World {
        let alice = writer("alice");
        let project = ProjectId::derive(&alice.author(), "demo");
        let mut world = World {
            store: MemStore::default(),
            aside: log::Aside::default(),
            alice,
            project,
            t: NOW.0 - 10_000,
        };
        world.owner(declaration(&PLATFORMS, builders, builds_per_cell));
        world
    }

    fn owner(&mut self, body: Body) {
        self.t += 1;
        let entry = self.alice.write(Timestamp(self.t), body).unwrap();
        self.offer(entry);
    }

    fn offer(&mut self, entry: buildmesh_protocol::Entry) {
        let outcome = log::insert(&mut self.store, entry.clone()).unwrap();
        self.aside
            .settle(&mut self.store, NOW, [(entry, outcome)])
            .unwrap();
    }

    fn by(&mut self, who: &mut ChainWriter, body: Body) {
        self.t += 1;
        let entry = who.write(Timestamp(self.t), body).unwrap();
        self.offer(entry);
    }

    fn log(&self) -> ProjectLog {
        ProjectLog::load(&self.store, &self.project, usize::MAX).unwrap()
    }

    fn status_at(&self, row: usize, platform: &str, now: Timestamp) -> CellStatus {
        let log = self.log();
        let m = derive(&log, now);
        let column = m.platforms.iter().position(|p| p == platform).unwrap();
        m.rows[row].cells[column].status
    }

    fn status(&self, row: usize, platform: &str) -> CellStatus {
        self.status_at(row, platform, NOW)
    }

    fn rows(&self) -> usize {
        derive(&self.log(), NOW).rows.len()
    }
}

fn derive(log: &ProjectLog, now: Timestamp) -> Matrix<'_> {
    matrix(log, now, &MatrixOptions::default()).unwrap()
}

#[test]
fn cells_follow_claims_and_results() {
    let mut w = World::new(BuilderPolicy::Open, 1);
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let p = w.project;
    w.owner(announce(p, 1));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending);
    w.by(&mut bob, claim(p, 1, LINUX, NOW.plus_ms(1000)));
    assert_eq!(w.status(0, LINUX), CellStatus::Claimed);
    assert_eq!(
        w.status_at(0, LINUX, NOW.plus_ms(1000)),
        CellStatus::Pending,
        "a lapsed lease reopens the cell"
    );
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    w.by(&mut carol, result(p, 1, MAC, Outcome::Error));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    assert_eq!(w.status(0, MAC), CellStatus::Error);
    w.by(&mut bob, result(p, 1, MAC, Outcome::Failed));
    assert_eq!(w.status(0, MAC), CellStatus::Failed);
    let log = w.log();
    let m = derive(&log, NOW);
    let cell = &m.rows[0].cells[1];
    assert_eq!(cell.results.len(), 2);
    assert_eq!(
        cell.builders().into_iter().collect::<BTreeSet<_>>(),
        [bob.author(), carol.author()].into_iter().collect()
    );
}

#[test]
fn rows_are_newest_first_and_filterable() {
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    for n in 1..=5 {
        w.owner(announce(p, n));
    }
    let log = w.log();
    let m = derive(&log, NOW);
    let titles: Vec<&str> = m.rows.iter().map(|r| r.title).collect();
    assert_eq!(
        titles,
        ["commit 5", "commit 4", "commit 3", "commit 2", "commit 1"]
    );
    let log = ProjectLog::load(&w.store, &p, usize::MAX).unwrap();
    let two = matrix(
        &log,
        NOW,
        &MatrixOptions {
            branch: Some("main".into()),
            rows_max: Some(2),
        },
    )
    .unwrap();
    assert_eq!(two.rows.len(), 2);
    let none = matrix(
        &log,
        NOW,
        &MatrixOptions {
            branch: Some("dev".into()),
            rows_max: None,
        },
    )
    .unwrap();
    assert!(none.rows.is_empty());
}

#[test]
fn only_trusted_builders_count_and_trust_can_change() {
    let (mut bob, mut mallory) = (writer("bob"), writer("mallory"));
    let mut w = World::new(BuilderPolicy::Only(vec![bob.author()]), 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut mallory, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "an untrusted result does not count"
    );
    w.owner(Body::Trust(TrustChange {
        project: p,
        subject: mallory.author(),
        role: Role::Builder,
    }));
    assert_eq!(w.status(0, LINUX), CellStatus::Failed);
    w.owner(Body::Revoke(TrustChange {
        project: p,
        subject: mallory.author(),
        role: Role::Builder,
    }));
    // A revocation that keeps none of her chain: her failure no longer
    // counts.
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    // What she writes after it does not.
    w.by(&mut mallory, result(p, 1, MAC, Outcome::Failed));
    assert_eq!(w.status(0, MAC), CellStatus::Pending);
}

/// Issue 18: a revocation counts from the revocation entry on. The
/// revoked builder's earlier results stand; its later ones count nowhere,
/// also after the project is declared again; a new `Trust` gives the role
/// back.
#[test]
fn revoking_a_builder_counts_from_the_revocation_on() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let both = BuilderPolicy::Only(vec![bob.author(), carol.author()]);
    let mut w = World::new(both, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    w.owner(Body::Revoke(TrustChange {
        project: p,
        subject: bob.author(),
        role: Role::Builder,
    }));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Failed));
    w.by(&mut carol, result(p, 1, MAC, Outcome::Passed));
    assert_eq!(w.status(1, LINUX), CellStatus::Pending);
    assert_eq!(w.status(1, MAC), CellStatus::Passed);
}

/// The owner's revocation of `who` keeping what it signed so far: its
/// chain through its last entry, as `buildmesh project trust --revoke`
/// writes it from what the owner's node holds.
fn revoke(project: ProjectId, who: &ChainWriter) -> Body {
    revoke_keeping(project, who, who.next_seq() - 1)
}

fn revoke_keeping(project: ProjectId, who: &ChainWriter, kept_through: u64) -> Body {
    Body::RevokeBuilder(BuilderRevocation {
        project,
        subject: who.author(),
        kept_through,
    })
}

/// Issue 18, point 3: revocation counts from the revocation entry on. A
/// result its builder signed while trusted keeps counting; one signed
/// after the revocation does not, nor does a claim once it is revoked.
#[test]
fn a_revoked_builder_keeps_what_it_signed_before_and_loses_what_after() {
    let (mut bob, mut mallory) = (writer("bob"), writer("mallory"));
    let mut w = World::new(BuilderPolicy::Only(vec![bob.author(), mallory.author()]), 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    w.by(&mut mallory, result(p, 1, LINUX, Outcome::Passed));
    w.by(&mut mallory, claim(p, 1, MAC, NOW.plus_ms(60_000)));
    assert_eq!(w.status(1, MAC), CellStatus::Claimed);
    w.owner(revoke(p, &mallory));
    w.by(&mut mallory, result(p, 2, LINUX, Outcome::Passed));
    assert_eq!(
        w.status(1, LINUX),
        CellStatus::Passed,
        "signed before: counts"
    );
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "signed after: does not"
    );
    assert_eq!(
        w.status(1, MAC),
        CellStatus::Pending,
        "its claim no longer holds the cell"
    );
    w.by(&mut bob, result(p, 2, LINUX, Outcome::Failed));
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Failed,
        "no disagreement with it"
    );
    // Trusted again, it counts again, whatever it signed.
    w.owner(Body::Trust(TrustChange {
        project: p,
        subject: mallory.author(),
        role: Role::Builder,
    }));
    assert_eq!(w.status(0, LINUX), CellStatus::Disagree);
}

/// A revoked key dates its entries as it likes; its chain it cannot
/// rewrite. A result it signs after the revocation counts nowhere, even
/// dated before the revocation, for a commit announced after it or for
/// one it decided while trusted (its newest vote would flip the cell).
#[test]
fn a_revoked_builder_cannot_backdate_its_way_back_in() {
    let mut w = World::new(BuilderPolicy::Only(vec![writer("mallory").author()]), 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Passed));
    w.owner(revoke(p, &m));
    let revoked_at = w.t;
    w.owner(announce(p, 2));
    w.t += 1_000;
    for (commit, outcome) in [(2, Outcome::Passed), (1, Outcome::Failed)] {
        let backdated = m
            .write(Timestamp(revoked_at - 1), result(p, commit, LINUX, outcome))
            .unwrap();
        w.offer(backdated);
    }
    assert_eq!(w.status(0, LINUX), CellStatus::Pending, "announced after");
    assert_eq!(w.status(1, LINUX), CellStatus::Passed, "decided before");
}

/// An owner who thinks a key was stolen keeps less of its chain, or none
/// of it (`--keep-through none`), whatever the entries' dates say.
#[test]
fn a_revocation_keeping_less_takes_back_what_came_after() {
    let mut w = World::new(BuilderPolicy::Only(vec![writer("mallory").author()]), 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Passed));
    let honest = m.next_seq() - 1;
    w.by(&mut m, result(p, 2, LINUX, Outcome::Passed));
    w.owner(revoke_keeping(p, &m, honest));
    assert_eq!(w.status(1, LINUX), CellStatus::Passed, "kept");
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "past what was kept"
    );
    w.owner(revoke_keeping(p, &m, 0));
    assert_eq!(w.status(1, LINUX), CellStatus::Pending, "none kept");
}

/// A `Revoke` of a builder names no point of its chain, so it keeps
/// nothing: written by a node from before `RevokeBuilder`, it takes back
/// every result of the key, as a revocation keeping none would.
#[test]
fn a_revoke_without_a_chain_point_keeps_nothing() {
    let mut w = World::new(BuilderPolicy::Only(vec![writer("mallory").author()]), 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    w.owner(Body::Revoke(TrustChange {
        project: p,
        subject: m.author(),
        role: Role::Builder,
    }));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending);
}

/// A declaration that no longer lists a builder, or that closes an open
/// project, names no point of anyone's chain either: a dropped builder
/// keeps what a revocation before it kept, and nothing otherwise.
#[test]
fn a_declaration_that_drops_builders_keeps_only_what_a_revocation_kept() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    w.by(&mut carol, result(p, 1, LINUX, Outcome::Passed));
    w.by(&mut bob, result(p, 1, MAC, Outcome::Passed));
    w.owner(revoke(p, &bob));
    w.owner(declaration(&PLATFORMS, BuilderPolicy::Only(Vec::new()), 1));
    assert_eq!(w.status(1, LINUX), CellStatus::Pending, "carol's: dropped");
    assert_eq!(w.status(1, MAC), CellStatus::Passed, "bob's: kept");
    w.by(&mut bob, result(p, 2, MAC, Outcome::Passed));
    assert_eq!(w.status(0, MAC), CellStatus::Pending, "bob's later one");
    w.owner(declaration(
        &PLATFORMS,
        BuilderPolicy::Only(vec![carol.author()]),
        1,
    ));
    assert_eq!(
        w.status(1, LINUX),
        CellStatus::Passed,
        "carol's, trusted again"
    );
    assert_eq!(w.status(1, MAC), CellStatus::Passed, "bob's, still kept");
}

#[test]
fn a_cell_needing_two_builds_passes_on_the_second_builder() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut w = World::new(BuilderPolicy::Open, 2);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "one builder twice is one witness"
    );
    w.by(&mut carol, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
}

#[test]
fn announcements_by_strangers_are_ignored() {
    let mut mallory = writer("mallory");
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.by(&mut mallory, announce(p, 1));
    assert_eq!(w.rows(), 0);
    w.owner(Body::Trust(TrustChange {
        project: p,
        subject: mallory.author(),
        role: Role::Announcer,
    }));
    assert_eq!(w.rows(), 1);
}

#[test]
fn a_forked_builder_stops_counting() {
    let mut bob = writer("bob");
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    let mut bob_again = writer("bob"); // same key, starting over: a fork at seq 1
    w.by(&mut bob_again, result(p, 1, MAC, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending);
    assert_eq!(w.status(0, MAC), CellStatus::Pending);
}

/// Commits announced at one moment (a node catching up announces them in
/// a burst) show newest committed first, not in commit id order.
#[test]
fn commits_announced_together_show_newest_committed_first() {
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    let at = Timestamp(w.t + 1);
    for n in [3, 9, 1, 5] {
        let entry = w.alice.write(at, announce(p, n)).unwrap();
        w.offer(entry);
    }
    let log = w.log();
    let m = derive(&log, NOW);
    let titles: Vec<&str> = m.rows.iter().map(|r| r.title).collect();
    assert_eq!(titles, ["commit 9", "commit 5", "commit 3", "commit 1"]);
}

#[test]
fn a_project_without_declaration_has_no_matrix() {
    let store = MemStore::default();
    let log = ProjectLog::load(&store, &ProjectId([5; 32]), 10).unwrap();
    assert_eq!(matrix(&log, NOW, &MatrixOptions::default()), None);
}

#[test]
fn strangers_cannot_crowd_trusted_commits_out_of_the_window() {
    let mut mallory = writer("mallory");
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    for n in 10..60 {
        // Far-future announcements by a key the project does not trust.
        let entry = mallory
            .write(Timestamp(u64::MAX - u64::from(n)), announce(p, n))
            .unwrap();
        log::insert(&mut w.store, entry).unwrap();
    }
    let log = ProjectLog::load(&w.store, &p, 2).unwrap();
    assert_eq!(log.announcements.len(), 2);
    let m = matrix(&log, NOW, &MatrixOptions::default()).unwrap();
    let titles: Vec<&str> = m.rows.iter().map(|r| r.title).collect();
    assert_eq!(titles, ["commit 2", "commit 1"]);
}

#[test]
fn a_claim_cannot_hold_a_cell_forever() {
    let mut bob = writer("bob");
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut bob, claim(p, 1, LINUX, Timestamp(u64::MAX)));
    assert_eq!(w.status(0, LINUX), CellStatus::Claimed);
    let later = NOW.plus_ms(buildmesh_core::view::LEASE_MS_MAX + 1);
    assert_eq!(w.status_at(0, LINUX, later), CellStatus::Pending);
}

#[test]
fn the_row_shows_the_first_announcement_whatever_the_input_order() {
    // Two announcements of one commit at one time, differing only in the
    // git author they report: the row must not depend on input order.
    let mut alice = writer("alice");
    let project = ProjectId::derive(&alice.author(), "demo");
    let t = Timestamp(NOW.0 - 5);
    let mut entries = vec![
        alice
            .write(t, declaration(&PLATFORMS, BuilderPolicy::Open, 1))
            .unwrap(),
    ];
    entries.push(alice.write(t, announce(project, 1)).unwrap());
    let mut twin = announce(project, 1);
    if let Body::Announce(a) = &mut twin {
        a.author = "Someone Else <else@example.invalid>".into();
    }
    entries.push(alice.write(t, twin).unwrap());
    let forward = ProjectLog::from_entries(&project, &entries, Default::default());
    entries.reverse();
    let backward = ProjectLog::from_entries(&project, &entries, Default::default());
    let author = |log: &ProjectLog| {
        matrix(log, NOW, &MatrixOptions::default()).unwrap().rows[0]
            .author
            .to_string()
    };
    assert_eq!(author(&forward), author(&backward));
}

/// Issue 14: a cell whose builder wrote its result no longer shows that
/// builder's claim, however long the claim's lease; a later claim (a
/// forced rebuild) shows again.
#[test]
fn a_result_ends_its_builders_claim() {
    let mut w = World::new(BuilderPolicy::Open, 1);
    let mut bob = writer("bob");
    let p = w.project;
    w.owner(announce(p, 1));
    let claimed_by = |w: &World| {
        let log = w.log();
        let m = derive(&log, NOW);
        let column = m.platforms.iter().position(|p| p == LINUX).unwrap();
        m.rows[0].cells[column].claimed_by
    };
    let lease = NOW.plus_ms(60_000);
    w.by(&mut bob, claim(p, 1, LINUX, lease));
    assert_eq!(claimed_by(&w), Some((bob.author(), lease)));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    assert_eq!(claimed_by(&w), None, "the result ended the claim");
    let again = NOW.plus_ms(90_000);
    w.by(&mut bob, claim(p, 1, LINUX, again));
    assert_eq!(claimed_by(&w), Some((bob.author(), again)), "a new claim");
}

/// A result of `outcome` that kept `app.bin` with content `bytes`.
fn with_artifact(project: ProjectId, n: u8, outcome: Outcome, bytes: &[u8]) -> Body {
    let mut body = result(project, n, LINUX, outcome);
    if let Body::Result(r) = &mut body {
        r.artifacts = vec![buildmesh_protocol::Artifact {
            name: "app.bin".into(),
            hash: buildmesh_protocol::BlobHash::of(bytes),
            bytes: bytes.len() as u64,
        }];
    }
    body
}

/// The lying builder: with two builds per cell, a pass against a
/// failure is `disagree`; the third builder's failure decides.
#[test]
fn a_lying_builder_is_outvoted_after_the_cell_disagrees() {
    let (mut liar, mut honest, mut third) = (writer("bob"), writer("carol"), writer("dave"));
    let mut w = World::new(BuilderPolicy::Open, 2);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut liar, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending, "one pass of two");
    w.by(&mut honest, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(w.status(0, LINUX), CellStatus::Disagree);
    // Results that are not votes change nothing.
    w.by(&mut third, result(p, 1, LINUX, Outcome::Retry));
    assert_eq!(w.status(0, LINUX), CellStatus::Disagree);
    w.by(&mut third, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(w.status(0, LINUX), CellStatus::Failed);
    // A fourth dissenter makes it flaky: two on each side.
    let mut fourth = writer("erin");
    w.by(&mut fourth, result(p, 1, LINUX, Outcome::Warnings));
    assert_eq!(w.status(0, LINUX), CellStatus::Flaky);
}

#[test]
fn skipped_cells_are_settled_and_warnings_are_passes() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.by(&mut bob, result(p, 1, LINUX, Outcome::Skipped));
    w.by(&mut carol, result(p, 1, MAC, Outcome::Warnings));
    assert_eq!(w.status(0, LINUX), CellStatus::Skipped);
    assert_eq!(w.status(0, MAC), CellStatus::Passed);
    w.by(&mut bob, result(p, 1, MAC, Outcome::Cancelled));
    assert_eq!(w.status(0, MAC), CellStatus::Passed, "a cancel is no vote");
}

#[test]
fn a_project_that_requires_reproducible_artifacts_holds_back_differing_cells() {
    let (mut bob, mut carol, mut dave) = (writer("bob"), writer("carol"), writer("dave"));
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(announce(p, 2));
    w.by(&mut bob, with_artifact(p, 1, Outcome::Passed, b"same"));
    w.by(&mut bob, with_artifact(p, 2, Outcome::Passed, b"one"));
    w.by(&mut carol, with_artifact(p, 2, Outcome::Passed, b"two"));
    // Row 0 is the newest commit, 2; row 1 is commit 1.
    assert_eq!(w.status(1, LINUX), CellStatus::Passed, "not required yet");
    assert_eq!(w.status(0, LINUX), CellStatus::Passed);
    w.owner(Body::Setting(buildmesh_protocol::ProjectSetting {
        project: p,
        setting: buildmesh_protocol::Setting::Reproducible(true),
    }));
    assert_eq!(
        w.status(1, LINUX),
        CellStatus::Pending,
        "one copy proves nothing: a second builder is wanted"
    );
    assert_eq!(w.status(0, LINUX), CellStatus::Differs);
    w.by(&mut dave, with_artifact(p, 1, Outcome::Passed, b"same"));
    assert_eq!(w.status(1, LINUX), CellStatus::Passed);

    let log = w.log();
    let m = derive(&log, NOW);
    let checks = buildmesh_core::view::artifact_checks(&log, &m.rows[0].cells[0].results);
    assert_eq!(checks.len(), 1);
    assert_eq!(
        checks[0].agreement,
        buildmesh_core::view::Agreement::Differs
    );
    let builders: BTreeSet<_> = checks[0].builds.iter().map(|b| b.builder).collect();
    assert_eq!(
        builders,
        [bob.author(), carol.author()].into_iter().collect()
    );
}

/// The review's case: a passing builder that keeps no artifact must not
/// hold a reproducible project's cell back for ever: its missing copy is
/// a difference.
#[test]
fn a_passing_builder_without_the_artifact_makes_it_differ() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut w = World::new(BuilderPolicy::Open, 1);
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(Body::Setting(buildmesh_protocol::ProjectSetting {
        project: p,
        setting: buildmesh_protocol::Setting::Reproducible(true),
    }));
    w.by(&mut bob, with_artifact(p, 1, Outcome::Passed, b"app"));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending, "one copy so far");
    w.by(&mut carol, result(p, 1, LINUX, Outcome::Passed));
    assert_eq!(w.status(0, LINUX), CellStatus::Differs);
    let log = w.log();
    let m = derive(&log, NOW);
    let checks = buildmesh_core::view::artifact_checks(&log, &m.rows[0].cells[0].results);
    assert_eq!(checks[0].missing, [carol.author()]);
}

/// A revocation of a key that was never trusted (or was already dropped
/// keeping nothing) does not make its results count: it keeps less, never
/// more.
#[test]
fn revoking_an_untrusted_key_does_not_make_it_count() {
    let mut w = World::new(BuilderPolicy::Only(vec![writer("bob").author()]), 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    // A role anywhere lets her entries be stored: her own project.
    w.by(&mut m, declaration(&PLATFORMS, BuilderPolicy::Open, 1));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending, "untrusted");
    w.owner(revoke(p, &m));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending, "revoking grants?");
}

/// A second revocation keeps no more than the first (an owner who kept
/// nothing of a stolen key, then revokes it again without the flag).
#[test]
fn a_second_revocation_keeps_no_more_than_the_first() {
    let mut w = World::new(BuilderPolicy::Only(vec![writer("mallory").author()]), 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(revoke_keeping(p, &m, 0));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending);
    w.owner(revoke(p, &m));
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "second revoke grants?"
    );
}

/// In an open project, declaring again (say, to add a platform) does not
/// trust a revoked key again.
#[test]
fn an_open_project_declared_again_keeps_its_revocations() {
    let mut w = World::new(BuilderPolicy::Open, 1);
    let mut m = writer("mallory");
    let p = w.project;
    w.owner(announce(p, 1));
    w.owner(revoke_keeping(p, &m, 0));
    w.by(&mut m, result(p, 1, LINUX, Outcome::Failed));
    assert_eq!(w.status(0, LINUX), CellStatus::Pending);
    w.owner(declaration(&PLATFORMS, BuilderPolicy::Open, 1));
    assert_eq!(
        w.status(0, LINUX),
        CellStatus::Pending,
        "re-declared: trusted again?"
    );
}
