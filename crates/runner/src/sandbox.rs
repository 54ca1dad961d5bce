//! Every step in a sandbox: bubblewrap (`bwrap`) puts the step's shell in
//! new user, PID, IPC, UTS and mount namespaces (and a new network
//! namespace when the network is off), as an unprivileged uid, where it
//! sees only:
//!
//! - the system directories (`/usr`, `/etc`, `/bin`, `/lib*`, ...),
//!   read-only, with every entry that other users could not read hidden
//!   ([`scan`]): `/etc/shadow`, TLS private keys, the operator's secrets;
//! - its work dir at `/build` (read-write), a private `/tmp` and `HOME`
//!   (`/home/build`), all three on disk in the build's own area;
//! - the toolchain paths the recipe inherits (`PATH`, `CARGO_HOME`, ...),
//!   read-only, unless one would reveal the operator's home or the node's
//!   data ([`binds`]).
//!
//! Nothing else: not the node's data dir and key, not the operator's home,
//! not `/var` or `/run`. The step's processes get resource limits through
//! `prlimit` ([`Limits`]); the work area's size is watched by the runner
//! ([`DiskWatch`]). Because bubblewrap runs the sandbox as PID 1 of its own
//! PID namespace and `--die-with-parent` ties it to the runner, killing
//! `bwrap` (the step's process group leader) kills every process the step
//! started, a `setsid` daemon included, and so does the node's death.

mod argv;
mod binds;
pub(crate) mod disk;
mod limits;
mod scan;

pub use disk::DiskWatch;
pub use limits::Limits;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Where the step's work dir is mounted inside the sandbox (and its cwd).
pub const SANDBOX_WORK_DIR: &str = "/build";
/// The step's `HOME` inside the sandbox.
pub const SANDBOX_HOME: &str = "/home/build";
/// Where the project's cache (kept between its builds) is mounted; steps
/// find it in `BUILDMESH_CACHE`, sandboxed or not.
pub const SANDBOX_CACHE: &str = "/cache";
/// The uid and gid a step has when the node runs as root: `nobody`.
pub const BUILD_ID_AS_ROOT: u32 = 65534;

/// Who the step is, as the kernel sees it.
///
/// Under an unprivileged node, bubblewrap needs a user namespace, and the
/// step is the node's own user outside it (uid 1000 inside). Under root
/// that would make the step root outside its namespace: file owner checks
/// would let it read every root-owned file it can see, and the kernel
/// exempts root from the process limit. So as root, bubblewrap runs
/// without a user namespace and the step drops to [`BUILD_ID_AS_ROOT`]
/// with `setpriv` (no capabilities, no new privileges), owning the build
/// area the runner hands over to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    /// In a user namespace, as the node's user.
    Namespaced,
    /// Dropped from root to this uid and gid.
    Dropped(u32),
}

/// What an operator decides about sandboxes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The bubblewrap binary [default: `bwrap`, found on the node's `PATH`
    /// when the sandbox is probed, never on a step's].
    pub bwrap: PathBuf,
    /// util-linux's `prlimit`, run inside the sandbox to set limits.
    pub prlimit: PathBuf,
    /// util-linux's `setpriv`, which drops root to the build user.
    pub setpriv: PathBuf,
    /// coreutils' `env`, which gives the step's shell its environment
    /// (and nothing before it).
    pub env: PathBuf,
    /// Resource limits of every step.
    pub limits: Limits,
    /// Whether any step may use the network. `false` forces it off for
    /// every build, whatever recipes say.
    pub network: bool,
    /// Paths to keep out of every sandbox even if they sit inside a system
    /// directory: the node's data dir, config and secrets.
    pub hidden: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bwrap: PathBuf::from("bwrap"),
            prlimit: PathBuf::from("/usr/bin/prlimit"),
            setpriv: PathBuf::from("/usr/bin/setpriv"),
            env: PathBuf::from("/usr/bin/env"),
            limits: Limits::default(),
            network: true,
            hidden: Vec::new(),
        }
    }
}

/// Why no sandbox can run here.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `bwrap` could not be started.
    #[error(
        "bubblewrap ({path}) cannot be started: {source}; install it (Debian: apt-get install \
         bubblewrap)"
    )]
    NoBubblewrap {
        /// What was tried.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `prlimit`, `setpriv` or `env` is missing.
    #[error(
        "{0} is missing; install util-linux and coreutils, which set the sandbox's limits, \
         user and environment"
    )]
    NoPrlimit(PathBuf),
    /// `bwrap` ran but could not make a sandbox (user namespaces off...).
    #[error(
        "bubblewrap cannot create a sandbox here: {0}; enable unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)"
    )]
    Refused(String),
    /// The trial build area could not be made.
    #[error("preparing a trial sandbox: {0}")]
    Io(#[from] std::io::Error),
}

