//! A donor's machine: a node builds only the projects its operator
//! accepted, and every step runs in a bubblewrap sandbox that sees its work
//! dir and nothing of the node (its key, its processes, the rest of the
//! disk), within resource limits; without a sandbox, only the node's own
//! maintainers' projects build. Real nodes, real git repositories, real
//! bubblewrap; hostile steps print what they could do, and the tests read
//! each step's log.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{
    Launch, Maintainer, Node, Repo, announce, builder, cell, declare, finished, result_of,
    step_logs, wait_cell,
};

const PLATFORM: &str = "linux";
/// A build, from commit to result, takes a few seconds; this much means
/// it is not coming.
const BUILD_WITHIN: Duration = Duration::from_secs(60);
/// How long what a step started may take to vanish once its result is in
/// (the kernel tears the sandbox's PID namespace down asynchronously).
const GONE_WITHIN: Duration = Duration::from_secs(5);

const PASSING: &str = "[[step]]\nname = \"hello\"\ncommand = \"echo hello from a donor\"\n";

/// One `[[step]]` running `command` (a TOML literal string, so the shell
/// text is taken as is).
fn step(name: &str, command: &str) -> String {
    format!("[[step]]\nname = \"{name}\"\ncommand = '''\n{command}\n'''\n")
}

/// [`step`] with a timeout.
fn step_within(name: &str, secs: u64, command: &str) -> String {
    format!("{}timeout_secs = {secs}\n", step(name, command))
}

/// The flags of a building node (those of `support::builder_with`) that
/// accepts the projects of `maintainers`, plus `more`.
fn donor_flags(maintainers: &[&str], more: &[&str]) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--allow-local-repositories",
        "--poll-interval-secs",
        "1",
        "--lease-secs",
        "3",
        "--platform",
        PLATFORM,
    ]
    .map(String::from)
    .to_vec();
    for key in maintainers {
        flags.extend(["--accept-maintainer".to_owned(), (*key).to_owned()]);
    }
    flags.extend(more.iter().map(|s| (*s).to_owned()));
    flags
}

fn launch(dir: tempfile::TempDir, flags: &[String], how: &Launch) -> Node {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Node::launch_with(dir, vec![], &flags, how)
}

/// Declares `repo` as `keys`' project `name` for [`PLATFORM`], with
/// `node` its announcer and only builder; returns the project id.
fn project(keys: &Maintainer, node: &Node, name: &str, repo: &Repo) -> String {
    declare(keys.path(), node, name, repo, &[PLATFORM], node, &[node])
}

/// The steps of the result of a finished cell, with their logs, by name.
fn steps_of(
    node: &Node,
    cell: &serde_json::Value,
) -> std::collections::BTreeMap<String, (serde_json::Value, String)> {
    let result = result_of(node, cell);
    step_logs(node, &result)
        .into_iter()
        .map(|(name, step, log)| (name, (step, log)))
        .collect()
}

