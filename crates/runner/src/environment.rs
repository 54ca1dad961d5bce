//! The builder's environment, as a result reports it: os, arch, kernel and
//! the first line of each tool command the recipe lists.

use crate::cancel::Cancel;
use crate::fit::truncate;
use crate::process::{self, Ended, Spawn};
use crate::sandbox::Jail;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long one tool command may run.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
/// Output kept from a tool command, bytes; only its first line is used.
const TOOL_OUTPUT_BYTES_MAX: usize = 4096;
/// Longest tool line kept, bytes.
const TOOL_LINE_BYTES_MAX: usize = 200;

/// `os`, `arch` and `kernel`, plus one entry per tool command (keyed by
/// the command) run in `work_dir` as a step would be, with [`TOOL_TIMEOUT`].
pub fn capture_environment(
    tools: &[String],
    env: &BTreeMap<String, String>,
    work_dir: &Path,
    cancel: &Cancel,
) -> BTreeMap<String, String> {
    capture_environment_in(tools, env, work_dir, None, cancel)
}

/// [`capture_environment`], running the tool commands in `jail` if there
/// is one.
pub(crate) fn capture_environment_in(
    tools: &[String],
    env: &BTreeMap<String, String>,
    work_dir: &Path,
    jail: Option<&Jail>,
    cancel: &Cancel,
) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    environment.insert("os".into(), std::env::consts::OS.into());
    environment.insert("arch".into(), std::env::consts::ARCH.into());
    environment.insert("kernel".into(), kernel());
    for tool in tools {
        if cancel.is_cancelled() {
            break;
        }
        environment.insert(tool.clone(), tool_line(tool, env, work_dir, jail, cancel));
    }
    environment
}

/// `uname -r`.
fn kernel() -> String {
    match nix::sys::utsname::uname() {
        Ok(name) => name.release().to_string_lossy().into_owned(),
        Err(e) => format!("unknown ({e})"),
    }
}

/// The first non-blank line the command printed; if it did not exit 0,
/// prefixed with how it ended, so a missing tool reads as one.
fn tool_line(
    command: &str,
    env: &BTreeMap<String, String>,
    work_dir: &Path,
    jail: Option<&Jail>,
    cancel: &Cancel,
) -> String {
    let mut output = Vec::new();
    let spawn = Spawn {
        command,
        dir: work_dir,
        env,
        timeout: TOOL_TIMEOUT,
        jail,
    };
    let ended = process::run(&spawn, cancel, &mut |bytes| {
        let room = TOOL_OUTPUT_BYTES_MAX.saturating_sub(output.len());
        output.extend_from_slice(&bytes[..room.min(bytes.len())]);
    });
    let text = String::from_utf8_lossy(&output);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let line = truncate(line, TOOL_LINE_BYTES_MAX);
    match ended {
        Ended::Exited(0) => line,
        Ended::Exited(code) => format!("unavailable (exit {code}): {line}"),
        Ended::Signalled(signal) => format!("unavailable (signal {signal}): {line}"),
        Ended::TimedOut => format!("unavailable (timed out): {line}"),
        Ended::Cancelled => "unavailable (cancelled)".into(),
        Ended::OverDisk(..) => "unavailable (work dir full)".into(),
        Ended::FailedToStart(e) => format!("unavailable ({e})"),
    }
}
