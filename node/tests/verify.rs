//! `buildmesh verify` against a real node, and against stand-ins for a
//! node that lies (issue 18, point 4): one serving a tampered entry, one
//! serving a matrix its entries do not give, one leaving a result out of
//! its entries while its matrix lists it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{
    Body, BuilderPolicy, Claim, CommitAnnouncement, CommitId, Entry, Outcome, ProjectDeclaration,
    ProjectId, PublicKey, Timestamp,
};
use buildmesh_test_servers::HttpSink;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{Node, result_body, wall_clock};

const PLATFORMS: [&str; 2] = ["linux", "mac"];

/// An honest project's log, and the entries the tests point at.
struct Log {
    project: ProjectId,
    commits: Vec<CommitId>,
    entries: Vec<Entry>,
    /// The builder's failed result of commit 1 on linux.
    failed: Entry,
    /// The builder's passed result of commit 0 on mac.
    passed_mac: Entry,
    /// The builder's last entry: its passed result of commit 1 on mac.
    last: Entry,
}

/// An owner declares "verified" (linux, mac) and announces three commits;
/// a builder passes commit 0 on both, fails commit 1 on linux, claims
/// commit 2 on linux for half an hour and, last, passes commit 1 on mac.
/// A third key, also a builder, signs two entries at one seq: a fork,
/// which an honest node keeps and serves, and which verify must report as
/// a note, not a finding.
fn honest_log() -> Log {
    let start = wall_clock().0 - 60_000;
    let at = |i: u64| Timestamp(start + i * 1_000);
    let owner_key = SigningKey::from_bytes(&[21; 32]);
    let builder_key = SigningKey::from_bytes(&[22; 32]);
    let forker_key = SigningKey::from_bytes(&[23; 32]);
    let owner = PublicKey::from(owner_key.verifying_key());
    let builder = PublicKey::from(builder_key.verifying_key());
    let forker = PublicKey::from(forker_key.verifying_key());
    let project = ProjectId::derive(&owner, "verified");
    let commits: Vec<CommitId> = (1..=3u8)
        .map(|n| CommitId::from_bytes(&[n; 20]).unwrap())
        .collect();
    let mut own = ChainWriter::new(owner_key);
    let mut entries = vec![
        own.write(
            at(0),
            Body::Project(ProjectDeclaration {
                name: "verified".into(),
                repository: "https://example.invalid/verified.git".into(),
                branches: vec!["main".into()],
                platforms: PLATFORMS.iter().map(|p| (*p).into()).collect(),
                announcers: vec![owner],
                builders: BuilderPolicy::Only(vec![owner, builder, forker]),
                builds_per_cell: 1,
            }),
        )
        .unwrap(),
    ];
    for (i, commit) in commits.iter().enumerate() {
        let body = Body::Announce(CommitAnnouncement {
            project,
            branch: "main".into(),
            commit: commit.clone(),
            parents: Vec::new(),
            title: format!("change {i}"),
            author: "Ada <ada@example.invalid>".into(),
            committed_at: at(i as u64),
        });
        entries.push(own.write(at(1 + i as u64), body).unwrap());
    }
    let mut build = ChainWriter::new(builder_key);
    let mut by_builder = |when: u64, body: Body| build.write(at(when), body).unwrap();
    let passed_linux = by_builder(
        10,
        result_body(project, &commits[0], "linux", Outcome::Passed),
    );
    let passed_mac = by_builder(
        11,
        result_body(project, &commits[0], "mac", Outcome::Passed),
    );
    let failed = by_builder(
        12,
        result_body(project, &commits[1], "linux", Outcome::Failed),
    );
    let claim = by_builder(
        13,
        Body::Claim(Claim {
            project,
            commit: commits[2].clone(),
            platform: "linux".into(),
            lease_expires: wall_clock().plus_ms(30 * 60 * 1_000),
        }),
    );
    let last = by_builder(
        14,
        result_body(project, &commits[1], "mac", Outcome::Passed),
    );
    entries.extend([
        passed_linux,
        passed_mac.clone(),
        failed.clone(),
        claim,
        last.clone(),
    ]);
    let mut fork = ChainWriter::new(forker_key);
    entries.push(
        fork.write(
            at(20),
            result_body(project, &commits[0], "linux", Outcome::Failed),
        )
        .unwrap(),
    );
    let mut sibling = fork.clone();
    entries.push(
        fork.write(
            at(21),
            result_body(project, &commits[2], "mac", Outcome::Failed),
        )
        .unwrap(),
    );
    entries.push(
        sibling
            .write(
                at(22),
                result_body(project, &commits[2], "mac", Outcome::Error),
            )
            .unwrap(),
    );
    Log {
        project,
        commits,
        entries,
        failed,
        passed_mac,
        last,
    }
}

