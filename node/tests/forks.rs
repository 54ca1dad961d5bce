//! Fork proofs travel, and revocation counts from the revocation on
//! (issue 18, point 3), with real `buildmesh node` processes on 127.0.0.1.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{
    Body, BuilderPolicy, Entry, EntryContent, EntryId, Outcome, ProjectDeclaration, ProjectId,
    PublicKey, Timestamp,
};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    Maintainer, Node, announcement, cell, commit_of, http, result_body, submit_body,
    wait_converged, wall_clock,
};

const LINUX: &str = "linux-x86_64";

/// An owner's project "forked" on linux whose only builder is `builder`,
/// with commits 1 and 2 announced.
struct Project {
    id: ProjectId,
    entries: Vec<Entry>,
    t: u64,
}

impl Project {
    fn new(seed: u8, builder: PublicKey) -> Project {
        let mut owner = ChainWriter::new(SigningKey::from_bytes(&[seed; 32]));
        let id = ProjectId::derive(&owner.author(), "forked");
        let t = wall_clock().0 - 60_000;
        let declaration = Body::Project(ProjectDeclaration {
            name: "forked".into(),
            repository: "https://example.invalid/forked.git".into(),
            branches: vec!["main".into()],
            platforms: vec![LINUX.into()],
            announcers: Vec::new(),
            builders: BuilderPolicy::Only(vec![builder]),
            builds_per_cell: 1,
        });
        let mut entries = vec![owner.write(Timestamp(t), declaration).unwrap()];
        for i in 1..=2 {
            let body = announcement(id, i, Timestamp(t));
            entries.push(owner.write(Timestamp(t + u64::from(i)), body).unwrap());
        }
        Project {
            id,
            entries,
            t: t + 10,
        }
    }

    /// The next time, a millisecond after the last.
    fn tick(&mut self) -> Timestamp {
        self.t += 1;
        Timestamp(self.t)
    }

    fn status(&self, node: &Node, commit: u32) -> Option<String> {
        let found = cell(
            node,
            &self.id.to_string(),
            &commit_of(commit).to_string(),
            LINUX,
        )?;
        found["status"].as_str().map(str::to_owned)
    }
}

