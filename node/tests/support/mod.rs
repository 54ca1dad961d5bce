//! Running `buildmesh node` processes on 127.0.0.1 and talking to them over
//! HTTP: shared by the mesh tests and the mesh benchmark.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{
    Body, BuildResult, BuilderPolicy, CommitAnnouncement, CommitId, Outcome, ProjectDeclaration,
    ProjectId, Timestamp, sha256,
};
use ed25519_dalek::SigningKey;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How to start a node beyond its flags.
#[derive(Debug, Default, Clone)]
pub struct Launch {
    /// Where its stderr goes, logged at `info` (appended to: a restarted
    /// node adds to it); `None`: the test's stderr, at `warn`.
    pub log: Option<PathBuf>,
    /// Variables set in its environment (a `PATH` without bubblewrap).
    pub env: Vec<(String, String)>,
    /// Its file descriptor limit, soft and hard (`None`: this process's),
    /// set by util-linux `prlimit`, which then becomes the node.
    pub nofile: Option<u64>,
}

/// A running node and what it printed about itself.
pub struct Node {
    pub child: Child,
    pub http: String,
    pub listen: String,
    /// The operator link the node printed at start.
    pub operator_link: String,
    _dir: tempfile::TempDir,
}

impl Node {
    pub fn start(bootstrap: Option<&Node>) -> Node {
        Node::start_in(tempfile::tempdir().unwrap(), bootstrap)
    }

    pub fn start_in(dir: tempfile::TempDir, bootstrap: Option<&Node>) -> Node {
        Node::start_with(dir, bootstrap.into_iter().collect())
    }

    pub fn start_with(dir: tempfile::TempDir, bootstrap: Vec<&Node>) -> Node {
        Node::launch(dir, bootstrap, &[])
    }

    /// A node with `extra` flags (platforms, intervals, ...).
    pub fn launch(dir: tempfile::TempDir, bootstrap: Vec<&Node>, extra: &[&str]) -> Node {
        Node::launch_with(dir, bootstrap, extra, &Launch::default())
    }

