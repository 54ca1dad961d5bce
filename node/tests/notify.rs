//! Telling people, on real nodes with real servers (issue 15): an SMTP
//! server (aiosmtpd), an IRC server (ngircd) and HTTP receivers, each
//! started by the test on 127.0.0.1, see exactly the messages a broken and
//! a fixed build should cause, once each, also across a restart; a node
//! that joins late tells nothing old; a forge gets commit statuses of the
//! documented shape, for a branch's commits and for a pull request's head.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_test_servers::{HttpSink, IrcListener, IrcServer, SmtpSink};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, declare, local_builder_flags, wait_cell};

const PASSING: &str = "[[step]]\nname = \"test\"\ncommand = \"echo all good\"\n";

const FAILING: &str = "[[step]]\nname = \"build\"\ncommand = \"echo built\"\n\n\
     [[step]]\nname = \"test\"\ncommand = \"echo 'assertion failed: parse(1) == 2'; exit 1\"\n";

const WAIT: Duration = Duration::from_secs(60);

/// Whether the servers these tests need are here (CI requires them).
fn servers_here() -> bool {
    SmtpSink::available() && IrcServer::available()
}

fn write_config(dir: &Path, text: &str) -> String {
    let file = dir.join("node.toml");
    std::fs::write(&file, text).unwrap();
    std::fs::write(dir.join("hook-secret"), "a hook secret\n").unwrap();
    std::fs::write(dir.join("forge-token"), "t0ken\n").unwrap();
    file.to_str().unwrap().to_owned()
}

/// A building node on `linux` that accepts `keys`' projects, with `config`.
fn launch(dir: tempfile::TempDir, keys: &Maintainer, config: &str) -> Node {
    let more = [
        "--lease-secs",
        "3",
        "--accept-maintainer",
        &keys.key,
        "--config",
        config,
    ];
    Node::launch(dir, vec![], &local_builder_flags(&["linux"], &more))
}

/// Waits until `commit`'s linux cell is decided as `status`.
fn wait_decided(node: &Node, project: &str, commit: &str, status: &str) {
    wait_cell(node, project, commit, "linux", WAIT, |c| {
        c["status"] == status
    });
}

/// A node with `config` building project `hello` on linux, whose first
/// commit passed.
struct Building {
    keys: Maintainer,
    node: Node,
    repo: Repo,
    project: String,
}

fn building(config: &str) -> Building {
    let keys = Maintainer::new();
    let node = launch(tempfile::tempdir().unwrap(), &keys, config);
    let repo = Repo::new();
    let first = repo.commit_recipe(PASSING, "Start");
    let project = declare(
        keys.path(),
        &node,
        "hello",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    wait_decided(&node, &project, &first, "passed");
    Building {
        keys,
        node,
        repo,
        project,
    }
}

fn short(commit: &str) -> &str {
    &commit[..8]
}

#[test]
fn a_broken_and_a_fixed_build_are_told_once_each_by_mail_webhook_and_irc() {
    if !servers_here() {
        return;
    }
    let smtp = SmtpSink::start();
    let hook = HttpSink::start(vec![500]);
    let irc = IrcServer::start();
    let watcher = IrcListener::join(irc.port(), "watcher", "#hello");
    let files = tempfile::tempdir().unwrap();
    let config = write_config(
        files.path(),
        &format!(
            r##"
public_url = "http://127.0.0.1:9"

[[notify]]
name = "team-mail"
kind = "mail"
smtp_host = "127.0.0.1"
smtp_port = {smtp}
smtp_security = "plain"
from = "buildmesh <ci@example.org>"
to = ["dev@example.org"]

[[notify]]
name = "events"
kind = "webhook"
url = "{hook}"
secret_file = "{dir}/hook-secret"

[[notify]]
name = "irc"
kind = "irc"
irc_host = "127.0.0.1"
irc_port = {irc}
irc_tls = false
nick = "meshbot"
channel = "#hello"
"##,
            smtp = smtp.port(),
            hook = hook.url(),
            irc = irc.port(),
            dir = files.path().display(),
        ),
    );
    let Building {
        keys,
        node,
        repo,
        project,
    } = building(&config);

    let broken = repo.commit_recipe(FAILING, "Make parsing faster");
    wait_decided(&node, &project, &broken, "failed");
    let mails = smtp.wait_for(1, WAIT);
    let mail = &mails[0];
    assert_eq!(
        mail.header("subject"),
        Some(format!("[hello] main broken on linux by {}", short(&broken)).as_str()),
        "{mail:?}"
    );
    assert_eq!(mail.header("to"), Some("dev@example.org"));
    for expected in [
        "Blamelist (the commits since the last passing build):",
        &format!("{}  ", short(&broken)),
        "Make parsing faster",
        "linux: failed, step \"test\" failed",
        "| assertion failed: parse(1) == 2",
        &format!("http://127.0.0.1:9/projects/{project}/commits/{broken}"),
        "http://127.0.0.1:9/results/",
    ] {
        assert!(
            mail.body.contains(expected),
            "{expected:?} in:\n{}",
            mail.body
        );
    }
    watcher.wait_for_message(|m| m.text.contains("main broken on linux"), WAIT);
    assert!(
        watcher.joins().iter().any(|n| n == "meshbot"),
        "{:?}",
        watcher.joins()
    );

    let fixed = repo.commit_recipe(PASSING, "Fix parsing");
    wait_decided(&node, &project, &fixed, "passed");
    let mails = smtp.wait_for(2, WAIT);
    assert_eq!(
        mails[1].header("subject"),
        Some(format!("[hello] main fixed on linux by {}", short(&fixed)).as_str())
    );
    watcher.wait_for_message(|m| m.text.contains("main fixed on linux"), WAIT);

    // The receiver refused the first delivery: it was retried (the fixed
    // event may go before the retry: they are different events). Each
    // body is a signed CloudEvent.
    let requests = hook.wait_for(3, WAIT);
    assert_eq!(requests[0].status, 500);
    let delivered: Vec<_> = requests[1..].iter().filter(|r| r.status == 201).collect();
    assert_eq!(delivered.len(), 2, "{requests:?}");
    let retried = delivered.iter().find(|r| r.body == requests[0].body);
    assert!(retried.is_some(), "the refused event again, byte for byte");
    let mut types: Vec<_> = delivered
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["org.buildmesh.build.broken", "org.buildmesh.build.fixed"]
    );
    for request in &delivered {
        assert_eq!(
            request.header("content-type"),
            Some("application/cloudevents+json")
        );
        assert_eq!(
            request.header("x-buildmesh-signature-256"),
            Some(buildmesh_notify::webhook::signature(b"a hook secret", &request.body).as_str())
        );
    }

    // A green build after a green one is news to nobody.
    let green = repo.commit_file("README", "more", "Document parsing");
    wait_decided(&node, &project, &green, "passed");
    // Restarted, the node derives the same events and sends none again.
    let dir = node.stop();
    let node = launch(dir, &keys, &config);
    let later = repo.commit_file("README", "even more", "Document more");
    wait_decided(&node, &project, &later, "passed");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.mails().len(), 2, "{:#?}", smtp.mails());
    assert_eq!(hook.requests().len(), 3);
    let told: Vec<_> = watcher
        .messages()
        .into_iter()
        .filter(|m| m.from.starts_with("meshbot"))
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
}

