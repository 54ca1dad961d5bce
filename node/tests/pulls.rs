//! Pull requests on a real node (issue 15, item 4): a forge's signed
//! `pull_request` event makes the announcer fetch `refs/pull/N/head` of a
//! real git repository, check it is the head the event named, and announce
//! it; the head is built apart from the branch's matrix, only for projects
//! that turned pull requests on.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, builder_with, declare_with, http, matrix};

const PASSING: &str = r#"
[[step]]
name = "hello"
command = "echo hello from a pull request"
"#;

const SECRET: &str = support::PULL_SECRET;

/// A GitHub-shaped `pull_request` delivery: the node's reply.
fn deliver(node: &Node, repo: &Repo, action: &str, number: u64, head: &str) -> serde_json::Value {
    support::pull_event(node, repo, action, number, head)
}

fn pulls(node: &Node, project: &str) -> serde_json::Value {
    let (code, body) = http(
        &node.http,
        "GET",
        &format!("/api/v1/projects/{project}/pulls"),
        "",
    );
    assert_eq!(code, 200, "{body}");
    body
}

/// A repository with a passing recipe on main and three pull requests'
/// heads on a branch of their own, published as `refs/pull/{7,8,9}/head`,
/// and a commit that is no pull request's head.
struct Repository {
    repo: Repo,
    main: String,
    seven: String,
    eight: String,
    nine: String,
    other: String,
}

fn repository() -> Repository {
    let repo = Repo::new();
    let main = repo.commit_recipe(PASSING, "first");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let commit = |n: &str| repo.commit_file("count.txt", n, &format!("Count to {n}"));
    let (seven, eight, nine, other) = (commit("7"), commit("8"), commit("9"), commit("10"));
    for (number, head) in [(7, &seven), (8, &eight), (9, &nine)] {
        repo.git(&["update-ref", &format!("refs/pull/{number}/head"), head]);
    }
    repo.git(&["checkout", "-q", "main"]);
    Repository {
        repo,
        main,
        seven,
        eight,
        nine,
        other,
    }
}

