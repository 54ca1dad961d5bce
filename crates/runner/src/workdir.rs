//! The directory one build runs in, removed whatever happens.

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
    path: PathBuf,
}

impl WorkDir {
    /// A new, empty directory under `root`, named after `label`, the
    /// process and a serial number, so concurrent builds never share one.
    pub(crate) fn create(root: &Path, label: &str) -> io::Result<WorkDir> {
        std::fs::create_dir_all(root)?;
        loop {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let path = root.join(format!("{label}-{}-{serial}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(WorkDir { path }),
                // Left over from an earlier process with the same pid.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = remove(&self.path) {
            tracing::warn!(path = %self.path.display(), "could not remove a work dir: {e}");
        }
    }
}

/// Removes `path`; if that fails (a build may leave a directory without
/// write or search permission), restores owner permissions and tries again.
fn remove(path: &Path) -> io::Result<()> {
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
        drop(a);
        assert!(!path.exists());
        drop(b);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
