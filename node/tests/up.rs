//! The first hour of a maintainer, in the terminal: `buildmesh up` in a
//! checkout says at start what is missing, prints each step of a build as
//! it runs with the pages to open, quotes the failing step, and after a
//! restart says where things stand; the maintainer commands run in the
//! checkout find its keys and its node by themselves. Real processes, a
//! real git repository, loopback only.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use support::Repo;

/// How long a build of a few shell steps may take, claims included.
const BUILD_WITHIN: Duration = Duration::from_secs(60);

/// Two steps, the second failing after printing what a test run would.
const FAILING: &str = r#"
[[step]]
name = "compile"
command = "echo compiled"

[[step]]
name = "test"
command = '''
echo "running 3 tests"
echo "test parser::empty ... FAILED"
echo "test result: FAILED. 2 passed; 1 failed"
exit 3
'''
"#;

/// A `buildmesh up` process and the lines it printed, killed when dropped.
struct Up {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    port: u16,
}

impl Up {
    fn start(repo: &Path) -> Up {
        let port = free_port();
        Up::start_on(repo, port)
    }

    fn start_on(repo: &Path, port: u16) -> Up {
        let mut child = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .args(["up", "--http", &format!("127.0.0.1:{port}"), "--repo-dir"])
            .arg(repo)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Up {
            child,
            lines,
            seen: Vec::new(),
            port,
        }
    }

