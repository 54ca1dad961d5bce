//! A metric over time, as a pure function of entries: the values results
//! state, per platform, oldest commit first, from results that count.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod fixtures;

use buildmesh_core::log::{self, ChainWriter, MemStore};
use buildmesh_core::notify::{EventKind, regressions};
use buildmesh_core::view::{
    DURATION, ProjectLog, SeriesOptions, metric_names, parse_threshold, series, series_table,
};
use buildmesh_protocol::{
    BlobHash, Body, BuilderPolicy, Outcome, ProjectId, TestSummary, Timestamp,
};
use fixtures::{NOW, PLATFORMS, announce, declaration, result, writer};

fn write(store: &mut MemStore, who: &mut ChainWriter, t: &mut u64, body: Body) {
    *t += 1;
    let entry = who.write(Timestamp(*t), body).unwrap();
    let outcome = log::insert(store, entry.clone()).unwrap();
    log::Aside::default()
        .settle(store, NOW, [(entry, outcome)])
        .unwrap();
}

fn with_metric(project: ProjectId, n: u8, platform: &str, value: f64) -> Body {
    let mut body = result(project, n, platform, Outcome::Passed);
    if let Body::Result(r) = &mut body {
        r.metrics.insert("coverage".into(), value);
    }
    body
}

/// Twenty commits with known coverage on one platform and another value
/// on the other; a stranger's result for commit 5 does not count.
#[test]
fn a_series_is_each_commits_value_oldest_first_from_counting_results() {
    let mut store = MemStore::default();
    let (mut alice, mut bob, mut eve) = (writer("alice"), writer("bob"), writer("eve"));
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut t = NOW.0 - 100_000;
    let only_bob = BuilderPolicy::Only(vec![bob.author()]);
    write(
        &mut store,
        &mut alice,
        &mut t,
        declaration(&PLATFORMS, only_bob, 1),
    );
    for n in 0..20u8 {
        write(&mut store, &mut alice, &mut t, announce(project, n));
        let value = f64::from(n) * 1.5;
        write(
            &mut store,
            &mut bob,
            &mut t,
            with_metric(project, n, PLATFORMS[0], value),
        );
        write(
            &mut store,
            &mut bob,
            &mut t,
            with_metric(project, n, PLATFORMS[1], 99.0),
        );
    }
    write(
        &mut store,
        &mut eve,
        &mut t,
        with_metric(project, 5, PLATFORMS[0], -1.0),
    );
    let log = ProjectLog::load(&store, &project, usize::MAX).unwrap();
    let options = |metric: &str, platform: &str, rows_max| SeriesOptions {
        branch: Some("main".into()),
        platform: platform.into(),
        metric: metric.into(),
        rows_max,
    };
    let linux = series(&log, NOW, &options("coverage", PLATFORMS[0], 50));
    let values: Vec<f64> = linux.iter().map(|p| p.value).collect();
    let expected: Vec<f64> = (0..20u8).map(|n| f64::from(n) * 1.5).collect();
    assert_eq!(values, expected);
    assert_eq!(linux[0].commit, &fixtures::commit(0));
    assert_eq!(linux[19].title, "commit 19");
    let newest = series(&log, NOW, &options("coverage", PLATFORMS[0], 3));
    assert_eq!(
        newest.iter().map(|p| p.value).collect::<Vec<_>>(),
        [25.5, 27.0, 28.5]
    );
    let mac = series(&log, NOW, &options("coverage", PLATFORMS[1], 50));
    assert!(mac.iter().all(|p| p.value == 99.0) && mac.len() == 20);
    let durations = series(&log, NOW, &options(DURATION, PLATFORMS[0], 50));
    assert_eq!(durations.len(), 20);
    assert!(durations.iter().all(|p| p.value == 1.2), "{durations:?}");
    assert!(series(&log, NOW, &options("nope", PLATFORMS[0], 50)).is_empty());
    assert!(series(&log, NOW, &options("coverage", "plan9", 50)).is_empty());
    assert_eq!(
        metric_names(&log),
        ["coverage", DURATION, "step_seconds.test", "tests"]
    );
    // The table a page draws holds the same series, each at once.
    let table = series_table(&log, NOW, Some("main".into()), 50);
    for ((metric, platform), points) in &table {
        assert_eq!(points, &series(&log, NOW, &options(metric, platform, 50)));
    }
    assert_eq!(table.len(), 4 * PLATFORMS.len());
}

