//! Issue, item 15: a build's work dir is removed however the build ends:
//! cancelled because another builder's result made it unneeded, stopped
//! with the node (SIGTERM), or left by a node that was SIGKILLed (removed
//! by the next start of that node, which leaves everything else in its
//! work root alone). Real nodes, real sandboxed steps.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{CommitId, Outcome, ProjectId, PublicKey};
use ed25519_dalek::SigningKey;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, local_builder_flags};

/// A step that marks its work dir, then sleeps far longer than any test
/// waits, with `token` in its command line so the test can look for it.
fn long_recipe(token: &str) -> String {
    format!(
        "[[step]]\nname = \"long\"\ncommand = \"touch started; mkdir -p deep/er; sleep {token}\"\n"
    )
}

/// A sleep no other test (or process) uses: seconds, with a fraction made
/// of this process's id and a per-test number.
fn token(n: u32) -> String {
    format!("600.{}{n}", std::process::id())
}

/// The work dirs under the node's work root.
fn work_dirs(data: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data.join("work")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits (up to 60 s) until a build's step has started in a work dir;
/// returns that work dir's area.
fn wait_building(data: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(area) = work_dirs(data)
            .into_iter()
            .find(|a| a.join("src/started").exists())
        {
            return area;
        }
        assert!(Instant::now() < deadline, "no build started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (up to 15 s) until `done` holds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process with `token` in its command line is alive.
fn step_alive(token: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        !zombie && String::from_utf8_lossy(&cmdline).contains(token)
    })
}

/// A node building platform `linux` of a project whose recipe is
/// `recipe`, started with `more` flags; `builders` are further keys
/// allowed to report results.
struct Setup {
    _repo: Repo,
    _keys: Maintainer,
    node: Node,
    project: String,
    commit: String,
    flags: Vec<String>,
}

fn setup(recipe: &str, builders: &[String], more: &[&str]) -> Setup {
    let repo = Repo::new();
    let commit = repo.commit_recipe(recipe, "long");
    let keys = Maintainer::new();
    let mut flags_more = vec!["--lease-secs", "3", "--accept-maintainer", &keys.key];
    flags_more.extend(more);
    let flags: Vec<String> = local_builder_flags(&["linux"], &flags_more)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let node = launch(tempfile::tempdir().unwrap(), &flags);
    let mut all = vec![node.key()];
    all.extend(builders.iter().cloned());
    let project = support::declare_keys(keys.path(), &node, "long", &repo, &["linux"], &node, &all);
    Setup {
        _repo: repo,
        _keys: keys,
        node,
        project,
        commit,
        flags,
    }
}

fn launch(dir: tempfile::TempDir, flags: &[String]) -> Node {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Node::launch(dir, vec![], &flags)
}

/// A passing result for the cell, signed by `key` (a builder the project
/// names), as another builder would report it.
fn result_from(key: &SigningKey, project: &str, commit: &str) -> Vec<u8> {
    let project = project.parse::<ProjectId>().unwrap();
    let commit = commit.parse::<CommitId>().unwrap();
    let body = support::result_body(project, &commit, "linux", Outcome::Passed);
    let mut writer = ChainWriter::new(key.clone());
    writer.write(support::wall_clock(), body).unwrap().to_wire()
}

#[test]
fn a_cancelled_build_leaves_no_work_dir_nor_process() {
    let other = SigningKey::from_bytes(&[71; 32]);
    let other_key = PublicKey::from(other.verifying_key()).to_string();
    let token = token(1);
    let setup = setup(&long_recipe(&token), &[other_key], &[]);
    let area = wait_building(setup.node.dir());
    assert!(step_alive(&token));
    // Another builder's result: the cell needs no more builds, so the
    // node cancels its own.
    setup
        .node
        .submit(&[result_from(&other, &setup.project, &setup.commit)]);
    wait_until("the cancelled build's work dir is still there", || {
        !area.exists()
    });
    assert!(!step_alive(&token), "the cancelled step still runs");
    wait_until("the build is not counted as cancelled", || {
        setup.node.status()["builds_cancelled"] == 1
    });
    assert_eq!(work_dirs(setup.node.dir()), Vec::<PathBuf>::new());
}

#[test]
fn a_node_stopped_mid_build_removes_its_work_dir() {
    stopped_mid_build(2, &[]);
}

/// Without a sandbox nothing ties a step to the node's life: the node
/// itself must kill the step's group before it exits.
#[test]
fn an_unsandboxed_node_stopped_mid_build_kills_its_step_and_removes_its_work_dir() {
    stopped_mid_build(4, &["--unsandboxed"]);
}

fn stopped_mid_build(n: u32, more: &[&str]) {
    let token = token(n);
    let setup = setup(&long_recipe(&token), &[], more);
    let area = wait_building(setup.node.dir());
    let stopped = Instant::now();
    let data = setup.node.stop();
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
    assert!(!area.exists(), "{} survived a clean stop", area.display());
    assert!(!step_alive(&token), "the step outlived the node");
    assert_eq!(work_dirs(data.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_restart_after_a_crash_removes_the_work_dirs_left_and_nothing_else() {
    let token = token(3);
    let Setup {
        _repo,
        _keys,
        node,
        flags,
        ..
    } = setup(&long_recipe(&token), &[], &[]);
    let area = wait_building(node.dir());
    let data = node.crash();
    // The sandbox dies with the node; its work dir stays behind.
    wait_until("the step outlived its node", || !step_alive(&token));
    assert!(area.join("src/started").exists());
    // Things in the work root the node did not make, named nearly like
    // its work dirs: they must survive.
    let work = data.path().join("work");
    let foreign = [
        "keep-me",
        "abcdef0123-12-x",
        "abcdef0123-12",
        "ABCDEF0123-12-3",
        "abcdef0123-12-3.bak",
    ]
    .map(|name| work.join(name));
    for path in &foreign {
        std::fs::create_dir(path).unwrap();
        std::fs::write(path.join("file"), "mine").unwrap();
    }
    std::fs::write(work.join("notes.txt"), "mine").unwrap();
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("precious"), "mine").unwrap();
    let link = work.join("0123456789-1-1");
    std::os::unix::fs::symlink(target.path(), &link).unwrap();
    // Restarted: the new node may build the cell again (in a new work
    // dir), but the old one is gone once it is up.
    let node = launch(data, &flags);
    assert!(!area.exists(), "{} survived a restart", area.display());
    for path in &foreign {
        assert!(path.join("file").exists(), "{}", path.display());
    }
    assert!(work.join("notes.txt").exists());
    assert!(link.is_symlink() && target.path().join("precious").exists());
    drop(node);
}
