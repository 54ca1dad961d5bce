//! A bare mirror of one repository, kept under a node's mirrors directory.
//!
//! Builds never run inside the mirror: a commit's tree is written out as
//! plain files into a fresh work dir ([`Mirror::checkout`]), with no `.git`
//! and no link back to the mirror's objects, so nothing a build does can
//! damage the mirror other builds read from.

mod checkout;
mod info;

use crate::cancel::Cancel;
use buildmesh_protocol::CommitId;
use git2::{AutotagOption, FetchOptions, FetchPrune, Oid, RemoteCallbacks, Repository};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use info::{BranchHead, CommitInfo, LocalCommit, describe_local};

/// Every branch and tag of the source, copied as they are (forced), so the
/// mirror's `refs/heads` is the source's branch list.
const REFSPECS: [&str; 2] = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"];

/// One lock per mirror directory, so two builds of one repository never
/// fetch into it at once (git's ref locks would fail one of them).
static LOCKS: Mutex<BTreeMap<PathBuf, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());

/// A bare mirror of the repository at `url`.
pub struct Mirror {
    repo: Repository,
    url: String,
    path: PathBuf,
}

/// What went wrong with a mirror.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The mirror directory could not be created or opened.
    #[error("mirror of {url} at {}: {problem}", path.display())]
    Open {
        /// The repository.
        url: String,
        /// The mirror directory.
        path: PathBuf,
        /// Why.
        problem: String,
    },
    /// Fetching failed (unreachable URL, not a repository, ...).
    #[error("fetching {url}: {}", source.message())]
    Fetch {
        /// The repository.
        url: String,
        /// Why.
        source: git2::Error,
    },
    /// The fetch was stopped by a [`Cancel`].
    #[error("fetching {url}: cancelled")]
    Cancelled {
        /// The repository.
        url: String,
    },
    /// The commit is not in the mirror (not yet fetched, or on no branch).
    #[error("commit {commit} is not in {url} (not on any branch or tag fetched)")]
    NoSuchCommit {
        /// The repository.
        url: String,
        /// The commit.
        commit: CommitId,
    },
    /// A SHA-256 commit id: libgit2 here reads SHA-1 repositories only.
    #[error("commit id {0} is not a SHA-1 id; this runner reads SHA-1 repositories only")]
    UnsupportedCommitId(CommitId),
    /// A file is larger than the caller accepts.
    #[error("{path} at {commit} is {bytes} bytes; the limit is {bytes_max}")]
    FileTooLarge {
        /// Path in the tree.
        path: String,
        /// The commit.
        commit: CommitId,
        /// Its size.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// Reading objects from the mirror failed.
    #[error("reading {what} in the mirror of {url}: {}", source.message())]
    Read {
        /// What was being read.
        what: String,
        /// The repository.
        url: String,
        /// Why.
        source: git2::Error,
    },
    /// Writing a commit's tree into a work dir failed.
    #[error("checking out {commit} into {}: {problem}", dest.display())]
    Checkout {
        /// The commit.
        commit: CommitId,
        /// The work dir.
        dest: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

impl Mirror {
    /// Opens the mirror of `url` under `root`, creating it (empty) if it
    /// does not exist yet. Call [`Mirror::fetch`] to fill it.
    pub fn open_or_create(root: &Path, url: &str) -> Result<Mirror, MirrorError> {
        let path = root.join(dir_name(url));
        let lock = lock_for(&path);
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let open = |problem: String| MirrorError::Open {
            url: url.to_owned(),
            path: path.clone(),
            problem,
        };
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => {
                std::fs::create_dir_all(root).map_err(|e| open(e.to_string()))?;
                Repository::init_bare(&path).map_err(|e| open(e.message().to_owned()))?
            }
        };
        Ok(Mirror {
            repo,
            url: url.to_owned(),
            path,
        })
    }

    /// Reads, rather than mirrors, the repository at or above `dir` (a
    /// working copy): what `buildmesh up` checks at start, before any
    /// mirror exists. Never fetched into.
    pub fn open_local(dir: &Path) -> Result<Mirror, MirrorError> {
        let repo = Repository::discover(dir).map_err(|e| MirrorError::Open {
            url: dir.display().to_string(),
            path: dir.to_path_buf(),
            problem: e.message().to_owned(),
        })?;
        let path = repo.path().to_path_buf();
        Ok(Mirror {
            repo,
            url: dir.display().to_string(),
            path,
        })
    }

    /// The mirror's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The repository URL it mirrors.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Brings every branch and tag up to date with the source, removing
    /// branches the source deleted. Stops early if `cancel` is set.
    pub fn fetch(&self, cancel: &Cancel) -> Result<(), MirrorError> {
        self.fetch_refspecs(&REFSPECS, cancel)
    }

    /// Fetches pull request `number`'s head (`refs/pull/N/head`, as GitHub,
    /// Gitea and Forgejo publish it) into the mirror's own
    /// `refs/pull/N/head`, and returns the commit it points at (`None` if
    /// the source has no such ref or it is not a commit).
    pub fn fetch_pull(
        &self,
        number: u64,
        cancel: &Cancel,
    ) -> Result<Option<CommitId>, MirrorError> {
        let name = format!("refs/pull/{number}/head");
        self.fetch_refspecs(&[&format!("+{name}:{name}")], cancel)?;
        Ok(self
            .repo
            .find_reference(&name)
            .ok()
            .and_then(|r| r.peel_to_commit().ok())
            .and_then(|c| CommitId::from_bytes(c.id().as_bytes())))
    }

    /// Fetches every pull request's head: what a builder does when the
    /// commit it must build is on no branch (a pull request's head whose
    /// number it does not know). Costs one ref per pull request the source
    /// publishes, and only when a commit is missing after [`Mirror::fetch`].
    pub fn fetch_pulls(&self, cancel: &Cancel) -> Result<(), MirrorError> {
        self.fetch_refspecs(&["+refs/pull/*/head:refs/pull/*/head"], cancel)
    }

    fn fetch_refspecs(&self, refspecs: &[&str], cancel: &Cancel) -> Result<(), MirrorError> {
        let lock = lock_for(&self.path);
        let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut callbacks = RemoteCallbacks::new();
        callbacks.transfer_progress(|_| !cancel.is_cancelled());
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::All)
            .update_fetchhead(false);
        let fetched = self
            .repo
            .remote_anonymous(&self.url)
            .and_then(|mut remote| remote.fetch(refspecs, Some(&mut options), None));
        match fetched {
            Ok(()) => Ok(()),
            Err(_) if cancel.is_cancelled() => Err(MirrorError::Cancelled {
                url: self.url.clone(),
            }),
            Err(source) => Err(MirrorError::Fetch {
                url: self.url.clone(),
                source,
            }),
        }
    }

    /// Whether the mirror holds `commit`.
    pub fn has_commit(&self, commit: &CommitId) -> bool {
        oid(commit).is_ok_and(|oid| self.repo.find_commit(oid).is_ok())
    }

    /// The file at `path` in `commit`'s tree, read without a checkout;
    /// `None` if there is no such file. Refuses files over `bytes_max`
    /// before loading them.
    pub fn read_file_at(
        &self,
        commit: &CommitId,
        path: &str,
        bytes_max: usize,
    ) -> Result<Option<Vec<u8>>, MirrorError> {
        let tree = self
            .commit(commit)?
            .tree()
            .map_err(|e| self.read(commit, e))?;
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            return Ok(None);
        };
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Ok(None);
        }
        let odb = self.repo.odb().map_err(|e| self.read(commit, e))?;
        let (bytes, _) = odb
            .read_header(entry.id())
            .map_err(|e| self.read(commit, e))?;
        if bytes > bytes_max {
            let (path, commit) = (path.to_owned(), commit.clone());
            return Err(MirrorError::FileTooLarge {
                path,
                commit,
                bytes,
                bytes_max,
            });
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(|e| self.read(commit, e))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Writes `commit`'s tree into `dest` (an empty or missing directory)
    /// as plain files: no `.git`, nothing shared with the mirror.
    pub fn checkout(&self, commit: &CommitId, dest: &Path) -> Result<(), MirrorError> {
        let tree = self
            .commit(commit)?
            .tree()
            .map_err(|e| self.read(commit, e))?;
        checkout::write_tree(&self.repo, &tree, dest).map_err(|problem| MirrorError::Checkout {
            commit: commit.clone(),
            dest: dest.to_owned(),
            problem,
        })
    }

    fn commit(&self, commit: &CommitId) -> Result<git2::Commit<'_>, MirrorError> {
        let oid = oid(commit)?;
        self.repo
            .find_commit(oid)
            .map_err(|_| MirrorError::NoSuchCommit {
                url: self.url.clone(),
                commit: commit.clone(),
            })
    }

    fn read(&self, commit: &CommitId, source: git2::Error) -> MirrorError {
        MirrorError::Read {
            what: format!("commit {commit}"),
            url: self.url.clone(),
            source,
        }
    }
}