fn tested(
    project: ProjectId,
    n: u8,
    platform: &str,
    failed: u64,
    attestation: Option<BlobHash>,
) -> Body {
    let Body::Result(result) = result(project, n, platform, Outcome::Passed) else {
        unreachable!("the fixture writes results");
    };
    let failing = (0..failed).map(|k| format!("tests::case_{k}")).collect();
    Body::of_result(
        result,
        Some(TestSummary {
            passed: 40 - failed,
            failed,
            skipped: 2,
            errored: 0,
            failing,
            source: "junit".into(),
            details: None,
        }),
        attestation,
    )
}

/// A result with tests is a result (it fills its cell) and its counts are
/// metrics; its failing tests are kept by name.
#[test]
fn a_tested_results_counts_are_metrics_and_its_failing_tests_are_kept() {
    tested_results_counts_are_metrics(None);
}

/// So are an attested result's (`Body::Attested`, which builders write
/// with their attestations' hash).
#[test]
fn an_attested_results_counts_are_metrics_and_its_failing_tests_are_kept() {
    tested_results_counts_are_metrics(Some(BlobHash::of(b"attestation")));
}

fn tested_results_counts_are_metrics(attestation: Option<BlobHash>) {
    let mut store = MemStore::default();
    let (mut alice, mut bob) = (writer("alice"), writer("bob"));
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut t = NOW.0 - 100_000;
    let only_bob = BuilderPolicy::Only(vec![bob.author()]);
    write(
        &mut store,
        &mut alice,
        &mut t,
        declaration(&PLATFORMS, only_bob, 1),
    );
    write(&mut store, &mut alice, &mut t, announce(project, 0));
    write(
        &mut store,
        &mut bob,
        &mut t,
        tested(project, 0, PLATFORMS[0], 2, attestation),
    );
    let log = ProjectLog::load(&store, &project, usize::MAX).unwrap();
    let table = series_table(&log, NOW, Some("main".into()), 10);
    let value = |metric: &str| table[&(metric, PLATFORMS[0])][0].value;
    assert_eq!(value("tests_failed"), 2.0);
    assert_eq!(value("tests_passed"), 38.0);
    assert_eq!(value("tests_skipped"), 2.0);
    assert_eq!(value("tests_errored"), 0.0);
    let failing = log.failing_tests.values().next().unwrap();
    assert!(failing.complete);
    let names: Vec<&str> = failing
        .names
        .iter()
        .map(|n| log.test_names.label(*n).unwrap())
        .collect();
    assert_eq!(names, ["tests::case_0", "tests::case_1"]);
}

/// Coverage 80 for ten commits, then 78.5 (a drop of 1.5) and 78 after:
/// with "coverage drop 1" that is exactly one regression, on the commit
/// that dropped, however often the events are derived as commits come.
#[test]
fn a_threshold_crossing_is_exactly_one_event() {
    let mut store = MemStore::default();
    let (mut alice, mut bob) = (writer("alice"), writer("bob"));
    let project = ProjectId::derive(&alice.author(), "demo");
    let mut t = NOW.0 - 100_000;
    let only_bob = BuilderPolicy::Only(vec![bob.author()]);
    write(
        &mut store,
        &mut alice,
        &mut t,
        declaration(&PLATFORMS, only_bob, 1),
    );
    let drop = parse_threshold("coverage drop 1").unwrap();
    let above = parse_threshold("tests above 100").unwrap();
    let mut found = Vec::new();
    for n in 0..16u8 {
        write(&mut store, &mut alice, &mut t, announce(project, n));
        let value = match n {
            0..10 => 80.0,
            10 => 78.5,
            _ => 78.0,
        };
        for platform in PLATFORMS {
            write(
                &mut store,
                &mut bob,
                &mut t,
                with_metric(project, n, platform, value),
            );
        }
        let log = ProjectLog::load(&store, &project, usize::MAX).unwrap();
        let thresholds = [drop.clone(), above.clone()];
        for event in regressions(&log, NOW, "main", 5, &thresholds) {
            assert_eq!(event.kind, EventKind::Regression);
            assert!(event.row_decided);
            if !found.contains(&event) {
                found.push(event);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:#?}");
    let event = &found[0];
    assert_eq!(event.commit, fixtures::commit(10));
    assert_eq!(event.platforms, PLATFORMS.map(String::from));
    assert_eq!(event.crossings.len(), 2);
    assert!(event.crossings.iter().all(|c| c.metric == "coverage"
        && c.threshold == "coverage drop 1"
        && c.previous == 80.0
        && c.value == 78.5));
}
