//! What the log asks of one node: the watches a poller reads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, MemStore};
use buildmesh_core::view::{Acceptance, LiveLeases, Verdict, work};
use buildmesh_protocol::{
    Body, BuilderPolicy, CommitId, ForceBuild, ForceTarget, Outcome, ProjectId, PublicKey,
    Timestamp,
};
use fixtures::{announce, commit, declaration, result, writer};
use std::collections::BTreeSet;

#[test]
fn a_quiet_branch_head_stays_known_when_busy_branches_push_it_out() {
    let mut maintainer = writer("maintainer");
    let owner: PublicKey = maintainer.author();
    let project = ProjectId::derive(&owner, "demo");
    let mut body = declaration(&["linux"], BuilderPolicy::Open, 1);
    if let Body::Project(p) = &mut body {
        p.branches = vec!["main".into(), "quiet".into()];
    }
    let mut store = MemStore::default();
    let mut at = 1;
    let mut write = |store: &mut MemStore, body: Body| {
        at += 1;
        log::insert(store, maintainer.write(Timestamp(at), body).unwrap()).unwrap();
    };
    write(&mut store, body);
    // The quiet branch's head was announced first...
    let mut quiet = announce(project, 200);
    if let Body::Announce(a) = &mut quiet {
        a.branch = "quiet".into();
    }
    write(&mut store, quiet);
    // ...then 60 commits on main, more than the 50 newest a view keeps.
    for n in 0..60 {
        write(&mut store, announce(project, n));
    }
    let platforms: BTreeSet<String> = ["linux".to_string()].into();
    let found = work(
        &store,
        &owner,
        &platforms,
        &Acceptance::only(project),
        50,
        &LiveLeases::default(),
    )
    .unwrap();
    let watch = &found.watches[0];
    assert!(
        watch.announced.contains(&commit(200)),
        "the quiet head is known"
    );
    assert!(watch.announced.contains(&commit(59)));
    assert_eq!(watch.branches, ["main", "quiet"]);
}

/// Cells are wanted in the order their commits were announced, oldest
/// first (not by commit id), so a node with a backlog builds the commit
/// that waited longest first.
#[test]
fn cells_are_wanted_oldest_announcement_first() {
    let mut maintainer = writer("maintainer");
    let owner: PublicKey = maintainer.author();
    let project = ProjectId::derive(&owner, "demo");
    let mut store = MemStore::default();
    let declaration = declaration(&["linux"], BuilderPolicy::Only(vec![owner]), 1);
    let bodies = std::iter::once(declaration).chain([5, 3, 9, 1].map(|n| announce(project, n)));
    for (at, body) in bodies.enumerate() {
        let entry = maintainer.write(Timestamp(at as u64 + 1), body).unwrap();
        log::insert(&mut store, entry).unwrap();
    }
    let linux: BTreeSet<String> = ["linux".to_string()].into();
    let accept = Acceptance::only(project);
    let found = work(&store, &owner, &linux, &accept, 50, &LiveLeases::default()).unwrap();
    let order: Vec<CommitId> = found.wanted.iter().map(|c| c.commit.clone()).collect();
    assert_eq!(order, [5, 3, 9, 1].map(commit));
}

#[test]
fn the_queue_counts_cells_still_lacking_results() {
    let mut maintainer = writer("maintainer");
    let mut builder = writer("builder");
    let owner: PublicKey = maintainer.author();
    let project = ProjectId::derive(&owner, "demo");
    let mut store = MemStore::default();
    let put = |store: &mut MemStore, writer: &mut buildmesh_core::log::ChainWriter, at, body| {
        log::insert(store, writer.write(Timestamp(at), body).unwrap()).unwrap();
    };
    put(
        &mut store,
        &mut maintainer,
        1,
        declaration(&["linux", "mac"], BuilderPolicy::Open, 1),
    );
    put(&mut store, &mut maintainer, 2, announce(project, 1));
    let platforms: BTreeSet<String> = ["linux".to_string(), "mac".to_string()].into();
    let accept = Acceptance::only(project);
    let queue = |store: &MemStore| {
        work(
            store,
            &owner,
            &platforms,
            &accept,
            50,
            &LiveLeases::default(),
        )
        .unwrap()
        .waiting()
    };
    assert_eq!(queue(&store), 2, "both platforms wait");
    let lease = Timestamp(1_000_000);
    put(
        &mut store,
        &mut builder,
        3,
        fixtures::claim(project, 1, "linux", lease),
    );
    assert_eq!(queue(&store), 2, "a claim is not a result");
    put(
        &mut store,
        &mut builder,
        4,
        fixtures::result(project, 1, "linux", buildmesh_protocol::Outcome::Passed),
    );
    assert_eq!(queue(&store), 1, "linux has its result");
}