#[test]
fn a_node_that_joins_late_tells_nothing_old() {
    if !servers_here() {
        return;
    }
    let files = tempfile::tempdir().unwrap();
    let quiet = write_config(files.path(), "");
    let Building {
        node: builder,
        repo,
        project,
        ..
    } = building(&quiet);
    let broken = repo.commit_recipe(FAILING, "Break it");
    wait_decided(&builder, &project, &broken, "failed");
    // The history is now older than the late node's age bound.
    std::thread::sleep(Duration::from_secs(6));

    let smtp = SmtpSink::start();
    let late_files = tempfile::tempdir().unwrap();
    let late_config = write_config(
        late_files.path(),
        &format!(
            r##"
[[notify]]
name = "mail"
kind = "mail"
projects = ["{project}"]
events = ["broken", "still_failing"]
max_age_secs = 5
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "plain"
from = "ci@example.org"
to = ["dev@example.org"]
"##,
            port = smtp.port(),
        ),
    );
    let late = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![&builder],
        &["--config", &late_config],
    );
    wait_decided(&late, &project, &broken, "failed");
    // What happens now is told: the next failure, built by the first node.
    let again = repo.commit_file("README", "x", "Still broken");
    wait_decided(&late, &project, &again, "failed");
    let mails = smtp.wait_for(1, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    let subjects: Vec<_> = smtp
        .mails()
        .iter()
        .map(|m| m.header("subject").unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        subjects,
        [format!(
            "[hello] main still failing on linux at {}",
            short(&again)
        )],
        "only the new event: {mails:?}"
    );
}

