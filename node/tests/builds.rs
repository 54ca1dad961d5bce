//! Builds on real `buildmesh node` processes and real git repositories made
//! in temp dirs: claiming, running, results, and a builder's death.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};
use support::{Node, Repo, builder, declare, http};

fn matrix(node: &Node, project: &str) -> serde_json::Value {
    let (code, body) = http(
        &node.http,
        "GET",
        &format!("/api/v1/projects/{project}/matrix"),
        "",
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// The cell of `commit` × `platform`, once the matrix has it.
fn cell(node: &Node, project: &str, commit: &str, platform: &str) -> Option<serde_json::Value> {
    let matrix = matrix(node, project);
    let column = matrix["platforms"]
        .as_array()?
        .iter()
        .position(|p| p == platform)?;
    let row = matrix["rows"]
        .as_array()?
        .iter()
        .find(|r| r["commit"] == commit)?;
    Some(row["cells"][column].clone())
}

/// Waits until `done` holds of the cell.
fn wait_cell(
    node: &Node,
    project: &str,
    commit: &str,
    platform: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let found = cell(node, project, commit, platform);
        if let Some(cell) = found.as_ref().filter(|c| done(c)) {
            return cell.clone();
        }
        assert!(
            Instant::now() < deadline,
            "cell {commit} × {platform} never got there: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn finished(cell: &serde_json::Value) -> bool {
    ["passed", "failed", "error"].contains(&cell["status"].as_str().unwrap_or(""))
}

/// The result entry behind a finished cell, decoded.
fn result_of(node: &Node, cell: &serde_json::Value) -> serde_json::Value {
    let id = cell["results"][0]["id"].as_str().unwrap();
    let (code, entry) = http(&node.http, "GET", &format!("/api/v1/entries/{id}"), "");
    assert_eq!(code, 200, "{entry}");
    entry["body"]["Result"].clone()
}

const PASSING: &str = r#"
[[step]]
name = "hello"
command = "echo hello from buildmesh"
"#;

#[test]
fn three_nodes_build_each_platform_of_a_commit_exactly_once() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(PASSING, "first");
    // Each platform is served by two of the three nodes: claiming must
    // pick one builder per cell.
    let a = builder(vec![], &["red", "green"]);
    let b = builder(vec![&a], &["green", "blue"]);
    let c = builder(vec![&a], &["blue", "red"]);
    let keys = tempfile::tempdir().unwrap();
    let platforms = ["red", "green", "blue"];
    let project = declare(
        keys.path(),
        &a,
        "demo",
        &repo,
        &platforms,
        &a,
        &[&a, &b, &c],
    );
    for platform in platforms {
        let cell = wait_cell(
            &a,
            &project,
            &commit,
            platform,
            Duration::from_secs(60),
            |c| c["status"] == "passed",
        );
        assert_eq!(cell["results"].as_array().unwrap().len(), 1, "{cell}");
    }
    // Claims and renewals settle; still one result each, on every node.
    std::thread::sleep(Duration::from_secs(3));
    for node in [&a, &b, &c] {
        for platform in platforms {
            let cell = wait_cell(
                node,
                &project,
                &commit,
                platform,
                Duration::from_secs(30),
                |c| c["status"] == "passed",
            );
            assert_eq!(
                cell["results"].as_array().unwrap().len(),
                1,
                "{platform} on {}: {cell}",
                node.http
            );
        }
    }
}

#[test]
fn a_failing_commit_shows_failed_on_the_right_step() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(
        r#"
[[step]]
name = "build"
command = "echo building"

[[step]]
name = "test"
command = "echo 'test 2 failed' >&2; exit 3"

[[step]]
name = "package"
command = "echo never"
"#,
        "broken",
    );
    let node = builder(vec![], &["linux"]);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(
        keys.path(),
        &node,
        "broken",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let cell = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        finished,
    );
    assert_eq!(cell["status"], "failed", "{cell}");
    let result = result_of(&node, &cell);
    assert_eq!(result["outcome"], "Failed");
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"]["Exited"], 0);
    assert_eq!(steps[1]["name"], "test");
    assert_eq!(steps[1]["status"]["Exited"], 3);
    assert_eq!(steps[2]["status"], "Skipped");
}

#[test]
fn a_builder_killed_mid_build_loses_the_cell_to_another() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(
        r#"
[[step]]
name = "slow"
command = "sleep 4; echo done"
"#,
        "slow",
    );
    let a = builder(vec![], &["linux"]);
    let b = builder(vec![&a], &["linux"]);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(keys.path(), &a, "slow", &repo, &["linux"], &a, &[&a, &b]);
    let building = wait_cell(
        &a,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["status"] == "building",
    );
    let first = building["claimed_by"]["builder"]
        .as_str()
        .unwrap()
        .to_string();
    let mut nodes = [a, b];
    let (victim, survivor) = if nodes[0].key() == first {
        (0, 1)
    } else {
        (1, 0)
    };
    nodes[victim].kill();
    let done = wait_cell(
        &nodes[survivor],
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        finished,
    );
    assert_eq!(done["status"], "passed", "{done}");
    assert_eq!(done["results"][0]["builder"], nodes[survivor].key());
}

#[test]
fn a_step_past_its_timeout_is_killed_and_reported_timed_out() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(
        r#"
[[step]]
name = "hang"
command = "sleep 60 & sleep 60"
timeout_secs = 1
"#,
        "hangs",
    );
    let node = builder(vec![], &["linux"]);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(
        keys.path(),
        &node,
        "hangs",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let started = Instant::now();
    let cell = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        finished,
    );
    assert_eq!(cell["status"], "failed", "{cell}");
    let result = result_of(&node, &cell);
    assert_eq!(result["steps"][0]["status"], "TimedOut");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_recipe_that_does_not_parse_gives_an_error_result_saying_why() {
    let repo = Repo::new();
    let commit = repo.commit_recipe("[[step]]\nname = \"x\"\ncomand = \"make\"\n", "typo");
    let node = builder(vec![], &["linux"]);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(
        keys.path(),
        &node,
        "typo",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let cell = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        finished,
    );
    assert_eq!(cell["status"], "error", "{cell}");
    let result = result_of(&node, &cell);
    let why = result["error"].as_str().unwrap();
    assert!(
        why.contains("comand") && why.contains(".buildmesh.toml"),
        "{why}"
    );
    assert!(result["steps"].as_array().unwrap().is_empty());
}
