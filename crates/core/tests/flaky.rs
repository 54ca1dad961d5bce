//! Flaky tests from signed results: a test failing on one builder and
//! passing on another for one commit is flaky ("same commit"); a test that
//! fails on one commit between two it passed on is flaky ("flipped"); a
//! test that fails from some commit on is broken, not flaky; a failed cell
//! whose only failures are flaky tests is told apart.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, ChainWriter, MemStore};
use buildmesh_core::view::{
    Evidence, MatrixOptions, ProjectLog, flaky_tests, matrix, only_flaky_failures, proven_flaky,
};
use buildmesh_protocol::{Body, BuilderPolicy, Outcome, ProjectId, TestSummary, Timestamp};
use fixtures::{NOW, PLATFORMS, announce, declaration, result, writer};

struct Mesh {
    store: MemStore,
    t: u64,
    project: ProjectId,
    alice: ChainWriter,
    builders: [ChainWriter; 2],
}

impl Mesh {
    fn new() -> Mesh {
        let mut alice = writer("alice");
        let builders = [writer("bob"), writer("carol")];
        let project = ProjectId::derive(&alice.author(), "demo");
        let keys = builders.iter().map(|b| b.author()).collect();
        let mut mesh = Mesh {
            store: MemStore::default(),
            t: NOW.0 - 1_000_000,
            project,
            alice: writer("unused"),
            builders,
        };
        let body = declaration(&PLATFORMS, BuilderPolicy::Only(keys), 1);
        mesh.write_by(&mut alice, body);
        mesh.alice = alice;
        mesh
    }

    fn write_by(&mut self, who: &mut ChainWriter, body: Body) {
        self.t += 1;
        let entry = who.write(Timestamp(self.t), body).unwrap();
        let outcome = log::insert(&mut self.store, entry.clone()).unwrap();
        log::Aside::default()
            .settle(&mut self.store, NOW, [(entry, outcome)])
            .unwrap();
    }

    fn announce(&mut self, n: u8) {
        let mut alice = std::mem::replace(&mut self.alice, writer("unused"));
        self.write_by(&mut alice, announce(self.project, n));
        self.alice = alice;
    }

    /// Builder `b` reports commit `n` on linux, failing `failing`.
    fn report(&mut self, b: usize, n: u8, failing: &[&str]) {
        let outcome = if failing.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed
        };
        let Body::Result(result) = result(self.project, n, PLATFORMS[0], outcome) else {
            unreachable!("the fixture writes results");
        };
        let failed = failing.len() as u64;
        let tests = TestSummary {
            passed: 10 - failed,
            failed,
            skipped: 0,
            errored: 0,
            failing: failing.iter().map(|t| t.to_string()).collect(),
            source: "junit".into(),
            details: None,
        };
        let mut builder = std::mem::replace(&mut self.builders[b], writer("unused"));
        self.write_by(&mut builder, Body::of_result(result, Some(tests), None));
        self.builders[b] = builder;
    }

    fn log(&self) -> ProjectLog {
        ProjectLog::load(&self.store, &self.project, usize::MAX).unwrap()
    }
}

#[test]
fn a_test_failing_on_one_builder_and_passing_on_another_is_flaky() {
    let mut mesh = Mesh::new();
    for n in 0..6u8 {
        mesh.announce(n);
    }
    // Commit 0 and 1 pass everywhere.
    mesh.report(0, 0, &[]);
    mesh.report(0, 1, &[]);
    // Commit 2: bob sees net::timeout fail, carol does not.
    mesh.report(0, 2, &["net::timeout"]);
    mesh.report(1, 2, &[]);
    // Commit 3: parse::rejects_empty fails between two passes.
    mesh.report(0, 3, &["parse::rejects_empty"]);
    // From commit 4 on, io::reads_all fails for good: broken, not flaky.
    mesh.report(0, 4, &["io::reads_all"]);
    mesh.report(0, 5, &["io::reads_all"]);

    let log = mesh.log();
    let flaky = flaky_tests(&log, NOW, Some("main".into()), 50);
    let names: Vec<(&str, Evidence, usize)> = flaky
        .iter()
        .map(|t| (t.name, t.evidence, t.flaky_commits))
        .collect();
    assert_eq!(
        names,
        [
            ("net::timeout", Evidence::SameCommit, 1),
            ("parse::rejects_empty", Evidence::Flipped, 1),
        ]
    );
    let timeout = &flaky[0];
    assert_eq!(timeout.since.0, &fixtures::commit(2));
    assert_eq!(
        timeout.platforms.iter().copied().collect::<Vec<_>>(),
        [PLATFORMS[0]]
    );

    // Commit 2's cell failed (bob) but only by a test proven flaky there;
    // commit 3's flipped test is only suspected (a break fixed by the next
    // commit looks the same), and commit 4's failure is real.
    let numbers = proven_flaky(&log, &flaky);
    let options = MatrixOptions {
        branch: Some("main".into()),
        rows_max: None,
    };
    let m = matrix(&log, NOW, &options).unwrap();
    let cell_of = |n: u8| {
        let row = m
            .rows
            .iter()
            .find(|r| *r.commit == fixtures::commit(n))
            .unwrap();
        &row.cells[0]
    };
    assert!(only_flaky_failures(&log, cell_of(2), &numbers));
    assert!(!only_flaky_failures(&log, cell_of(3), &numbers));
    assert!(!only_flaky_failures(&log, cell_of(4), &numbers));
    assert!(
        !only_flaky_failures(&log, cell_of(1), &numbers),
        "a passed cell"
    );
}

/// A flipped test whose commit is built again and fails again is broken
/// there, not flaky: the flaky check settled it.
#[test]
fn a_second_build_that_fails_again_settles_a_flipped_test_as_broken() {
    let mut mesh = Mesh::new();
    for n in 0..3u8 {
        mesh.announce(n);
    }
    mesh.report(0, 0, &[]);
    mesh.report(0, 1, &["parse::rejects_empty"]);
    mesh.report(0, 2, &[]);
    let log = mesh.log();
    let flipped = flaky_tests(&log, NOW, None, 50);
    assert_eq!(flipped.len(), 1);
    assert_eq!(flipped[0].evidence, Evidence::Flipped);
    mesh.report(0, 1, &["parse::rejects_empty"]);
    assert!(flaky_tests(&mesh.log(), NOW, None, 50).is_empty());
}

#[test]
fn a_result_that_names_only_some_failures_proves_no_pass() {
    let mut mesh = Mesh::new();
    mesh.announce(0);
    mesh.report(0, 0, &["a::one"]);
    // Carol's result had 40 failures and names none (a report too big to
    // name them, say): it says nothing of a::one.
    let Body::Result(result) = result(mesh.project, 0, PLATFORMS[0], Outcome::Failed) else {
        unreachable!();
    };
    let tests = TestSummary {
        passed: 1,
        failed: 40,
        skipped: 0,
        errored: 0,
        failing: Vec::new(),
        source: "junit".into(),
        details: None,
    };
    let mut carol = std::mem::replace(&mut mesh.builders[1], writer("unused"));
    mesh.write_by(&mut carol, Body::of_result(result, Some(tests), None));
    let log = mesh.log();
    assert!(flaky_tests(&log, NOW, None, 50).is_empty());
}
