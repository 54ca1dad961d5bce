//! Writing a commit's tree out as plain files.
//!
//! Done by hand rather than with libgit2's checkout: a bare mirror has no
//! index or work tree for checkout to compare against, and concurrent
//! checkouts must not touch any shared state in the mirror. Entry names
//! come from whoever pushed the commit, so each is checked before it
//! becomes a path, and nothing is ever written through an existing entry.

use git2::{ObjectType, Oid, Repository, Tree};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

const MODE_TREE: i32 = 0o040_000;
const MODE_BLOB: i32 = 0o100_644;
const MODE_BLOB_GROUP_WRITABLE: i32 = 0o100_664;
const MODE_EXECUTABLE: i32 = 0o100_755;
const MODE_LINK: i32 = 0o120_000;
const MODE_SUBMODULE: i32 = 0o160_000;

/// Writes `tree` into `dest`, creating `dest` if needed. Iterative, so a
/// deeply nested tree cannot exhaust the stack.
pub(crate) fn write_tree(repo: &Repository, tree: &Tree<'_>, dest: &Path) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("creating {}: {e}", dest.display()))?;
    let mut pending: Vec<(Oid, PathBuf)> = vec![(tree.id(), dest.to_owned())];
    while let Some((id, dir)) = pending.pop() {
        let tree = repo
            .find_tree(id)
            .map_err(|e| format!("reading tree {id}: {}", e.message()))?;
        for entry in tree.iter() {
            let path = dir.join(safe_name(entry.name_bytes())?);
            let id = entry.id();
            match (entry.filemode(), entry.kind()) {
                (MODE_TREE, _) => {
                    create_dir(&path)?;
                    pending.push((id, path));
                }
                (MODE_BLOB | MODE_BLOB_GROUP_WRITABLE, _) => write_file(repo, id, &path, 0o644)?,
                (MODE_EXECUTABLE, _) => write_file(repo, id, &path, 0o755)?,
                (MODE_LINK, _) => write_link(repo, id, &path)?,
                // A submodule is an empty directory, as `git checkout` leaves it.
                (MODE_SUBMODULE, _) | (_, Some(ObjectType::Commit)) => create_dir(&path)?,
                (mode, _) => return Err(format!("{}: unknown file mode {mode:o}", path.display())),
            }
        }
    }
    Ok(())
}

/// A tree entry name that names exactly one new entry inside its directory.
fn safe_name(name: &[u8]) -> Result<&OsStr, String> {
    let bad = name.is_empty()
        || name == b"."
        || name == b".."
        || name.eq_ignore_ascii_case(b".git")
        || name.iter().any(|&b| b == b'/' || b == 0);
    if bad {
        return Err(format!(
            "tree entry {:?} is not a safe file name",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(OsStr::from_bytes(name))
}

fn create_dir(path: &Path) -> Result<(), String> {
    fs::create_dir(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

/// `create_new` fails on anything already there, symlinks included, so a
/// tree that names one entry twice cannot write outside the work dir.
fn write_file(repo: &Repository, id: Oid, path: &Path, mode: u32) -> Result<(), String> {
    let blob = repo
        .find_blob(id)
        .map_err(|e| format!("reading blob {id}: {}", e.message()))?;
    let fail = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(fail)?;
    file.write_all(blob.content()).map_err(fail)
}

fn write_link(repo: &Repository, id: Oid, path: &Path) -> Result<(), String> {
    let blob = repo
        .find_blob(id)
        .map_err(|e| format!("reading link {id}: {}", e.message()))?;
    symlink(OsStr::from_bytes(blob.content()), path)
        .map_err(|e| format!("linking {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A raw tree object: libgit2's tree builder refuses bad names, but a
    /// pushed repository can contain anything.
    fn raw_tree(repo: &Repository, entries: &[(&str, &[u8], Oid)]) -> Oid {
        let mut bytes = Vec::new();
        for (mode, name, id) in entries {
            bytes.extend_from_slice(mode.as_bytes());
            bytes.push(b' ');
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(id.as_bytes());
        }
        repo.odb().unwrap().write(ObjectType::Tree, &bytes).unwrap()
    }

    fn attempt(entries: &[(&str, &[u8])]) -> (Result<(), String>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path().join("repo")).unwrap();
        let blob = repo.blob(b"escaped").unwrap();
        // From out/, a link to a directory beside it.
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        let link = repo.blob(b"../outside").unwrap();
        let inner = raw_tree(&repo, &[("100644", b"x", blob)]);
        let entries: Vec<_> = entries
            .iter()
            .map(|(mode, name)| {
                let id = match *mode {
                    "40000" => inner,
                    "120000" => link,
                    _ => blob,
                };
                (*mode, *name, id)
            })
            .collect();
        let tree = repo.find_tree(raw_tree(&repo, &entries)).unwrap();
        let result = write_tree(&repo, &tree, &dir.path().join("out"));
        (result, dir)
    }

    #[test]
    fn unsafe_names_are_refused() {
        for name in [&b".."[..], b".", b".git", b".GIT", b"a/b"] {
            let (result, _dir) = attempt(&[("100644", name)]);
            assert!(result.unwrap_err().contains("not a safe file name"));
        }
    }

    #[test]
    fn nothing_is_written_through_a_link() {
        for second in ["40000", "100644", "120000"] {
            let (result, dir) = attempt(&[("120000", b"a"), (second, b"a")]);
            assert!(result.is_err(), "{second}");
            let outside = std::fs::read_dir(dir.path().join("outside")).unwrap();
            assert_eq!(outside.count(), 0, "{second}");
        }
    }
}