    /// [`Node::launch`], with its log captured or its environment changed.
    pub fn launch_with(
        dir: tempfile::TempDir,
        bootstrap: Vec<&Node>,
        extra: &[&str],
        launch: &Launch,
    ) -> Node {
        let mut command = match launch.nofile {
            Some(n) => {
                let mut prlimit = Command::new("prlimit");
                prlimit.arg(format!("--nofile={n}:{n}"));
                prlimit.arg(env!("CARGO_BIN_EXE_buildmesh"));
                prlimit
            }
            None => Command::new(env!("CARGO_BIN_EXE_buildmesh")),
        };
        command.args(["node", "--data-dir", dir.path().to_str().unwrap()]);
        command.args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--http",
            "127.0.0.1:0",
            "--sync-interval-secs",
            "2",
        ]);
        for peer in bootstrap {
            command.args(["--bootstrap", &peer.listen]);
        }
        command.args(extra);
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        match &launch.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap();
                // No NO_COLOR: a node writing to a file must leave colours
                // out by itself (donor.rs checks).
                command
                    .env("RUST_LOG", "info,libp2p=warn")
                    .env_remove("NO_COLOR")
                    .stderr(file);
            }
            None => {
                // BUILDMESH_TEST_LOG=debug (any RUST_LOG filter) shows what
                // the nodes of a test or bench do.
                let filter = std::env::var("BUILDMESH_TEST_LOG").unwrap_or_else(|_| "warn".into());
                command.env("RUST_LOG", filter).stderr(Stdio::inherit());
            }
        }
        command.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut http, mut peer_id, mut listen, mut link) = (None, None, None, None);
        while http.is_none() || peer_id.is_none() || listen.is_none() || link.is_none() {
            let line = lines
                .next()
                .expect("the node exited before it was ready")
                .unwrap();
            if let Some(rest) = line.strip_prefix("http ") {
                http = Some(rest.trim_start_matches("http://").to_string());
            } else if let Some(rest) = line.strip_prefix("node ") {
                peer_id = rest.split(['(', ')']).nth(1).map(str::to_string);
            } else if let Some(rest) = line.strip_prefix("listen ") {
                listen = Some(rest.to_string());
            } else if let Some(rest) = line.strip_prefix("operator ") {
                link = Some(rest.to_string());
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let listen = listen.unwrap();
        assert!(
            listen.ends_with(&format!("/p2p/{}", peer_id.unwrap())),
            "{listen}"
        );
        Node {
            child,
            http: http.unwrap(),
            listen,
            operator_link: link.unwrap(),
            _dir: dir,
        }
    }

    pub fn status(&self) -> serde_json::Value {
        http(&self.http, "GET", "/api/v1/node", "").1
    }

    pub fn submit(&self, entries: &[Vec<u8>]) {
        for chunk in entries.chunks(1000) {
            let hexes: Vec<String> = chunk.iter().map(hex::encode).collect();
            let body = serde_json::json!({ "entries": hexes }).to_string();
            submit_body(&self.http, &body);
        }
    }

    /// The node's public key, hex.
    pub fn key(&self) -> String {
        self.status()["public_key"].as_str().unwrap().to_string()
    }

    /// Connected peers' public keys.
    pub fn peers(&self) -> Vec<String> {
        self.status()["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect()
    }

    /// Bans (`true`) or lets back in (`false`) `other`, as an operator
    /// would: with the token from the node's data dir.
    pub fn ban(&self, other: &Node, banned: bool) {
        let method = if banned { "POST" } else { "DELETE" };
        let path = format!("/api/v1/peers/{}/ban", other.key());
        let bearer = self.bearer();
        let (code, reply) = http_with(&self.http, method, &path, "", &[("Authorization", &bearer)]);
        assert_eq!(code, 200, "{reply}");
        assert_eq!(reply["banned"], banned);
    }

    /// The operator token, as the node wrote it to its data dir.
    pub fn token(&self) -> String {
        let path = self.dir().join("operator.token");
        std::fs::read_to_string(path).unwrap().trim().to_string()
    }

    /// An `Authorization` header's value with the operator token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token())
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's data dir.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Kills the node with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to 30 s) until `other` is among this node's peers.
    pub fn wait_connected(&self, other: &Node) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.peers().contains(&other.key()) {
            assert!(Instant::now() < deadline, "the other node never connected");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a push webhook signed with `secret`, as a forge would: the
    /// node polls its repositories at once.
    pub fn poke(&self, secret: &str) {
        use hmac::{Hmac, KeyInit, Mac};
        let body = "{}";
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let reply = http_with(
            &self.http,
            "POST",
            "/api/v1/hooks/github",
            body,
            &[
                ("X-Hub-Signature-256", &signature),
                ("X-GitHub-Delivery", &next_delivery()),
            ],
        );
        assert_eq!(reply.0, 200, "{}", reply.1);
    }

    /// Stops with SIGTERM and waits, as an operator would.
    pub fn stop(mut self) -> tempfile::TempDir {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
        std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    http_with(addr, method, path, body, &[])
}

/// [`http`] with extra request headers.
pub fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response[9..12].parse().unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// POSTs `body` to `/api/v1/entries`, waiting out 429s as a client
/// should (the node bounds entry bytes per client address and second);
/// returns the reply.
pub fn submit_body(addr: &str, body: &str) -> serde_json::Value {
    loop {
        let (code, reply) = http(addr, "POST", "/api/v1/entries", body);
        if code != 429 {
            assert_eq!(code, 200, "{reply}");
            return reply;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `n` entries signed by the author with this seed byte: a project
/// declaration first, which gives the author a role (docs/protocol.md
/// §6.1), then announcements for that project.
pub fn entries(seed: u8, n: u32) -> Vec<Vec<u8>> {
    let mut writer = ChainWriter::new(SigningKey::from_bytes(&[seed; 32]));
    let project = ProjectId::derive(&writer.author(), "load");
    (0..n)
        .map(|i| {
            let body = if i == 0 {
                own_project("load")
            } else {
                announcement(project, i, Timestamp(u64::from(i)))
            };
            writer
                .write(Timestamp(u64::from(i) + 1), body)
                .unwrap()
                .to_wire()
        })
        .collect()
}

/// A declaration of `name` that names no one else.
pub fn own_project(name: &str) -> Body {
    Body::Project(ProjectDeclaration {
        name: name.into(),
        repository: "https://example.invalid/load.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux-x86_64".into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Only(Vec::new()),
        builds_per_cell: 1,
    })
}

/// The `i`th made-up commit id of a test log.
pub fn commit_of(i: u32) -> CommitId {
    CommitId::from_bytes(&sha256(&[&i.to_le_bytes()])[..20]).unwrap()
}

/// The announcement of commit [`commit_of`]`(i)` on `project`'s main
/// branch, committed at `at`.
pub fn announcement(project: ProjectId, i: u32, at: Timestamp) -> Body {
    Body::Announce(CommitAnnouncement {
        project,
        branch: "main".into(),
        commit: commit_of(i),
        parents: Vec::new(),
        title: format!("commit number {i}"),
        author: "Ada <ada@example.invalid>".into(),
        committed_at: at,
    })
}

/// The wall clock as a log timestamp: entries a test signs by hand must
/// fall inside the node's accepted skew of its own clock.
pub fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp(u64::try_from(ms).unwrap())
}

/// A bare result of `commit` on `platform`: no steps, artifacts or
/// metrics, as a builder that only reports an outcome would sign it.
pub fn result_body(
    project: ProjectId,
    commit: &CommitId,
    platform: &str,
    outcome: Outcome,
) -> Body {
    Body::Result(BuildResult {
        project,
        commit: commit.clone(),
        platform: platform.into(),
        outcome,
        steps: Vec::new(),
        artifacts: Vec::new(),
        metrics: Default::default(),
        environment: Default::default(),
        error: None,
    })
}

/// Waits until every node reports `count` entries and one digest.
pub fn wait_converged(nodes: &[&Node], count: u64, deadline: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let statuses: Vec<serde_json::Value> = nodes.iter().map(|n| n.status()).collect();
        let done = statuses.iter().all(|s| {
            s["entries"] == count
                && s["digest_entries"] == count
                && s["digest"] == statuses[0]["digest"]
        });
        if done {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "not converged after {deadline:?}: {statuses:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET returning the raw body bytes.
pub fn http_raw(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let (code, _, body) = http_get(addr, path, &[]);
    (code, body)
}

/// A GET with extra request headers: the status, the response's header
/// lines (names in lower case) and the raw body.
pub fn http_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let code = String::from_utf8_lossy(&response[9..12]).parse().unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    (code, head, response[split..].to_vec())
}

/// A git repository in a temp dir, committed to with the git CLI.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=Ada",
                "-c",
                "user.email=ada@example.invalid",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }

    /// Commits `content` as file `name`; returns the commit id.
    pub fn commit_file(&self, name: &str, content: &str, message: &str) -> String {
        std::fs::write(self.path().join(name), content).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Commits `recipe` as .buildmesh.toml; returns the commit id.
    pub fn commit_recipe(&self, recipe: &str, message: &str) -> String {
        std::fs::write(self.path().join(".buildmesh.toml"), recipe).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }
}

/// A maintainer key in a directory of its own (`maintainer.key`), made
/// before any node starts so that nodes can accept its projects.
pub struct Maintainer {
    dir: tempfile::TempDir,
    /// The public key, hex.
    pub key: String,
}

impl Maintainer {
    pub fn new() -> Maintainer {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("maintainer.key");
        let made = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .arg("keygen")
            .arg("--out")
            .arg(&file)
            .output()
            .unwrap();
        assert!(made.status.success(), "{made:?}");
        let id = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .arg("id")
            .arg("--key")
            .arg(&file)
            .output()
            .unwrap();
        assert!(id.status.success(), "{id:?}");
        let key = String::from_utf8(id.stdout).unwrap().trim().to_owned();
        Maintainer { dir, key }
    }

    /// The directory holding `maintainer.key`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A delivery id no other webhook of this process has used.
pub fn next_delivery() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "delivery-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Nodes that build `maintainer`'s projects: fast polls, short leases,
/// local repositories allowed.
pub fn builder(bootstrap: Vec<&Node>, platforms: &[&str], maintainer: &Maintainer) -> Node {
    builder_with(
        bootstrap,
        platforms,
        &["--accept-maintainer", &maintainer.key],
    )
}

/// A building node with `more` flags.
pub fn builder_with(bootstrap: Vec<&Node>, platforms: &[&str], more: &[&str]) -> Node {
    let mut extra = vec!["--lease-secs", "3"];
    extra.extend(more);
    let flags = local_builder_flags(platforms, &extra);
    Node::launch(tempfile::tempdir().unwrap(), bootstrap, &flags)
}

/// The flags of a node that builds on `platforms` from local repositories
/// it polls every second, and `more`: for tests that launch (and
/// relaunch) such a node themselves.
pub fn local_builder_flags<'a>(platforms: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec!["--allow-local-repositories", "--poll-interval-secs", "1"];
    for platform in platforms {
        flags.extend(["--platform", platform]);
    }
    flags.extend(more);
    flags
}

/// Declares `repo` as project `name` with the maintainer key in `keys`,
/// through `node`; `announcer` watches it; `builders` count. Returns the
/// project id.
pub fn declare(
    keys: &Path,
    node: &Node,
    name: &str,
    repo: &Repo,
    platforms: &[&str],
    announcer: &Node,
    builders: &[&Node],
) -> String {
    let builders: Vec<String> = builders.iter().map(|b| b.key()).collect();
    declare_keys(keys, node, name, repo, platforms, announcer, &builders)
}

/// [`declare`], with the builders named by their keys (nodes that need
/// not be running).
pub fn declare_keys(
    keys: &Path,
    node: &Node,
    name: &str,
    repo: &Repo,
    platforms: &[&str],
    announcer: &Node,
    builders: &[String],
) -> String {
    declare_with(keys, node, name, repo, platforms, announcer, builders, &[])
}

/// [`declare_keys`] with `more` flags for `project declare`.
#[allow(clippy::too_many_arguments)]
pub fn declare_with(
    keys: &Path,
    node: &Node,
    name: &str,
    repo: &Repo,
    platforms: &[&str],
    announcer: &Node,
    builders: &[String],
    more: &[&str],
) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_buildmesh"));
    command.args(["project", "declare", name, "--repo"]);
    command.arg(repo.path());
    command.args(["--branch", "main", "--announcer", &announcer.key()]);
    for platform in platforms {
        command.args(["--platform", platform]);
    }
    for builder in builders {
        command.args(["--builder", builder]);
    }
    if builders.is_empty() {
        command.arg("--open");
    }
    command.args(more);
    let key: PathBuf = keys.join("maintainer.key");
    command.arg("--key").arg(&key);
    command.args(["--node", &format!("http://{}", node.http)]);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("declared project {name}: ")))
        .unwrap()
        .to_string()
}

/// The project's matrix, once the node's views show the project.
pub fn matrix(node: &Node, project: &str) -> Option<serde_json::Value> {
    let path = format!("/api/v1/projects/{project}/matrix");
    match http(&node.http, "GET", &path, "") {
        (200, body) => Some(body),
        (404, _) => None,
        (code, body) => panic!("{code}: {body}"),
    }
}

/// The cell of `commit` × `platform`, once the matrix has it.
pub fn cell(node: &Node, project: &str, commit: &str, platform: &str) -> Option<serde_json::Value> {
    let matrix = matrix(node, project)?;
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
pub fn wait_cell(
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

/// Whether a cell has a result.
pub fn finished(cell: &serde_json::Value) -> bool {
    ["passed", "failed", "error"].contains(&cell["status"].as_str().unwrap_or(""))
}

/// The first result of a finished cell, as `/api/v1/results/{id}` gives it.
pub fn result_of(node: &Node, cell: &serde_json::Value) -> serde_json::Value {
    let id = cell["results"][0]["id"].as_str().unwrap();
    let (code, result) = http(&node.http, "GET", &format!("/api/v1/results/{id}"), "");
    assert_eq!(code, 200, "{result}");
    result
}

/// Each step of `result`: its name, its JSON and its log's text.
pub fn step_logs(
    node: &Node,
    result: &serde_json::Value,
) -> Vec<(String, serde_json::Value, String)> {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            let hash = step["log"].as_str().unwrap();
            let (code, log) = http_raw(&node.http, &format!("/api/v1/blobs/{hash}"));
            assert_eq!(code, 200, "the log of {step}");
            let name = step["name"].as_str().unwrap().to_owned();
            (
                name,
                step.clone(),
                String::from_utf8_lossy(&log).into_owned(),
            )
        })
        .collect()
}

/// Announces `repo`'s HEAD for project `name` as the maintainer in `keys`
/// would (`buildmesh announce`), through `node`.
pub fn announce(keys: &Path, node: &Node, name: &str, repo: &Repo) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["announce", "--project", name, "--repo-dir"])
        .arg(repo.path())
        .arg("--key")
        .arg(keys.join("maintainer.key"))
        .args(["--node", &format!("http://{}", node.http)])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// A log of keys with a role: the owner (seed `seed`) declares project
/// `name`, listing itself as announcer and builder, then announces
/// `commits` commits and reports a result of about `result_bytes` for
/// each (an announcement cannot grow past ~5 KB; a result's step commands
/// can). Returns the project id and the wire bytes, in order.
pub fn owned_log(
    seed: u8,
    name: &str,
    commits: u32,
    result_bytes: usize,
) -> (buildmesh_protocol::ProjectId, Vec<Vec<u8>>) {
    use buildmesh_protocol::{BuilderPolicy, ProjectDeclaration};
    let key = SigningKey::from_bytes(&[seed; 32]);
    let owner = buildmesh_protocol::PublicKey::from(key.verifying_key());
    let project = ProjectId::derive(&owner, name);
    let mut writer = ChainWriter::new(key);
    let declaration = Body::Project(ProjectDeclaration {
        name: name.into(),
        repository: "https://example.invalid/big.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux".into()],
        announcers: vec![owner],
        builders: BuilderPolicy::Only(vec![owner]),
        builds_per_cell: 1,
    });
    let mut log = vec![writer.write(Timestamp(1), declaration).unwrap().to_wire()];
    for i in 0..commits {
        let at = Timestamp(1_000 + u64::from(i) * 1_000);
        let announce = announcement(project, i, at);
        log.push(writer.write(at, announce).unwrap().to_wire());
        let result = big_result(project, commit_of(i), result_bytes);
        log.push(writer.write(at.plus_ms(1), result).unwrap().to_wire());
    }
    (project, log)
}