/// A node holding the honest log, once its matrix shows all of it.
fn honest_node() -> (Node, Log) {
    let node = Node::start(None);
    let log = honest_log();
    let wires: Vec<Vec<u8>> = log.entries.iter().map(Entry::to_wire).collect();
    node.submit(&wires);
    node.wait_entries(log.entries.len() as u64, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let matrix = support::matrix(&node, &log.project.to_string());
        let status = |row: usize, column: usize| {
            matrix
                .as_ref()
                .map(|m| m["rows"][row]["cells"][column]["status"].clone())
        };
        if status(1, 1) == Some("passed".into()) && status(0, 0) == Some("building".into()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the matrix never showed the log: {matrix:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (node, log)
}

fn verify(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .arg("verify")
        .args(args)
        .env_remove("BUILDMESH_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `GET path` over HTTP/1.0, so the body comes whole and unchunked.
fn fetch(addr: &str, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200"));
    let body = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    answer[body..].to_vec()
}

/// What the honest node serves, to be doctored and served by a stand-in.
struct Served {
    entries: String,
    projects: Vec<u8>,
    node: Vec<u8>,
    matrix_path: String,
    matrix: Value,
}

impl Served {
    fn of(node: &Node, log: &Log) -> Served {
        let matrix_path = format!("/api/v1/projects/{}/matrix", log.project);
        Served {
            entries: String::from_utf8(fetch(&node.http, "/api/v1/entries")).unwrap(),
            projects: fetch(&node.http, "/api/v1/projects"),
            node: fetch(&node.http, "/api/v1/node"),
            matrix: serde_json::from_slice(&fetch(&node.http, &matrix_path)).unwrap(),
            matrix_path,
        }
    }

    /// A stand-in node serving these.
    fn serve(&self) -> HttpSink {
        let json = || "application/json".to_owned();
        HttpSink::pages(vec![
            (
                "/api/v1/entries".into(),
                "application/jsonl".into(),
                self.entries.clone().into_bytes(),
            ),
            ("/api/v1/projects".into(), json(), self.projects.clone()),
            ("/api/v1/node".into(), json(), self.node.clone()),
            (
                self.matrix_path.clone(),
                json(),
                self.matrix.to_string().into_bytes(),
            ),
        ])
    }

    /// The export's lines, and the index of the line of `entry`.
    fn line_of(&self, entry: &Entry) -> (Vec<String>, usize) {
        let lines: Vec<String> = self.entries.lines().map(str::to_owned).collect();
        let id = entry.id().to_string();
        let at = lines.iter().position(|l| l.contains(&id)).unwrap();
        (lines, at)
    }

    /// The column of `platform` and the row of `commit`.
    fn cell(&mut self, commit: &CommitId, platform: &str) -> &mut Value {
        let column = PLATFORMS.iter().position(|p| *p == platform).unwrap();
        let rows = self.matrix["rows"].as_array_mut().unwrap();
        let row = rows
            .iter_mut()
            .find(|r| r["commit"] == commit.to_string())
            .unwrap();
        &mut row["cells"][column]
    }
}

fn findings(output: &Output) -> Vec<Value> {
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    json["findings"].as_array().unwrap().clone()
}

#[test]
fn an_honest_node_verifies_and_a_fork_is_a_note() {
    let (node, log) = honest_node();
    let url = format!("http://{}", node.http);
    let output = verify(&["--node", &url]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    let entries = log.entries.len();
    assert!(
        text.starts_with(&format!(
            "node {url} : {entries} entries, 1 project, 0 findings (1 note)\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("forked: signed two different entries"),
        "{text}"
    );

    let output = verify(&["--node", &url, "--json", "--project", "verified"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["format"], "buildmesh-verify");
    assert_eq!(
        (json["clean"].clone(), json["source"].clone()),
        (true.into(), "node".into())
    );
    assert_eq!(json["entries"], entries);
    assert_eq!(json["notes"][0]["kind"], "fork");
    let newest = &json["projects"][0]["newest"];
    assert_eq!(newest["commit"], log.commits[2].to_string());
    assert_eq!(newest["cells"][0]["status"], "building");

    // The node's whole export, saved: the same entries, the same matrix.
    let saved = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(saved.path(), fetch(&node.http, "/api/v1/entries")).unwrap();
    let output = verify(&["--file", saved.path().to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    assert!(text.contains("project verified ("), "{text}");
    assert!(text.contains(": 3 commits; newest "), "{text}");
    assert!(text.contains("linux building, mac pending"), "{text}");
}

#[test]
fn what_cannot_be_checked_exits_2_and_says_why() {
    let output = verify(&["--node", "http://127.0.0.1:1"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("cannot reach a node at http://127.0.0.1:1"),
        "{error}"
    );
    let output = verify(&["--file", "/nonexistent/export.jsonl"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(
        verify(&[]).status.code(),
        Some(2),
        "neither --node nor --file"
    );
    let help = stdout(&verify(&["--help"]));
    assert!(
        help.contains("Examples:") && help.contains("--max-log-mib"),
        "{help}"
    );
}

#[test]
fn a_tampered_entry_is_named() {
    let (node, log) = honest_node();
    let mut served = Served::of(&node, &log);
    drop(node);
    let (lines, at) = served.line_of(&log.failed);
    let id = log.failed.id().to_string();
    // One byte of the signature, then (separately) one of the content.
    for field in ["\"signature\":\"", "\"content\":\""] {
        let mut tampered = lines.clone();
        let start = tampered[at].find(field).unwrap() + field.len() + 10;
        let digit = &tampered[at][start..start + 1];
        let flipped = if digit == "0" { "1" } else { "0" };
        tampered[at].replace_range(start..start + 1, flipped);
        served.entries = tampered.join("\n") + "\n";
        let site = served.serve();
        let output = verify(&["--node", &site.url()]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{field}: {text}");
        assert!(
            text.contains(&format!("finding: line {}: entry {id}", at + 1)),
            "{field}: {text}"
        );
        let output = verify(&["--node", &site.url(), "--json"]);
        let bad: Vec<Value> = findings(&output)
            .into_iter()
            .filter(|f| f["kind"] == "bad_entry")
            .collect();
        assert_eq!(bad.len(), 1, "{field}: {bad:?}");
        assert_eq!(
            (bad[0]["id"].clone(), bad[0]["line"].clone()),
            (id.clone().into(), (at + 1).into())
        );
    }
}

#[test]
fn a_matrix_its_entries_do_not_give_is_caught_cell_by_cell() {
    let (node, log) = honest_node();
    let mut served = Served::of(&node, &log);
    drop(node);
    // The failed cell shown as passed, a result left out of another.
    served.cell(&log.commits[1], "linux")["status"] = "passed".into();
    served.cell(&log.commits[0], "mac")["results"] = Value::Array(Vec::new());
    // And a project the log does not declare.
    let mut projects: Value = serde_json::from_slice(&served.projects).unwrap();
    let made_up = serde_json::json!({"project": "ab".repeat(32), "name": "made-up", "owner": "cd".repeat(32)});
    projects["projects"].as_array_mut().unwrap().push(made_up);
    served.projects = projects.to_string().into_bytes();
    let site = served.serve();

    let output = verify(&["--node", &site.url()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains(" 3 findings"), "{text}");
    let cell = |commit: &CommitId, platform: &str| {
        format!(
            "project verified ({}) commit {} × {platform}",
            &log.project.to_string()[..12],
            commit.short()
        )
    };
    assert!(
        text.contains(&format!(
            "{}: served as passed; its entries give failed",
            cell(&log.commits[1], "linux")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}: leaves out result {}",
            cell(&log.commits[0], "mac"),
            log.passed_mac.id()
        )),
        "{text}"
    );
    assert!(
        text.contains("made-up (abababababab): listed by the node"),
        "{text}"
    );

    let output = verify(&["--node", &site.url(), "--json"]);
    let found = findings(&output);
    let status = found.iter().find(|f| f["kind"] == "cell_status").unwrap();
    assert_eq!(status["commit"], log.commits[1].to_string());
    assert_eq!(status["platform"], "linux");
    assert_eq!(
        (status["served"].clone(), status["derived"].clone()),
        ("passed".into(), serde_json::json!(["failed"]))
    );
    let dropped = found
        .iter()
        .find(|f| f["kind"] == "result_dropped")
        .unwrap();
    assert_eq!(dropped["id"], log.passed_mac.id().to_string());
    assert!(found.iter().any(|f| f["kind"] == "project_not_in_log"));
}

#[test]
fn a_result_left_out_of_the_entries_but_listed_in_the_matrix_is_caught() {
    let (node, log) = honest_node();
    let mut served = Served::of(&node, &log);
    drop(node);
    // The builder's newest entry: leaving it out leaves no gap in its
    // chain, so only the matrix can give it away.
    let (mut lines, at) = served.line_of(&log.last);
    lines.remove(at);
    served.entries = lines.join("\n") + "\n";
    let site = served.serve();

    let output = verify(&["--node", &site.url(), "--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let found = findings(&output);
    assert_eq!(found.len(), 2, "{found:#?}");
    let made_up = found
        .iter()
        .find(|f| f["kind"] == "result_not_in_log")
        .unwrap();
    assert_eq!(made_up["id"], log.last.id().to_string());
    assert_eq!(made_up["commit"], log.commits[1].to_string());
    assert_eq!(made_up["platform"], "mac");
    // Without the result, the log gives that cell pending.
    let status = found.iter().find(|f| f["kind"] == "cell_status").unwrap();
    assert_eq!(status["served"], "passed");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["attempts"], 2, "a difference in views is read twice");
    assert_eq!(json["settled"], true);
}

/// A fork whose only evidence is a sibling that does not link (its `prev`
/// names an entry the node never saw) keeps the builder's results from
/// counting on the node. The export ends with that sibling, so verify
/// sees the same fork and finds nothing; without it, every cell the
/// builder decided would read as doctored.
#[test]
fn a_fork_sibling_that_does_not_link_is_served_and_verify_agrees() {
    let (node, log) = honest_node();
    let url = format!("http://{}", node.http);
    let mut other = ChainWriter::new(SigningKey::from_bytes(&[22; 32]));
    let t = wall_clock();
    let unsent = result_body(log.project, &log.commits[0], "linux", Outcome::Failed);
    other.write(t, unsent).unwrap();
    let late = result_body(log.project, &log.commits[0], "mac", Outcome::Failed);
    let broken = other.write(Timestamp(t.0 + 1), late).unwrap();
    node.submit(&[broken.to_wire()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        let export = String::from_utf8(fetch(&node.http, "/api/v1/entries")).unwrap();
        let matrix = fetch(
            &node.http,
            &format!("/api/v1/projects/{}/matrix", log.project),
        );
        let matrix: Value = serde_json::from_slice(&matrix).unwrap();
        // The builder's results no longer count: commit 0 is pending.
        let last_row = &matrix["rows"][2]["cells"][0]["status"];
        if export.contains(&broken.id().to_string()) && last_row == "pending" {
            break export;
        }
        assert!(Instant::now() < deadline, "{export}\n{matrix}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(served.trim_end().ends_with('}'), "{served}");
    let output = verify(&["--node", &url]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{output:?}");
    assert!(text.contains("0 findings (2 notes)"), "{text}");
}
