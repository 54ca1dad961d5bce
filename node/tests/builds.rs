//! Builds on real `buildmesh node` processes and real git repositories made
//! in temp dirs: claiming, running, results, and a builder's death.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{
    Maintainer, Node, Repo, builder, declare, finished, http, http_with, matrix, wait_cell,
};

/// One node building platform `linux` of project `name` from a repository
/// whose first commit holds `recipe`; the node is the project's announcer
/// and only builder.
struct Solo {
    repo: Repo,
    node: Node,
    keys: Maintainer,
    project: String,
    commit: String,
}

fn solo(name: &str, recipe: &str) -> Solo {
    let repo = Repo::new();
    let commit = repo.commit_recipe(recipe, name);
    let keys = Maintainer::new();
    let node = builder(vec![], &["linux"], &keys);
    let project = declare(keys.path(), &node, name, &repo, &["linux"], &node, &[&node]);
    Solo {
        repo,
        node,
        keys,
        project,
        commit,
    }
}

/// The cell of `commit` on linux once it is decided (a minute at most).
fn finished_cell(node: &Node, project: &str, commit: &str) -> serde_json::Value {
    wait_cell(
        node,
        project,
        commit,
        "linux",
        Duration::from_secs(60),
        finished,
    )
}

/// The result entry behind a finished cell, decoded: a builder signs
/// every result as `Attested`, naming its attestations.
fn result_of(node: &Node, cell: &serde_json::Value) -> serde_json::Value {
    let id = cell["results"][0]["id"].as_str().unwrap();
    let (code, entry) = http(&node.http, "GET", &format!("/api/v1/entries/{id}"), "");
    assert_eq!(code, 200, "{entry}");
    let attested = &entry["body"]["Attested"];
    let hash = attested["attestation"].as_array().map(Vec::len);
    assert_eq!(hash, Some(32), "{entry}");
    attested["result"].clone()
}

const PASSING: &str = r#"
[[step]]
name = "hello"
command = "echo hello from buildmesh"
"#;

#[test]
fn three_nodes_with_three_platforms_build_each_once() {
    three_nodes_build_each_platform_once(&[&["red"], &["green"], &["blue"]]);
}

#[test]
fn three_nodes_sharing_platforms_still_build_each_once() {
    // Each platform is served by two of the three nodes: claiming must
    // pick one builder per cell.
    three_nodes_build_each_platform_once(&[
        &["red", "green"],
        &["green", "blue"],
        &["blue", "red"],
    ]);
}

fn three_nodes_build_each_platform_once(serves: &[&[&str]; 3]) {
    let repo = Repo::new();
    let commit = repo.commit_recipe(PASSING, "first");
    let keys = Maintainer::new();
    let a = builder(vec![], serves[0], &keys);
    let b = builder(vec![&a], serves[1], &keys);
    let c = builder(vec![&a], serves[2], &keys);
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
    // Claims and renewals settle; still one result each, on every node,
    // and every node gives the same matrix.
    std::thread::sleep(Duration::from_secs(3));
    let verdicts = |node: &Node| {
        let rows = matrix(node, &project).unwrap()["rows"].clone();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let cells: Vec<(serde_json::Value, serde_json::Value)> = row["cells"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| (c["status"].clone(), c["results"].clone()))
                    .collect();
                (row["commit"].clone(), cells)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&a), verdicts(&b));
    assert_eq!(verdicts(&a), verdicts(&c));
    // Any node lists its peers.
    let (code, peers) = http(&a.http, "GET", "/api/v1/peers", "");
    assert_eq!(code, 200);
    for other in [&b, &c] {
        let listed = peers["peers"].as_array().unwrap().iter().any(|p| {
            p["key"] == other.key() && p["connected"] == true && p["last_seen"].as_u64() > Some(0)
        });
        assert!(listed, "{peers}");
    }
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
    let Solo {
        repo: _repo,
        node,
        keys: _keys,
        project,
        commit,
    } = solo(
        "broken",
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
    );
    let cell = finished_cell(&node, &project, &commit);
    assert_eq!(cell["status"], "failed", "{cell}");
    let result = result_of(&node, &cell);
    assert_eq!(result["outcome"], "Failed");
    let steps = result["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"]["Exited"], 0);
    assert_eq!(steps[1]["name"], "test");
    assert_eq!(steps[1]["status"]["Exited"], 3);
    assert_eq!(steps[2]["status"], "Skipped");

    // `buildmesh status` shows it, and says so in its exit code.
    let status = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["status", "--node", &format!("http://{}", node.http)])
        .output()
        .unwrap();
    let shown = String::from_utf8(status.stdout).unwrap();
    assert_eq!(status.status.code(), Some(1), "{shown}");
    assert!(shown.contains(&format!("✗ {}", &commit[..10])), "{shown}");
    assert!(shown.contains("broken"), "{shown}");
    // One project by its name, or the 12 digits of its id status printed.
    for selector in ["broken", &project[..12]] {
        let one = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .args(["status", "--node", &format!("http://{}", node.http)])
            .args(["--project", selector])
            .output()
            .unwrap();
        let shown_one = String::from_utf8(one.stdout).unwrap();
        assert_eq!(
            shown_one,
            shown,
            "{selector}: {}",
            String::from_utf8_lossy(&one.stderr)
        );
    }
}

