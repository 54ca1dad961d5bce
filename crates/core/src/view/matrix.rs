//! The platform matrix: commits, newest first, by platform.

use super::cell::Cell;
use super::policy::Policy;
use super::project_log::{CellFact, Labels, ProjectLog};
use buildmesh_protocol::{
    Body, CommitAnnouncement, CommitId, EntryId, ProjectId, PublicKey, Timestamp,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A project's matrix. It borrows its text from the [`ProjectLog`] it was
/// derived from, so deriving one copies no strings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix<'a> {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: &'a str,
    /// Its maintainer.
    pub owner: PublicKey,
    /// Its repository URL.
    pub repository: &'a str,
    /// The columns, as declared.
    pub platforms: &'a [String],
    /// The branches it builds, as declared: what a client tells a branch
    /// with no commit yet from one the project does not build.
    pub branches: &'a [String],
    /// The rows, newest commit first.
    pub rows: Vec<Row<'a>>,
}

/// One commit's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row<'a> {
    /// The commit.
    pub commit: &'a CommitId,
    /// Branches it was announced on, sorted.
    pub branches: Vec<&'a str>,
    /// First line of its message.
    pub title: &'a str,
    /// Its git author.
    pub author: &'a str,
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
pub fn matrix<'a>(
    log: &'a ProjectLog,
    now: Timestamp,
    options: &MatrixOptions,
) -> Option<Matrix<'a>> {
    let policy = Policy::of(log)?;
    let declaration = &policy.declaration;
    let mut commits = commits(log, &policy, options);
    if let Some(max) = options.rows_max {
        commits.truncate(max);
    }
    let mut columns = Columns::new(&declaration.platforms, &log.platforms);
    let rows = commits
        .into_iter()
        .map(|(commit, first)| {
            let cells = columns.cells(log, &policy, commit, now);
            Row {
                commit,
                branches: first.branches.into_iter().collect(),
                title: &first.announcement.title,
                author: &first.announcement.author,
                announced_at: first.at,
                cells,
            }
        })
        .collect();
    Some(Matrix {
        project: log.project,
        name: &declaration.name,
        owner: policy.owner,
        repository: &declaration.repository,
        platforms: &declaration.platforms,
        branches: &declaration.branches,
        rows,
    })
}

/// Sorts one row's claims and results into its columns, reusing one
/// buffer for every row.
pub(super) struct Columns<'e> {
    count: usize,
    /// The column of each label number of the log, if the project wants it.
    of_label: Vec<Option<usize>>,
    buffer: Vec<(usize, &'e CellFact)>,
}

impl<'e> Columns<'e> {
    /// The cells of `commit`'s row, in column order, judged at `now` from
    /// the claims and results of trusted builders in good standing.
    pub(super) fn cells(
        &mut self,
        log: &'e ProjectLog,
        policy: &Policy<'_>,
        commit: &CommitId,
        now: Timestamp,
    ) -> Vec<Cell> {
        let entries = log.cells.get(commit).map_or(&[][..], Vec::as_slice);
        let counted = entries.iter().filter(|f| policy.counts(f));
        let builds = policy.builds_per_cell();
        self.split(counted)
            .map(|in_cell| {
                let mut cell = Cell::judge(in_cell.iter().map(|(_, fact)| *fact), builds, now);
                if policy.reproducible() {
                    cell.require_agreement(log);
                }
                cell
            })
            .collect()
    }

    pub(super) fn new(platforms: &[String], labels: &Labels) -> Self {
        let mut of_label = vec![None; labels.len()];
        for (column, platform) in platforms.iter().enumerate() {
            if let Some(slot) = labels
                .number(platform)
                .and_then(|n| of_label.get_mut(n as usize))
            {
                *slot = Some(column);
            }
        }
        Columns {
            count: platforms.len(),
            of_label,
            buffer: Vec::new(),
        }
    }

    /// The entries of each column, in column order; entries for platforms
    /// the project does not declare are dropped.
    fn split(
        &mut self,
        facts: impl Iterator<Item = &'e CellFact>,
    ) -> impl Iterator<Item = &[(usize, &'e CellFact)]> + '_ {
        self.buffer.clear();
        for fact in facts {
            if let Some(Some(column)) = self.of_label.get(fact.platform as usize) {
                self.buffer.push((*column, fact));
            }
        }
        self.buffer.sort_unstable_by_key(|(column, _)| *column);
        let mut rest = &self.buffer[..];
        (0..self.count).map(move |column| {
            let (here, later) = rest.split_at(rest.partition_point(|(c, _)| *c <= column));
            rest = later;
            here
        })
    }
}

/// A commit's earliest announcement and every branch it was seen on.
struct FirstSeen<'a> {
    at: Timestamp,
    /// The announcement's id, to break ties in `at` whatever the input order.
    id: EntryId,
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
            id: entry.id(),
            at,
            announcement: a,
            branches: BTreeSet::new(),
        });
        if (at, entry.id()) < (first.at, first.id) {
            first.at = at;
            first.id = entry.id();
            first.announcement = a;
        }
        first.branches.insert(&a.branch);
    }
    let mut rows: Vec<_> = seen.into_iter().collect();
    // Newest announced first; commits announced together (a node that
    // catches up announces a burst at one moment) newest committed first.
    rows.sort_by(|(c1, f1), (c2, f2)| {
        let newer = (f2.at, f2.announcement.committed_at, c2);
        newer.cmp(&(f1.at, f1.announcement.committed_at, c1))
    });
    rows
}
