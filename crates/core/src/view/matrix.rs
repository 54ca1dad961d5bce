//! The platform matrix: commits, newest first, by platform.

use super::cell::Cell;
use super::policy::Policy;
use super::project_log::ProjectLog;
use buildmesh_protocol::{
    Body, CommitAnnouncement, CommitId, Entry, ProjectId, PublicKey, Timestamp,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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
    let mut rows = commits(log, &policy, options);
    if let Some(max) = options.rows_max {
        rows.truncate(max);
    }
    let cells = cell_entries(log, &policy);
    let rows = rows
        .into_iter()
        .map(|(commit, first)| {
            let cells = declaration
                .platforms
                .iter()
                .map(|platform| {
                    let entries = cells
                        .get(&(commit, platform.as_str()))
                        .map_or(&[][..], Vec::as_slice);
                    Cell::judge(platform, entries, declaration.builds_per_cell, now)
                })
                .collect();
            Row {
                commit: commit.clone(),
                branches: first.branches.into_iter().map(str::to_owned).collect(),
                title: first.announcement.title.clone(),
                author: first.announcement.author.clone(),
                announced_at: first.at,
                cells,
            }
        })
        .collect();
    Some(Matrix {
        project: log.project,
        name: declaration.name.clone(),
        owner: policy.owner,
        repository: declaration.repository.clone(),
        platforms: declaration.platforms.clone(),
        rows,
    })
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

/// Claims and results that count, grouped by cell.
fn cell_entries<'a>(
    log: &'a ProjectLog,
    policy: &Policy,
) -> BTreeMap<(&'a CommitId, &'a str), Vec<&'a Entry>> {
    let mut cells: BTreeMap<(&CommitId, &str), Vec<&Entry>> = BTreeMap::new();
    for entry in log
        .cell_entries
        .iter()
        .filter(|e| log.counts(e) && policy.trusts_builder(&e.author()))
    {
        let key = match entry.body() {
            Body::Claim(c) => (&c.commit, c.platform.as_str()),
            Body::Result(r) => (&r.commit, r.platform.as_str()),
            _ => continue,
        };
        cells.entry(key).or_default().push(entry);
    }
    cells
}