/// Two builders of one project whose one step runs `command`; `a`
/// watches the repository.
struct Pair {
    _repo: Repo,
    _keys: Maintainer,
    commit: String,
    a: Node,
    b: Node,
    project: String,
}

fn pair(command: &str) -> Pair {
    let repo = Repo::new();
    let recipe = format!("[[step]]\nname = \"slow\"\ncommand = \"{command}\"\n");
    let commit = repo.commit_recipe(&recipe, "slow");
    let keys = Maintainer::new();
    let a = builder(vec![], &["linux"], &keys);
    let b = builder(vec![&a], &["linux"], &keys);
    let project = declare(keys.path(), &a, "slow", &repo, &["linux"], &a, &[&a, &b]);
    Pair {
        _repo: repo,
        _keys: keys,
        commit,
        a,
        b,
        project,
    }
}

#[test]
fn a_builder_killed_mid_build_loses_the_cell_to_another() {
    // Every field bound: what is not would be dropped (a node stopped, a
    // repository deleted) at the end of this statement.
    let Pair {
        _repo,
        _keys,
        commit,
        a,
        b,
        project,
    } = pair("sleep 4; echo done");
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
    let killed = Instant::now();
    let survivor_key = nodes[survivor].key();
    wait_cell(
        &nodes[survivor],
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["claimed_by"]["builder"] == survivor_key.as_str(),
    );
    let taken = killed.elapsed();
    eprintln!("SIGKILL to the other node's claim: {taken:?}");
    // The connection dropped at once: the cell is taken over well before
    // the victim's 30 s lease would have lapsed.
    assert!(taken < Duration::from_secs(15), "{taken:?}");
    let done = finished_cell(&nodes[survivor], &project, &commit);
    assert_eq!(done["status"], "passed", "{done}");
    assert_eq!(done["results"][0]["builder"], nodes[survivor].key());
}

/// Issue 14 item 4: a builder that is slow but alive (connected) keeps
/// its cell past the time a lost one would lose it; nobody duplicates it.
#[test]
fn a_slow_builder_that_is_alive_keeps_its_cell() {
    let Pair {
        _repo,
        _keys,
        commit,
        a,
        b: _b,
        project,
    } = pair("sleep 6; echo done");
    let done = finished_cell(&a, &project, &commit);
    assert_eq!(done["status"], "passed", "{done}");
    // Give a duplicate time to show: the other node would have claimed
    // within a few seconds of losing the builder.
    std::thread::sleep(Duration::from_secs(3));
    let cell = support::cell(&a, &project, &commit, "linux").unwrap();
    assert_eq!(cell["results"].as_array().unwrap().len(), 1, "{cell}");
}

