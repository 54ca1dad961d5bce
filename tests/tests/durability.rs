//! Acknowledged means durable: a writer killed with SIGKILL loses no entry
//! it acknowledged, whenever it dies, and the chain continues after it.
//!
//! The writer (`src/bin/durability-writer.rs`) prints `<seq> <id>` after
//! each `buildmesh_core::log::insert` (or `insert_batch`) returns `Ok`. We
//! read a number of those lines, kill it (`Child::kill` is SIGKILL on
//! Unix), read what it had already printed, reopen its store and look for
//! every acknowledged entry. The last test shows the check able to fail: it
//! runs the writer without flushing and expects lost entries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::{ChainStore, EntryStore};
use buildmesh_store::SledStore;
use buildmesh_tests::durability::{Ack, writer_author};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait for one line, or for the writer to exit.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// A running writer and the lines it printed, read on a thread so a hung
/// writer fails the test instead of hanging it.
struct Writer {
    child: Child,
    lines: Receiver<String>,
}

impl Writer {
    fn spawn(dir: &Path, args: &[&str]) -> Writer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_durability-writer"))
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start durability-writer");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            // Only whole lines count: a line cut by the kill was never
            // acknowledged.
            while stdout.read_line(&mut line).is_ok_and(|n| n > 0) && line.ends_with('\n') {
                if send.send(std::mem::take(&mut line)).is_err() {
                    break;
                }
            }
        });
        Writer { child, lines }
    }

    fn next_ack(&mut self) -> Option<Ack> {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => Some(line.trim_end().parse().unwrap()),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                self.child.kill().ok();
                panic!("the writer printed nothing for {LINE_TIMEOUT:?}");
            }
        }
    }

    fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut text).ok();
        }
        text
    }

    /// Reads `count` acknowledgements, SIGKILLs the writer, then returns
    /// every acknowledgement it printed (the kill races a few more lines).
    fn kill_after(mut self, count: usize) -> Vec<Ack> {
        let mut acks = Vec::new();
        while acks.len() < count {
            match self.next_ack() {
                Some(ack) => acks.push(ack),
                None => panic!(
                    "the writer stopped after {} lines: {}",
                    acks.len(),
                    self.stderr()
                ),
            }
        }
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "the writer was killed, not finished");
        while let Some(ack) = self.next_ack() {
            acks.push(ack);
        }
        acks
    }

    /// Waits for a writer started with `--count` to finish.
    fn finish(mut self) -> Vec<Ack> {
        let mut acks = Vec::new();
        while let Some(ack) = self.next_ack() {
            acks.push(ack);
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the writer failed: {}", self.stderr());
        acks
    }
}

/// Reopens the store in `dir` and checks every acknowledged entry is there
/// and linked. Returns the writer's version on success.
fn check_acknowledged(dir: &Path, acks: &[Ack]) -> Result<u64, String> {
    let store = SledStore::open(dir).map_err(|e| format!("reopen failed: {e}"))?;
    let author = writer_author();
    let version = store.version(&author).map_err(|e| e.to_string())?;
    let mut lost = Vec::new();
    for ack in acks {
        match store.get(&ack.id).map_err(|e| e.to_string())? {
            Some(stored) if stored.linked && stored.entry.seq() == ack.seq => {}
            Some(stored) => {
                return Err(format!(
                    "seq {} is held but linked={}",
                    ack.seq, stored.linked
                ));
            }
            None => lost.push(ack.seq),
        }
    }
    if !lost.is_empty() {
        return Err(format!(
            "{} of {} acknowledged entries lost after SIGKILL (seq {:?}..={:?})",
            lost.len(),
            acks.len(),
            lost.first(),
            lost.last()
        ));
    }
    let last = acks.last().map_or(0, |a| a.seq);
    if version < last {
        return Err(format!(
            "version {version} is below the last acknowledged seq {last}"
        ));
    }
    if !store.forks().map_err(|e| e.to_string())?.is_empty() {
        return Err("the writer's own chain forked".into());
    }
    // The writer only ever writes its chain in order: nothing pending.
    let held = store.len().map_err(|e| e.to_string())?;
    if held != version {
        return Err(format!("{held} entries held but version is {version}"));
    }
    Ok(version)
}

/// Acknowledgements are the chain in order from `first`.
fn assert_consecutive(acks: &[Ack], first: u64) {
    for (ack, seq) in acks.iter().zip(first..) {
        assert_eq!(ack.seq, seq, "acknowledgements are in chain order");
    }
}

/// A little variation between runs, printed so a failure can be told apart.
fn jitter(modulo: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos) % modulo
}

/// One round: write, kill after `kill_after` acks, check, continue the
/// chain with a second run, check again.
fn round(args: &[&str], kill_after: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let acks = Writer::spawn(&data, args).kill_after(kill_after);
    assert!(acks.len() >= kill_after);
    assert_consecutive(&acks, 1);
    let version = check_acknowledged(&data, &acks)
        .unwrap_or_else(|e| panic!("{args:?}, killed after {kill_after} acks: {e}"));

    let more = Writer::spawn(&data, &[args, &["--count", "25"]].concat()).finish();
    assert_eq!(more.len(), 25);
    assert_consecutive(&more, version + 1);
    let all: Vec<Ack> = acks.iter().chain(&more).copied().collect();
    let after = check_acknowledged(&data, &all).unwrap_or_else(|e| panic!("second run: {e}"));
    assert_eq!(after, version + 25);
}

#[test]
fn inserts_survive_sigkill() {
    for base in [1, 50, 200, 500] {
        let kill_after = base + usize::try_from(jitter(7)).unwrap();
        eprintln!("insert: killing after {kill_after} acknowledgements");
        round(&[], kill_after);
    }
}

#[test]
fn batches_survive_sigkill() {
    for (batch, base) in [("40", 40), ("25", 300)] {
        let kill_after = base + usize::try_from(jitter(50)).unwrap();
        eprintln!("insert_batch of {batch}: killing after {kill_after} acknowledgements");
        round(&["--batch", batch], kill_after);
    }
}

#[test]
fn a_kill_before_any_acknowledgement_leaves_a_usable_store() {
    for delay_ms in [0, 5 + jitter(20)] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut writer = Writer::spawn(&data, &[]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        writer.child.kill().unwrap();
        writer.child.wait().unwrap();
        let mut acks = Vec::new();
        while let Some(ack) = writer.next_ack() {
            acks.push(ack);
        }
        // The kill may land before the directory exists, during sled's
        // first open, or after a few inserts: all must reopen.
        let version = check_acknowledged(&data, &acks)
            .unwrap_or_else(|e| panic!("killed after {delay_ms} ms: {e}"));
        let more = Writer::spawn(&data, &["--count", "5"]).finish();
        assert_consecutive(&more, version + 1);
    }
}

/// Shows the check can fail: without a flush, acknowledged entries still
/// sit in sled's in-memory log buffer when the kill lands. Loss is very
/// likely, not certain (10 runs out of 10 lost entries when this was
/// written), so it gets three tries.
#[test]
fn unflushed_acknowledgements_are_caught() {
    let mut verdicts = Vec::new();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let acks = Writer::spawn(&data, &["--unflushed"]).kill_after(1_000);
        let verdict = check_acknowledged(&data, &acks);
        if verdict.is_err() {
            return;
        }
        verdicts.push(verdict);
    }
    panic!("three unflushed writers lost nothing: {verdicts:?}");
}