    /// The first line (after those already read) that `wanted` accepts.
    fn line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + BUILD_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                panic!(
                    "no such line from buildmesh up; it printed: {:#?}",
                    self.seen
                );
            };
            self.seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// The next line, whatever it is.
    fn next(&mut self) -> String {
        self.line(|_| true)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM, as ctrl-c would; waits for a clean exit.
    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `buildmesh ARGS` run in `dir`, with no option naming a node or a key.
fn buildmesh_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(args)
        .current_dir(dir)
        .env_remove("BUILDMESH_DATA_DIR")
        .env("HOME", dir.join("no-home"))
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Issue 16, item 5: a checkout with no recipe, one not committed, or one
/// that does not parse is said at start, with what to do, and nothing is
/// created or announced.
#[test]
fn up_says_at_start_what_is_wrong_with_the_recipe() {
    let repo = Repo::new();
    repo.commit_file("README", "hello\n", "no recipe yet");
    let up = |repo: &Repo| {
        Command::new(env!("CARGO_BIN_EXE_buildmesh"))
            .args(["up", "--http", &format!("127.0.0.1:{}", free_port())])
            .current_dir(repo.path())
            .output()
            .unwrap()
    };
    let missing = up(&repo);
    let said = text(&missing.stderr);
    assert!(!missing.status.success());
    assert!(said.contains("no .buildmesh.toml in commit"), "{said}");
    assert!(said.contains("[[step]]"), "an example to write: {said}");
    assert!(missing.stdout.is_empty(), "{}", text(&missing.stdout));
    assert!(!repo.path().join(".git/buildmesh").exists());

    std::fs::write(repo.path().join(".buildmesh.toml"), FAILING).unwrap();
    let uncommitted = up(&repo);
    let said = text(&uncommitted.stderr);
    assert!(!uncommitted.status.success());
    assert!(
        said.contains("in the working tree but not in commit"),
        "{said}"
    );
    assert!(said.contains("git add .buildmesh.toml"), "{said}");

    repo.commit_recipe("[[step]]\nname = \"x\"\n", "a step with no command");
    let broken = up(&repo);
    let said = text(&broken.stderr);
    assert!(!broken.status.success());
    assert!(said.contains("is not a recipe buildmesh can run"), "{said}");
    assert!(said.contains("command"), "says what is wrong: {said}");
    assert!(!repo.path().join(".git/buildmesh").exists());
}

/// Issue 16, items 1, 3 and 4: the steps as they run, the live page when a
/// build starts, the result's page and the failing lines with the result;
/// `force` and `status` run in the checkout find its key and node (on a
/// port other than the default); a restart says where things stand.
#[test]
fn up_shows_a_build_step_by_step_and_where_things_stand_after_a_restart() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(FAILING, "a failing test");
    let short = &commit[..10];
    let mut up = Up::start(repo.path());

    let building = up.line(|l| l.starts_with("building "));
    let live = format!("live at http://{}/live/", up.addr());
    assert!(
        building.starts_with(&format!("building {short} for ")),
        "{building}"
    );
    assert!(building.contains(&live), "{building}");
    assert!(building.contains(&commit), "{building}");
    // The poller's mirror usually holds the commit already: no fetch.
    let mut checked_out = up.next();
    if checked_out == "  fetching the repository …" {
        checked_out = up.next();
    }
    assert!(
        checked_out.starts_with("  checked out in "),
        "{checked_out}"
    );
    assert_eq!(up.next(), "  [1/2] compile …");
    let compiled = up.next();
    assert!(
        compiled.starts_with("  [1/2] compile passed in "),
        "{compiled}"
    );
    assert_eq!(up.next(), "  [2/2] test …");
    let tested = up.next();
    assert!(
        tested.starts_with("  [2/2] test FAILED (exit 3) in "),
        "{tested}"
    );

    let result = up.next();
    assert!(result.starts_with(&format!("result {short} ")), "{result}");
    assert!(result.contains(" FAILED: compile ok "), "{result}");
    assert!(result.contains(", test exit 3 "), "{result}");
    assert_eq!(
        up.next(),
        "  tests: 2 passed, 1 failed (cargo test); failing: parser::empty"
    );
    let page = up.next();
    let prefix = format!("  http://{}/results/", up.addr());
    assert!(page.starts_with(&prefix), "{page}");
    let path = &page[format!("  http://{}", up.addr()).len()..];
    let (code, _) = support::http_raw(&up.addr(), path);
    assert_eq!(code, 200, "the result's page opens: {page}");
    assert_eq!(up.next(), "  last lines of test:");
    let tail: Vec<String> = (0..3).map(|_| up.next()).collect();
    assert_eq!(
        tail,
        [
            "  | running 3 tests",
            "  | test parser::empty ... FAILED",
            "  | test result: FAILED. 2 passed; 1 failed",
        ]
    );

    // Maintainer commands in the checkout: no --key, no --node.
    let name = repo
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let status = buildmesh_in(repo.path(), &["status", "--project", &name]);
    let said = text(&status.stdout);
    assert_eq!(
        status.status.code(),
        Some(1),
        "a failed newest commit: {said}"
    );
    assert!(said.contains(&name) && said.contains(short), "{said}");
    let nope = buildmesh_in(
        repo.path(),
        &["status", "--project", &name, "--branch", "nope"],
    );
    let said = text(&nope.stderr);
    assert!(!nope.status.success());
    assert!(
        said.contains("branch \"nope\" is not one project") && said.contains("builds: main"),
        "{said}"
    );
    // `up` printed "project NAME ID"; `status` prints 12 digits of it.
    let project = up
        .seen
        .iter()
        .find_map(|l| l.strip_prefix(&format!("project {name} ")))
        .unwrap()
        .to_owned();
    let force = buildmesh_in(
        repo.path(),
        &["force", "--project", &project[..12], "--branch", "main"],
    );
    assert!(
        force.status.success(),
        "{}{}",
        text(&force.stdout),
        text(&force.stderr)
    );
    assert!(text(&force.stdout).contains("forced a build"));
    up.line(|l| l.starts_with(&format!("building {short} ")));
    up.line(|l| l.starts_with(&format!("result {short} ")));
    up.line(|l| l == "  | test result: FAILED. 2 passed; 1 failed");

    let port = up.port;
    up.stop();
    let url_file = repo.path().join(".git/buildmesh/http.url");
    assert!(!url_file.exists(), "a stopped node's address is not left");
    let mut again = Up::start_on(repo.path(), port);
    assert_eq!(
        again.line(|l| l.starts_with("where things stand")),
        "where things stand:"
    );
    let branch = again.next();
    assert!(
        branch.starts_with(&format!("  {name} main {short} a failing test: ")),
        "{branch}"
    );
    assert!(branch.contains(" FAILED http://"), "{branch}");
    assert!(branch.contains("/results/"), "{branch}");

    // A second `up` here, on another port, stops before it prints.
    let second = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["up", "--http", &format!("127.0.0.1:{}", free_port())])
        .current_dir(repo.path())
        .output()
        .unwrap();
    let said = text(&second.stderr);
    assert!(!second.status.success());
    assert!(said.contains("already runs for this checkout"), "{said}");
    assert!(second.stdout.is_empty(), "{}", text(&second.stdout));

    // Another checkout whose node is stopped does not take this node for
    // its own, though its stale address file names this one's.
    let other = Repo::new();
    let other_dir = other.path().join(".git/buildmesh");
    let keygen = buildmesh_in(
        other.path(),
        &["keygen", "--data-dir", other_dir.to_str().unwrap()],
    );
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    std::fs::write(
        other_dir.join("http.url"),
        format!("http://{}\n", again.addr()),
    )
    .unwrap();
    let lost = buildmesh_in(other.path(), &["status"]);
    let said = text(&lost.stderr);
    assert!(!lost.status.success());
    assert!(
        said.contains("is not running: another node answers"),
        "{said}"
    );
}
