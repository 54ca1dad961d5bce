//! Secondary indexes over linked entries, as ordered byte keys.
//!
//! A key is a prefix naming what is indexed, followed by the entry id (the
//! last 32 bytes). Variable-length parts are length-prefixed so no prefix
//! can be mistaken for another; timestamps are big-endian so byte order is
//! time order. The store keeps the keys in a sorted map and answers prefix
//! scans; it never looks inside them.

use buildmesh_protocol::{
    AttestedResult, Body, BuilderPolicy, CommitId, Entry, EntryId, ProjectDeclaration, ProjectId,
    PublicKey, TestedResult, Timestamp,
};

/// What to scan for. Each variant's [`IndexKey::prefix`] selects its entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey<'a> {
    /// Every project declaration, all projects.
    AllProjects,
    /// Declarations of one project.
    Project(&'a ProjectId),
    /// Commit announcements of a project, by announcer, then time.
    Commits(&'a ProjectId),
    /// One announcer's commit announcements for a project, by time. Views
    /// scan only the announcers a project trusts, so nobody else's
    /// announcements, however many or however future-dated, can crowd
    /// trusted ones out of a newest-first window.
    AnnouncerCommits(&'a ProjectId, &'a PublicKey),
    /// Commit announcements of a project on one branch, by announcer, then time.
    BranchCommits(&'a ProjectId, &'a str),
    /// One announcer's commit announcements on one branch, by time.
    AnnouncerBranchCommits(&'a ProjectId, &'a str, &'a PublicKey),
    /// Claims and results of every platform for one commit.
    Commit(&'a ProjectId, &'a CommitId),
    /// Claims and results of one cell (commit × platform).
    Cell(&'a ProjectId, &'a CommitId, &'a str),
    /// Force builds of a project.
    Forces(&'a ProjectId),
    /// Trust and revocation entries of a project.
    Trust(&'a ProjectId),
    /// Entries that gave a key a role (owner, announcer, builder) in some
    /// project: who may write to the log (docs/protocol.md §6).
    Role(&'a PublicKey),
    /// Declarations that made a project open to any builder.
    Open(&'a ProjectId),
    /// Setting entries of a project (anyone's: views keep the owner's).
    Settings(&'a ProjectId),
    /// One announcer's pull request announcements and closes for a
    /// project, by time.
    AnnouncerPulls(&'a ProjectId, &'a PublicKey),
    /// One announcer's announcements of one pull request's heads, and its
    /// closes, by time.
    AnnouncerPull(&'a ProjectId, u64, &'a PublicKey),
}

const PROJECT: u8 = b'P';
const COMMITS: u8 = b'A';
const BRANCH_COMMITS: u8 = b'B';
const CELLS: u8 = b'C';
const FORCES: u8 = b'F';
const TRUST: u8 = b'T';
const ROLE: u8 = b'R';
const OPEN: u8 = b'O';
const SETTINGS: u8 = b'S';
const PULLS: u8 = b'Q';
const PULL: u8 = b'N';

impl IndexKey<'_> {
    /// The byte prefix shared by every key this selects.
    pub fn prefix(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(128);
        match self {
            IndexKey::AllProjects => key.push(PROJECT),
            IndexKey::Project(p) => tag(&mut key, PROJECT, p),
            IndexKey::Commits(p) => tag(&mut key, COMMITS, p),
            IndexKey::AnnouncerCommits(p, announcer) => {
                tag(&mut key, COMMITS, p);
                key.extend_from_slice(announcer.as_bytes());
            }
            IndexKey::BranchCommits(p, branch) => {
                tag(&mut key, BRANCH_COMMITS, p);
                text(&mut key, branch.as_bytes());
            }
            IndexKey::AnnouncerBranchCommits(p, branch, announcer) => {
                tag(&mut key, BRANCH_COMMITS, p);
                text(&mut key, branch.as_bytes());
                key.extend_from_slice(announcer.as_bytes());
            }
            IndexKey::Commit(p, commit) => {
                tag(&mut key, CELLS, p);
                text(&mut key, commit.as_bytes());
            }
            IndexKey::Cell(p, commit, platform) => {
                tag(&mut key, CELLS, p);
                text(&mut key, commit.as_bytes());
                text(&mut key, platform.as_bytes());
            }
            IndexKey::Forces(p) => tag(&mut key, FORCES, p),
            IndexKey::Trust(p) => tag(&mut key, TRUST, p),
            IndexKey::Role(subject) => {
                key.push(ROLE);
                key.extend_from_slice(subject.as_bytes());
            }
            IndexKey::Open(p) => tag(&mut key, OPEN, p),
            IndexKey::Settings(p) => tag(&mut key, SETTINGS, p),
            IndexKey::AnnouncerPulls(p, announcer) => {
                tag(&mut key, PULLS, p);
                key.extend_from_slice(announcer.as_bytes());
            }
            IndexKey::AnnouncerPull(p, number, announcer) => {
                tag(&mut key, PULL, p);
                key.extend_from_slice(&number.to_be_bytes());
                key.extend_from_slice(announcer.as_bytes());
            }
        }
        key
    }
}

/// The index keys of a linked entry.
pub fn index_keys(entry: &Entry) -> Vec<Vec<u8>> {
    let id = entry.id();
    match entry.body() {
        Body::Project(p) => {
            let project = ProjectId::derive(&entry.author(), &p.name);
            let mut keys = vec![with_id(IndexKey::Project(&project).prefix(), &id)];
            keys.extend(role_grants(entry, p, &project));
            keys
        }
        Body::Announce(a) => {
            let author = entry.author();
            vec![
                timed(
                    IndexKey::AnnouncerCommits(&a.project, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
                timed(
                    IndexKey::AnnouncerBranchCommits(&a.project, &a.branch, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
            ]
        }
        Body::Claim(c) => vec![with_id(
            IndexKey::Cell(&c.project, &c.commit, &c.platform).prefix(),
            &id,
        )],
        Body::Result(r)
        | Body::Tested(TestedResult { result: r, .. })
        | Body::Attested(AttestedResult { result: r, .. }) => vec![with_id(
            IndexKey::Cell(&r.project, &r.commit, &r.platform).prefix(),
            &id,
        )],
        Body::Force(f) => vec![with_id(IndexKey::Forces(&f.project).prefix(), &id)],
        Body::Trust(t) => vec![
            with_id(IndexKey::Trust(&t.project).prefix(), &id),
            with_id(IndexKey::Role(&t.subject).prefix(), &id),
        ],
        Body::Revoke(t) => vec![with_id(IndexKey::Trust(&t.project).prefix(), &id)],
        Body::RevokeBuilder(r) => vec![with_id(IndexKey::Trust(&r.project).prefix(), &id)],
        Body::Setting(s) => vec![with_id(IndexKey::Settings(&s.project).prefix(), &id)],
        Body::Pull(p) => {
            let author = entry.author();
            vec![
                timed(
                    IndexKey::AnnouncerPulls(&p.project, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
                timed(
                    IndexKey::AnnouncerPull(&p.project, p.number, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
            ]
        }
        // Closes share the pull requests' indexes: a view reading the
        // newest of them sees opens and closes in one window.
        Body::PullClosed(c) => {
            let author = entry.author();
            vec![
                timed(
                    IndexKey::AnnouncerPulls(&c.project, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
                timed(
                    IndexKey::AnnouncerPull(&c.project, c.number, &author).prefix(),
                    entry.timestamp(),
                    &id,
                ),
            ]
        }
    }
}

/// The roles a declaration gives: its author owns the project, and every
/// key it names as announcer or builder may write. An open project lets
/// any key write claims and results for it.
fn role_grants(
    entry: &Entry,
    declaration: &ProjectDeclaration,
    project: &ProjectId,
) -> Vec<Vec<u8>> {
    let id = entry.id();
    let author = entry.author();
    let builders: &[PublicKey] = match &declaration.builders {
        BuilderPolicy::Open => &[],
        BuilderPolicy::Only(keys) => keys,
    };
    let mut keys: Vec<Vec<u8>> = std::iter::once(&author)
        .chain(&declaration.announcers)
        .chain(builders)
        .map(|subject| with_id(IndexKey::Role(subject).prefix(), &id))
        .collect();
    if declaration.builders == BuilderPolicy::Open {
        keys.push(with_id(IndexKey::Open(project).prefix(), &id));
    }
    keys
}

/// The entry id at the end of an index key.
pub(crate) fn id_of_key(key: &[u8]) -> Option<EntryId> {
    let tail = key.len().checked_sub(32).map(|start| &key[start..])?;
    tail.try_into().ok().map(EntryId)
}

fn tag(key: &mut Vec<u8>, kind: u8, project: &ProjectId) {
    key.push(kind);
    key.extend_from_slice(project.as_bytes());
}

fn text(key: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(&bytes[..usize::from(len)]);
}

fn timed(mut key: Vec<u8>, time: Timestamp, id: &EntryId) -> Vec<u8> {
    key.extend_from_slice(&time.0.to_be_bytes());
    with_id(key, id)
}

fn with_id(mut key: Vec<u8>, id: &EntryId) -> Vec<u8> {
    key.extend_from_slice(id.as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_prefixes_do_not_overlap() {
        let p = ProjectId([3; 32]);
        let a = IndexKey::BranchCommits(&p, "ma").prefix();
        let b = IndexKey::BranchCommits(&p, "main").prefix();
        assert!(!b.starts_with(&a));
    }

    #[test]
    fn the_id_is_the_key_tail() {
        let key = timed(
            IndexKey::Commits(&ProjectId([1; 32])).prefix(),
            Timestamp(9),
            &EntryId([7; 32]),
        );
        assert_eq!(id_of_key(&key), Some(EntryId([7; 32])));
        assert_eq!(id_of_key(&[1, 2]), None);
    }
}
