//! The step's shell: the leader of its process group.
//!
//! On Linux, Android and FreeBSD the leader's exit is noticed with
//! `waitid(WNOWAIT)`, which leaves it a zombie: its pid, and so the group id,
//! stay reserved until [`Leader::reap`], so `killpg` can never hit a group
//! that a recycled pid started since. Elsewhere `try_wait` reaps at once and
//! that (tiny) window remains.

use crate::process::Ended;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};

/// Dropping a leader that was not reaped (a panic while the step ran)
/// kills its group and reaps it, so no step outlives its build.
pub(crate) struct Leader {
    /// `None` once reaped.
    child: Option<Child>,
    group: Pid,
    /// Set where noticing the exit also reaped it.
    status: Option<ExitStatus>,
}

impl Leader {
    pub(crate) fn spawn(command: &mut Command) -> io::Result<Leader> {
        let child = command.spawn()?;
        let id = i32::try_from(child.id()).map_err(io::Error::other)?;
        Ok(Leader {
            child: Some(child),
            group: Pid::from_raw(id),
            status: None,
        })
    }

    /// Whether the shell has exited (without reaping it where possible).
    pub(crate) fn has_exited(&mut self) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
        {
            use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(self.group), flags) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => false,
                Ok(_) | Err(_) => true,
            }
        }
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
        {
            if self.status.is_none() {
                self.status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
            }
            self.status.is_some()
        }
    }

    /// SIGKILL to every process of the group that is still there.
    pub(crate) fn kill_group(&self) {
        match killpg(self.group, Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => tracing::warn!(group = self.group.as_raw(), "killing a step's group: {e}"),
        }
    }

    /// Waits for the shell and says how it ended.
    pub(crate) fn reap(mut self) -> Ended {
        let status = match (self.status.take(), self.child.take()) {
            (Some(status), _) => Ok(status),
            (None, Some(mut child)) => child.wait(),
            (None, None) => Err(io::Error::other("step already reaped")),
        };
        match status {
            Ok(status) => match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Exited(code),
                (None, Some(signal)) => Ended::Signalled(signal),
                (None, None) => Ended::FailedToStart(io::Error::other(format!(
                    "unrecognised exit status {status:?}"
                ))),
            },
            Err(e) => Ended::FailedToStart(e),
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.kill_group();
            let _ = child.wait();
        }
    }
}
