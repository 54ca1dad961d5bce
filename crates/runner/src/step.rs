//! One recipe step: run it, store its output as a blob, say how it ended.

use crate::blobs::{BlobDir, BlobWriter, StoredBlob};
use crate::cancel::Cancel;
use crate::process::{self, Ended, Spawn};
use crate::recipe::Step;
use crate::sandbox::Jail;
use buildmesh_protocol::StepStatus;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

/// The signal a cancelled step is reported as: it was SIGKILLed.
const SIGKILL: i32 = 9;

/// Receives a step's output as it arrives.
pub type OnOutput<'a> = &'a dyn Fn(&[u8]);

/// How to run a step.
#[derive(Clone, Copy)]
pub struct StepOptions<'a> {
    /// Output past this many bytes is counted but not stored.
    pub log_bytes_max: u64,
    /// Set to kill the step.
    pub cancel: &'a Cancel,
    /// Called with each piece of output as it arrives (for live logs),
    /// on the calling thread, before the piece is stored.
    pub on_output: Option<OnOutput<'a>>,
}

/// How a step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    /// How it ended; a cancelled step is `Signalled(9)`.
    pub status: StepStatus,
    /// Wall time from spawn to the end of its output, milliseconds.
    pub duration_ms: u64,
    /// Its stored output: stdout and stderr interleaved, plus the
    /// runner's notes (timeout, start failure, truncation).
    pub log: StoredBlob,
}

/// Runs `step` in `work_dir` with `/bin/sh -c`, in its own process group,
/// with only `PATH`, `HOME` (= `work_dir`), `BUILDMESH=1` and the step's own
/// variables in its environment. The group is killed when the step ends.
///
/// Fails only when the log cannot be stored; how the command itself ended,
/// including failing to start, is in [`StepRun::status`].
pub fn run_step(
    step: &Step,
    work_dir: &Path,
    blobs: &BlobDir,
    options: &StepOptions<'_>,
) -> io::Result<StepRun> {
    run_step_in(step, work_dir, None, blobs, options)
}

/// [`run_step`], in `jail` if there is one.
pub(crate) fn run_step_in(
    step: &Step,
    work_dir: &Path,
    jail: Option<&Jail>,
    blobs: &BlobDir,
    options: &StepOptions<'_>,
) -> io::Result<StepRun> {
    let mut log = Log::new(
        blobs.writer(Some(options.log_bytes_max))?,
        options.on_output,
    );
    let spawn = Spawn {
        command: &step.command,
        dir: work_dir,
        env: &step.env,
        timeout: step.timeout,
        jail,
    };
    let started = Instant::now();
    let ended = process::run(&spawn, options.cancel, &mut |bytes| log.push(bytes));
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let status = status_of(ended, step, &mut log);
    Ok(StepRun {
        status,
        duration_ms,
        log: log.finish()?,
    })
}

/// The step's status, with a note in its log when the runner ended it.
fn status_of(ended: Ended, step: &Step, log: &mut Log<'_>) -> StepStatus {
    match ended {
        Ended::Exited(code) => StepStatus::Exited(code),
        Ended::Signalled(signal) => StepStatus::Signalled(signal),
        Ended::Cancelled => {
            log.note("build cancelled; the step's process group was killed");
            StepStatus::Signalled(SIGKILL)
        }
        Ended::TimedOut => {
            let secs = step.timeout.as_secs();
            log.note(&format!(
                "timed out after {secs} s; the step's process group was killed"
            ));
            StepStatus::TimedOut
        }
        Ended::OverDisk(why) => {
            log.note(&format!("{why}; the sandbox was killed"));
            StepStatus::Signalled(SIGKILL)
        }
        Ended::FailedToStart(e) => {
            log.note(&format!("could not start /bin/sh: {e}"));
            StepStatus::FailedToStart
        }
    }
}

/// The blob being written plus the live-output callback; remembers the
/// first write error instead of stopping the step over it.
struct Log<'a> {
    writer: BlobWriter,
    on_output: Option<OnOutput<'a>>,
    error: Option<io::Error>,
}

impl<'a> Log<'a> {
    fn new(writer: BlobWriter, on_output: Option<OnOutput<'a>>) -> Self {
        Log {
            writer,
            on_output,
            error: None,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if let Some(on_output) = self.on_output {
            on_output(bytes);
        }
        if self.error.is_none() {
            self.error = self.writer.write_all(bytes).err();
        }
    }

    /// A line from the runner itself, set apart from the command's output.
    fn note(&mut self, text: &str) {
        self.push(format!("\n[buildmesh: {text}]\n").as_bytes());
    }

    fn finish(self) -> io::Result<StoredBlob> {
        match self.error {
            Some(e) => Err(e),
            None => self.writer.finish(),
        }
    }
}