/// The names of the bare mirrors in a node's data dir.
fn mirrors(data_dir: &Path) -> Vec<String> {
    match std::fs::read_dir(data_dir.join("mirrors")) {
        Ok(listing) => listing
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// How the name of `repo`'s mirror starts: its directory's name, without
/// leading dots, then `-` and a hash of its URL (runner::mirror::dir_name).
fn mirror_prefix(repo: &Repo) -> String {
    let name = repo.path().file_name().unwrap().to_string_lossy();
    format!("{}-", name.trim_start_matches('.'))
}

/// The node's log (stderr) so far.
fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Asserts that a cell was neither claimed nor built.
fn assert_untouched(node: &Node, project: &str, commit: &str) {
    let untouched = cell(node, project, commit, PLATFORM)
        .expect("the announced commit is replicated and shown");
    assert_eq!(untouched["status"], "pending", "{untouched}");
    assert!(untouched["claimed_by"].is_null(), "{untouched}");
    assert_eq!(untouched["results"], serde_json::json!([]), "{untouched}");
}

/// Processes on this machine whose command line matches `pattern`.
fn pgrep(pattern: &str) -> String {
    let output = Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()
}

/// What the durations of this test's `sleep`s start with, so that they
/// name its processes on the machine: `sleep TAG1` is this test's.
fn sleep_tag() -> u32 {
    std::process::id()
}

/// Waits until no process matches `pattern`.
fn assert_none_survive(pattern: &str) {
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let found = pgrep(pattern);
        if found.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still running after the step: {found}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_donor_builds_only_the_projects_it_accepted_and_says_why_not_the_others() {
    let (friend, stranger) = (Maintainer::new(), Maintainer::new());
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("node.log");
    let how = Launch {
        log: Some(log.clone()),
        ..Launch::default()
    };
    let donor = launch(
        tempfile::tempdir().unwrap(),
        &donor_flags(&[&friend.key], &[]),
        &how,
    );

    // The stranger names the donor as the project's announcer and builder,
    // and announces a commit by hand.
    let strange_repo = Repo::new();
    let strange_commit = strange_repo.commit_recipe(PASSING, "from a stranger");
    let strange = project(&stranger, &donor, "strange", &strange_repo);
    let said = announce(stranger.path(), &donor, "strange", &strange_repo);
    assert!(said.contains(&strange_commit), "{said}");

    // An accepted project, declared after that announcement, builds: the
    // stranger's commit had at least as long.
    let friendly_repo = Repo::new();
    let friendly_commit = friendly_repo.commit_recipe(PASSING, "from a friend");
    let friendly = project(&friend, &donor, "friendly", &friendly_repo);
    let built = wait_cell(
        &donor,
        &friendly,
        &friendly_commit,
        PLATFORM,
        BUILD_WITHIN,
        finished,
    );
    assert_eq!(built["status"], "passed", "{built}");
    assert_untouched(&donor, &strange, &strange_commit);

    // Polling leaves a mirror: the friend's repository has one, the
    // stranger's was never fetched.
    let found = mirrors(donor.dir());
    assert!(
        found
            .iter()
            .any(|m| m.starts_with(&mirror_prefix(&friendly_repo))),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|m| m.starts_with(&mirror_prefix(&strange_repo))),
        "{found:?}"
    );

    // The operator is told once why, and how to change it.
    let why = format!(
        "project \"strange\" wants this node's platform but is not accepted here; to build it, \
         restart with --accept-project {strange} (or --accept-maintainer {})",
        stranger.key
    );
    let text = read_log(&log);
    assert_eq!(text.matches(&why).count(), 1, "{text}");
    // Written to a file, the log carries no colour codes (issue 16).
    assert!(
        !text.contains('\x1b'),
        "escape codes in a log file: {text:?}"
    );
    let status = donor.status();
    assert_eq!(
        status["accepts"]["maintainers"],
        serde_json::json!([friend.key]),
        "{status}"
    );

    // Restarted accepting the stranger, the donor builds the commit.
    let dir = donor.stop();
    let donor = launch(dir, &donor_flags(&[&friend.key, &stranger.key], &[]), &how);
    let built = wait_cell(
        &donor,
        &strange,
        &strange_commit,
        PLATFORM,
        BUILD_WITHIN,
        finished,
    );
    assert_eq!(built["status"], "passed", "{built}");
    assert_eq!(built["results"][0]["builder"], donor.key(), "{built}");
    let found = mirrors(donor.dir());
    assert!(
        found
            .iter()
            .any(|m| m.starts_with(&mirror_prefix(&strange_repo))),
        "fetched now, under the name looked for above: {found:?}"
    );
}

/// The steps of the `probes` recipe: each prints what it could do.
fn probes_recipe(data_dir: &Path, node_pid: u32, port: &str, outside: &str) -> String {
    let data = data_dir.display();
    let tag = sleep_tag();
    let key = format!(
        r#"for p in ../key ../../key ../../../key ../../../../key /key {data}/key \
    /proc/{node_pid}/root{data}/key /proc/1/root{data}/key "$HOME/../key"; do
  if cat "$p" 2>/dev/null; then echo "read $p"; fi
done
d=.; for i in 1 2 3 4; do d=$d/..; ls -a "$d"; done | sort -u | sed 's/^/entry /'
find / \( -path /proc -o -path /sys \) -prune -o -name key -print 2>/dev/null | sed 's/^/found /'
echo "key probe done""#
    );
    let shadow = r#"if text=$(cat /etc/shadow) && [ -n "$text" ]; then echo "shadow read"; echo "$text"; \
    else echo "shadow unreadable"; fi"#;
    let processes = format!(
        r#"echo "pids $(ls /proc | grep -c '^[0-9][0-9]*$')"
for p in /proc/[0-9]*; do echo "process $(cat $p/comm)"; done
if kill -0 {node_pid} 2>/dev/null || [ -e /proc/{node_pid} ]; then echo "node visible"; else echo "node hidden"; fi"#
    );
    let writes = format!(
        r#"for p in /usr/probe /etc/probe /probe ../probe /home/probe /build/../probe {data}/probe \
    /tmp/{outside} ./probe "$HOME/probe"; do
  if touch "$p" 2>/dev/null; then echo "wrote $p"; else echo "refused $p"; fi
done"#
    );
    let daemon = format!(
        r#"setsid sleep {tag}1 &
for i in $(seq 100); do pgrep -f '^sleep {tag}1$' >/dev/null && break; sleep 0.05; done
pgrep -f '^sleep {tag}1$' >/dev/null && echo "daemon running""#
    );
    [
        step("key", &key),
        step("shadow", shadow),
        step("processes", &processes),
        step("writes", &writes),
        step("network", &network_probe(port)),
        step("ban", &ban_probe(data_dir, port)),
        step("daemon", &daemon),
        step_within("hang", 1, &format!("setsid sleep {tag}2 & sleep {tag}3")),
    ]
    .join("\n")
}

/// A step asking the node to ban a peer, as an operator would, with
/// whatever token it can find: it prints the answer's status and body.
fn ban_probe(data_dir: &Path, port: &str) -> String {
    let token = data_dir.join("operator.token");
    format!(
        r#"python3 - <<'PY'
import urllib.request, urllib.error
try:
    token = open("{token}").read().strip()
except OSError:
    token = "guess"
request = urllib.request.Request(
    "http://127.0.0.1:{port}/api/v1/peers/{peer}/ban", method="POST",
    headers={{"Authorization": "Bearer " + token, "Origin": "http://127.0.0.1:{port}"}})
try:
    reply = urllib.request.urlopen(request, timeout=5)
    print("ban status", reply.status, reply.read().decode())
except urllib.error.HTTPError as e:
    print("ban status", e.code, e.read().decode())
PY"#,
        token = token.display(),
        peer = "ab".repeat(32),
    )
}

/// Prints whether 127.0.0.1:`port` takes a connection.
fn network_probe(port: &str) -> String {
    format!(
        "if bash -c 'echo > /dev/tcp/127.0.0.1/{port}' 2>/dev/null; \
         then echo 'port {port} open'; else echo 'port {port} closed'; fi"
    )
}

/// A `bwrap` on the host that leaves a file `ran` beside it if run, then
/// runs the real one.
fn decoy_bwrap() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let decoy = tempfile::tempdir().unwrap();
    let ran = decoy.path().join("ran");
    let fake = decoy.path().join("bwrap");
    let script = format!(
        "#!/bin/sh\ntouch {}\nexec /usr/bin/bwrap \"$@\"\n",
        ran.display()
    );
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    (decoy, ran)
}

#[test]
fn a_step_sees_only_its_sandbox_and_nothing_it_starts_outlives_it() {
    let keys = Maintainer::new();
    let node = builder(vec![], &[PLATFORM], &keys);
    let port = node.http.rsplit(':').next().unwrap().to_owned();
    let outside = format!("buildmesh-probe-{}-{}", std::process::id(), node.pid());
    let repo = Repo::new();
    let commit = repo.commit_recipe(
        &probes_recipe(node.dir(), node.pid(), &port, &outside),
        "probes",
    );
    // Off the network, with a PATH whose first directory has a `bwrap`.
    let (decoy, ran) = decoy_bwrap();
    let offline_repo = Repo::new();
    let offline_commit = offline_repo.commit_recipe(
        &format!(
            "network = false\n\n{}\n{}env = {{ PATH = \"{}:/usr/bin:/bin\" }}\n",
            step("network", &network_probe(&port)),
            step("path", "echo \"PATH is $PATH\""),
            decoy.path().display()
        ),
        "offline",
    );
    let probes = project(&keys, &node, "probes", &repo);
    let offline = project(&keys, &node, "offline", &offline_repo);

    let done = wait_cell(&node, &probes, &commit, PLATFORM, BUILD_WITHIN, finished);
    assert_eq!(done["status"], "failed", "the last step hangs: {done}");
    let steps = steps_of(&node, &done);
    for (name, (step, log)) in steps.iter().filter(|(name, _)| *name != "hang") {
        assert_eq!(step["status"], "exited", "{name}: {step}\n{log}");
        assert_eq!(step["code"], 0, "{name}: {step}\n{log}");
    }
    assert_key_hidden(&node, &steps["key"].1);
    assert_shadow_unreadable(&steps["shadow"].1);
    assert_processes_hidden(&steps["processes"].1);
    assert_writes_confined(&node, &steps["writes"].1, &outside);

    // The node's operator endpoints, reachable over the network, refuse a
    // build: it cannot read the token.
    let (_, ban) = &steps["ban"];
    assert!(ban.contains("ban status 403"), "{ban}");
    assert!(!ban.contains("\"banned\":true"), "{ban}");

    // The network, unless the recipe turns it off.
    let (_, network) = &steps["network"];
    assert!(network.contains(&format!("port {port} open")), "{network}");
    let done = wait_cell(
        &node,
        &offline,
        &offline_commit,
        PLATFORM,
        BUILD_WITHIN,
        finished,
    );
    assert_eq!(done["status"], "passed", "{done}");
    let offline_steps = steps_of(&node, &done);
    let (_, network) = &offline_steps["network"];
    assert!(
        network.contains(&format!("port {port} closed")),
        "{network}"
    );
    // A recipe's PATH is the step's, inside; it does not choose what the
    // node runs outside.
    let (_, path) = &offline_steps["path"];
    assert!(path.contains(&decoy.path().display().to_string()), "{path}");
    assert!(!ran.exists(), "the node ran the recipe's PATH's bwrap");

    // A daemon of a step that exited, and everything of a step past its
    // timeout, are gone with the step.
    let (_, daemon) = &steps["daemon"];
    assert!(daemon.contains("daemon running"), "{daemon}");
    let (hang, _) = &steps["hang"];
    assert_eq!(hang["status"], "timed_out", "{hang}");
    assert_none_survive(&format!("^sleep {}[123]$", sleep_tag()));
}

/// The node's key was not where the work dir's parents would be, nor at
/// its path on the host, nor through /proc, nor found by name.
fn assert_key_hidden(node: &Node, log: &str) {
    assert!(log.contains("key probe done"), "{log}");
    let file = std::fs::read_to_string(node.dir().join("key")).unwrap();
    let secret = file
        .lines()
        .find_map(|l| l.strip_prefix("secret = "))
        .unwrap()
        .trim_matches('"');
    assert_eq!(secret.len(), 64);
    assert!(!log.contains(secret), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("read ")), "{log}");
    for entry in ["key", "store", "blobs", "mirrors", "work", "src"] {
        assert!(
            !log.lines().any(|l| l == format!("entry {entry}")),
            "the data dir shows above the work dir: {log}"
        );
    }
    for found in log.lines().filter_map(|l| l.strip_prefix("found ")) {
        assert!(
            found.starts_with("/usr/"),
            "a file named key outside the system dirs: {found}\n{log}"
        );
    }
}