fn wires(entries: &[&Entry]) -> Vec<Vec<u8>> {
    entries.iter().map(|e| e.to_wire()).collect()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// The authors `node` holds a fork proof against, with each proof's seq.
fn forks(node: &Node) -> Vec<(String, u64)> {
    let (code, body) = http(&node.http, "GET", "/api/v1/forks", "");
    assert_eq!(code, 200, "{body}");
    body["forks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["author"].as_str().unwrap().to_owned(),
                f["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn holds(node: &Node, entry: &Entry) -> bool {
    let path = format!("/api/v1/entries/{}", entry.id());
    http(&node.http, "GET", &path, "").0 == 200
}

/// A trusted builder signs two results at one sequence number. One reaches
/// only n1, the other only n5, while both are cut off from every other
/// node (five nodes started in a line find each other through Kademlia,
/// so each end bans all the others); n1 rejoins first, so n2, n3 and n4
/// take the first by sync, then n5 rejoins with the second. No node is
/// ever handed both (submitted entries travel by sync, never by gossip,
/// and every version vector says "seq 2"), yet every node must prove the
/// fork, stop counting the builder, and refuse what it signs next.
#[test]
fn a_fork_split_across_a_five_node_line_is_proven_and_frozen_on_every_node() {
    let mut line = vec![Node::start(None)];
    for _ in 1..5 {
        let next = Node::start(line.last());
        line.push(next);
    }
    let all: Vec<&Node> = line.iter().collect();
    let forker_key = SigningKey::from_bytes(&[42; 32]);
    let mut forker = ChainWriter::new(forker_key);
    let mut project = Project::new(41, forker.author());
    let (c1, c2) = (commit_of(1), commit_of(2));
    let passed = forker
        .write(
            project.tick(),
            result_body(project.id, &c1, LINUX, Outcome::Passed),
        )
        .unwrap();
    let mut common: Vec<&Entry> = project.entries.iter().collect();
    common.push(&passed);
    line[0].submit(&wires(&common));
    wait_converged(&all, 4, Duration::from_secs(60));
    wait_until(
        "n3 counts the builder's result",
        Duration::from_secs(30),
        || project.status(&line[2], 1).as_deref() == Some("passed"),
    );

    // The cut: n1 and n5 are dropped by everyone, live.
    let ban = |end: usize, others: &[usize], banned: bool| {
        for &other in others {
            line[end].ban(&line[other], banned);
            line[other].ban(&line[end], banned);
        }
    };
    ban(0, &[1, 2, 3, 4], true);
    ban(4, &[1, 2, 3], true);
    wait_until("the ends are cut off", Duration::from_secs(30), || {
        line[0].peers().is_empty() && line[4].peers().is_empty()
    });
    let (mut a, mut b) = (forker.clone(), forker);
    let sibling_a = a
        .write(
            project.tick(),
            result_body(project.id, &c2, LINUX, Outcome::Passed),
        )
        .unwrap();
    let sibling_b = b
        .write(
            project.tick(),
            result_body(project.id, &c2, LINUX, Outcome::Failed),
        )
        .unwrap();
    assert_eq!((sibling_a.seq(), sibling_b.seq()), (2, 2));
    line[0].submit(&wires(&[&sibling_a]));
    line[4].submit(&wires(&[&sibling_b]));
    line[0].wait_entries(5, Duration::from_secs(10));
    line[4].wait_entries(5, Duration::from_secs(10));

    let healed = Instant::now();
    ban(0, &[1, 2, 3], false);
    wait_until(
        "n2, n3 and n4 take n1's sibling",
        Duration::from_secs(60),
        || line[1..4].iter().all(|n| holds(n, &sibling_a)),
    );
    assert!(
        line.iter().all(|n| forks(n).is_empty()),
        "no node holds both yet"
    );
    let rejoined = Instant::now();
    ban(4, &[0, 1, 2, 3], false);

    let author = project_author(&sibling_a);
    let took = wait_until(
        "every node holds the proof",
        Duration::from_secs(60),
        || line.iter().all(|n| forks(n) == [(author.clone(), 2)]),
    );
    eprintln!(
        "fork proven on all five nodes {took:?} after n5's bans were lifted ({:?} after n1's)",
        rejoined.duration_since(healed) + took
    );
    wait_converged(&all, 6, Duration::from_secs(60));
    for (i, node) in line.iter().enumerate() {
        assert!(
            holds(node, &sibling_a) && holds(node, &sibling_b),
            "n{}",
            i + 1
        );
        wait_until(
            "the forked builder counts nowhere",
            Duration::from_secs(30),
            || {
                project.status(node, 1).as_deref() == Some("pending")
                    && project.status(node, 2).as_deref() == Some("pending")
            },
        );
    }

    // What it signs next is refused, on a node that never saw either
    // sibling first-hand, and is neither stored nor served.
    let next = a
        .write(
            project.tick(),
            result_body(project.id, &c1, LINUX, Outcome::Passed),
        )
        .unwrap();
    let body = serde_json::json!({ "entries": [hex::encode(next.to_wire())] }).to_string();
    let reply = submit_body(&line[2].http, &body);
    let outcome = reply["results"][0]["outcome"].as_str().unwrap().to_owned();
    assert!(outcome.contains("signed two histories"), "{reply}");
    std::thread::sleep(Duration::from_secs(1));
    for node in &line {
        assert_eq!(node.status()["entries"], 6);
        assert!(!holds(node, &next));
    }
}

fn project_author(entry: &Entry) -> String {
    entry.author().to_string()
}

/// `buildmesh project trust --revoke` through a real node: the builder's
/// results through the newest entry the node holds keep counting, and
/// what it signs after them counts nowhere, even dated before the
/// revocation (a new result, or one flipping a cell it decided);
/// `--keep-through none` then takes back the rest, and an entry of
/// another key is refused with a reason.
#[test]
fn a_revoked_builder_cannot_backdate_results_past_its_revocation() {
    let node = Node::start(None);
    let maintainer = Maintainer::new();
    let mut builder = ChainWriter::new(SigningKey::from_bytes(&[44; 32]));
    let mut announcer = ChainWriter::new(SigningKey::from_bytes(&[43; 32]));
    let buildmesh = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .args(args)
            .arg("--key")
            .arg(maintainer.path().join("maintainer.key"))
            .args(["--node", &format!("http://{}", node.http)])
            .output()
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.success(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    let (builder_key, announcer_key) =
        (builder.author().to_string(), announcer.author().to_string());
    let declared = buildmesh(&[
        "project",
        "declare",
        "revoked",
        "--repo",
        "https://example.invalid/r.git",
        "--platform",
        LINUX,
        "--builder",
        &builder_key,
        "--announcer",
        &announcer_key,
    ]);
    assert!(declared.0, "{declared:?}");
    let owner: PublicKey = maintainer.key.parse().unwrap();
    let project = ProjectId::derive(&owner, "revoked");
    let t = wall_clock().0 - 60_000;
    let mut entries = Vec::new();
    for i in 1..=2 {
        let at = Timestamp(t + u64::from(i));
        entries.push(announcer.write(at, announcement(project, i, at)).unwrap());
    }
    let passed = result_body(project, &commit_of(1), LINUX, Outcome::Passed);
    entries.push(builder.write(Timestamp(t + 10), passed).unwrap());
    node.submit(&wires(&entries.iter().collect::<Vec<_>>()));
    let status = |commit| {
        let found = cell(
            &node,
            &project.to_string(),
            &commit_of(commit).to_string(),
            LINUX,
        );
        found.and_then(|c| c["status"].as_str().map(str::to_owned))
    };
    wait_until(
        "the builder's result counts",
        Duration::from_secs(30),
        || status(1).as_deref() == Some("passed"),
    );

    let revoked = buildmesh(&[
        "project",
        "trust",
        "revoked",
        &builder_key,
        "--role",
        "builder",
        "--revoke",
    ]);
    assert!(revoked.0, "{revoked:?}");
    assert!(
        revoked.1.contains("through entry 1 of its chain"),
        "{revoked:?}"
    );
    // The status is published a moment after an entry is stored: count
    // what was sent (the declaration, the revocation, and `entries`).
    let stored = entries.len() as u64 + 2;
    node.wait_entries(stored, Duration::from_secs(30));
    // Dated long before the revocation, signed after it.
    let backdated = [
        result_body(project, &commit_of(2), LINUX, Outcome::Passed),
        result_body(project, &commit_of(1), LINUX, Outcome::Failed),
    ]
    .map(|body| builder.write(Timestamp(t + 11), body).unwrap());
    node.submit(&wires(&backdated.iter().collect::<Vec<_>>()));
    node.wait_entries(stored + 2, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        status(1).as_deref(),
        Some("passed"),
        "kept, and not flipped"
    );
    assert_eq!(status(2).as_deref(), Some("pending"), "signed after");

    let wrong = buildmesh(&[
        "project",
        "trust",
        "revoked",
        &builder_key,
        "--role",
        "builder",
        "--revoke",
        "--keep-through",
        &entries[0].id().to_string(),
    ]);
    assert!(!wrong.0 && wrong.2.contains("did not sign"), "{wrong:?}");
    let none = buildmesh(&[
        "project",
        "trust",
        "revoked",
        &builder_key,
        "--role",
        "builder",
        "--revoke",
        "--keep-through",
        "none",
    ]);
    assert!(
        none.0 && none.1.contains("none of its results count"),
        "{none:?}"
    );
    wait_until("nothing of it counts", Duration::from_secs(30), || {
        status(1).as_deref() == Some("pending")
    });
}

/// `buildmesh verify --node` of `node` with `--json`: how it exited, and
/// what it printed.
fn verify_json(node: &Node) -> (std::process::Output, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args([
            "verify",
            "--node",
            &format!("http://{}", node.http),
            "--json",
        ])
        .env_remove("BUILDMESH_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap();
    (output, json)
}

/// Gives `node` the project's entries and a fork of `builder` whose second
/// entry does not link: `builder` passes commit 1; its ghost (the same
/// key) fails commit 1 (never sent), then commit 2 on top of that.
fn unlinked_fork(node: &Node, builder: &mut ChainWriter, project: &mut Project) {
    let mut ghost = builder.clone();
    let mut result = |writer: &mut ChainWriter, commit, outcome| {
        let body = result_body(project.id, &commit_of(commit), LINUX, outcome);
        writer.write(project.tick(), body).unwrap()
    };
    let passed = result(builder, 1, Outcome::Passed);
    let _never_sent = result(&mut ghost, 1, Outcome::Failed);
    let stray = result(&mut ghost, 2, Outcome::Failed);
    let mut all: Vec<&Entry> = project.entries.iter().collect();
    all.extend([&passed, &stray]);
    node.submit(&wires(&all));
}

/// A fork whose second entry does not link (it follows an entry the node
/// never got) is served by `GET /api/v1/entries` after the linked entries,
/// so `buildmesh verify` sees why the forked builder counts nowhere and
/// finds the node honest.
#[test]
fn verify_sees_a_fork_whose_evidence_does_not_link() {
    let node = Node::start(None);
    let key = SigningKey::from_bytes(&[46; 32]);
    let mut builder = ChainWriter::new(key.clone());
    let mut project = Project::new(45, builder.author());
    unlinked_fork(&node, &mut builder, &mut project);
    node.wait_entries(5, Duration::from_secs(30));
    assert_eq!(forks(&node), [(builder.author().to_string(), 2)]);
    wait_until(
        "the matrix drops the forked builder",
        Duration::from_secs(30),
        || project.status(&node, 1).as_deref() == Some("pending"),
    );
    let (output, json) = verify_json(&node);
    assert_eq!(output.status.code(), Some(0), "{json:#}");
    assert_eq!(json["entries"], 5, "the stray entry is served: {json:#}");
    assert_eq!(json["notes"][0]["kind"], "fork", "{json:#}");
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(0));
}

/// Forks that never link against more authors than an export once held
/// evidence for (1,024), all with keys below the one forked builder a
/// project trusts: `GET /api/v1/entries` still serves that builder's
/// stray entry, and `buildmesh verify` finds the node honest (review 3,
/// M3: the evidence was cut in author order, silently, and verify then
/// counted the builder the node rightly dropped).
#[test]
fn verify_sees_a_trusted_builders_fork_behind_many_garbage_forks() {
    let mut seeds: Vec<[u8; 32]> = (0..1101u32)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            seed
        })
        .collect();
    seeds.sort_by_key(|seed| SigningKey::from_bytes(seed).verifying_key().to_bytes());
    let builder_seed = seeds.pop().unwrap();
    let node = Node::start(None);
    let garbage: Vec<Entry> = seeds.iter().flat_map(garbage_fork).collect();
    node.submit(&wires(&garbage.iter().collect::<Vec<_>>()));

    let mut builder = ChainWriter::new(SigningKey::from_bytes(&builder_seed));
    let mut project = Project::new(47, builder.author());
    unlinked_fork(&node, &mut builder, &mut project);
    let total = garbage.len() as u64 + 5;
    node.wait_entries(total, Duration::from_secs(60));
    wait_until("the node holds every fork", Duration::from_secs(30), || {
        http(&node.http, "GET", "/api/v1/forks", "").1["total"] == seeds.len() + 1
    });
    wait_until(
        "the matrix drops the forked builder",
        Duration::from_secs(30),
        || project.status(&node, 1).as_deref() == Some("pending"),
    );
    let (output, json) = verify_json(&node);
    assert_eq!(
        json["findings"],
        serde_json::json!([]),
        "{}",
        json["findings"]
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json["entries"], total, "every stray entry is served");
}

/// A fork that never links by the author with this seed: a declaration
/// (a role), an announcement at seq 2, and another seq 2 whose `prev` is
/// no entry at all.
fn garbage_fork(seed: &[u8; 32]) -> Vec<Entry> {
    let key = SigningKey::from_bytes(seed);
    let mut writer = ChainWriter::new(key.clone());
    let t = wall_clock().0 - 60_000;
    let declaration = Body::Project(ProjectDeclaration {
        name: "garbage".into(),
        repository: "https://example.invalid/garbage.git".into(),
        branches: vec!["main".into()],
        platforms: vec![LINUX.into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Open,
        builds_per_cell: 1,
    });
    let first = writer.write(Timestamp(t), declaration).unwrap();
    let id = ProjectId::derive(&writer.author(), "garbage");
    let linked = writer
        .write(Timestamp(t + 1), announcement(id, 1, Timestamp(t)))
        .unwrap();
    let content = EntryContent {
        author: writer.author(),
        seq: 2,
        prev: EntryId([1; 32]),
        timestamp: Timestamp(t + 2),
        body: announcement(id, 2, Timestamp(t)),
    };
    let unlinked = Entry::sign(&key, content).unwrap();
    vec![first, linked, unlinked]
}
