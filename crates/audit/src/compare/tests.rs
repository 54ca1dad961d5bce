//! The comparison rules, on hand-made matrices in the node's JSON shape.
#![allow(clippy::unwrap_used)]

use super::*;
use buildmesh_protocol::PublicKey;
use serde_json::json;

const PROJECT: &str = "0505050505050505050505050505050505050505050505050505050505050505";
const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";
const R1: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
const R2: &str = "bb00000000000000000000000000000000000000000000000000000000000000";
const R3: &str = "cc00000000000000000000000000000000000000000000000000000000000000";

/// Newest commit C2: linux building under a lease (pending once it
/// lapses), mac failed by R2; C1: linux passed by R1, mac pending.
fn matrix(c2_linux: &str) -> Value {
    json!({
        "project": PROJECT, "name": "hello", "owner": "07",
        "repository": "https://example.org/hello.git",
        "platforms": ["linux", "mac"], "branches": ["main"],
        "rows": [
            {"commit": C2, "branches": ["main"], "title": "second", "author": "Ada",
             "announced_at": 2, "cells": [
                {"status": c2_linux, "results": [], "claimed_by": null},
                {"status": "failed", "claimed_by": null,
                 "results": [{"id": R2, "builder": "b2", "outcome": "failed"}]},
             ]},
            {"commit": C1, "branches": ["main"], "title": "first", "author": "Ada",
             "announced_at": 1, "cells": [
                {"status": "passed", "claimed_by": null,
                 "results": [{"id": R1, "builder": "b1", "outcome": "passed"}]},
                {"status": "pending", "results": [], "claimed_by": null},
             ]},
        ],
        "broken": null,
    })
}

fn derived() -> DerivedMatrix {
    DerivedMatrix {
        project: PROJECT.parse().unwrap(),
        name: "hello".into(),
        owner: PublicKey([7; 32]),
        at: matrix("building"),
        live: matrix("building"),
        lapsed: matrix("pending"),
    }
}

fn holds_r3(id: &str) -> bool {
    id == R3
}

fn compare(served: &Value) -> Vec<Finding> {
    compare_matrix(served, &derived(), &holds_r3)
}

fn cell(commit: &str, platform: &str) -> At {
    At::project(PROJECT, "hello").row(commit).cell(platform)
}

#[test]
fn the_same_matrix_has_no_finding() {
    assert_eq!(compare(&matrix("building")), vec![]);
}

#[test]
fn a_lease_may_be_live_or_lapsed() {
    assert_eq!(compare(&matrix("pending")), vec![]);
    let findings = compare(&matrix("passed"));
    assert_eq!(
        findings,
        vec![Finding::CellStatus {
            at: cell(C2, "linux"),
            served: json!("passed"),
            derived: vec![json!("building"), json!("pending")],
        }]
    );
    assert_eq!(
        findings[0].to_string(),
        format!(
            "project hello ({}) commit {} × linux: served as passed; its entries give building or pending",
            &PROJECT[..12],
            &C2[..10]
        )
    );
}

#[test]
fn a_failed_cell_served_as_passed_is_named() {
    let mut served = matrix("building");
    served["rows"][0]["cells"][1]["status"] = json!("passed");
    assert_eq!(
        compare(&served),
        vec![Finding::CellStatus {
            at: cell(C2, "mac"),
            served: json!("passed"),
            derived: vec![json!("failed")],
        }]
    );
}

#[test]
fn a_status_the_verifier_has_never_heard_of_is_compared_as_text() {
    // Statuses are the node's strings on both sides: a new one (the core
    // may add some) matches itself and nothing else.
    let mut both = derived();
    both.live["rows"][1]["cells"][1]["status"] = json!("flaky");
    both.lapsed["rows"][1]["cells"][1]["status"] = json!("flaky");
    let mut served = both.live.clone();
    assert_eq!(compare_matrix(&served, &both, &holds_r3), vec![]);
    served["rows"][1]["cells"][1]["status"] = json!("passed");
    assert_eq!(compare_matrix(&served, &both, &holds_r3).len(), 1);
}