#[test]
fn a_step_past_its_timeout_is_killed_and_reported_timed_out() {
    let Solo {
        repo: _repo,
        node,
        keys: _keys,
        project,
        commit,
    } = solo(
        "hangs",
        r#"
[[step]]
name = "hang"
command = "sleep 60 & sleep 60"
timeout_secs = 1
"#,
    );
    let started = Instant::now();
    let cell = finished_cell(&node, &project, &commit);
    assert_eq!(cell["status"], "failed", "{cell}");
    let result = result_of(&node, &cell);
    assert_eq!(result["steps"][0]["status"], "TimedOut");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_recipe_that_does_not_parse_gives_an_error_result_saying_why() {
    let Solo {
        repo: _repo,
        node,
        keys: _keys,
        project,
        commit,
    } = solo("typo", "[[step]]\nname = \"x\"\ncomand = \"make\"\n");
    let cell = finished_cell(&node, &project, &commit);
    assert_eq!(cell["status"], "error", "{cell}");
    let result = result_of(&node, &cell);
    let why = result["error"].as_str().unwrap();
    assert!(
        why.contains("comand") && why.contains(".buildmesh.toml"),
        "{why}"
    );
    assert!(result["steps"].as_array().unwrap().is_empty());
}

/// Runs a maintainer command with the key in `keys`, against `node`.
fn maintainer(keys: &Path, node: &Node, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(args)
        .arg("--key")
        .arg(keys.join("maintainer.key"))
        .args(["--node", &format!("http://{}", node.http)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn a_forced_build_builds_the_branch_head_again() {
    let Solo {
        repo: _repo,
        node,
        keys,
        project,
        commit,
    } = solo("again", PASSING);
    finished_cell(&node, &project, &commit);
    let (code, metrics) = support::http_raw(&node.http, "/metrics");
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("buildmesh_builds_total{outcome=\"passed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE buildmesh_entries gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("libp2p_"),
        "libp2p's metrics too: {metrics}"
    );
    maintainer(
        keys.path(),
        &node,
        &[
            "force",
            "--project",
            "again",
            "--branch",
            "main",
            "--reason",
            "flaky?",
        ],
    );
    let cell = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["results"].as_array().is_some_and(|r| r.len() == 2),
    );
    assert_eq!(cell["status"], "passed", "{cell}");
}

#[test]
fn a_maintainer_announces_a_commit_from_a_working_copy() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(PASSING, "by hand");
    let keys = Maintainer::new();
    let node = builder(vec![], &["linux"], &keys);
    let elsewhere = builder(vec![&node], &["other"], &keys);
    // The announcer is another node that does not serve linux: this node
    // watches nothing, so only the maintainer's announcement can bring the
    // commit.
    let project = declare(
        keys.path(),
        &node,
        "manual",
        &repo,
        &["linux"],
        &elsewhere,
        &[&node],
    );
    let mut command = vec!["announce", "--project", "manual", "--repo-dir"];
    command.push(repo.path().to_str().unwrap());
    let said = maintainer(keys.path(), &node, &command);
    assert!(said.contains(&commit), "{said}");
    let cell = finished_cell(&node, &project, &commit);
    assert_eq!(cell["status"], "passed", "{cell}");
}

#[test]
fn push_webhooks_are_checked_against_the_secret() {
    use hmac::{Hmac, KeyInit, Mac};
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("secret");
    std::fs::write(&file, "sixteen or more characters\n").unwrap();
    let node = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &["--webhook-secret-file", file.to_str().unwrap()],
    );
    let body = r#"{"ref":"refs/heads/main"}"#;
    let sign = |secret: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    // A delivery to `forge` of `node` with these headers.
    let hook = |node: &Node, forge: &str, headers: &[(&str, &str)]| {
        http_with(
            &node.http,
            "POST",
            &format!("/api/v1/hooks/{forge}"),
            body,
            headers,
        )
    };
    let good = sign("sixteen or more characters");
    let github = format!("sha256={good}");
    let first = [
        ("X-Hub-Signature-256", github.as_str()),
        ("X-GitHub-Delivery", "one"),
    ];
    let (code, reply) = hook(&node, "github", &first);
    assert_eq!(
        (code, reply["polling"].as_bool()),
        (200, Some(true)),
        "{reply}"
    );
    // The same delivery again is a replay: answered, not obeyed.
    let (code, reply) = hook(&node, "github", &first);
    assert_eq!(
        (code, reply["replay"].as_bool()),
        (200, Some(true)),
        "{reply}"
    );
    // Only the forge's exact format is taken.
    for loose in [
        good.clone(),
        format!("sha256=sha256={good}"),
        github.to_uppercase(),
    ] {
        let headers = [
            ("X-Hub-Signature-256", loose.as_str()),
            ("X-GitHub-Delivery", "two"),
        ];
        let (code, reply) = hook(&node, "github", &headers);
        assert_eq!(code, 401, "{loose}: {reply}");
    }
    let prefixed = [
        ("X-Gitea-Signature", github.as_str()),
        ("X-Gitea-Delivery", "three"),
    ];
    assert_eq!(
        hook(&node, "gitea", &prefixed).0,
        401,
        "Gitea's has no prefix"
    );
    let undelivered = [("X-Hub-Signature-256", github.as_str())];
    assert_eq!(hook(&node, "github", &undelivered).0, 400, "no delivery id");
    let gitea = [
        ("X-Gitea-Signature", good.as_str()),
        ("X-Gitea-Delivery", "four"),
    ];
    assert_eq!(hook(&node, "gitea", &gitea).0, 200);
    let forged = format!("sha256={}", sign("a guessed secret, wrong"));
    let (code, reply) = hook(&node, "github", &[("X-Hub-Signature-256", &forged)]);
    assert_eq!(code, 401, "{reply}");
    let (code, _) = http(&node.http, "POST", "/api/v1/hooks/github", body);
    assert_eq!(code, 401, "no signature header");
    let plain = Node::start(None);
    let (code, reply) = hook(&plain, "github", &first);
    assert_eq!(code, 404, "webhooks are off without a secret: {reply}");
}

#[test]
fn a_running_build_streams_its_output_live() {
    use std::io::Read;
    let Solo {
        repo: _repo,
        node,
        keys: _keys,
        project,
        commit,
    } = solo(
        "ticks",
        "[[step]]\nname = \"ticks\"\ncommand = \"for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done\"\n",
    );
    let building = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["status"] == "building",
    );
    assert!(building["results"].as_array().unwrap().is_empty());
    // The status counts the node's own claim as soon as it is written.
    // (Its two counts are read a moment apart, so a write in between, a
    // lease renewal, may part them briefly: look a few times, for well
    // under the one second until the next renewal that refreshed the
    // status before.)
    let agree = (0..10).any(|_| {
        let status = node.status();
        std::thread::sleep(Duration::from_millis(20));
        status["entries"] == status["digest_entries"]
    });
    assert!(agree, "{}", node.status());
    let mut stream = std::net::TcpStream::connect(&node.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    use std::io::Write;
    write!(
        stream,
        "GET /api/v1/live/{project}/{commit}/linux HTTP/1.0\r\nHost: {}\r\n\r\n",
        node.http
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline && !String::from_utf8_lossy(&seen).contains("event: output") {
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => {}
        }
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("event: output"), "{seen}");
    assert!(seen.contains("tick"), "{seen}");
    assert!(seen.contains("\"step\":\"ticks\""), "{seen}");
    // The building cell links to the live page.
    let (code, page) = support::http_raw(&node.http, &format!("/projects/{project}"));
    assert_eq!(code, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("/live/{project}/{commit}/linux")) || page.contains("passed"),
        "{page}"
    );
}