/// `/etc/shadow` could not be read: it is covered by `/dev/null`, which
/// cannot be opened on the sandbox's nodev mounts (or reads empty).
fn assert_shadow_unreadable(log: &str) {
    assert!(log.contains("shadow unreadable"), "{log}");
    if let Ok(host) = std::fs::read_to_string("/etc/shadow") {
        for line in host.lines().filter(|l| !l.is_empty()) {
            assert!(!log.contains(line), "{log}");
        }
    }
}

/// Only the sandbox's own few processes were seen, not the node.
fn assert_processes_hidden(log: &str) {
    assert!(log.contains("node hidden"), "{log}");
    assert!(!log.contains("process buildmesh"), "{log}");
    let pids: usize = log
        .lines()
        .find_map(|l| l.strip_prefix("pids "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=8).contains(&pids), "{log}");
}

/// Writes landed in the work dir, /tmp and HOME only, all private.
fn assert_writes_confined(node: &Node, log: &str, outside: &str) {
    let data = node.dir().display();
    let refused = [
        "/usr/probe",
        "/etc/probe",
        "/probe",
        "../probe",
        "/home/probe",
        "/build/../probe",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("{data}/probe")]);
    for path in refused {
        assert!(log.contains(&format!("refused {path}\n")), "{path}: {log}");
    }
    let wrote = [
        format!("/tmp/{outside}"),
        "./probe".into(),
        "/home/build/probe".into(),
    ];
    for path in wrote {
        assert!(log.contains(&format!("wrote {path}\n")), "{path}: {log}");
    }
    assert!(!Path::new("/tmp").join(outside).exists());
    assert!(!node.dir().join("probe").exists());
}

