//! Quorum and reproducibility on real nodes (issue 18): a lying builder is
//! caught by a two-build quorum, the cell shows `disagree` until a third
//! builder decides it; two builders whose artifacts differ show `differs`
//! with both hashes, and a project that requires agreement does not pass
//! such a cell.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;
use support::{Launch, Maintainer, Node, Repo, declare_with, http, local_builder_flags, wait_cell};

const WAIT: Duration = Duration::from_secs(90);

/// The tests fail, except on a node started with `BUILDMESH_LIE=1`: a
/// builder that reports a pass for a commit that fails everywhere else.
const FAILS_BUT_FOR_THE_LIAR: &str = r#"[environment]
inherit = ["BUILDMESH_LIE"]

[[step]]
name = "test"
command = '[ "${BUILDMESH_LIE:-0}" = 1 ] || { echo "assertion failed"; exit 1; }'
"#;

/// A builder node of `keys`'s projects on `linux`; `lie` sets the
/// variable that makes its builds pass.
fn builder(dir: tempfile::TempDir, bootstrap: Vec<&Node>, keys: &Maintainer, lie: bool) -> Node {
    let more = [
        "--accept-maintainer",
        keys.key.as_str(),
        "--lease-secs",
        "3",
    ];
    let launch = Launch {
        env: if lie {
            vec![("BUILDMESH_LIE".to_owned(), "1".to_owned())]
        } else {
            Vec::new()
        },
        ..Launch::default()
    };
    Node::launch_with(
        dir,
        bootstrap,
        &local_builder_flags(&["linux"], &more),
        &launch,
    )
}

/// The outcomes behind a cell, sorted.
fn outcomes(cell: &serde_json::Value) -> Vec<String> {
    let mut found: Vec<String> = cell["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    found
}

#[test]
fn a_lying_builder_makes_the_cell_disagree_and_a_third_builder_decides() {
    let keys = Maintainer::new();
    // The third builder's key must be in the declaration; it starts later,
    // when the other two have disagreed.
    let third_dir = tempfile::tempdir().unwrap();
    let third = builder(third_dir, vec![], &keys, false);
    let third_key = third.key();
    let third_dir = third.stop();

    let liar = builder(tempfile::tempdir().unwrap(), vec![], &keys, true);
    let honest = builder(tempfile::tempdir().unwrap(), vec![&liar], &keys, false);
    honest.wait_connected(&liar);
    let repo = Repo::new();
    let commit = repo.commit_recipe(FAILS_BUT_FOR_THE_LIAR, "Break the tests");
    let project = declare_with(
        keys.path(),
        &liar,
        "quorum",
        &repo,
        &["linux"],
        &liar,
        &[liar.key(), honest.key(), third_key],
        &["--builds-per-cell", "2"],
    );

    let cell = wait_cell(&honest, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "disagree"
    });
    assert_eq!(outcomes(&cell), ["failed", "passed"], "{cell}");
    // Every node derives the same state from the same entries.
    wait_cell(&liar, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "disagree"
    });
    // The commit page says what a person must know.
    let (code, _, page) = support::http_get(
        &honest.http,
        &format!("/projects/{project}/commits/{commit}"),
        &[],
    );
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("≠ disagree"));

    // One more builder, one that has not built it, decides.
    let third = builder(third_dir, vec![&liar, &honest], &keys, false);
    let cell = wait_cell(&third, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "failed"
    });
    assert_eq!(outcomes(&cell), ["failed", "failed", "passed"], "{cell}");
    let builders: std::collections::BTreeSet<&str> = cell["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["builder"].as_str().unwrap())
        .collect();
    assert_eq!(builders.len(), 3, "three distinct builders: {cell}");
    wait_cell(&liar, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "failed"
    });
}

/// Each build keeps a file of random bytes: no two builders agree.
const UNREPRODUCIBLE: &str = r#"[[step]]
name = "build"
command = "head -c 32 /dev/urandom > app.bin"

[artifacts]
paths = ["app.bin"]
"#;

#[test]
fn differing_artifacts_show_differs_with_both_hashes_and_fail_a_required_agreement() {
    let keys = Maintainer::new();
    let first = builder(tempfile::tempdir().unwrap(), vec![], &keys, false);
    let second = builder(tempfile::tempdir().unwrap(), vec![&first], &keys, false);
    second.wait_connected(&first);
    let repo = Repo::new();
    let commit = repo.commit_recipe(UNREPRODUCIBLE, "Build an app");
    let project = declare_with(
        keys.path(),
        &first,
        "repro",
        &repo,
        &["linux"],
        &first,
        &[first.key(), second.key()],
        &["--reproducible"],
    );
    // `--reproducible` implies two builds per cell, and the two disagree
    // on the bytes they built.
    let cell = wait_cell(&second, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "differs"
    });
    assert_eq!(outcomes(&cell), ["passed", "passed"], "{cell}");

    let (code, row) = http(
        &second.http,
        "GET",
        &format!("/api/v1/projects/{project}/commits/{commit}"),
        "",
    );
    assert_eq!(code, 200, "{row}");
    let artifacts = &row["cells"][0]["artifacts"];
    assert_eq!(artifacts[0]["name"], "app.bin", "{row}");
    assert_eq!(artifacts[0]["agreement"], "differs", "{row}");
    let builds = artifacts[0]["builds"].as_array().unwrap();
    assert_eq!(builds.len(), 2, "{row}");
    assert_ne!(builds[0]["hash"], builds[1]["hash"]);
    let mut builders: Vec<&str> = builds
        .iter()
        .map(|b| b["builder"].as_str().unwrap())
        .collect();
    builders.sort_unstable();
    let mut expected = [first.key(), second.key()];
    expected.sort();
    assert_eq!(builders, expected);

    let (code, _, page) = support::http_get(
        &first.http,
        &format!("/projects/{project}/commits/{commit}"),
        &[],
    );
    assert_eq!(code, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("<h2>Artifacts</h2>"), "{page}");
    assert!(page.contains(">differs</span>"), "{page}");
    for build in builds {
        let hash = build["hash"].as_str().unwrap();
        assert!(page.contains(&hash[..12]), "{hash} missing from the page");
    }
}

/// The first build sleeps long enough to be stopped; every later one
/// passes at once (the project's cache remembers).
const SLOW_ONCE: &str = r#"[[step]]
name = "test"
command = '''
if [ -e "$BUILDMESH_CACHE/ran" ]; then exit 0; fi
touch "$BUILDMESH_CACHE/ran"
sleep 60
'''
"#;

/// A node stopped mid-build signs a `retry` result, which ends its claim
/// without a vote: the cell is not failed, and the node builds it again
/// once it starts.
#[test]
fn a_build_cut_short_by_a_stop_is_a_retry_and_is_built_again() {
    let keys = Maintainer::new();
    let node = builder(tempfile::tempdir().unwrap(), vec![], &keys, false);
    let repo = Repo::new();
    let commit = repo.commit_recipe(SLOW_ONCE, "Slow tests");
    let project = declare_with(
        keys.path(),
        &node,
        "retry",
        &repo,
        &["linux"],
        &node,
        &[node.key()],
        &[],
    );
    wait_cell(&node, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "building"
    });
    std::thread::sleep(Duration::from_secs(1));
    let dir = node.stop();
    let node = builder(dir, vec![], &keys, false);
    let cell = wait_cell(&node, &project, &commit, "linux", WAIT, |c| {
        c["status"] == "passed"
    });
    assert_eq!(outcomes(&cell), ["passed", "retry"], "{cell}");
}
