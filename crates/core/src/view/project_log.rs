//! The entries of one project, as views read them.

use crate::log::{EntryStore, IndexKey};
use buildmesh_protocol::{Body, CommitId, Entry, EntryId, ProjectId, PublicKey};
use std::collections::BTreeSet;

/// The linked entries about one project, and the authors proven to fork.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectLog {
    /// The project.
    pub project: ProjectId,
    /// Its declarations (one per re-declaration).
    pub declarations: Vec<Entry>,
    /// Its commit announcements.
    pub announcements: Vec<Entry>,
    /// Claims and results for its cells.
    pub cell_entries: Vec<Entry>,
    /// Trust and revocation entries.
    pub trust: Vec<Entry>,
    /// Authors with a fork proof against them: none of their entries count.
    pub forked: BTreeSet<PublicKey>,
}

impl ProjectLog {
    /// Reads `project`'s entries from `store`, keeping the newest
    /// `announcements_max` announcements and the cells of their commits.
    pub fn load<S: EntryStore>(
        store: &S,
        project: &ProjectId,
        announcements_max: usize,
    ) -> Result<ProjectLog, S::Error> {
        let all = usize::MAX;
        let declarations = fetch(store, &IndexKey::Project(project).prefix(), false, all)?;
        let announcements = fetch(
            store,
            &IndexKey::Commits(project).prefix(),
            true,
            announcements_max,
        )?;
        let commits: BTreeSet<&CommitId> =
            announcements.iter().filter_map(announced_commit).collect();
        let mut cell_entries = Vec::new();
        for commit in commits {
            cell_entries.extend(fetch(
                store,
                &IndexKey::Commit(project, commit).prefix(),
                false,
                all,
            )?);
        }
        let trust = fetch(store, &IndexKey::Trust(project).prefix(), false, all)?;
        let forked = store
            .forks()?
            .into_iter()
            .map(|(author, _)| author)
            .collect();
        Ok(ProjectLog {
            project: *project,
            declarations,
            announcements,
            cell_entries,
            trust,
            forked,
        })
    }

    /// Builds the log of `project` from any collection of entries (for
    /// tests, audits of an export, and the simulator).
    pub fn from_entries<'a>(
        project: &ProjectId,
        entries: impl IntoIterator<Item = &'a Entry>,
        forked: BTreeSet<PublicKey>,
    ) -> ProjectLog {
        let mut log = ProjectLog {
            project: *project,
            forked,
            ..ProjectLog::default()
        };
        for entry in entries {
            log.add(entry);
        }
        log
    }

    fn add(&mut self, entry: &Entry) {
        let project = &self.project;
        let list = match entry.body() {
            Body::Project(p) if ProjectId::derive(&entry.author(), &p.name) == *project => {
                &mut self.declarations
            }
            Body::Announce(a) if a.project == *project => &mut self.announcements,
            Body::Claim(c) if c.project == *project => &mut self.cell_entries,
            Body::Result(r) if r.project == *project => &mut self.cell_entries,
            Body::Trust(t) | Body::Revoke(t) if t.project == *project => &mut self.trust,
            _ => return,
        };
        list.push(entry.clone());
    }

    /// Whether `entry`'s author is in good standing (no fork proven).
    pub fn counts(&self, entry: &Entry) -> bool {
        !self.forked.contains(&entry.author())
    }
}

fn announced_commit(entry: &Entry) -> Option<&CommitId> {
    match entry.body() {
        Body::Announce(a) => Some(&a.commit),
        _ => None,
    }
}

fn fetch<S: EntryStore>(
    store: &S,
    prefix: &[u8],
    newest_first: bool,
    limit: usize,
) -> Result<Vec<Entry>, S::Error> {
    let ids: Vec<EntryId> = store.scan_index(prefix, newest_first, limit)?;
    let mut entries = Vec::with_capacity(ids.len());
    for id in ids {
        entries.extend(store.get(&id)?.map(|stored| stored.entry));
    }
    Ok(entries)
}