/// Counts the step's user's processes in the sandbox (what
/// `RLIMIT_NPROC` counts: not bubblewrap's own, when it runs as root) as
/// they grow; says when it has begun.
const COUNTER: &str = "import os, time
me = os.getuid()
def mine(pid):
    try:
        return os.stat('/proc/' + pid).st_uid == me
    except OSError:
        return False
most = 0
while True:
    n = sum(1 for p in os.listdir('/proc') if p.isdigit() and mine(p))
    if n > most:
        most = n
        print('processes', n, flush=True)
    open('/tmp/counting', 'w').close()
    time.sleep(0.01)
";

#[test]
fn steps_past_the_memory_or_process_limit_fail_and_the_node_builds_on() {
    let keys = Maintainer::new();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("node.toml");
    std::fs::write(&config, "[sandbox]\nmemory_mib = 256\nprocesses = 64\n").unwrap();

    let hog_repo = Repo::new();
    let alloc = |mib: u32| {
        format!(
            "python3 -c 'b = bytearray({mib} << 20); print(\"allocated\", len(b) >> 20, \"MiB\")'"
        )
    };
    let hog_commit = hog_repo.commit_recipe(
        &[step("fits", &alloc(64)), step("hog", &alloc(512))].join("\n"),
        "hog",
    );
    // A fork bomb, bounded (511 processes) in case the cap fails.
    let bomb_repo = Repo::new();
    bomb_repo.commit_file("count.py", COUNTER, "a counter");
    let bomb = format!(
        "python3 count.py &\n\
        while [ ! -e /tmp/counting ]; do sleep 0.05; done\n\
        f() {{ if [ \"$1\" -gt 0 ]; then f $(($1 - 1)) & f $(($1 - 1)) & wait; else sleep {}4; fi; }}\n\
        f 8",
        sleep_tag()
    );
    let bomb_commit = bomb_repo.commit_recipe(&step_within("bomb", 3, &bomb), "bomb");

    let node = configured_node(&keys, &config);
    let hog = project(&keys, &node, "hog", &hog_repo);
    let bombs = project(&keys, &node, "bomb", &bomb_repo);

    let done = wait_cell(&node, &hog, &hog_commit, PLATFORM, BUILD_WITHIN, finished);
    assert_memory_capped(&node, &done);

    wait_cell(&node, &bombs, &bomb_commit, PLATFORM, BUILD_WITHIN, |c| {
        c["status"] == "building" || finished(c)
    });
    assert!(node.status()["public_key"].is_string(), "answers meanwhile");
    let done = wait_cell(
        &node,
        &bombs,
        &bomb_commit,
        PLATFORM,
        BUILD_WITHIN,
        finished,
    );
    assert_processes_capped(&node, &done);
    assert_none_survive(&format!("^sleep {}4$", sleep_tag()));
    assert!(node.status()["public_key"].is_string());

    let later = bomb_repo.commit_recipe(PASSING, "defused");
    let done = wait_cell(&node, &bombs, &later, PLATFORM, BUILD_WITHIN, finished);
    assert_eq!(done["status"], "passed", "{done}");
}

