//! One step at a time: output, environment, timeouts, process groups,
//! cancellation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::StepStatus;
use buildmesh_runner::{BlobDir, Cancel, StepOptions, StepRun, run_step};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::{group_is_gone, is_live, live_members, read_pid};
use tempfile::TempDir;

struct Bench {
    work: TempDir,
    aside: TempDir,
    blobs: BlobDir,
    _blob_dir: TempDir,
}

impl Bench {
    fn new() -> Bench {
        let blob_dir = tempfile::tempdir().unwrap();
        Bench {
            work: tempfile::tempdir().unwrap(),
            aside: tempfile::tempdir().unwrap(),
            blobs: BlobDir::open(blob_dir.path()).unwrap(),
            _blob_dir: blob_dir,
        }
    }

    /// A file outside the work dir for a step to write pids into.
    fn aside(&self, name: &str) -> String {
        self.aside.path().join(name).to_str().unwrap().to_owned()
    }

    fn run(&self, command: &str, timeout: Duration) -> StepRun {
        self.run_with(command, timeout, &BTreeMap::new(), &Cancel::new())
    }

    fn run_with(
        &self,
        command: &str,
        timeout: Duration,
        env: &BTreeMap<String, String>,
        cancel: &Cancel,
    ) -> StepRun {
        let step = buildmesh_runner::Step {
            name: "step".into(),
            command: command.into(),
            timeout,
            env: env.clone(),
            warn_on_failure: false,
        };
        let options = StepOptions {
            log_bytes_max: 1 << 20,
            cancel,
            on_output: None,
        };
        run_step(&step, self.work.path(), &self.blobs, &options).unwrap()
    }

    fn log(&self, run: &StepRun) -> String {
        String::from_utf8(std::fs::read(self.blobs.path(&run.log.hash)).unwrap()).unwrap()
    }
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn stdout_and_stderr_share_one_log_in_order() {
    let bench = Bench::new();
    let run = bench.run("echo one; echo two >&2; echo three", LONG);
    assert_eq!(run.status, StepStatus::Exited(0));
    assert_eq!(bench.log(&run), "one\ntwo\nthree\n");
    assert_eq!(run.log.bytes, 14);
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let bench = Bench::new();
    assert_eq!(bench.run("exit 3", LONG).status, StepStatus::Exited(3));
    assert_eq!(
        bench.run("kill -TERM $$", LONG).status,
        StepStatus::Signalled(15)
    );
}

#[test]
fn the_environment_is_cleared() {
    assert!(
        std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
        "cargo sets it for tests"
    );
    let bench = Bench::new();
    let env = BTreeMap::from([("DECLARED".to_owned(), "yes".to_owned())]);
    let run = bench.run_with("env", LONG, &env, &Cancel::new());
    let log = bench.log(&run);
    let mut names: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|p| p.0)
        .collect();
    names.sort();
    // PWD is set by the shell itself.
    assert_eq!(
        names,
        ["BUILDMESH", "DECLARED", "HOME", "PATH", "PWD"],
        "{log}"
    );
    let home = format!("HOME={}", bench.work.path().display());
    assert!(log.contains(&home), "{log}");
    assert!(log.contains("PATH=/usr/local/bin:/usr/bin:/bin\n"));
    assert!(log.contains("BUILDMESH=1\n"));
}

#[test]
fn a_step_may_set_its_own_path() {
    let bench = Bench::new();
    let env = BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]);
    let run = bench.run_with("echo $PATH", LONG, &env, &Cancel::new());
    assert_eq!(bench.log(&run), "/bin\n");
}

#[test]
fn a_timeout_kills_the_whole_group() {
    let bench = Bench::new();
    let child = bench.aside("child");
    let group = bench.aside("group");
    let started = Instant::now();
    let command = format!("echo $$ > {group}; sh -c 'sleep 60' & echo $! > {child}; sleep 60");
    let run = bench.run(&command, Duration::from_secs(1));
    assert_eq!(run.status, StepStatus::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(run.duration_ms >= 1000, "{}", run.duration_ms);
    assert!(group_is_gone(read_pid(Path::new(&group))));
    assert!(
        !is_live(read_pid(Path::new(&child))),
        "the grandchild is gone too"
    );
    assert!(bench.log(&run).contains("timed out after 1 s"));
}

#[test]
fn a_background_child_of_a_passing_step_is_killed() {
    let bench = Bench::new();
    let group = bench.aside("group");
    let started = Instant::now();
    // The child keeps the output pipe open: the step must still end.
    let run = bench.run(&format!("echo $$ > {group}; sleep 60 & echo started"), LONG);
    assert_eq!(run.status, StepStatus::Exited(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(group_is_gone(read_pid(Path::new(&group))));
    assert_eq!(bench.log(&run), "started\n");
}

#[test]
fn cancel_kills_a_running_step() {
    let bench = Bench::new();
    let group = bench.aside("group");
    let cancel = Cancel::new();
    let canceller = cancel.clone();
    let group_file = group.clone();
    let pulled = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // The group is there while the step runs: the check below means something.
        let members = live_members(read_pid(Path::new(&group_file)));
        canceller.cancel();
        members
    });
    let started = Instant::now();
    let command = format!("echo $$ > {group}; sleep 60 & sleep 60");
    let run = bench.run_with(&command, LONG, &BTreeMap::new(), &cancel);
    assert!(
        pulled.join().unwrap().len() >= 2,
        "the shell and its sleeps were running"
    );
    assert_eq!(run.status, StepStatus::Signalled(9));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(group_is_gone(read_pid(Path::new(&group))));
    assert!(bench.log(&run).contains("cancelled"));
}

#[test]
fn output_past_the_cap_is_counted_and_noted() {
    let bench = Bench::new();
    let step = buildmesh_runner::Step {
        name: "loud".into(),
        command: "head -c 5000 /dev/zero | tr '\\0' x".into(),
        timeout: LONG,
        env: BTreeMap::new(),
        warn_on_failure: false,
    };
    let seen = Mutex::new(0usize);
    let count = |bytes: &[u8]| *seen.lock().unwrap() += bytes.len();
    let options = StepOptions {
        log_bytes_max: 1000,
        cancel: &Cancel::new(),
        on_output: Some(&count),
    };
    let run = run_step(&step, bench.work.path(), &bench.blobs, &options).unwrap();
    let log = bench.log(&run);
    assert!(log.starts_with(&"x".repeat(1000)));
    assert!(
        log.contains("[output truncated at 1000 bytes; 5000 bytes in all]"),
        "{log}"
    );
    assert_eq!(run.log.offered, 5000);
    assert_eq!(
        *seen.lock().unwrap(),
        5000,
        "the live callback sees everything"
    );
}

#[test]
fn a_step_that_cannot_start_says_why() {
    let bench = Bench::new();
    let missing = bench.work.path().join("not-there");
    let step = buildmesh_runner::Step {
        name: "nowhere".into(),
        command: "true".into(),
        timeout: LONG,
        env: BTreeMap::new(),
        warn_on_failure: false,
    };
    let options = StepOptions {
        log_bytes_max: 1000,
        cancel: &Cancel::new(),
        on_output: None,
    };
    let run = run_step(&step, &missing, &bench.blobs, &options).unwrap();
    assert_eq!(run.status, StepStatus::FailedToStart);
    assert!(bench.log(&run).contains("could not start"));
}
