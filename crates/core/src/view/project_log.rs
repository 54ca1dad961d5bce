//! The entries of one project, as views read them.

use super::policy::Policy;
use crate::log::{EntryStore, IndexKey};
use buildmesh_protocol::{
    Body, BuildResult, Claim, CommitId, Entry, EntryId, Outcome, ProjectId, PublicKey, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet};

/// The linked entries about one project, and the authors proven to fork.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectLog {
    /// The project.
    pub project: ProjectId,
    /// Its declarations (one per re-declaration).
    pub declarations: Vec<Entry>,
    /// Its commit announcements.
    pub announcements: Vec<Entry>,
    /// What claims and results say about its cells, by commit.
    pub cells: BTreeMap<CommitId, Vec<CellFact>>,
    /// The platform labels cell facts name, each once; a fact holds an
    /// index into this so deriving views never compares strings.
    pub platforms: Labels,
    /// Trust and revocation entries.
    pub trust: Vec<Entry>,
    /// Authors with a fork proof against them: none of their entries count.
    pub forked: BTreeSet<PublicKey>,
}

impl ProjectLog {
    /// Reads `project`'s entries from `store`: its declarations and trust
    /// changes, the newest `announcements_max` announcements by announcers
    /// the project trusts, and the claims and results of those commits.
    ///
    /// Only trusted announcers' indexes are read, newest first, so however
    /// many announcements others sign (and whatever time they claim), they
    /// cost nothing here and never push trusted ones out of the window.
    pub fn load<S: EntryStore>(
        store: &S,
        project: &ProjectId,
        announcements_max: usize,
    ) -> Result<ProjectLog, S::Error> {
        let all = usize::MAX;
        let mut log = ProjectLog {
            project: *project,
            declarations: fetch(store, &IndexKey::Project(project).prefix(), false, all)?,
            trust: fetch(store, &IndexKey::Trust(project).prefix(), false, all)?,
            forked: store
                .forks()?
                .into_iter()
                .map(|(author, _)| author)
                .collect(),
            ..ProjectLog::default()
        };
        let mut announcers = Policy::of(&log)
            .map(|policy| policy.announcers())
            .unwrap_or_default();
        announcers.retain(|a| log.in_good_standing(a));
        for announcer in &announcers {
            let prefix = IndexKey::AnnouncerCommits(project, announcer).prefix();
            log.announcements
                .extend(fetch(store, &prefix, true, announcements_max)?);
        }
        log.announcements
            .sort_by_key(|e| std::cmp::Reverse((e.timestamp(), e.id())));
        log.announcements.truncate(announcements_max);
        let commits: BTreeSet<CommitId> = log
            .announcements
            .iter()
            .filter_map(announced_commit)
            .cloned()
            .collect();
        for commit in commits {
            log.load_cells(store, &commit)?;
        }
        Ok(log)
    }

    /// Reads the claims and results of `commit` if they are not read yet:
    /// for a commit outside the announcement window that something else
    /// (a force) makes wanted, so its want and its answers come from the
    /// same place.
    pub fn load_cells<S: EntryStore>(
        &mut self,
        store: &S,
        commit: &CommitId,
    ) -> Result<(), S::Error> {
        if self.cells.contains_key(commit) {
            return Ok(());
        }
        let prefix = IndexKey::Commit(&self.project, commit).prefix();
        let facts = fetch(store, &prefix, false, usize::MAX)?
            .iter()
            .filter_map(|e| CellFact::of(e, &mut self.platforms))
            .collect();
        self.cells.insert(commit.clone(), facts);
        Ok(())
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
            Body::Claim(Claim {
                project: p, commit, ..
            })
            | Body::Result(BuildResult {
                project: p, commit, ..
            }) if p == project => {
                let fact = CellFact::of(entry, &mut self.platforms);
                self.cells.entry(commit.clone()).or_default().extend(fact);
                return;
            }
            Body::Trust(t) | Body::Revoke(t) if t.project == *project => &mut self.trust,
            _ => return,
        };
        list.push(entry.clone());
    }

    /// Whether `entry`'s author is in good standing (no fork proven).
    pub fn counts(&self, entry: &Entry) -> bool {
        self.in_good_standing(&entry.author())
    }

    /// Whether `author` is in good standing (no fork proven).
    pub fn in_good_standing(&self, author: &PublicKey) -> bool {
        !self.forked.contains(author)
    }
}

/// The longest a claim can hold a cell, counted from the claim's own
/// timestamp: a builder renews its lease with a new claim while it works,
/// so a claim that names a later expiry (or the end of time) still lapses.
pub const LEASE_MS_MAX: u64 = 60 * 60 * 1000;

/// What a claim or result says about its cell: all a view needs of it, in
/// a compact record so deriving a matrix touches little memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellFact {
    /// The entry.
    pub id: EntryId,
    /// Its author.
    pub author: PublicKey,
    /// When its author wrote it.
    pub at: Timestamp,
    /// The platform label, as its index in [`ProjectLog::platforms`].
    pub platform: u32,
    /// A claim or a result.
    pub what: Fact,
}

/// The part of a claim or result that decides a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    /// A lease until this time.
    Claim {
        /// When the lease lapses.
        lease_expires: Timestamp,
    },
    /// A verdict.
    Result {
        /// The verdict.
        outcome: Outcome,
    },
}

impl CellFact {
    /// The fact a claim or result states; `None` for other entries.
    pub fn of(entry: &Entry, labels: &mut Labels) -> Option<CellFact> {
        let (platform, what) = match entry.body() {
            Body::Claim(c) => {
                let longest = entry.timestamp().plus_ms(LEASE_MS_MAX);
                (
                    &c.platform,
                    Fact::Claim {
                        lease_expires: c.lease_expires.min(longest),
                    },
                )
            }
            Body::Result(r) => (&r.platform, Fact::Result { outcome: r.outcome }),
            _ => return None,
        };
        let platform = labels.intern(platform);
        Some(CellFact {
            id: entry.id(),
            author: entry.author(),
            at: entry.timestamp(),
            platform,
            what,
        })
    }
}

fn announced_commit(entry: &Entry) -> Option<&CommitId> {
    match entry.body() {
        Body::Announce(a) => Some(&a.commit),
        _ => None,
    }
}

pub(super) fn fetch<S: EntryStore>(
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

/// Distinct strings, each with a small number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    by_label: BTreeMap<String, u32>,
    labels: Vec<String>,
}

impl Labels {
    /// The number of `label`, adding it if new.
    pub fn intern(&mut self, label: &str) -> u32 {
        if let Some(&number) = self.by_label.get(label) {
            return number;
        }
        let number = u32::try_from(self.labels.len()).unwrap_or(u32::MAX);
        self.by_label.insert(label.to_owned(), number);
        self.labels.push(label.to_owned());
        number
    }

    /// The number of `label`, if known.
    pub fn number(&self, label: &str) -> Option<u32> {
        self.by_label.get(label).copied()
    }

    /// The label with this number.
    pub fn label(&self, number: u32) -> Option<&str> {
        self.labels
            .get(usize::try_from(number).ok()?)
            .map(String::as_str)
    }

    /// How many labels there are.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}