/// A sandbox that was seen to work on this machine: the configuration plus
/// what must be hidden in the system directories.
#[derive(Debug, Clone)]
pub struct Sandbox {
    config: SandboxConfig,
    identity: Identity,
    /// System directories bound read-only, or symlinks recreated.
    system: Vec<binds::SystemPath>,
    /// Entries of the system directories to hide (not world-readable, or
    /// named by the operator).
    masks: Vec<scan::Mask>,
    /// The operator's home: never bound, not even through `inherit`.
    home: Option<PathBuf>,
}

/// One build's sandbox: its area on disk and what its recipe asks.
#[derive(Debug, Clone)]
pub(crate) struct Jail {
    sandbox: Arc<Sandbox>,
    /// Mounted at [`SANDBOX_WORK_DIR`].
    work: PathBuf,
    /// Mounted at `/tmp`.
    tmp: PathBuf,
    /// Mounted at [`SANDBOX_HOME`].
    home: PathBuf,
    /// The project's cache, mounted at [`SANDBOX_CACHE`].
    cache: Option<PathBuf>,
    /// Whether the recipe wants the network (the operator may still say no).
    network: bool,
    /// Host paths from inherited variables, bound read-only.
    toolchain: Vec<PathBuf>,
    /// What others could not read near the top of those paths (a
    /// `credentials.toml` in `CARGO_HOME`).
    toolchain_masks: Vec<scan::Mask>,
}

/// The directories a jail mounts.
#[derive(Debug, Clone)]
pub(crate) struct JailDirs {
    /// The work dir (the checkout).
    pub work: PathBuf,
    /// The step's `/tmp`.
    pub tmp: PathBuf,
    /// The step's `HOME`.
    pub home: PathBuf,
    /// The project's cache, kept between its builds.
    pub cache: Option<PathBuf>,
}

/// How deep the toolchain paths are scanned for files to hide, per build.
const TOOLCHAIN_SCAN_DEPTH: usize = 2;

impl Jail {
    /// A jail over `dirs` (which must exist), binding the toolchain paths
    /// of `env`.
    pub(crate) fn new(
        sandbox: Arc<Sandbox>,
        dirs: JailDirs,
        network: bool,
        env: &BTreeMap<String, String>,
    ) -> Jail {
        let toolchain = sandbox.toolchain_paths(env);
        let mut toolchain_masks = Vec::new();
        for path in &toolchain {
            scan::unreadable(path, TOOLCHAIN_SCAN_DEPTH, &mut toolchain_masks);
        }
        Jail {
            sandbox,
            work: dirs.work,
            tmp: dirs.tmp,
            home: dirs.home,
            cache: dirs.cache,
            network,
            toolchain,
            toolchain_masks,
        }
    }

    /// The command that runs `command` in this jail.
    pub(crate) fn command(&self, command: &str, env: &BTreeMap<String, String>) -> Command {
        self.sandbox.command(self, command, env)
    }

    /// A watch on the size of the jail's directories, the project's
    /// cache included.
    pub(crate) fn disk_watch(&self) -> DiskWatch {
        let mut roots = vec![self.work.clone(), self.tmp.clone(), self.home.clone()];
        roots.extend(self.cache.clone());
        DiskWatch::new(roots, self.sandbox.config.limits.work_bytes)
    }

    /// Gives the build area to the build user, when steps run as one
    /// (the node runs as root): the checkout was written by the node.
    /// Symlinks are changed, not followed.
    pub(crate) fn hand_over(&self) -> std::io::Result<()> {
        let Identity::Dropped(id) = self.sandbox.identity else {
            return Ok(());
        };
        if let Some(cache) = &self.cache {
            // Only its top: what is inside, earlier builds wrote as the
            // build user already, and a large cache is not walked each time.
            std::os::unix::fs::lchown(cache, Some(id), Some(id))?;
        }
        let mut pending = vec![self.work.clone(), self.tmp.clone(), self.home.clone()];
        while let Some(path) = pending.pop() {
            std::os::unix::fs::lchown(&path, Some(id), Some(id))?;
            if std::fs::symlink_metadata(&path)?.is_dir() {
                for entry in std::fs::read_dir(&path)? {
                    pending.push(entry?.path());
                }
            }
        }
        Ok(())
    }

    /// Whether steps of this jail reach the network.
    pub(crate) fn has_network(&self) -> bool {
        self.network && self.sandbox.config.network
    }
}

