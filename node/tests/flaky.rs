//! Flaky tests on a real node (issue 17): a build whose test fails, read
//! from cargo test's own output; `buildmesh force --flaky-check` builds
//! the commit again and the test passes; the project's flaky list (JSON
//! and page) names it as flaky on that commit and the matrix marks the
//! cell whose only failure it is.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::{
    Maintainer, Node, Repo, declare, http, http_get, local_builder_flags, result_of, wait_cell,
};

const WAIT: Duration = Duration::from_secs(60);

/// cargo test's output: tests::flaky_one fails on the first build of a
/// project and passes on every later one (the project's cache remembers).
const ONCE_FLAKY: &str = r#"[[step]]
name = "test"
command = '''
if [ -e "$BUILDMESH_CACHE/ran" ]; then
  printf 'running 2 tests\ntest tests::one ... ok\ntest tests::flaky_one ... ok\n\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n'
else
  touch "$BUILDMESH_CACHE/ran"
  printf 'running 2 tests\ntest tests::one ... ok\ntest tests::flaky_one ... FAILED\n\nfailures:\n\n---- tests::flaky_one stdout ----\nthe network was slow\n\nfailures:\n    tests::flaky_one\n\ntest result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n'
  exit 101
fi
'''
"#;

#[test]
fn a_rebuild_that_passes_a_failed_test_lists_it_as_flaky() {
    let keys = Maintainer::new();
    let more = ["--accept-maintainer", &keys.key];
    let node = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &local_builder_flags(&["linux"], &more),
    );
    let repo = Repo::new();
    let commit = repo.commit_recipe(ONCE_FLAKY, "Talk to the network");
    let project = declare(
        keys.path(),
        &node,
        "hello",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let cell = wait_cell(&node, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "failed"
    });
    let result = result_of(&node, &cell);
    assert_eq!(result["tests"]["failed"], 1, "{result}");
    assert_eq!(result["tests"]["passed"], 1);
    assert_eq!(
        result["tests"]["failing"],
        serde_json::json!(["tests::flaky_one"])
    );
    let flaky_path = format!("/api/v1/projects/{project}/flaky");
    let (code, none) = http(&node.http, "GET", &flaky_path, "");
    assert_eq!(code, 200, "{none}");
    assert_eq!(
        none["tests"],
        serde_json::json!([]),
        "one failure is not flaky yet"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args([
            "force",
            "--project",
            "hello",
            "--commit",
            &commit,
            "--flaky-check",
            "--key",
        ])
        .arg(keys.path().join("maintainer.key"))
        .args(["--node", &format!("http://{}", node.http)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("listed as flaky"), "{said}");
    wait_cell(&node, &project, &commit, "linux", WAIT, |c| {
        c["results"].as_array().is_some_and(|r| r.len() == 2)
    });

    let (code, flaky) = http(&node.http, "GET", &flaky_path, "");
    assert_eq!(code, 200, "{flaky}");
    let test = &flaky["tests"][0];
    assert_eq!(test["name"], "tests::flaky_one", "{flaky}");
    assert_eq!(test["evidence"], "same_commit");
    assert_eq!(test["since"]["commit"], commit.as_str());
    assert_eq!(test["platforms"], serde_json::json!(["linux"]));
    assert_eq!(flaky["tests"].as_array().unwrap().len(), 1);

    let (code, _, page) = http_get(&node.http, &format!("/projects/{project}/flaky"), &[]);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200);
    assert!(
        page.contains("<code>tests::flaky_one</code></td><td>same commit</td>"),
        "{page}"
    );
    let (_, _, matrix) = http_get(&node.http, &format!("/projects/{project}"), &[]);
    let matrix = String::from_utf8(matrix).unwrap();
    assert!(matrix.contains("class=\"cell flaky-only\""), "{matrix}");
}
