//! What the node's git poller needs to announce a commit.

use super::{Mirror, MirrorError};
use crate::fit::truncate;
use buildmesh_protocol::{
    COMMIT_PARENTS_MAX, CommitId, LONG_TEXT_BYTES_MAX, SHORT_TEXT_BYTES_MAX, Timestamp,
};

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
