//! What the node's git poller needs to announce a commit.

use super::{Mirror, MirrorError};
use crate::fit::truncate;
use buildmesh_protocol::{
    COMMIT_PARENTS_MAX, CommitId, LONG_TEXT_BYTES_MAX, SHORT_TEXT_BYTES_MAX, Timestamp,
};
use std::path::Path;

/// A commit as a [`CommitAnnouncement`](buildmesh_protocol::CommitAnnouncement)
/// describes it. Texts are cut to the protocol's limits and parents to
/// [`COMMIT_PARENTS_MAX`], so an announcement built from it validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit.
    pub commit: CommitId,
    /// Its parents, first parent first.
    pub parents: Vec<CommitId>,
    /// First line of the message.
    pub title: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Committer time.
    pub committed_at: Timestamp,
}

/// The head of one branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchHead {
    /// Branch name without `refs/heads/`.
    pub branch: String,
    /// The commit it points at.
    pub head: CommitInfo,
}

impl Mirror {
    /// Every branch's head, sorted by branch name. Branches whose name is
    /// not UTF-8 or that do not point at a commit are left out.
    pub fn branch_heads(&self) -> Result<Vec<BranchHead>, MirrorError> {
        let read = |source| MirrorError::Read {
            what: "branches".into(),
            url: self.url.clone(),
            source,
        };
        let mut heads = Vec::new();
        for reference in self.repo.references_glob("refs/heads/*").map_err(read)? {
            let reference = reference.map_err(read)?;
            let Some(branch) = reference
                .name()
                .ok()
                .and_then(|n| n.strip_prefix("refs/heads/"))
            else {
                continue;
            };
            let Some(head) = reference.peel_to_commit().ok().as_ref().and_then(describe) else {
                continue;
            };
            heads.push(BranchHead {
                branch: branch.to_owned(),
                head,
            });
        }
        heads.sort_by(|a, b| a.branch.cmp(&b.branch));
        Ok(heads)
    }

    /// What an announcement of `commit` says about it.
    pub fn commit_info(&self, commit: &CommitId) -> Result<CommitInfo, MirrorError> {
        describe(&self.commit(commit)?).ok_or_else(|| MirrorError::NoSuchCommit {
            url: self.url.clone(),
            commit: commit.clone(),
        })
    }
}

impl Mirror {
    /// The commits a poller should announce for a branch now at `head`:
    /// `head` and its first-parent ancestors back to the first one `known`
    /// says was announced, oldest first. If no announced commit is met
    /// within `max` (a branch seen for the first time, a rewritten history,
    /// a huge push), only `head` is announced: a branch's whole history
    /// would flood the mesh.
    pub fn new_commits(
        &self,
        head: &CommitId,
        known: impl Fn(&CommitId) -> bool,
        max: usize,
    ) -> Result<Vec<CommitInfo>, MirrorError> {
        let head = self.commit_info(head)?;
        if known(&head.commit) {
            return Ok(Vec::new());
        }
        let mut found = vec![head.clone()];
        while found.len() < max {
            let Some(parent) = found.last().and_then(|c| c.parents.first()).cloned() else {
                break;
            };
            if known(&parent) {
                found.reverse();
                return Ok(found);
            }
            if !self.has_commit(&parent) {
                break;
            }
            found.push(self.commit_info(&parent)?);
        }
        Ok(vec![head])
    }
}

/// A commit of a working copy, and the branch checked out if any: what a
/// maintainer announces from their own checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCommit {
    /// The top of the working copy.
    pub root: std::path::PathBuf,
    /// The branch `HEAD` points at, if `rev` is `HEAD` and one is checked out.
    pub branch: Option<String>,
    /// The commit.
    pub info: CommitInfo,
}

/// Describes `rev` (`HEAD`, a branch, a commit id) in the repository at or
/// above `dir`.
pub fn describe_local(dir: &Path, rev: &str) -> Result<LocalCommit, MirrorError> {
    let url = dir.display().to_string();
    let repo = git2::Repository::discover(dir).map_err(|source| MirrorError::Open {
        url: url.clone(),
        path: dir.to_path_buf(),
        problem: source.message().to_owned(),
    })?;
    let read = |source: git2::Error| MirrorError::Read {
        what: format!("revision {rev}"),
        url: url.clone(),
        source,
    };
    let commit = repo
        .revparse_single(rev)
        .and_then(|object| object.peel_to_commit())
        .map_err(read)?;
    let branch = if rev == "HEAD" {
        repo.head()
            .ok()
            .filter(git2::Reference::is_branch)
            .and_then(|head| head.shorthand().ok().map(str::to_owned))
    } else {
        repo.find_branch(rev, git2::BranchType::Local)
            .ok()
            .map(|_| rev.to_owned())
    };
    let info = describe(&commit).ok_or_else(|| MirrorError::Read {
        what: format!("revision {rev}"),
        url,
        source: git2::Error::from_str("not a SHA-1 commit"),
    })?;
    let root = repo.workdir().unwrap_or_else(|| repo.path()).to_path_buf();
    Ok(LocalCommit { root, branch, info })
}

fn describe(commit: &git2::Commit<'_>) -> Option<CommitInfo> {
    let author = commit.author();
    let author = format!(
        "{} <{}>",
        String::from_utf8_lossy(author.name_bytes()),
        String::from_utf8_lossy(author.email_bytes())
    );
    let title = commit
        .summary_bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let seconds = u64::try_from(commit.time().seconds()).unwrap_or(0);
    Some(CommitInfo {
        commit: commit_id(commit.id())?,
        parents: commit
            .parent_ids()
            .take(COMMIT_PARENTS_MAX)
            .filter_map(commit_id)
            .collect(),
        title: truncate(&title, LONG_TEXT_BYTES_MAX),
        author: truncate(&author, SHORT_TEXT_BYTES_MAX),
        committed_at: Timestamp(seconds.saturating_mul(1000)),
    })
}

/// git2 ids are 20 bytes (SHA-1) here, which every `CommitId` accepts.
fn commit_id(oid: git2::Oid) -> Option<CommitId> {
    CommitId::from_bytes(oid.as_bytes())
}