/// Issue 12: a donor builds only what its operator accepted.
#[test]
fn a_project_not_accepted_gets_no_watch_and_no_cell_but_is_named_once() {
    let mut stranger = writer("stranger");
    let owner: PublicKey = stranger.author();
    let project = ProjectId::derive(&owner, "demo");
    let mut store = MemStore::default();
    let mut at = 0;
    let mut write = |store: &mut MemStore, body: Body| {
        at += 1;
        log::insert(store, stranger.write(Timestamp(at), body).unwrap()).unwrap();
    };
    write(&mut store, declaration(&["linux"], BuilderPolicy::Open, 1));
    write(&mut store, announce(project, 1));
    // Announced by the stranger, who lists the node as announcer via Open.
    let me = owner;
    let linux: BTreeSet<String> = ["linux".to_string()].into();
    let found = work(
        &store,
        &me,
        &linux,
        &Acceptance::default(),
        50,
        &LiveLeases::default(),
    )
    .unwrap();
    assert!(found.watches.is_empty() && found.wanted.is_empty());
    assert_eq!(found.declined.len(), 1);
    assert_eq!(found.declined[0].project, project);
    assert_eq!(found.declined[0].name, "demo");
    assert_eq!(found.declined[0].verdict, Verdict::NotAccepted);
    // Another platform's node is not bothered with it.
    let mac: BTreeSet<String> = ["mac".to_string()].into();
    assert!(
        work(
            &store,
            &me,
            &mac,
            &Acceptance::default(),
            50,
            &LiveLeases::default()
        )
        .unwrap()
        .declined
        .is_empty()
    );
    // Accepting the maintainer accepts the project.
    let mut by_maintainer = Acceptance::default();
    by_maintainer.maintainers.insert(owner);
    let found = work(
        &store,
        &me,
        &linux,
        &by_maintainer,
        50,
        &LiveLeases::default(),
    )
    .unwrap();
    assert_eq!(found.wanted.len(), 1);
    assert_eq!(
        found.watches.len(),
        1,
        "the maintainer announces, so it watches"
    );
    assert!(found.declined.is_empty());
    // Without a sandbox, only the node's own maintainers' projects build.
    by_maintainer.unsandboxed_only = Some(BTreeSet::new());
    let found = work(
        &store,
        &me,
        &linux,
        &by_maintainer,
        50,
        &LiveLeases::default(),
    )
    .unwrap();
    assert!(found.wanted.is_empty());
    assert_eq!(found.declined[0].verdict, Verdict::NeedsSandbox);
}