#[test]
fn results_made_up_not_counted_dropped_or_misstated_are_told_apart() {
    let mut served = matrix("building");
    // C1 × linux: R1 dropped, R3 (in the log, not counted here) shown.
    served["rows"][1]["cells"][0]["results"] =
        json!([{"id": R3, "builder": "b3", "outcome": "passed"}]);
    // C1 × mac: a result that is nowhere in the log.
    served["rows"][1]["cells"][1]["results"] =
        json!([{"id": R2.replace("bb", "dd"), "builder": "b9", "outcome": "passed"}]);
    // C2 × mac: R2's outcome misstated.
    served["rows"][0]["cells"][1]["results"][0]["outcome"] = json!("passed");
    let findings = compare(&served);
    assert!(findings.contains(&Finding::ResultDropped {
        at: cell(C1, "linux"),
        id: R1.into(),
        builder: json!("b1"),
        outcome: json!("passed"),
    }));
    assert!(findings.contains(&Finding::ResultNotCounted {
        at: cell(C1, "linux"),
        id: R3.into(),
    }));
    assert!(findings.contains(&Finding::ResultNotInLog {
        at: cell(C1, "mac"),
        id: R2.replace("bb", "dd"),
    }));
    assert!(findings.contains(&Finding::Differs {
        at: cell(C2, "mac"),
        field: format!("results[{}].outcome", &R2[..12]),
        served: json!("passed"),
        derived: vec![json!("failed")],
    }));
    assert_eq!(findings.len(), 4, "{findings:#?}");
}

#[test]
fn rows_left_out_made_up_or_reordered_are_found() {
    let mut served = matrix("building");
    let rows = served["rows"].as_array_mut().unwrap();
    let first = rows.remove(1);
    assert_eq!(
        compare(&served),
        vec![Finding::RowNotServed {
            at: At::project(PROJECT, "hello").row(C1)
        }]
    );
    let rows = served["rows"].as_array_mut().unwrap();
    rows.insert(0, first);
    let findings = compare(&served);
    assert!(
        matches!(&findings[..], [Finding::RowsOutOfOrder { served, .. }] if served[0] == C1),
        "{findings:#?}"
    );
    served["rows"][0]["commit"] = json!("33");
    let findings = compare(&served);
    assert!(findings.contains(&Finding::RowNotInLog {
        at: At::project(PROJECT, "hello").row("33")
    }));
    assert!(findings.contains(&Finding::RowNotServed {
        at: At::project(PROJECT, "hello").row(C1)
    }));
}

#[test]
fn project_and_row_fields_are_compared_but_unknown_served_fields_are_not() {
    let mut served = matrix("building");
    served["repository"] = json!("https://evil.example/hello.git");
    served["rows"][0]["title"] = json!("another title");
    served["a_field_of_a_newer_node"] = json!(1);
    served["rows"][0]["cells"][0]["claimed_by"] = json!({"builder": "b7", "lease_expires": 9});
    let fields: Vec<String> = compare(&served)
        .into_iter()
        .map(|f| match f {
            Finding::Differs { field, .. } => field,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(fields, ["repository", "title"]);
}

#[test]
fn a_matrix_without_rows_is_unreadable() {
    let findings = compare(&json!({"error": "no"}));
    assert!(matches!(&findings[..], [Finding::MatrixUnreadable { .. }]));
}

#[test]
fn projects_listed_and_declared_are_compared_both_ways() {
    let mut derived_projects = BTreeMap::new();
    derived_projects.insert(PROJECT.parse().unwrap(), derived());
    let other = "06".repeat(32);
    let served = vec![ServedProject {
        project: other.clone(),
        name: "made-up".into(),
    }];
    let findings = compare_projects(&served, &derived_projects, None);
    assert_eq!(
        findings,
        vec![
            Finding::ProjectNotInLog {
                at: At::project(&other, "made-up")
            },
            Finding::ProjectNotServed {
                at: At::project(PROJECT, "hello")
            },
        ]
    );
    let only: ProjectId = PROJECT.parse().unwrap();
    assert_eq!(
        compare_projects(&served, &derived_projects, Some(&only)),
        vec![Finding::ProjectNotServed {
            at: At::project(PROJECT, "hello")
        }]
    );
    let listed = vec![ServedProject {
        project: PROJECT.into(),
        name: "hello".into(),
    }];
    assert_eq!(compare_projects(&listed, &derived_projects, None), vec![]);
}

#[test]
fn a_project_list_is_read_from_the_nodes_answer() {
    let answer = json!({"projects": [{"project": PROJECT, "name": "hello", "owner": "07"}]});
    assert_eq!(
        ServedProject::list(&answer).unwrap(),
        vec![ServedProject {
            project: PROJECT.into(),
            name: "hello".into()
        }]
    );
    assert!(ServedProject::list(&json!({"projects": [{"name": "x"}]})).is_err());
    assert!(ServedProject::list(&json!([])).is_err());
}