/// A node that accepts `keys`' projects, configured by `config`.
fn configured_node(keys: &Maintainer, config: &Path) -> Node {
    let flags = donor_flags(&[&keys.key], &["--config", config.to_str().unwrap()]);
    launch(tempfile::tempdir().unwrap(), &flags, &Launch::default())
}

/// The step within the memory cap passed; the one past it failed.
fn assert_memory_capped(node: &Node, done: &serde_json::Value) {
    assert_eq!(done["status"], "failed", "{done}");
    let steps = steps_of(node, done);
    let (fits, log) = &steps["fits"];
    assert_eq!(fits["code"], 0, "{fits}: {log}");
    assert!(log.contains("allocated 64 MiB"), "{log}");
    let (over, log) = &steps["hog"];
    assert_eq!(over["status"], "exited", "{over}: {log}");
    assert_ne!(over["code"], 0, "{over}: {log}");
    assert!(log.contains("MemoryError"), "{log}");
    assert!(!log.contains("allocated 512"), "{log}");
}

/// The fork bomb failed, its forks refused past the cap of 64.
fn assert_processes_capped(node: &Node, done: &serde_json::Value) {
    assert_eq!(done["status"], "failed", "{done}");
    let steps = steps_of(node, done);
    let (bombed, log) = &steps["bomb"];
    assert_ne!(bombed["code"], 0, "{bombed}: {log}");
    assert!(log.contains("Cannot fork"), "the cap refused forks: {log}");
    // The bomb's messages and the counter's lines interleave.
    let most = log
        .split("processes ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        })
        .max()
        .unwrap_or(0);
    assert!((3..=64).contains(&most), "{most} processes at most: {log}");
}

/// A directory to use as `PATH`: it has no `bwrap` (nor anything else).
fn path_without_bwrap() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    assert!(!dir.path().join("bwrap").exists());
    dir
}

