//! The directory one build runs in, removed whatever happens.
//!
//! It is an area of three directories: `src` (the checkout, where steps
//! run), and `tmp` and `home`, which a sandbox mounts as the step's `/tmp`
//! and `HOME`, so that everything a build writes is on disk in one place,
//! counted against one cap and removed together.
//!
//! An area is removed when its [`WorkDir`] is dropped: after the build
//! ended however it ended (passed, failed, error, timeout, cancel, a
//! panic), its steps' process groups killed and reaped first. Only a
//! process that dies without unwinding (SIGKILL, power loss) leaves one;
//! [`remove_leftover_work_dirs`] removes those at the next start, knowing
//! them by the name [`WorkDir::create`] gives (see [`is_work_dir_name`]).

use buildmesh_protocol::CommitId;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Tells apart work dirs made by one process.
static SERIAL: AtomicU64 = AtomicU64::new(0);

/// Hex digits of [`CommitId::short`], which starts each area's name.
const LABEL_HEX_DIGITS: usize = 10;
/// Tries at removing an area before giving up: a killed step's last
/// processes may still be exiting (a sandbox's PID namespace is torn down
/// by the kernel just after its `bwrap` is reaped), and a directory
/// written into while it is removed is not empty yet.
const REMOVE_TRIES: u32 = 5;
/// Pause before the third try, doubled for each later one (0.35 s in all;
/// the second try follows the first at once, permissions restored).
const REMOVE_RETRY_PAUSE: Duration = Duration::from_millis(50);

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
    /// A new, empty area under `root` named `COMMIT-PID-SERIAL` (the
    /// commit's short id, this process's id, a serial number), so
    /// concurrent builds never share one and a later process knows which
    /// entries of `root` it may remove ([`is_work_dir_name`]).
    pub(crate) fn create(root: &Path, commit: &CommitId) -> io::Result<WorkDir> {
        private_dir(root)?;
        loop {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let area = root.join(area_name(commit, std::process::id(), serial));
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

/// The name of an area: `COMMIT-PID-SERIAL`.
fn area_name(commit: &CommitId, pid: u32, serial: u64) -> String {
    format!("{}-{pid}-{serial}", commit.short())
}

/// Whether `name` is one [`WorkDir::create`] gives: ten lowercase hex
/// digits, a dash, a decimal pid, a dash, a decimal serial; nothing more.
/// What else sits in a work root (an operator's notes, a backup named
/// after an area) is not the node's to remove.
pub fn is_work_dir_name(name: &str) -> bool {
    let decimal = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let mut parts = name.split('-');
    let (Some(label), Some(pid), Some(serial), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    label.len() == LABEL_HEX_DIGITS
        && label
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && decimal(pid)
        && decimal(serial)
}

/// Removes the work dirs a process that died without unwinding (SIGKILL,
/// a crash) left under `root`, and returns their paths. Call it at start,
/// before any build runs, while holding whatever makes `root` this
/// process's alone (the node's store lock): only then is no area under it
/// in use. Only real directories (not symlinks) whose name is a work dir's
/// are touched; an area that cannot be removed is logged with its path
/// and left. A `root` that does not exist has nothing left in it.
pub fn remove_leftover_work_dirs(root: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let ours = entry.file_name().to_str().is_some_and(is_work_dir_name);
        // `file_type` does not follow a symlink.
        if !ours || !entry.file_type()?.is_dir() {
            continue;
        }
        let area = entry.path();
        match remove(&area) {
            Ok(()) => removed.push(area),
            Err(e) => {
                tracing::warn!(path = %area.display(), "could not remove a leftover work dir: {e}");
            }
        }
    }
    Ok(removed)
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

/// Removes `path`. If that fails (a build may leave a directory without
/// write or search permission, or its last processes may still be
/// exiting), restores owner permissions and tries again, a few times,
/// pausing a little longer each time; the last error is returned.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    let mut pause = REMOVE_RETRY_PAUSE;
    let mut tries = 1;
    loop {
        match std::fs::remove_dir_all(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries >= REMOVE_TRIES => return Err(e),
            Err(_) if tries == 1 => {}
            Err(_) => {
                std::thread::sleep(pause);
                pause *= 2;
            }
        }
        restore_permissions(path);
        tries += 1;
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
        let commit = CommitId::from_bytes(&[0xab; 20]).unwrap();
        let a = WorkDir::create(root.path(), &commit).unwrap();
        let b = WorkDir::create(root.path(), &commit).unwrap();
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

    #[test]
    fn only_names_work_dirs_are_given_are_recognised() {
        let commit = CommitId::from_bytes(&[0x0f; 32]).unwrap();
        assert!(is_work_dir_name(&area_name(&commit, 1, 0)));
        assert!(is_work_dir_name("0123456789-4242-17"));
        for name in [
            "",
            "keep-me",
            "0123456789",
            "0123456789-12",
            "0123456789-12-",
            "0123456789--3",
            "0123456789-12-3-4",
            "0123456789-12-3.bak",
            "0123456789-12-x",
            "0123456789-+1-3",
            "ABCDEF0123-12-3",
            "abcdef012-12-3",
            "abcdef01234-12-3",
            "abcdefg123-12-3",
            ".0123456789-1-1",
        ] {
            assert!(!is_work_dir_name(name), "{name:?}");
        }
    }

    proptest::proptest! {
        /// Every name `create` gives is recognised; no name is recognised
        /// once anything is added to it.
        #[test]
        fn every_area_name_is_recognised_and_nothing_longer(
            bytes: [u8; 32],
            sha256: bool,
            pid: u32,
            serial: u64,
            extra in "[^0-9]",
        ) {
            let commit = CommitId::from_bytes(&bytes[..if sha256 { 32 } else { 20 }]).unwrap();
            let name = area_name(&commit, pid, serial);
            proptest::prop_assert!(is_work_dir_name(&name));
            let longer = format!("{name}{extra}");
            proptest::prop_assert!(!is_work_dir_name(&longer));
            let prefixed = format!("{extra}{name}");
            proptest::prop_assert!(!is_work_dir_name(&prefixed));
        }
    }

    #[test]
    fn leftovers_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let commit = CommitId::from_bytes(&[0xcd; 20]).unwrap();
        let live = WorkDir::create(root.path(), &commit).unwrap();
        let left = live.area.clone();
        std::fs::create_dir_all(live.path().join("a/b")).unwrap();
        std::fs::set_permissions(
            live.path().join("a"),
            std::fs::Permissions::from_mode(0o500),
        )
        .unwrap();
        // As a SIGKILL would: the area stays.
        std::mem::forget(live);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), "x").unwrap();
        let link = root.path().join("0123456789-1-1");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let named_file = root.path().join("0123456789-1-2");
        std::fs::write(&named_file, "not a directory").unwrap();
        let foreign = root.path().join("0123456789-1-2.bak");
        std::fs::create_dir(&foreign).unwrap();
        let removed = remove_leftover_work_dirs(root.path()).unwrap();
        assert_eq!(removed, vec![left.clone()]);
        assert!(!left.exists());
        assert!(link.is_symlink() && outside.path().join("precious").exists());
        assert!(named_file.is_file() && foreign.is_dir());
        let none = root.path().join("missing");
        assert_eq!(
            remove_leftover_work_dirs(&none).unwrap(),
            Vec::<PathBuf>::new()
        );
    }
}
