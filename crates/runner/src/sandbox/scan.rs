//! What to hide in the system directories a sandbox sees read-only.
//!
//! The step runs as the node's own user outside its namespace (as root,
//! if the node runs as root), without capabilities. So a file the node's
//! user may read, the step may read too, unless it is not there: every
//! entry of the bound system directories that *other* users could not
//! read (`/etc/shadow`, `/etc/ssl/private`, an operator's `0600` secret)
//! is covered, a file by `/dev/null`, a directory by an empty read-only
//! tmpfs. The rule needs no list of known secrets. (In a user namespace
//! mounts are `nodev`, so opening a covered file fails with `EACCES`, as
//! it would for another user; without one it reads empty.)

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Directories scanned at start (the bound system directories that hold
/// files rather than only symlinks).
const SCANNED: [&str; 2] = ["/etc", "/usr"];
/// Entries visited per scan at most: `/usr` holds about 150k on a desktop.
const ENTRIES_MAX: usize = 1_000_000;

/// One path covered in every sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mask {
    /// Covered by `/dev/null`.
    File(PathBuf),
    /// Covered by an empty read-only tmpfs.
    Dir(PathBuf),
}

impl Mask {
    pub(crate) fn add_to(&self, bwrap: &mut Command) {
        match self {
            Mask::File(path) => {
                bwrap.arg("--ro-bind").arg("/dev/null").arg(path);
            }
            Mask::Dir(path) => {
                bwrap.arg("--tmpfs").arg(path).arg("--remount-ro").arg(path);
            }
        }
    }
}

/// The masks for the scanned system directories plus `hidden` (those of
/// its paths that exist inside a system directory).
pub(crate) fn masks(hidden: &[PathBuf]) -> Vec<Mask> {
    let mut masks = Vec::new();
    for root in SCANNED {
        unreadable(Path::new(root), usize::MAX, &mut masks);
    }
    for path in hidden {
        let inside = SCANNED.iter().any(|root| path.starts_with(root));
        let covered = masks.iter().any(|m| path.starts_with(m.path()));
        if inside
            && !covered
            && let Some(mask) = mask_of(path)
        {
            masks.push(mask);
        }
    }
    masks
}

/// Masks for the entries under `root`, `depth` levels down at most, that
/// other users could not read; a masked directory is not entered.
pub(crate) fn unreadable(root: &Path, depth: usize, masks: &mut Vec<Mask>) {
    let mut pending = vec![(root.to_owned(), 0usize)];
    let mut visited = 0usize;
    while let Some((dir, level)) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in listing.flatten() {
            visited += 1;
            if visited > ENTRIES_MAX {
                tracing::warn!(root = %root.display(), "too many entries to scan for the sandbox");
                return;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let mode = metadata.permissions().mode();
            let path = entry.path();
            if metadata.is_dir() {
                if mode & 0o005 != 0o005 {
                    masks.push(Mask::Dir(path));
                } else if level + 1 < depth {
                    pending.push((path, level + 1));
                }
            } else if !metadata.file_type().is_symlink() && mode & 0o004 == 0 {
                masks.push(Mask::File(path));
            }
        }
    }
}

/// A mask for whatever `path` is now, if it exists.
fn mask_of(path: &Path) -> Option<Mask> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if metadata.is_dir() {
        Some(Mask::Dir(path.to_owned()))
    } else if metadata.file_type().is_symlink() {
        None
    } else {
        Some(Mask::File(path.to_owned()))
    }
}

impl Mask {
    fn path(&self) -> &Path {
        match self {
            Mask::File(path) | Mask::Dir(path) => path,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs::Permissions;

    #[test]
    fn what_others_cannot_read_is_masked_and_not_entered() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("public"), "x").unwrap();
        std::fs::write(root.join("secret"), "x").unwrap();
        std::fs::set_permissions(root.join("secret"), Permissions::from_mode(0o600)).unwrap();
        std::fs::create_dir(root.join("private")).unwrap();
        std::fs::write(root.join("private/inner"), "x").unwrap();
        std::fs::set_permissions(root.join("private"), Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir_all(root.join("open/deeper")).unwrap();
        std::fs::write(root.join("open/deeper/key"), "x").unwrap();
        std::fs::set_permissions(root.join("open/deeper/key"), Permissions::from_mode(0o640))
            .unwrap();
        let mut masks = Vec::new();
        unreadable(root, usize::MAX, &mut masks);
        masks.sort_by(|a, b| a.path().cmp(b.path()));
        assert_eq!(
            masks,
            [
                Mask::File(root.join("open/deeper/key")),
                Mask::Dir(root.join("private")),
                Mask::File(root.join("secret")),
            ]
        );
        let mut shallow = Vec::new();
        unreadable(root, 1, &mut shallow);
        assert_eq!(shallow.len(), 2, "depth 1 does not reach open/deeper");
    }
}