#[test]
fn without_bubblewrap_only_the_nodes_own_maintainers_projects_build() {
    let (own, stranger) = (Maintainer::new(), Maintainer::new());
    let empty = path_without_bwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("node.log");
    let own_key = own.path().join("maintainer.key");
    let node = launch(
        tempfile::tempdir().unwrap(),
        &donor_flags(
            &[&own.key, &stranger.key],
            &["--maintainer-key", own_key.to_str().unwrap()],
        ),
        &Launch {
            log: Some(log.clone()),
            env: vec![("PATH".into(), empty.path().display().to_string())],
            ..Launch::default()
        },
    );
    let status = node.status();
    assert_eq!(status["sandbox"]["mode"], "unavailable", "{status}");
    let detail = status["sandbox"]["detail"].as_str().unwrap();
    assert!(detail.contains("bubblewrap"), "{detail}");

    let foreign_repo = Repo::new();
    let foreign_commit = foreign_repo.commit_recipe(PASSING, "accepted, unsandboxed");
    let foreign = project(&stranger, &node, "foreign", &foreign_repo);
    announce(stranger.path(), &node, "foreign", &foreign_repo);
    let home_repo = Repo::new();
    let home_commit = home_repo.commit_recipe(PASSING, "the node's own");
    let home = project(&own, &node, "homegrown", &home_repo);
    let built = wait_cell(&node, &home, &home_commit, PLATFORM, BUILD_WITHIN, finished);
    assert_eq!(built["status"], "passed", "{built}");
    assert_untouched(&node, &foreign, &foreign_commit);

    let text = read_log(&log);
    assert!(
        text.contains("no sandbox: bubblewrap (bwrap) cannot be started"),
        "{text}"
    );
    let why = "project \"foreign\" is accepted but not built: no sandbox runs on this machine \
               and its maintainer is not this node's own";
    assert_eq!(text.matches(why).count(), 1, "{text}");
    assert!(!text.contains("project \"homegrown\""), "{text}");
}

