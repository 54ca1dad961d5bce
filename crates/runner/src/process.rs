//! Running one shell command in its own process group, with its output
//! (stdout and stderr, interleaved in arrival order) streamed to a sink.
//!
//! Why a group: a build starts grandchildren (compilers, test servers,
//! `sleep &`). Killing only `/bin/sh` would leave them running and, worse,
//! holding the output pipe open, so the log would never end. The step's
//! shell leads a new group; whenever the step ends (exit, timeout, cancel)
//! the whole group gets SIGKILL before the leader is reaped, so the group id
//! cannot have been reused by an unrelated process.
//!
//! A process that leaves the group on purpose (`setsid`, a double-forking
//! daemon) escapes; its output after the step ends is not waited for longer
//! than [`DRAIN_GRACE`].

mod leader;

use crate::cancel::Cancel;
use crate::sandbox::{DiskWatch, Jail, disk::Usage};
use leader::Leader;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// `PATH` a step sees unless its recipe sets one.
pub const PATH_DEFAULT: &str = "/usr/local/bin:/usr/bin:/bin";
/// How often the leader, the deadline and the cancel flag are checked.
const POLL: Duration = Duration::from_millis(10);
/// How long output is still read after the group was killed.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// Bytes per read from the pipe.
const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks in flight between the reader thread and the sink: a bounded
/// queue, so a slow sink slows the build's output instead of eating memory.
const CHUNKS_QUEUED_MAX: usize = 16;

/// What to run.
pub(crate) struct Spawn<'a> {
    pub command: &'a str,
    pub dir: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Duration,
    /// The sandbox to run in; `None` runs the command as the node's user
    /// with the node's view of the machine.
    pub jail: Option<&'a Jail>,
}

/// How the command ended.
#[derive(Debug)]
pub(crate) enum Ended {
    Exited(i32),
    Signalled(i32),
    TimedOut,
    Cancelled,
    /// The build area grew past its cap, or the disk filled: why.
    OverDisk(String),
    FailedToStart(io::Error),
}

/// Runs `spawn` to its end, feeding its output to `sink` on this thread.
pub(crate) fn run(spawn: &Spawn<'_>, cancel: &Cancel, sink: &mut dyn FnMut(&[u8])) -> Ended {
    let (reader, writer) = match io::pipe() {
        Ok(pair) => pair,
        Err(e) => return Ended::FailedToStart(e),
    };
    let chunks = match start_reader(reader) {
        Ok(chunks) => chunks,
        Err(e) => return Ended::FailedToStart(e),
    };
    let leader = match command(spawn, writer).and_then(|mut c| Leader::spawn(&mut c)) {
        Ok(leader) => leader,
        Err(e) => return Ended::FailedToStart(e),
    };
    let disk = spawn.jail.map(Jail::disk_watch);
    let ended = supervise(leader, spawn.timeout, cancel, disk, &chunks, sink);
    drain(&chunks, sink);
    ended
}

/// `/bin/sh -c COMMAND` in `dir` (or in the jail), in a new process group,
/// with a cleared environment. The command owns both copies of the pipe's
/// write end and is dropped right after spawning, so the pipe ends when the
/// group is gone.
fn command(spawn: &Spawn<'_>, writer: io::PipeWriter) -> io::Result<Command> {
    use std::os::unix::process::CommandExt;
    let mut env = BTreeMap::from([
        ("PATH".to_owned(), PATH_DEFAULT.to_owned()),
        ("BUILDMESH".to_owned(), "1".to_owned()),
    ]);
    env.extend(spawn.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut command = match spawn.jail {
        Some(jail) => jail.command(spawn.command, &env),
        None => {
            let mut command = Command::new("/bin/sh");
            command
                .arg("-c")
                .arg(spawn.command)
                .current_dir(spawn.dir)
                .env_clear()
                .env("HOME", spawn.dir)
                .envs(&env);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0);
    Ok(command)
}

/// A thread that reads the pipe to its end and queues what it read.
fn start_reader(mut reader: io::PipeReader) -> io::Result<Receiver<Vec<u8>>> {
    let (sender, receiver): (SyncSender<Vec<u8>>, _) = sync_channel(CHUNKS_QUEUED_MAX);
    std::thread::Builder::new()
        .name("buildmesh-step-output".into())
        .spawn(move || {
            let mut buffer = vec![0; CHUNK_BYTES];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => {
                        if sender.send(buffer[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        })?;
    Ok(receiver)
}

/// Polls until the leader exits, the deadline passes or `cancel` is set,
/// passing output on meanwhile; then kills the group and reaps the leader.
fn supervise(
    mut leader: Leader,
    timeout: Duration,
    cancel: &Cancel,
    mut disk: Option<DiskWatch>,
    chunks: &Receiver<Vec<u8>>,
    sink: &mut dyn FnMut(&[u8]),
) -> Ended {
    let deadline = Instant::now() + timeout;
    loop {
        pass_on(chunks, sink, POLL);
        let now = Instant::now();
        let usage = disk.as_mut().map_or(Usage::Fine, |d| d.check(now));
        let verdict = if leader.has_exited() {
            None
        } else if cancel.is_cancelled() {
            Some(Ended::Cancelled)
        } else if now >= deadline {
            Some(Ended::TimedOut)
        } else if let Usage::Over(why) = usage {
            Some(Ended::OverDisk(why))
        } else {
            continue;
        };
        leader.kill_group();
        let status = leader.reap();
        return verdict.unwrap_or(status);
    }
}

/// Waits up to `wait` for one chunk, then passes on all that are queued.
fn pass_on(chunks: &Receiver<Vec<u8>>, sink: &mut dyn FnMut(&[u8]), wait: Duration) {
    match chunks.recv_timeout(wait) {
        Ok(chunk) => sink(&chunk),
        Err(RecvTimeoutError::Timeout) => return,
        // The output ended before the leader did: keep polling at the same
        // pace without spinning.
        Err(RecvTimeoutError::Disconnected) => return std::thread::sleep(wait),
    }
    while let Ok(chunk) = chunks.try_recv() {
        sink(&chunk);
    }
}

/// Reads what is left after the group was killed, until the pipe closes or
/// [`DRAIN_GRACE`] passes (only a process that escaped the group can hold
/// it open that long; the reader thread then ends when that process does).
fn drain(chunks: &Receiver<Vec<u8>>, sink: &mut dyn FnMut(&[u8])) {
    let deadline = Instant::now() + DRAIN_GRACE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match chunks.recv_timeout(left) {
            Ok(chunk) => sink(&chunk),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!("a step's output is still open after its group was killed");
                return;
            }
        }
    }
}