#[test]
fn the_forge_gets_a_status_per_platform_for_commits_and_pull_requests() {
    if !servers_here() {
        return;
    }
    let forge = HttpSink::github_statuses("t0ken");
    let files = tempfile::tempdir().unwrap();
    let secret = files.path().join("webhook-secret");
    std::fs::write(&secret, support::PULL_SECRET).unwrap();
    let config = write_config(
        files.path(),
        &format!(
            r##"
public_url = "http://127.0.0.1:9"
webhook_secret_file = "{secret}"

[[status]]
project = "hello"
forge = "github"
api = "{api}"
repository = "example/hello"
token_file = "{dir}/forge-token"
"##,
            secret = secret.display(),
            api = forge.api_root(),
            dir = files.path().display(),
        ),
    );
    let keys = Maintainer::new();
    let node = launch(tempfile::tempdir().unwrap(), &keys, &config);
    let repo = Repo::new();
    let slow = "[[step]]\nname = \"test\"\ncommand = \"sleep 2; echo done\"\n";
    let first = repo.commit_recipe(slow, "Start");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let head = repo.commit_file("feature.txt", "new", "A contributor's change");
    repo.git(&["update-ref", "refs/pull/7/head", &head]);
    repo.git(&["checkout", "-q", "main"]);
    let project = support::declare_with(
        keys.path(),
        &node,
        "hello",
        &repo,
        &["linux"],
        &node,
        &[node.key()],
        &["--pull-requests"],
    );
    wait_decided(&node, &project, &first, "passed");
    let states = |sha: &str| -> Vec<String> {
        forge
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(sha))
            .map(|r| r.json()["state"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    wait_until(|| states(&first).last().is_some_and(|s| s == "success"));
    assert_eq!(states(&first), ["pending", "success"]);

    // A pull request event: its head is built, and its status posted.
    wait_until(|| {
        support::deliver_pull(&node, &repo, 7, &head);
        states(&head).last().is_some_and(|s| s == "success")
    });
    for request in forge.requests() {
        assert!(request.valid(), "{request:?}");
        assert_eq!(
            request.path.split('/').nth(2),
            Some("example"),
            "{}",
            request.path
        );
        let body = request.json();
        assert_eq!(body["context"], "buildmesh/linux");
        assert!(
            body["target_url"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:9/"),
            "{body}"
        );
    }
}

fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "never happened");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A recipe whose build prints `lines: N` and keeps it as the metric
/// `lines`.
fn lines_recipe(lines: u32) -> String {
    format!(
        "[[step]]\nname = \"test\"\ncommand = \"echo lines: {lines}\"\n\n\
         [metrics]\nlines = {{ step = \"test\", regex = 'lines: (\\d+)' }}\n"
    )
}

/// Lines 100, then 98, then 98 again: with the operator's "lines drop 1"
/// and the maintainer's "lines below 99" (set with `project thresholds`),
/// the drop is one regression event naming both crossings, and nothing
/// else is told.
#[test]
fn a_metric_that_crosses_thresholds_is_told_once_as_a_regression() {
    let hook = HttpSink::start(vec![]);
    let files = tempfile::tempdir().unwrap();
    let config = write_config(
        files.path(),
        &format!(
            r#"
[[notify]]
name = "regressions"
kind = "webhook"
url = "{hook}"
events = ["regression"]
thresholds = ["lines drop 1"]
"#,
            hook = hook.url(),
        ),
    );
    let keys = Maintainer::new();
    let node = launch(tempfile::tempdir().unwrap(), &keys, &config);
    let repo = Repo::new();
    let first = repo.commit_recipe(&lines_recipe(100), "Start");
    let project = declare(
        keys.path(),
        &node,
        "hello",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["project", "thresholds", "hello", "lines below 99", "--key"])
        .arg(keys.path().join("maintainer.key"))
        .args(["--node", &format!("http://{}", node.http)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("threshold set: lines below 99"), "{said}");
    wait_decided(&node, &project, &first, "passed");
    let dropped = repo.commit_recipe(&lines_recipe(98), "Count fewer lines");
    wait_decided(&node, &project, &dropped, "passed");
    let requests = hook.wait_for(1, WAIT);
    let same = repo.commit_file("README", "more", "Document lines");
    wait_decided(&node, &project, &same, "passed");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.requests().len(), 1, "{:#?}", hook.requests());
    let event = requests[0].json();
    assert_eq!(event["type"], "org.buildmesh.build.regression");
    let data = &event["data"];
    assert_eq!(data["commit"]["id"], dropped.as_str());
    let mut crossed: Vec<String> = data["crossings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(
                (c["previous"].as_f64(), c["value"].as_f64()),
                (Some(100.0), Some(98.0))
            );
            c["threshold"].as_str().unwrap().to_owned()
        })
        .collect();
    crossed.sort();
    assert_eq!(crossed, ["lines below 99", "lines drop 1"]);
    assert_eq!(
        data["headline"],
        format!("main regressed lines on linux at {}", short(&dropped))
    );
    // The chart marks the point that crossed the project's threshold (the
    // operator's are its notifier's own).
    let path = format!("/projects/{project}/metrics?metric=lines");
    let (code, _, page) = support::http_get(&node.http, &path, &[]);
    let page = String::from_utf8(page).unwrap();
    assert_eq!(code, 200, "{page}");
    assert_eq!(page.matches("class=\"crossing\"").count(), 1, "{page}");
    let marked = page.split("class=\"crossing\"").nth(1).unwrap();
    let marked = &marked[..marked.find("</circle>").unwrap()];
    assert!(
        marked.contains(&format!("data-commit=\"{dropped}\"")),
        "{marked}"
    );
}