/// Issue 14 item 7: a force on a commit older than the newest
/// `commits_max` announcements is answered by the results written after
/// it, so it is built once per force, not after every restart.
/// A node whose own key is proven to have signed two histories builds
/// nothing: every log refuses what it signs past the fork. It says why
/// (the operator must make a new key) instead of bidding for nothing.
#[test]
fn a_node_whose_key_forked_builds_nothing_and_says_why() {
    let mut maintainer = writer("maintainer");
    let (mut me, mut my_copy) = (writer("builder"), writer("builder"));
    let project = ProjectId::derive(&maintainer.author(), "demo");
    let mut store = MemStore::default();
    let trusted = BuilderPolicy::Only(vec![me.author()]);
    let mut declared = declaration(&["linux"], trusted, 1);
    if let Body::Project(p) = &mut declared {
        p.announcers = vec![me.author()];
    }
    for (at, body) in [(1, declared), (2, announce(project, 1))] {
        log::insert(&mut store, maintainer.write(Timestamp(at), body).unwrap()).unwrap();
    }
    let linux: BTreeSet<String> = ["linux".to_string()].into();
    let key = me.author();
    let found = |store: &MemStore| {
        work(
            store,
            &key,
            &linux,
            &Acceptance::only(project),
            50,
            &LiveLeases::default(),
        )
        .unwrap()
    };
    let before = found(&store);
    assert_eq!(before.wanted.len(), 1, "trusted, in good standing");
    assert_eq!(before.watches.len(), 1, "and its announcer");
    // The same key from a copied data dir: two entries at seq 1.
    log::insert(
        &mut store,
        me.write(Timestamp(3), result(project, 1, "linux", Outcome::Failed))
            .unwrap(),
    )
    .unwrap();
    log::insert(
        &mut store,
        my_copy
            .write(Timestamp(4), result(project, 1, "linux", Outcome::Passed))
            .unwrap(),
    )
    .unwrap();
    let after = found(&store);
    assert!(after.wanted.is_empty(), "{:?}", after.wanted);
    assert_eq!(after.declined.len(), 1);
    assert_eq!(after.declined[0].verdict, Verdict::KeyForked);
    assert!(after.watches.is_empty(), "announces nothing either");
}

#[test]
fn a_force_on_an_old_commit_is_settled_by_its_result() {
    let mut maintainer = writer("maintainer");
    let mut builder = writer("builder");
    let owner: PublicKey = maintainer.author();
    let project = ProjectId::derive(&owner, "demo");
    let mut store = MemStore::default();
    let mut at = 0;
    let mut put = |store: &mut MemStore, writer: &mut log::ChainWriter, body: Body| {
        at += 1;
        log::insert(store, writer.write(Timestamp(at), body).unwrap()).unwrap();
    };
    put(
        &mut store,
        &mut maintainer,
        declaration(&["linux"], BuilderPolicy::Open, 1),
    );
    for n in 0..60 {
        put(&mut store, &mut maintainer, announce(project, n));
        put(
            &mut store,
            &mut builder,
            fixtures::result(project, n, "linux", Outcome::Passed),
        );
    }
    let linux: BTreeSet<String> = ["linux".to_string()].into();
    let accept = Acceptance::only(project);
    let old = commit(2);
    let wants_old = |store: &MemStore| {
        let found = work(store, &owner, &linux, &accept, 50, &LiveLeases::default()).unwrap();
        let cell = found.wanted.iter().find(|c| c.commit == old).cloned();
        (cell.is_some(), found.waiting())
    };
    assert_eq!(wants_old(&store), (false, 0), "outside the window, built");

    put(&mut store, &mut maintainer, force(project, 2));
    assert_eq!(wants_old(&store), (true, 1), "forced: wanted again");
    put(
        &mut store,
        &mut builder,
        fixtures::result(project, 2, "linux", Outcome::Failed),
    );
    assert_eq!(wants_old(&store), (true, 0), "the new result settles it");

    put(&mut store, &mut maintainer, force(project, 2));
    assert_eq!(wants_old(&store), (true, 1), "a second force, one more");
}

fn force(project: ProjectId, n: u8) -> Body {
    Body::Force(ForceBuild {
        project,
        target: ForceTarget::Commit(commit(n)),
        platforms: Vec::new(),
        reason: "again".into(),
    })
}

/// One linux project of `k` builds per cell, open to every builder, with
/// commit 1 announced; the quorum tests add results to it.
struct Quorum {
    store: MemStore,
    maintainer: buildmesh_core::log::ChainWriter,
    owner: PublicKey,
    project: ProjectId,
    at: u64,
}

impl Quorum {
    fn new(k: u8) -> Quorum {
        let maintainer = writer("maintainer");
        let owner = maintainer.author();
        let mut quorum = Quorum {
            store: MemStore::default(),
            maintainer,
            owner,
            project: ProjectId::derive(&owner, "demo"),
            at: 0,
        };
        quorum.owner_writes(declaration(&["linux"], BuilderPolicy::Open, k));
        quorum.owner_writes(announce(quorum.project, 1));
        quorum
    }