/// A passing result for `commit` of about `bytes` (steps of 4,000-byte
/// commands).
pub fn big_result(project: ProjectId, commit: buildmesh_protocol::CommitId, bytes: usize) -> Body {
    use buildmesh_protocol::{BlobHash, BuildResult, Outcome, StepResult, StepStatus};
    let command = "x".repeat(4000);
    let steps = (0..bytes / command.len())
        .map(|s| StepResult {
            name: format!("step {s}"),
            command: command.clone(),
            status: StepStatus::Exited(0),
            duration_ms: 1,
            log: BlobHash::of(&s.to_le_bytes()),
            log_bytes: 1,
        })
        .collect();
    Body::Result(BuildResult {
        project,
        commit,
        platform: "linux".into(),
        outcome: Outcome::Passed,
        steps,
        artifacts: Vec::new(),
        metrics: Default::default(),
        environment: Default::default(),
        error: None,
    })
}

impl Node {
    /// [`Node::submit`] for large entries: requests of at most ~1.5 MB,
    /// under the node's request body limit.
    pub fn submit_large(&self, entries: &[Vec<u8>]) {
        for request in requests_of(entries) {
            self.submit(request);
        }
    }

    /// The node's resident memory (`VmRSS`), bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    /// Waits (up to `within`) until the node holds `count` entries and its
    /// digest covers them.
    pub fn wait_entries(&self, count: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status();
            if status["entries"] == count && status["digest_entries"] == count {
                return;
            }
            assert!(Instant::now() < deadline, "{status}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A connection to `addr` from the loopback address `from` (127.x.y.z):
/// the node counts streams per client address.
pub fn connect_from(addr: &str, from: [u8; 4]) -> TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
        socket.connect(addr).await.unwrap()
    });
    let stream = runtime.block_on(async { stream.into_std() }).unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// Sends `GET path` on `stream` and reads the status line and headers;
/// the body is left to read.
pub fn get_head(stream: TcpStream, addr: &str, path: &str) -> (u16, BufReader<TcpStream>) {
    let mut writer = stream.try_clone().unwrap();
    write!(
        writer,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code = status.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    (code, reader)
}

/// Reads a chunked body to its end, `pause` after each chunk (a slow
/// client); returns the body's bytes and lines.
pub fn read_chunked(reader: &mut BufReader<TcpStream>, pause: Duration) -> (u64, u64) {
    let (mut bytes, mut lines) = (0u64, 0u64);
    let (mut data, mut line) = (Vec::new(), Vec::new());
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
        if size == 0 {
            return (bytes, lines);
        }
        data.resize(size + 2, 0);
        reader.read_exact(&mut data).unwrap();
        bytes += size as u64;
        // `read_until` finds newlines with std's memchr: fast even in a
        // debug build.
        let mut rest = &data[..size];
        loop {
            line.clear();
            if rest.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            lines += u64::from(line.ends_with(b"\n"));
        }
        std::thread::sleep(pause);
    }
}

/// The resident memory (`VmRSS`) of process `pid`, bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `entries` cut into requests of at most ~1.5 MB of hex (the node takes
/// bodies of up to 2 MB), each of at least one entry.
pub fn requests_of(entries: &[Vec<u8>]) -> Vec<&[Vec<u8>]> {
    let mut requests = Vec::new();
    let mut from = 0;
    while from < entries.len() {
        let (mut to, mut bytes) = (from, 0);
        while to < entries.len() && (to == from || bytes + 2 * entries[to].len() < 1_500_000) {
            bytes += 2 * entries[to].len();
            to += 1;
        }
        requests.push(&entries[from..to]);
        from = to;
    }
    requests
}

/// The webhook secret [`pull_event`] signs with.
pub const PULL_SECRET: &str = "a webhook secret of sixteen or more characters";

/// A GitHub-shaped `pull_request` delivery for pull request `number` of
/// `repo`, naming `head`, signed with [`PULL_SECRET`]: the node's reply.
pub fn pull_event(
    node: &Node,
    repo: &Repo,
    action: &str,
    number: u64,
    head: &str,
) -> serde_json::Value {
    use hmac::{Hmac, KeyInit, Mac};
    let url = repo.path().to_str().unwrap();
    let body = serde_json::json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "Teach hello to count",
            "head": { "sha": head, "ref": "feature" },
            "base": { "ref": "main" },
            "user": { "login": "contributor" },
        },
        "repository": { "clone_url": format!("file://{url}"), "html_url": url },
    })
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(PULL_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let delivery = next_delivery();
    let (code, reply) = http_with(
        &node.http,
        "POST",
        "/api/v1/hooks/github",
        &body,
        &[
            ("X-GitHub-Event", "pull_request"),
            ("X-Hub-Signature-256", &signature),
            ("X-GitHub-Delivery", &delivery),
        ],
    );
    assert_eq!(code, 200, "{reply}");
    reply
}

/// [`pull_event`] with action `synchronize`.
pub fn deliver_pull(node: &Node, repo: &Repo, number: u64, head: &str) -> serde_json::Value {
    pull_event(node, repo, "synchronize", number, head)
}

impl Node {
    /// Kills the node with SIGKILL, as a crash would, and keeps its data
    /// dir for a restart.
    pub fn crash(mut self) -> tempfile::TempDir {
        self.kill();
        std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap())
    }
}