/// A `buildmesh up` process, killed when dropped.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn buildmesh_up_builds_its_own_checkout_without_bubblewrap() {
    let repo = Repo::new();
    let commit = repo.commit_recipe(PASSING, "mine");
    let empty = path_without_bwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut up = Up(Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["up", "--http", &format!("127.0.0.1:{port}"), "--repo-dir"])
        .arg(repo.path())
        .env("PATH", empty.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap());
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(up.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + BUILD_WITHIN;
    let mut seen = Vec::new();
    let passed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!("no result from buildmesh up: {seen:#?}");
        };
        seen.push(line.clone());
        if line.starts_with(&format!("result {}", &commit[..10])) {
            break line;
        }
    };
    assert!(passed.contains(" passed:"), "{passed}\n{seen:#?}");
    assert!(
        seen.iter().any(|l| l.starts_with("sandbox unavailable:")),
        "{seen:#?}"
    );
    let (code, status) = support::http(&format!("127.0.0.1:{port}"), "GET", "/api/v1/node", "");
    assert_eq!(code, 200);
    assert_eq!(status["sandbox"]["mode"], "unavailable", "{status}");
}

/// A node killed with SIGKILL mid-step takes its sandboxes with it: a
/// `setsid` daemon and the step itself die with the node, not at their
/// timeout.
#[test]
fn a_sandbox_dies_with_its_node() {
    let keys = Maintainer::new();
    let mut node = builder(vec![], &[PLATFORM], &keys);
    let tag = sleep_tag();
    let repo = Repo::new();
    repo.commit_recipe(
        &step_within("stay", 600, &format!("setsid sleep {tag}7 & sleep {tag}8")),
        "a long step",
    );
    project(&keys, &node, "long", &repo);
    let deadline = Instant::now() + BUILD_WITHIN;
    let pattern = format!("^sleep {tag}[78]$");
    while pgrep(&pattern).lines().count() < 2 {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    node.kill();
    assert_none_survive(&pattern);
}

/// Issue 16, item 6: a second `up` whose port is taken stops before it
/// creates or prints anything, saying why.
#[test]
fn an_up_whose_port_is_taken_leaves_nothing_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let repo = Repo::new();
    repo.commit_recipe(PASSING, "first");
    let output = Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["up", "--http", &format!("127.0.0.1:{port}"), "--repo-dir"])
        .arg(repo.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("cannot listen on"), "{said}");
    assert_eq!(said.matches("in use").count(), 1, "the cause once: {said}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!repo.path().join(".git/buildmesh").exists());
}
