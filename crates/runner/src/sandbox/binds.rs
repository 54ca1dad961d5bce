//! What a sandbox binds from the host: the system directories, and the
//! toolchain paths a recipe inherits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bound read-only when they are directories, recreated when they are
/// symlinks (`/bin -> usr/bin` on merged-/usr systems).
const SYSTEM: [&str; 8] = [
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
/// Where systemd-resolved's stub `resolv.conf` (what `/etc/resolv.conf`
/// often links to) lives: bound only for steps with the network, and only
/// the file, since the directory also holds resolved's socket, which would
/// resolve names (and so leak data) for a step without a network.
pub(crate) const RESOLVED_STUB: &str = "/run/systemd/resolve/stub-resolv.conf";
/// Inherited paths bound per build at most.
const TOOLCHAIN_PATHS_MAX: usize = 32;
/// Host trees never bound through `inherit`: the sandbox has its own, or
/// they hold the machine's state.
const NEVER: [&str; 5] = ["/proc", "/sys", "/dev", "/run", "/var"];

/// A system path as the sandbox shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SystemPath {
    /// A directory, bound read-only.
    Dir(PathBuf),
    /// A symlink, recreated with the same target.
    Symlink { path: PathBuf, target: PathBuf },
}

impl SystemPath {
    pub(crate) fn add_to(&self, bwrap: &mut Command) {
        match self {
            SystemPath::Dir(path) => {
                bwrap.arg("--ro-bind").arg(path).arg(path);
            }
            SystemPath::Symlink { path, target } => {
                bwrap.arg("--symlink").arg(target).arg(path);
            }
        }
    }
}

/// The system paths this machine has.
pub(crate) fn system_paths() -> Vec<SystemPath> {
    SYSTEM
        .iter()
        .map(PathBuf::from)
        .filter_map(|path| {
            let metadata = std::fs::symlink_metadata(&path).ok()?;
            if metadata.file_type().is_symlink() {
                let target = std::fs::read_link(&path).ok()?;
                Some(SystemPath::Symlink { path, target })
            } else if metadata.is_dir() {
                Some(SystemPath::Dir(path))
            } else {
                None
            }
        })
        .collect()
}

/// The paths in the values (split at `:`) of `env`'s toolchain variables
/// ([`is_toolchain_variable`]) that may be bound: absolute, existing, not a
/// system path (visible anyway), not `/`, not an ancestor of (or equal to)
/// `home` or of anything `hidden`, not inside anything hidden.
pub(crate) fn toolchain_paths(
    env: &BTreeMap<String, String>,
    home: Option<&Path>,
    hidden: &[PathBuf],
) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let candidates = env
        .iter()
        .filter(|(name, _)| is_toolchain_variable(name))
        .flat_map(|(_, value)| value.split(':'))
        .map(PathBuf::from);
    for path in candidates {
        if paths.len() >= TOOLCHAIN_PATHS_MAX {
            break;
        }
        if bindable(&path, home, hidden) && !paths.iter().any(|p| path.starts_with(p)) {
            paths.retain(|p| !p.starts_with(&path));
            paths.push(path);
        }
    }
    paths
}

/// `PATH`, `*_PATH`, `*_HOME` and `*_ROOT` (`CARGO_HOME`, `RUSTUP_HOME`,
/// `JAVA_HOME`, `GOROOT`, `PYENV_ROOT`, `LD_LIBRARY_PATH`): variables that
/// name where tools live. Others (`PWD`, `SSH_AUTH_SOCK`, `HOME`) are
/// passed as text but never make a host path visible.
fn is_toolchain_variable(name: &str) -> bool {
    name == "PATH"
        || name == "GOROOT"
        || ["_PATH", "_HOME", "_ROOT"]
            .iter()
            .any(|s| name.ends_with(s))
}

fn bindable(path: &Path, home: Option<&Path>, hidden: &[PathBuf]) -> bool {
    let normal = path.is_absolute()
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    // Compared as the kernel resolves them: a symlink must not lead a
    // bind into the home or the data dir.
    let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    let path = &real(path);
    let system = SYSTEM
        .iter()
        .chain(NEVER.iter())
        .any(|s| path.starts_with(s));
    let reveals = |secret: &Path| {
        let secret = real(secret);
        secret.starts_with(path) || path.starts_with(&secret)
    };
    normal
        && path.exists()
        && path != Path::new("/")
        && !system
        && !home.is_some_and(|home| real(home).starts_with(path))
        && !hidden.iter().any(|h| reveals(h))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn toolchains_are_bound_but_not_the_home_or_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cargo = home.join(".cargo");
        let data = home.join(".local/share/buildmesh");
        let elsewhere = dir.path().join("elsewhere");
        for d in [&cargo.join("bin"), &data, &elsewhere] {
            std::fs::create_dir_all(d).unwrap();
        }
        let env = BTreeMap::from([
            (
                "PATH".to_owned(),
                format!(
                    "{}:/usr/bin:{}:relative:/nonexistent",
                    cargo.join("bin").display(),
                    home.display()
                ),
            ),
            ("CARGO_HOME".to_owned(), cargo.display().to_string()),
            ("HOME".to_owned(), home.display().to_string()),
            ("PWD".to_owned(), elsewhere.display().to_string()),
            (
                "DATA".to_owned(),
                format!("{}:{}", data.join("key").display(), dir.path().display()),
            ),
        ]);
        let paths = toolchain_paths(&env, Some(&home), std::slice::from_ref(&data));
        // CARGO_HOME holds PATH's cargo/bin: one bind covers both.
        assert_eq!(paths, [cargo]);
    }
}
