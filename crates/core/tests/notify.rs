//! The events of a branch read from a real signed log: a window of the
//! newest commits reads its oldest row against the one before, so moving
//! the window along never makes a commit that is still failing "broken"
//! again. (That every node derives the same transitions from the same
//! entries, in any order, is a law in laws.rs.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, MemStore};
use buildmesh_core::notify::{EventKind, recent_events};
use buildmesh_core::view::ProjectLog;
use buildmesh_protocol::{BuilderPolicy, Outcome, ProjectId};
use fixtures::{NOW, announce, declaration, result, writer};
use std::collections::BTreeSet;

/// Commits 1..=outcomes.len() on main, each built once on linux with the
/// given outcome.
fn log_of(outcomes: &[Outcome]) -> ProjectLog {
    let mut maintainer = writer("maintainer");
    let project = ProjectId::derive(&maintainer.author(), "demo");
    let mut bodies = vec![declaration(&["linux"], BuilderPolicy::Open, 1)];
    for (n, outcome) in outcomes.iter().enumerate() {
        let n = n as u8 + 1;
        bodies.push(announce(project, n));
        bodies.push(result(project, n, "linux", *outcome));
    }
    let entries: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(n, body)| maintainer.write(NOW.plus_ms(n as u64), body).unwrap())
        .collect();
    let mut store = MemStore::default();
    for entry in entries {
        log::insert(&mut store, entry).unwrap();
    }
    ProjectLog::load(&store, &project, usize::MAX).unwrap()
}

fn found(log: &ProjectLog, rows: usize) -> Vec<(u8, EventKind)> {
    recent_events(log, NOW.plus_ms(1_000), "main", rows, &BTreeSet::new())
        .into_iter()
        .filter(|e| e.kind != EventKind::Decided)
        .map(|e| (e.commit.as_bytes()[0], e.kind))
        .collect()
}

#[test]
fn a_window_reads_its_oldest_row_against_the_one_before() {
    use Outcome::{Failed as F, Passed as P};
    let log = log_of(&[P, F, F, F, P]);
    assert_eq!(
        found(&log, 10),
        [
            (2, EventKind::Broken),
            (3, EventKind::StillFailing),
            (4, EventKind::StillFailing),
            (5, EventKind::Fixed)
        ]
    );
    // Commit 3 is the window's history: not called broken for want of one.
    assert_eq!(
        found(&log, 2),
        [(4, EventKind::StillFailing), (5, EventKind::Fixed)]
    );
}