    fn owner_writes(&mut self, body: Body) {
        self.at += 1;
        let entry = self.maintainer.write(Timestamp(self.at), body).unwrap();
        log::insert(&mut self.store, entry).unwrap();
    }

    fn result(&mut self, builder: &mut buildmesh_core::log::ChainWriter, outcome: Outcome) {
        self.at += 1;
        let body = fixtures::result(self.project, 1, "linux", outcome);
        let entry = builder.write(Timestamp(self.at), body).unwrap();
        log::insert(&mut self.store, entry).unwrap();
    }

    fn work(&self) -> buildmesh_core::view::Work {
        let linux: BTreeSet<String> = ["linux".to_string()].into();
        let accept = Acceptance::only(self.project);
        work(
            &self.store,
            &self.owner,
            &linux,
            &accept,
            50,
            &LiveLeases::default(),
        )
        .unwrap()
    }
}

/// A cell whose builders disagree wants one more builder than have built
/// it, so the claimer asks a builder that has not; a retry is no build,
/// so the cell goes on wanting one from anyone, its builder included.
#[test]
fn a_disagreeing_cell_wants_one_more_builder_and_a_retry_is_no_build() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut q = Quorum::new(2);
    assert_eq!(q.work().wanted[0].builds, 2);
    q.result(&mut bob, Outcome::Retry);
    let work = q.work();
    assert_eq!(work.wanted[0].builds, 2);
    assert_eq!(work.waiting(), 1, "a retry does not finish the cell");
    assert!(
        work.events.iter().all(|e| e.stopped),
        "it only ends bob's claim"
    );
    q.result(&mut bob, Outcome::Passed);
    q.result(&mut carol, Outcome::Failed);
    let work = q.work();
    assert_eq!(work.wanted[0].builds, 3, "one more builder decides");
    assert_eq!(work.waiting(), 1);
    assert_eq!(work.events.len(), 3, "the retry, as the end of bob's claim");
    assert_eq!(work.events.iter().filter(|e| e.stopped).count(), 1);
}

/// The review's case: a pass, a force, then a failure. The matrix shows
/// the dissent, so the cell must want a build from someone who has not
/// built it since the force, or it stays `disagree` for ever.
#[test]
fn a_dissent_across_a_force_still_wants_a_deciding_build() {
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let mut q = Quorum::new(1);
    q.result(&mut bob, Outcome::Passed);
    q.owner_writes(force(q.project, 1));
    q.result(&mut carol, Outcome::Failed);
    let work = q.work();
    assert_eq!(work.wanted[0].builds, 2);
    assert_eq!(work.waiting(), 1, "a build since the force is still wanted");
}

/// The simulator's seed 1 (with one more draw in `forks_request`), whose
/// builds pass or fail at random: with one build per cell, bob's pass and
/// carol's failure make the cell `disagree`, and a split mesh asked one
/// tiebreaker on each side, dave and erin, who disagreed too. Two on each
/// side is `flaky`, the right verdict for a commit whose outcome depends
/// on the build: settled, so no builder is asked again.
#[test]
fn tiebreakers_on_both_sides_of_a_split_that_disagree_settle_the_cell_flaky() {
    use buildmesh_core::view::{CellStatus, MatrixOptions, ProjectLog, matrix};
    let (mut bob, mut carol) = (writer("bob"), writer("carol"));
    let (mut dave, mut erin) = (writer("dave"), writer("erin"));
    let mut q = Quorum::new(1);
    q.result(&mut bob, Outcome::Passed);
    q.result(&mut carol, Outcome::Failed);
    assert_eq!(q.work().wanted[0].builds, 3, "one tiebreaker wanted");
    q.result(&mut dave, Outcome::Passed);
    q.result(&mut erin, Outcome::Failed);
    let work = q.work();
    assert_eq!(work.waiting(), 0, "flaky wants no more builds");
    let log = ProjectLog::load(&q.store, &q.project, 50).unwrap();
    let shown = matrix(&log, Timestamp(q.at), &MatrixOptions::default()).unwrap();
    assert_eq!(shown.rows[0].cells[0].status, CellStatus::Flaky);
}
