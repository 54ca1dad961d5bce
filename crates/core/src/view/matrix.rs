//! The platform matrix: commits, newest first, by platform.

use super::cell::Cell;
use super::policy::Policy;
use super::project_log::ProjectLog;
use buildmesh_protocol::{
    Body, CommitAnnouncement, CommitId, Entry, ProjectId, PublicKey, Timestamp,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

/// A project's matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: String,
    /// Its maintainer.
    pub owner: PublicKey,
    /// Its repository URL.
    pub repository: String,
    /// The columns, as declared.
    pub platforms: Vec<String>,
    /// The rows, newest commit first.
    pub rows: Vec<Row>,
}

/// One commit's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The commit.
    pub commit: CommitId,
    /// Branches it was announced on, sorted.
    pub branches: Vec<String>,
    /// First line of its message.
    pub title: String,
    /// Its git author.
    pub author: String,
    /// When it was first announced.
    pub announced_at: Timestamp,
    /// One cell per platform, in column order.
    pub cells: Vec<Cell>,
}

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatrixOptions {
    /// Only commits announced on this branch.
    pub branch: Option<String>,
    /// At most this many rows (`None`: all).
    pub rows_max: Option<usize>,
}

/// The matrix of `log`'s project at time `now`, or `None` if the project
/// has no declaration that counts.
pub fn matrix(log: &ProjectLog, now: Timestamp, options: &MatrixOptions) -> Option<Matrix> {
    let policy = Policy::of(log)?;
    let declaration = &policy.declaration;
    let mut commits = commits(log, &policy, options);
    if let Some(max) = options.rows_max {
        commits.truncate(max);
    }
    let grid = Grid::new(&commits, &declaration.platforms);
    let by_cell = grid.place(log, &policy);
    let mut cursor = 0;
    let mut rows = Vec::with_capacity(commits.len());
    for (row, (commit, first)) in commits.into_iter().enumerate() {
        let cells = (0..grid.columns)
            .map(|column| {
                let index = row * grid.columns + column;
                let start = cursor;
                while by_cell.get(cursor).is_some_and(|(i, _)| *i == index) {
                    cursor += 1;
                }
                let entries = by_cell[start..cursor].iter().map(|(_, entry)| *entry);
                Cell::judge(entries, declaration.builds_per_cell, now)
            })
            .collect();
        rows.push(Row {
            commit: commit.clone(),
            branches: first.branches.into_iter().map(str::to_owned).collect(),
            title: first.announcement.title.clone(),
            author: first.announcement.author.clone(),
            announced_at: first.at,
            cells,
        });
    }
    Some(Matrix {
        project: log.project,
        name: declaration.name.clone(),
        owner: policy.owner,
        repository: declaration.repository.clone(),
        platforms: declaration.platforms.clone(),
        rows,
    })
}

/// Where each commit and platform sits in the matrix.
struct Grid<'a> {
    /// Lookup only, never iterated, so its order cannot leak into a view.
    /// Its keys are commits trusted announcers chose, so a fast unkeyed
    /// hash is safe: nobody else can insert colliding keys.
    rows: HashMap<&'a CommitId, usize, BuildHasherDefault<Fnv>>,
    platforms: &'a [String],
    columns: usize,
}

impl<'a> Grid<'a> {
    fn new(commits: &[(&'a CommitId, FirstSeen<'a>)], platforms: &'a [String]) -> Grid<'a> {
        let rows = commits
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (*c, i))
            .collect();
        Grid {
            rows,
            platforms,
            columns: platforms.len(),
        }
    }

    fn index(&self, commit: &CommitId, platform: &str) -> Option<usize> {
        let row = *self.rows.get(commit)?;
        let column = self.platforms.iter().position(|p| p == platform)?;
        Some(row * self.columns + column)
    }

    /// The claims and results that count, as `(cell index, entry)` sorted
    /// by cell: one allocation instead of one per cell.
    fn place<'e>(&self, log: &'e ProjectLog, policy: &Policy) -> Vec<(usize, &'e Entry)> {
        let mut placed: Vec<(usize, &Entry)> = log
            .cell_entries
            .iter()
            .filter(|e| log.counts(e) && policy.trusts_builder(&e.author()))
            .filter_map(|entry| {
                let index = match entry.body() {
                    Body::Claim(c) => self.index(&c.commit, &c.platform),
                    Body::Result(r) => self.index(&r.commit, &r.platform),
                    _ => None,
                }?;
                Some((index, entry))
            })
            .collect();
        placed.sort_by_key(|(index, _)| *index);
        placed
    }
}

/// A commit's earliest announcement and every branch it was seen on.
struct FirstSeen<'a> {
    at: Timestamp,
    announcement: &'a CommitAnnouncement,
    branches: BTreeSet<&'a str>,
}

/// The commits to show, newest first (ties by commit id, descending).
fn commits<'a>(
    log: &'a ProjectLog,
    policy: &Policy,
    options: &MatrixOptions,
) -> Vec<(&'a CommitId, FirstSeen<'a>)> {
    let mut seen: BTreeMap<&CommitId, FirstSeen<'a>> = BTreeMap::new();
    for entry in log
        .announcements
        .iter()
        .filter(|e| log.counts(e) && policy.may_announce(&e.author()))
    {
        let Body::Announce(a) = entry.body() else {
            continue;
        };
        if options.branch.as_ref().is_some_and(|b| *b != a.branch) {
            continue;
        }
        let at = entry.timestamp();
        let first = seen.entry(&a.commit).or_insert(FirstSeen {
            at,
            announcement: a,
            branches: BTreeSet::new(),
        });
        if (at, &a.title) < (first.at, &first.announcement.title) {
            first.at = at;
            first.announcement = a;
        }
        first.branches.insert(&a.branch);
    }
    let mut rows: Vec<_> = seen.into_iter().collect();
    rows.sort_by(|(c1, f1), (c2, f2)| (f2.at, c2).cmp(&(f1.at, c1)));
    rows
}

/// FNV-1a: a few cycles per byte on 20-byte keys, where SipHash costs more
/// than the rest of a cell lookup.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}
