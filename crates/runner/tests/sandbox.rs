//! Whole builds in the bubblewrap sandbox (issue 12): what a step can see,
//! write, reach and leave behind. Needs `bwrap` (Debian's bubblewrap,
//! which `scripts/setup` installs) and unprivileged user namespaces;
//! without a sandbox these tests fail if `BUILDMESH_REQUIRE_SANDBOX` is
//! set, as `scripts/test` sets it, and are otherwise skipped, saying
//! whether bwrap is missing or installed but refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{Outcome, StepStatus};
use buildmesh_runner::{BuildReport, Limits, Sandbox, SandboxConfig, SandboxError, run_build};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Node, Source, is_live};

/// A runner node whose builds run in a sandbox with `limits`, hiding the
/// node dir's `secret` file; `None` if no sandbox runs here.
fn sandboxed(limits: Limits) -> Option<Node> {
    let mut node = Node::new();
    std::fs::write(node.dir.path().join("key"), "node-secret-key-bytes").unwrap();
    let config = SandboxConfig {
        limits,
        hidden: vec![node.dir.path().to_owned()],
        ..SandboxConfig::default()
    };
    match Sandbox::probe(config) {
        Ok(sandbox) => {
            node.context.sandbox = Some(Arc::new(sandbox));
            Some(node)
        }
        Err(error) => {
            // A bwrap that is installed but refused (user namespaces off)
            // is not fixed by installing bubblewrap: say which it is.
            let missing = match &error {
                SandboxError::NoBubblewrap { .. } => Some("bubblewrap"),
                SandboxError::NoPrlimit(_) => Some("util-linux"),
                SandboxError::Refused(_) | SandboxError::Io(_) => None,
            };
            buildmesh_test_servers::skip_sandbox(missing, &error);
            None
        }
    }
}

fn build(node: &Node, recipe: &str) -> BuildReport {
    let source = Source::new();
    let commit = source.commit_recipe(recipe, &[("README", "hello\n")]);
    run_build(&node.job(&source, &commit), &node.context)
}

fn nix_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Each step's log, by step name.
fn log_of(node: &Node, report: &BuildReport, step: &str) -> String {
    let found = report.result.steps.iter().find(|s| s.name == step).unwrap();
    node.log(&found.log)
}

#[test]
fn a_step_sees_its_work_dir_and_the_system_only() {
    let Some(node) = sandboxed(Limits::default()) else {
        return;
    };
    let recipe = r#"
[[step]]
name = "where"
command = "pwd; echo HOME=$HOME; id -u; test -f README && echo README-here"
[[step]]
name = "key"
command = "cat ../../key ../../../key ../key 2>&1; find / -name key -type f 2>/dev/null; echo end"
[[step]]
name = "shadow"
command = "cat /etc/shadow 2>&1 || echo refused"
[[step]]
name = "processes"
command = "ls /proc | grep -c '^[0-9]'"
[[step]]
name = "writes"
command = "for f in /usr/x /etc/x /x ../x /home/x; do touch $f 2>/dev/null && echo wrote $f; done; touch /tmp/t ./w $HOME/h && echo scratch-ok"
"#;
    let report = build(&node, recipe);
    assert_eq!(report.result.outcome, Outcome::Passed, "{report:?}");
    let where_ = log_of(&node, &report, "where");
    // Root drops to nobody; anyone else is uid 1000 in a user namespace.
    let uid = if nix_is_root() { "65534" } else { "1000" };
    let expected = format!("/build\nHOME=/home/build\n{uid}\nREADME-here");
    assert!(where_.starts_with(&expected), "{where_}");
    let key = log_of(&node, &report, "key");
    assert!(!key.contains("node-secret-key-bytes"), "{key}");
    assert!(key.trim_end().ends_with("end"), "{key}");
    assert!(!key.contains("/key\n"), "find found a key: {key}");
    assert!(log_of(&node, &report, "shadow").contains("refused"));
    let processes: u32 = log_of(&node, &report, "processes").trim().parse().unwrap();
    assert!(processes <= 5, "the step sees {processes} processes");
    let writes = log_of(&node, &report, "writes");
    assert_eq!(writes.trim(), "scratch-ok", "{writes}");
    assert!(node.work_is_empty(), "the build area is removed");
}

#[test]
fn nothing_a_step_started_outlives_it_even_out_of_its_group() {
    let Some(node) = sandboxed(Limits::default()) else {
        return;
    };
    // Pids inside the sandbox differ from the host's: the test finds the
    // processes by their unique command lines.
    let recipe = r#"
[[step]]
name = "daemon"
command = "setsid sleep 4242 & sleep 0.2; echo started"
[[step]]
name = "stuck"
command = "setsid sleep 4243 & sleep 4244"
timeout_secs = 1
"#;
    let started = Instant::now();
    let report = build(&node, recipe);
    assert!(started.elapsed() < Duration::from_secs(10));
    let stuck = &report.result.steps[1];
    assert_eq!(stuck.status, StepStatus::TimedOut);
    for pattern in ["sleep 4242", "sleep 4243", "sleep 4244"] {
        assert!(!any_process(pattern), "{pattern} survived its step");
    }
}

/// Whether a live process has exactly `command` as its command line.
fn any_process(command: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            return false;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        text.trim_end() == command && is_live(pid)
    })
}