impl Sandbox {
    /// Checks that a sandbox runs here (starts one that runs `true`) and
    /// finds what to hide in the system directories.
    pub fn probe(mut config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        for tool in [&config.prlimit, &config.setpriv, &config.env] {
            if !tool.is_file() {
                return Err(SandboxError::NoPrlimit(tool.clone()));
            }
        }
        config.bwrap = locate(&config.bwrap).map_err(|source| SandboxError::NoBubblewrap {
            path: config.bwrap.clone(),
            source,
        })?;
        let identity = if nix::unistd::geteuid().is_root() {
            Identity::Dropped(BUILD_ID_AS_ROOT)
        } else {
            Identity::Namespaced
        };
        let sandbox = Sandbox {
            identity,
            system: binds::system_paths(),
            masks: scan::masks(&config.hidden),
            home: std::env::var_os("HOME").map(PathBuf::from),
            config,
        };
        sandbox.trial()?;
        Ok(sandbox)
    }

    /// The limits every step runs under.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Whether the operator lets steps use the network at all.
    pub fn network_allowed(&self) -> bool {
        self.config.network
    }

    /// Whether steps are the node's own user outside their namespace (a
    /// node not run as root): what the node's user may reach, on the
    /// host's network, they may too.
    pub fn steps_are_the_node_user(&self) -> bool {
        self.identity == Identity::Namespaced
    }

    /// Runs `true` in a throwaway sandbox.
    fn trial(&self) -> Result<(), SandboxError> {
        let area = tempfile_area()?;
        let dirs = ["src", "tmp", "home"].map(|d| area.join(d));
        for dir in &dirs {
            std::fs::create_dir_all(dir)?;
        }
        let [work, tmp, home] = dirs;
        let dirs = JailDirs {
            work,
            tmp,
            home,
            cache: None,
        };
        let jail = Jail::new(Arc::new(self.clone()), dirs, false, &BTreeMap::new());
        jail.hand_over()?;
        let output = self
            .command(&jail, "true", &BTreeMap::new())
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&area);
        let output = output.map_err(|source| SandboxError::NoBubblewrap {
            path: self.config.bwrap.clone(),
            source,
        })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(SandboxError::Refused(crate::fit::truncate(
            stderr.trim(),
            300,
        )))
    }

    /// `bwrap ... -- [setpriv ...] prlimit ... /bin/sh -c COMMAND` for
    /// `jail`, with exactly `env` (plus `HOME`) in the step's environment.
    fn command(&self, jail: &Jail, command: &str, env: &BTreeMap<String, String>) -> Command {
        let mut bwrap = Command::new(&self.config.bwrap);
        bwrap.env_clear();
        argv::namespaces(&mut bwrap, self.identity, jail.has_network());
        argv::mounts(&mut bwrap, self, jail);
        // Nothing of the step's environment reaches bwrap, setpriv or
        // prlimit: a recipe's LD_PRELOAD would run its code in them, on the
        // host or as root. `env -i` hands it to the step's shell only.
        let mut env = env.clone();
        env.insert("HOME".into(), SANDBOX_HOME.into());
        argv::entry(&mut bwrap, self, command, &env);
        bwrap
    }

    /// The host paths of `env`'s values that may be bound read-only:
    /// absolute paths that exist, outside the system directories, that do
    /// not contain the operator's home or anything hidden. `HOME` itself is
    /// never bound: the step gets a private one.
    fn toolchain_paths(&self, env: &BTreeMap<String, String>) -> Vec<PathBuf> {
        binds::toolchain_paths(env, self.home.as_deref(), &self.config.hidden)
    }
}

/// `program` as a path that names one file whatever the environment: a
/// bare name is looked up in the node's own `PATH`, once, here. The command
/// that starts a sandbox carries the step's environment, whose `PATH` the
/// recipe may set; left to `execvp`, the lookup would follow that `PATH`
/// (or glibc's default, without one) and run, outside any sandbox, a
/// `bwrap` the recipe chose.
fn locate(program: &Path) -> std::io::Result<PathBuf> {
    let bare = program.components().count() == 1 && !program.is_absolute();
    if !bare {
        return std::path::absolute(program);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not found on PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A fresh directory for the trial sandbox.
fn tempfile_area() -> std::io::Result<PathBuf> {
    let area = std::env::temp_dir().join(format!(
        "buildmesh-sandbox-trial-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&area)?;
    Ok(area)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bare_program_name_becomes_an_absolute_path_from_the_nodes_path() {
        let sh = locate(Path::new("sh")).unwrap();
        assert!(sh.is_absolute() && is_executable(&sh), "{}", sh.display());
        let missing = locate(Path::new("buildmesh-no-such-program")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        let given = locate(Path::new("/opt/bwrap")).unwrap();
        assert_eq!(given, Path::new("/opt/bwrap"), "a path is kept as given");
    }
}