/// Delivers the event until `GET /api/v1/projects/{project}/pulls/{number}`
/// answers and `done` holds of it (the project's setting may reach the
/// node's work a moment after its declaration; once the head is
/// announced, deliveries of it again are no-ops).
fn deliver_until(
    node: &Node,
    repository: &Repository,
    project: &str,
    (number, head): (u64, &str),
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = format!("/api/v1/projects/{project}/pulls/{number}");
    loop {
        deliver(node, &repository.repo, "synchronize", number, head);
        let (code, body) = http(&node.http, "GET", &path, "");
        if code == 200 && done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "pull request {number}: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_pull_request_head_is_checked_built_and_kept_off_the_branch_row() {
    let repository = repository();
    let Repository {
        repo,
        main,
        seven,
        eight,
        nine,
        other,
    } = &repository;
    let keys = Maintainer::new();
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    let node = builder_with(
        vec![],
        &["linux"],
        &[
            "--accept-maintainer",
            &keys.key,
            "--webhook-secret-file",
            secret.to_str().unwrap(),
        ],
    );
    let me = [node.key()];
    let declare = |name: &str, more: &[&str]| {
        declare_with(keys.path(), &node, name, repo, &["linux"], &node, &me, more)
    };
    let on = declare("with-pulls", &["--pull-requests"]);
    let off = declare("without-pulls", &[]);

    // Actions that build nothing are ignored at once; closing a pull
    // request never announced closes nothing.
    let labeled = deliver(&node, repo, "labeled", 7, seven);
    assert!(labeled["ignored"].is_string(), "{labeled}");
    let closed = deliver(&node, repo, "closed", 7, seven);
    assert_eq!(closed["closing"], true, "{closed}");

    let built = deliver_until(&node, &repository, &on, (7, seven), |p| {
        p["heads"][0]["status"] == "passed"
    });
    assert_eq!(built["base"], "main", "{built}");
    assert_eq!(built["author"], "contributor", "{built}");
    let result = &built["heads"][0]["cells"][0]["results"][0];
    assert_eq!(result["outcome"], "passed", "{built}");

    // Events naming a head their ref does not hold: refs/pull/8/head is
    // `eight`, not `other`; refs/pull/7/head is `seven`. Neither may be
    // announced, neither as named nor as fetched. The announcer takes
    // events in order, so once pull request 9 (delivered after them) is
    // announced, they were checked.
    deliver(&node, repo, "opened", 8, other);
    deliver(&node, repo, "synchronize", 7, other);
    deliver_until(&node, &repository, &on, (9, nine), |_| true);

    let (code, body) = http(
        &node.http,
        "GET",
        &format!("/api/v1/projects/{on}/pulls/8"),
        "",
    );
    assert_eq!(code, 404, "pull request 8 was refused: {body}");
    let (_, seven_now) = http(
        &node.http,
        "GET",
        &format!("/api/v1/projects/{on}/pulls/7"),
        "",
    );
    let heads: Vec<&str> = seven_now["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["commit"].as_str().unwrap())
        .collect();
    assert_eq!(
        heads,
        [seven.as_str()],
        "only the checked head: {seven_now}"
    );
    let listed = pulls(&node, &on);
    assert_eq!(listed["enabled"], true);
    let numbers: Vec<u64> = listed["pulls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [9, 7], "{listed}");
    let text = listed.to_string();
    assert!(!text.contains(eight.as_str()) && !text.contains(other.as_str()));

    // Never on the matrix: the branch row is main's commit alone.
    let rows = |project: &str| -> Vec<String> {
        matrix(&node, project).unwrap()["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["commit"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(rows(&on), [main.as_str()], "heads are on no branch row");

    // The project without pull requests saw the same events and announced
    // nothing: no pull request, nothing built but its branch.
    let none = pulls(&node, &off);
    assert_eq!(none["enabled"], false);
    assert_eq!(none["pulls"].as_array().unwrap().len(), 0, "{none}");
    assert_eq!(rows(&off), [main.as_str()]);

    // The dashboard lists them and has a page for each.
    let (code, page) = support::http_raw(&node.http, &format!("/projects/{on}/pulls/7"));
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&seven[..12]), "{page}");
    let (code, page) = support::http_raw(&node.http, &format!("/projects/{on}"));
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains(&format!("/projects/{on}/pulls/7")), "{page}");
    assert_eq!(seven_now["open"], true, "{seven_now}");

    closed_and_reopened(&node, &repository, &on);
}

/// Closing pull request 7 marks it closed everywhere and leaves it off the
/// matrix page; a newer head announcement (reopened) opens it again.
fn closed_and_reopened(node: &Node, repository: &Repository, on: &str) {
    let reply = deliver(node, &repository.repo, "closed", 7, &repository.seven);
    assert_eq!(reply["closing"], true, "{reply}");
    // The views thread publishes what the close changed a moment later.
    let path = format!("/api/v1/projects/{on}/pulls/7");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, seven) = http(&node.http, "GET", &path, "");
        assert_eq!(code, 200, "{seven}");
        if seven["open"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "never closed: {seven}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = pulls(node, on);
    let state: Vec<(u64, bool)> = listed["pulls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["number"].as_u64().unwrap(), p["open"].as_bool().unwrap()))
        .collect();
    assert_eq!(state, [(9, true), (7, false)], "{listed}");
    let (_, page) = support::http_raw(&node.http, &format!("/projects/{on}"));
    let page = String::from_utf8(page).unwrap();
    assert!(
        !page.contains(&format!("/projects/{on}/pulls/7\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("/projects/{on}/pulls/9\"")),
        "{page}"
    );
    let (_, page) = support::http_raw(&node.http, &format!("/projects/{on}/pulls/7"));
    assert!(String::from_utf8(page).unwrap().contains("closed"));

    let reopened = deliver_until(node, repository, on, (7, &repository.seven), |p| {
        p["open"] == true
    });
    assert_eq!(reopened["heads"][0]["commit"], repository.seven.as_str());
}
