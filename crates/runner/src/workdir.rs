//! The directory one build runs in, removed whatever happens.
//!
//! It is an area of three directories: `src` (the checkout, where steps
//! run), and `tmp` and `home`, which a sandbox mounts as the step's `/tmp`
//! and `HOME`, so that everything a build writes is on disk in one place,
//! counted against one cap and removed together.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells apart work dirs made by one process.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// A fresh directory, removed with everything in it when dropped, also
/// when a build panics or returns early.
#[derive(Debug)]
pub(crate) struct WorkDir {
    area: PathBuf,
    path: PathBuf,
}

/// The area's directories besides the work dir itself.
const SCRATCH: [&str; 2] = ["tmp", "home"];

impl WorkDir {
    /// A new, empty directory under `root`, named after `label`, the
    /// process and a serial number, so concurrent builds never share one.
    pub(crate) fn create(root: &Path, label: &str) -> io::Result<WorkDir> {
        private_dir(root)?;
        loop {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let area = root.join(format!("{label}-{}-{serial}", std::process::id()));
            match std::fs::create_dir(&area) {
                Ok(()) => {
                    let work = WorkDir {
                        path: area.join("src"),
                        area,
                    };
                    std::fs::create_dir(&work.path)?;
                    for dir in SCRATCH {
                        std::fs::create_dir(work.area.join(dir))?;
                    }
                    return Ok(work);
                }
                // Left over from an earlier process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The work dir: the checkout, where steps run.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The step's `/tmp` and `HOME` when it runs in a sandbox.
    pub(crate) fn scratch(&self) -> (PathBuf, PathBuf) {
        let [tmp, home] = SCRATCH.map(|d| self.area.join(d));
        (tmp, home)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.area) {
            tracing::warn!(path = %self.area.display(), "could not remove a work dir: {e}");
        }
    }
}

/// Makes `root` (if need be) readable by its owner only. A step may leave
/// a setuid file in its area (it is the node's user, or nobody as root);
/// no other local user must be able to reach it.
pub(crate) fn private_dir(root: &Path) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
}

/// Removes `path`; if that fails (a build may leave a directory without
/// write or search permission), restores owner permissions and tries again.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            restore_permissions(path);
            std::fs::remove_dir_all(path)
        }
    }
}

/// Makes every directory under `path` (not following symlinks) readable,
/// writable and searchable by its owner.
fn restore_permissions(path: &Path) {
    let mut pending = vec![path.to_owned()];
    while let Some(dir) = pending.pop() {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn work_dirs_are_unique_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let a = WorkDir::create(root.path(), "x").unwrap();
        let b = WorkDir::create(root.path(), "x").unwrap();
        assert_ne!(a.path(), b.path());
        let locked = a.path().join("locked");
        std::fs::create_dir_all(locked.join("inner")).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        let path = a.path().to_owned();
        let (tmp, home) = a.scratch();
        assert!(tmp.is_dir() && home.is_dir());
        drop(a);
        assert!(!path.exists() && !tmp.exists());
        drop(b);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