/// Whether `url` names a repository on this machine: a path or `file://`.
/// (`host:path` is git's scp-like ssh form, so a colon before any slash
/// means remote.)
pub fn is_local(url: &str) -> bool {
    if let Some((scheme, _)) = url.split_once("://") {
        return scheme.eq_ignore_ascii_case("file");
    }
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn oid(commit: &CommitId) -> Result<Oid, MirrorError> {
    match commit.as_bytes().len() {
        20 => Oid::from_bytes(commit.as_bytes())
            .map_err(|_| MirrorError::UnsupportedCommitId(commit.clone())),
        _ => Err(MirrorError::UnsupportedCommitId(commit.clone())),
    }
}

/// `<last path segment, sanitised>-<SHA-256 of the URL in hex>.git`: the
/// hash keeps distinct URLs apart, the name lets a person find a mirror.
fn dir_name(url: &str) -> String {
    let tail = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let tail = tail.strip_suffix(".git").unwrap_or(tail);
    let readable: String = tail
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    let readable = readable.trim_start_matches('.');
    let hash = hex::encode(Sha256::digest(url.as_bytes()));
    if readable.is_empty() {
        format!("{hash}.git")
    } else {
        format!("{readable}-{hash}.git")
    }
}

fn lock_for(path: &Path) -> Arc<Mutex<()>> {
    let mut locks = LOCKS.lock().unwrap_or_else(PoisonError::into_inner);
    locks.entry(path.to_owned()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_names_are_readable_and_distinct() {
        let a = dir_name("https://example.invalid/org/demo.git");
        let b = dir_name("https://example.invalid/other/demo.git");
        assert!(a.starts_with("demo-") && a.ends_with(".git"), "{a}");
        assert_ne!(a, b);
        assert!(!dir_name("/").starts_with('-'));
        assert!(!dir_name("../..").contains('/'));
    }

    #[test]
    fn local_urls_are_recognised() {
        for local in [
            "/srv/repo",
            "./repo",
            "repo",
            "file:///srv/repo",
            "FILE:///x",
            "a/b:c",
        ] {
            assert!(is_local(local), "{local}");
        }
        for remote in [
            "https://example.invalid/r.git",
            "ssh://h/r",
            "git@example.invalid:r.git",
        ] {
            assert!(!is_local(remote), "{remote}");
        }
    }
}
