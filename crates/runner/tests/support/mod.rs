//! Helpers shared by the runner's integration tests: real git repositories
//! in temp dirs, a runner context in a temp dir, process-group checks.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_protocol::{Body, CommitId, ProjectId};
use buildmesh_runner::{BlobDir, BuildJob, BuildReport, RunnerContext};
use git2::{IndexAddOption, Repository, Signature, Time};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A source repository with a work tree, committed to with git2.
pub struct Source {
    pub dir: TempDir,
    pub repo: Repository,
}

impl Source {
    pub fn new() -> Source {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        Source { dir, repo }
    }

    /// The URL a mirror fetches from: the plain path.
    pub fn url(&self) -> String {
        self.dir.path().to_str().unwrap().to_owned()
    }

    /// Writes `files` (path, content), removes `removed`, commits all of it
    /// on the current branch.
    pub fn commit(&self, files: &[(&str, &str)], removed: &[&str], message: &str) -> CommitId {
        for (path, content) in files {
            let path = self.dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        for path in removed {
            std::fs::remove_file(self.dir.path().join(path)).unwrap();
        }
        self.commit_work_tree(message)
    }

    /// Commits the work tree as it is.
    pub fn commit_work_tree(&self, message: &str) -> CommitId {
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let time = Time::new(1_700_000_000, 0);
        let alice = Signature::new("Alice", "alice@example.invalid", &time).unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<_> = parent.iter().collect();
        let oid = self
            .repo
            .commit(Some("HEAD"), &alice, &alice, message, &tree, &parents)
            .unwrap();
        CommitId::from_bytes(oid.as_bytes()).unwrap()
    }

    /// Commits a recipe (and any other files).
    pub fn commit_recipe(&self, recipe: &str, files: &[(&str, &str)]) -> CommitId {
        let mut all = vec![(".buildmesh.toml", recipe)];
        all.extend_from_slice(files);
        self.commit(&all, &[], "add a recipe")
    }
}

/// Directories for mirrors, work dirs and blobs, and a context over them.
pub struct Node {
    pub dir: TempDir,
    pub context: RunnerContext,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        let mut context =
            RunnerContext::new(dir.path().join("mirrors"), dir.path().join("work"), blobs);
        // Every test repository is a temp dir on this machine.
        context.allow_local_repositories = true;
        Node { dir, context }
    }

    pub fn job(&self, source: &Source, commit: &CommitId) -> BuildJob {
        BuildJob {
            project: ProjectId([7; 32]),
            repository: source.url(),
            commit: commit.clone(),
            platform: "linux-x86_64".into(),
        }
    }

    /// The stored log of a blob, as text.
    pub fn log(&self, hash: &buildmesh_protocol::BlobHash) -> String {
        let bytes = std::fs::read(self.context.blobs.path(hash)).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// Whether every work dir is gone.
    pub fn work_is_empty(&self) -> bool {
        match std::fs::read_dir(&self.context.work) {
            Ok(entries) => entries.count() == 0,
            Err(_) => true,
        }
    }
}

/// The result passes the protocol's checks and signs as an entry.
pub fn assert_valid(report: &BuildReport) {
    let body = Body::Result(report.result.clone());
    body.validate().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let author = buildmesh_protocol::PublicKey::from(key.verifying_key());
    let content =
        buildmesh_protocol::EntryContent::first(author, buildmesh_protocol::Timestamp(1), body);
    buildmesh_protocol::Entry::sign(&key, content).unwrap();
}

/// Every file under `dir` (relative paths, sorted), directories left out.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::from(dir)];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                let relative = entry.path().strip_prefix(dir).unwrap().to_owned();
                found.push(relative.to_str().unwrap().to_owned());
            }
        }
    }
    found.sort();
    found
}

/// Live (not zombie) processes in process group `group`, from /proc.
pub fn live_members(group: i32) -> Vec<i32> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (state, pgrp) = (fields[0], fields[2].parse::<i32>().unwrap_or(0));
        if pgrp == group && state != "Z" && state != "X" {
            members.push(pid);
        }
    }
    members
}

/// Whether `pid` is a live (not zombie) process.
pub fn is_live(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Waits (up to 3 s) until group `group` has no live process.
pub fn group_is_gone(group: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if live_members(group).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Reads a pid a step wrote into `path`.
pub fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