/// Issue 14 item 7: a force on a commit older than the newest 50 (the
/// matrix's and the work's window) gets exactly one more result, and a
/// restart does not build it again. Before, such a cell never saw its
/// own result and every restart rebuilt it.
#[test]
fn a_force_on_an_old_commit_is_built_once_also_across_restarts() {
    let repo = Repo::new();
    let old = repo.commit_recipe(PASSING, "old");
    let keys = Maintainer::new();
    let flags = support::local_builder_flags(&["linux"], &["--accept-maintainer", &keys.key]);
    let node = Node::launch(tempfile::tempdir().unwrap(), vec![], &flags);
    let project = declare(
        keys.path(),
        &node,
        "old",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    wait_cell(
        &node,
        &project,
        &old,
        "linux",
        Duration::from_secs(60),
        finished,
    );
    // 60 newer commits, in batches the poller takes whole (32 a poll).
    for batch in 0..3 {
        for n in 0..20 {
            repo.commit_file("n", &format!("{batch}-{n}"), &format!("commit {batch}-{n}"));
        }
        let head = repo.git(&["rev-parse", "HEAD"]);
        wait_cell(
            &node,
            &project,
            head.trim(),
            "linux",
            Duration::from_secs(120),
            finished,
        );
    }
    let results_of_old = |node: &Node| {
        let path = format!("/api/v1/projects/{project}/matrix?rows=100");
        let (_, matrix) = http(&node.http, "GET", &path, "");
        let rows = matrix["rows"].as_array().unwrap();
        assert!(rows.len() > 60, "all announced: {}", rows.len());
        let row = rows.iter().find(|r| r["commit"] == old.as_str()).unwrap();
        row["cells"][0]["results"].as_array().unwrap().len()
    };
    assert_eq!(results_of_old(&node), 1);
    maintainer(
        keys.path(),
        &node,
        &[
            "force",
            "--project",
            "old",
            "--commit",
            &old,
            "--reason",
            "again",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while results_of_old(&node) < 2 {
        assert!(Instant::now() < deadline, "the force was not built");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Long enough for a rebuild to start and finish (builds here take
    // well under a second), here and after a restart.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(results_of_old(&node), 2, "built once for one force");
    let dir = node.stop();
    let node = Node::launch(dir, vec![], &flags);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(results_of_old(&node), 2, "not built again after a restart");
    assert_eq!(node.status()["cells_waiting"], 0, "{}", node.status());
}

/// Issue 14 item 2: leases off the log. A build several leases long costs
/// the log one claim and one result: its lease is renewed by gossip. A
/// builder that joins after the claim's own lease ran out learns the live
/// lease from its first sync (it would otherwise see the cell open and
/// claim it), and so does the same builder restarted mid-build: neither
/// steals the cell.
#[test]
fn a_long_build_is_two_entries_and_late_or_restarted_builders_leave_it() {
    let repo = Repo::new();
    let recipe = "[[step]]\nname = \"long\"\ncommand = \"sleep 16; echo done\"\n";
    let commit = repo.commit_recipe(recipe, "long");
    let keys = Maintainer::new();
    // A 6 s lease, renewed every 2 s: a late joiner has two seconds in
    // which only the sync could tell it the claim still holds.
    let more = ["--lease-secs", "6", "--accept-maintainer", &keys.key];
    let flags = support::local_builder_flags(&["linux"], &more);
    let a = Node::launch(tempfile::tempdir().unwrap(), vec![], &flags);
    // The late builder's key, made by starting it once.
    let late = Node::launch(tempfile::tempdir().unwrap(), vec![], &flags);
    let late_key = late.key();
    let late_dir = late.stop();
    let builders = [a.key(), late_key.clone()];
    let project = support::declare_keys(keys.path(), &a, "long", &repo, &["linux"], &a, &builders);
    let building = wait_cell(
        &a,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["status"] == "building",
    );
    let claimed = Instant::now();
    let a_key = a.key();
    assert_eq!(building["claimed_by"]["builder"], a_key.as_str());
    let entries_when_claimed = a.status()["entries"].as_u64().unwrap();
    // Past the claim's own lease (6 s), before the build ends (16 s).
    std::thread::sleep(Duration::from_secs(7).saturating_sub(claimed.elapsed()));
    let b = Node::launch(late_dir, vec![&a], &flags);
    let held_by_a = |c: &serde_json::Value| c["claimed_by"]["builder"] == a_key.as_str();
    let seen = wait_cell(
        &b,
        &project,
        &commit,
        "linux",
        Duration::from_secs(20),
        |c| held_by_a(c) || !c["claimed_by"].is_null() || finished(c),
    );
    assert!(
        held_by_a(&seen),
        "the late builder sees a's live lease: {seen}"
    );
    // Restarted mid-build, it must not steal the cell either.
    std::thread::sleep(Duration::from_millis(1_500));
    let b_status = b.status();
    let b = Node::launch(b.stop(), vec![&a], &flags);
    let done = finished_cell(&a, &project, &commit);
    assert!(
        claimed.elapsed() > Duration::from_secs(14),
        "{:?}",
        claimed.elapsed()
    );
    assert_eq!(done["status"], "passed", "{done}");
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{done}");
    assert_eq!(results[0]["builder"], a_key.as_str());
    for status in [b_status, b.status()] {
        assert_eq!(status["builds_running"], 0, "{status}");
        assert_eq!(status["builds_cancelled"], 0, "{status}");
    }
    // Two entries for the cell in all: the claim (counted above) and the
    // result; no renewal was written.
    let entries = a.status()["entries"].as_u64().unwrap();
    assert_eq!(entries, entries_when_claimed + 1, "{}", a.status());
}