#[test]
fn without_network_a_step_reaches_nothing_not_even_host_loopback() {
    let Some(node) = sandboxed(Limits::default()) else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connect = format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 3); \
         print(\"connected\")' 2>&1 || echo unreachable"
    );
    let open = build(
        &node,
        &format!("[[step]]\nname = \"net\"\ncommand = \"\"\"{connect}\"\"\"\n"),
    );
    assert!(
        log_of(&node, &open, "net").contains("connected"),
        "the control"
    );
    let closed = build(
        &node,
        &format!("network = false\n[[step]]\nname = \"net\"\ncommand = \"\"\"{connect}\"\"\"\n"),
    );
    let log = log_of(&node, &closed, "net");
    assert!(
        log.contains("unreachable") && !log.contains("connected"),
        "{log}"
    );
}

#[test]
fn memory_processes_and_disk_are_limited() {
    let limits = Limits {
        memory_bytes: 256 << 20,
        processes: 64,
        work_bytes: 8 << 20,
        ..Limits::default()
    };
    let Some(node) = sandboxed(limits) else {
        return;
    };
    let recipe = r#"
[[step]]
name = "memory"
command = "python3 -c 'b = bytearray(512 << 20)' 2>&1; echo exit=$?"
[[step]]
name = "processes"
command = "for i in $(seq 100); do sleep 5 & done 2>&1 | grep -c 'fork' ; echo done"
timeout_secs = 20
[[step]]
name = "disk"
command = "head -c 33554432 /dev/zero > big; sleep 30"
timeout_secs = 20
"#;
    let started = Instant::now();
    let report = build(&node, recipe);
    let memory = log_of(&node, &report, "memory");
    assert!(
        memory.contains("MemoryError") && memory.contains("exit=1"),
        "{memory}"
    );
    let processes = log_of(&node, &report, "processes");
    let refused: u32 = processes.lines().next().unwrap().trim().parse().unwrap();
    assert!(refused > 0, "forks past the limit fail: {processes}");
    let disk = &report.result.steps[2];
    assert_eq!(disk.status, StepStatus::Signalled(9), "{report:?}");
    assert!(node.log(&disk.log).contains("past the node's cap of 8 MiB"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the disk cap acted"
    );
}

#[test]
fn inherited_toolchains_run_read_only() {
    let Some(node) = sandboxed(Limits::default()) else {
        return;
    };
    // The toolchain that runs these tests: wherever rustup or the system
    // put it, the recipe's `inherit` makes it usable, and not writable.
    let recipe = r#"
[[step]]
name = "tool"
command = "cargo --version && touch \"$(dirname \"$(command -v cargo)\")/x\" 2>/dev/null || echo read-only"
[environment]
inherit = ["PATH", "CARGO_HOME", "RUSTUP_HOME"]
"#;
    let report = build(&node, recipe);
    let log = log_of(&node, &report, "tool");
    assert!(log.starts_with("cargo "), "{log}");
    assert!(log.contains("read-only"), "{log}");
}

#[test]
fn a_project_keeps_its_cache_between_builds() {
    let Some(mut node) = sandboxed(Limits::default()) else {
        return;
    };
    node.context.caches = Some(node.dir.path().join("cache"));
    let recipe = r#"
[[step]]
name = "cache"
command = "echo cache=$BUILDMESH_CACHE; cat $BUILDMESH_CACHE/count 2>/dev/null || echo none; echo again > $BUILDMESH_CACHE/count"
"#;
    let first = build(&node, recipe);
    assert_eq!(log_of(&node, &first, "cache"), "cache=/cache\nnone\n");
    let second = build(&node, recipe);
    assert_eq!(log_of(&node, &second, "cache"), "cache=/cache\nagain\n");
}

#[test]
fn a_cache_past_half_the_cap_is_emptied_before_the_next_build() {
    let limits = Limits {
        work_bytes: 8 << 20,
        ..Limits::default()
    };
    let Some(mut node) = sandboxed(limits) else {
        return;
    };
    node.context.caches = Some(node.dir.path().join("cache"));
    let recipe = r#"
[[step]]
name = "fill"
command = "ls $BUILDMESH_CACHE; head -c 5000000 /dev/zero > $BUILDMESH_CACHE/blob"
"#;
    let first = build(&node, recipe);
    assert_eq!(first.result.outcome, Outcome::Passed, "{first:?}");
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let second = build(&node, recipe);
    assert_eq!(log_of(&node, &second, "fill"), "", "the cache was emptied");
    assert!(
        second
            .warnings
            .iter()
            .any(|w| w.contains("cache") && w.contains("emptied")),
        "{:?}",
        second.warnings
    );
}

/// Review of issue 12: a step's environment reached bwrap itself, on the
/// host, so `LD_PRELOAD` in a recipe ran the recipe's code outside the
/// sandbox (as root on a root node). `LD_DEBUG` shows which programs the
/// loader saw the variable in: only the step's shell may.
#[test]
fn a_steps_environment_reaches_its_shell_and_nothing_before_it() {
    let Some(node) = sandboxed(Limits::default()) else {
        return;
    };
    let recipe = r#"
[[step]]
name = "env"
command = "echo shell-ran"
env = { LD_DEBUG = "files" }
"#;
    let report = build(&node, recipe);
    let log = log_of(&node, &report, "env");
    assert!(log.contains("shell-ran"), "{log}");
    assert!(log.contains("needed by /bin/sh"), "the shell saw it: {log}");
    for host_side in ["bwrap", "prlimit", "setpriv", "/usr/bin/env"] {
        assert!(
            !log.contains(host_side),
            "{host_side} saw the step's env: {log}"
        );
    }
}
