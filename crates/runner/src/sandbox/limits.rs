//! The resource limits of one step, set with `prlimit` inside the sandbox
//! so they bind the step's processes and nothing of the node.

/// Limits a step runs under. Per process (as `setrlimit` counts them),
/// except `processes` (the sandbox's user, so the whole sandbox) and
/// `work_bytes` (the build's area on disk, watched by the runner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// CPU seconds one process may use (`RLIMIT_CPU`).
    pub cpu_secs: u64,
    /// Address space of one process, bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes and threads in the sandbox at once (`RLIMIT_NPROC`):
    /// a fork bomb stops here.
    pub processes: u64,
    /// Largest file a process may write, bytes (`RLIMIT_FSIZE`).
    pub file_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// The build's work dir, `/tmp` and `HOME` together, bytes on disk; a
    /// step past it is stopped.
    pub work_bytes: u64,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Default for Limits {
    /// Enough for a Rust or C++ build on a laptop, not enough for one
    /// build to take the machine.
    fn default() -> Self {
        Limits {
            cpu_secs: 4 * 3600,
            memory_bytes: 8 * GIB,
            processes: 4096,
            file_bytes: 8 * GIB,
            open_files: 4096,
            work_bytes: 20 * GIB,
        }
    }
}

impl Limits {
    /// `prlimit`'s options for these limits (soft and hard alike, so a
    /// step cannot raise them), each no higher than the node's own hard
    /// limit: nobody without privilege can raise one, and asking to would
    /// fail every step (a node started under `ulimit -n 256` could build
    /// nothing with the default of 4,096 open files).
    pub(crate) fn prlimit_args(&self) -> Vec<String> {
        use nix::sys::resource::Resource;
        let capped = |resource, value: u64| {
            nix::sys::resource::getrlimit(resource).map_or(value, |(_, hard)| value.min(hard))
        };
        vec![
            format!("--cpu={}", capped(Resource::RLIMIT_CPU, self.cpu_secs)),
            format!("--as={}", capped(Resource::RLIMIT_AS, self.memory_bytes)),
            format!("--nproc={}", capped(Resource::RLIMIT_NPROC, self.processes)),
            format!(
                "--fsize={}",
                capped(Resource::RLIMIT_FSIZE, self.file_bytes)
            ),
            format!(
                "--nofile={}",
                capped(Resource::RLIMIT_NOFILE, self.open_files)
            ),
            "--core=0".to_owned(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_reaches_prlimit() {
        let limits = Limits {
            cpu_secs: 1,
            memory_bytes: 2,
            processes: 3,
            file_bytes: 4,
            open_files: 5,
            work_bytes: 6,
        };
        assert_eq!(
            limits.prlimit_args(),
            [
                "--cpu=1",
                "--as=2",
                "--nproc=3",
                "--fsize=4",
                "--nofile=5",
                "--core=0"
            ]
        );
    }
}
