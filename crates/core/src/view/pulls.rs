//! Pull requests as the dashboard shows them: a project's recent ones, and
//! one pull request's heads, each head a row of cells by platform.
//!
//! Pull request heads never appear in the branch matrix ([`super::matrix`]
//! reads branch announcements only): a head is not on its base branch
//! until it is merged, and then an ordinary announcement says so.

use super::cell::{Cell, CellStatus};
use super::matrix::Columns;
use super::policy::Policy;
use super::project_log::ProjectLog;
use buildmesh_protocol::{Body, CommitId, EntryId, ProjectId, PullAnnouncement, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// A project's recent pull requests: open ones first, each group the most
/// recently updated first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pulls<'a> {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: &'a str,
    /// The columns of each pull request's cells, as declared.
    pub platforms: &'a [String],
    /// Whether the project builds pull requests now.
    pub enabled: bool,
    /// The pull requests.
    pub pulls: Vec<PullSummary<'a>>,
}

/// One pull request and the state of its latest head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullSummary<'a> {
    /// Its number on the forge.
    pub number: u64,
    /// The branch it would merge into.
    pub base: &'a str,
    /// Who opened it (forge login).
    pub author: &'a str,
    /// The latest head's commit title.
    pub title: &'a str,
    /// The latest head.
    pub head: &'a CommitId,
    /// Whether it is open: no close newer than its latest head's
    /// announcement (docs/protocol.md §6.2).
    pub open: bool,
    /// When the latest head was announced.
    pub updated_at: Timestamp,
    /// The latest head's cells, in column order.
    pub cells: Vec<Cell>,
    /// The latest head's state as one word: see [`overall`].
    pub status: CellStatus,
}

/// One pull request: its heads, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pull<'a> {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: &'a str,
    /// The columns, as declared.
    pub platforms: &'a [String],
    /// Whether the project builds pull requests now.
    pub enabled: bool,
    /// Its number on the forge.
    pub number: u64,
    /// The branch it would merge into (as the latest head's announcement
    /// says).
    pub base: &'a str,
    /// Who opened it.
    pub author: &'a str,
    /// Whether it is open: no close newer than its latest head's
    /// announcement. A closed one's heads are not built.
    pub open: bool,
    /// Its heads, newest first.
    pub heads: Vec<PullHead<'a>>,
}

/// One head of a pull request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullHead<'a> {
    /// The commit.
    pub commit: &'a CommitId,
    /// Its title.
    pub title: &'a str,
    /// When it was first announced as this pull request's head.
    pub announced_at: Timestamp,
    /// One cell per platform, in column order.
    pub cells: Vec<Cell>,
    /// Its state as one word: see [`overall`].
    pub status: CellStatus,
}

/// The recent pull requests of `log`'s project at `now`, at most
/// `pulls_max`, open ones first (so closed ones never crowd open ones
/// out); `None` if the project has no declaration that counts.
pub fn pulls(log: &ProjectLog, now: Timestamp, pulls_max: usize) -> Option<Pulls<'_>> {
    let policy = Policy::of(log)?;
    let mut columns = Columns::new(&policy.declaration.platforms, &log.platforms);
    let mut latest: BTreeMap<u64, Seen<'_>> = BTreeMap::new();
    for seen in heads(log, &policy) {
        let slot = latest.entry(seen.pull.number).or_insert(seen);
        if seen.key() > slot.key() {
            *slot = seen;
        }
    }
    let closes = closes(log, &policy);
    let mut newest: Vec<(bool, Seen<'_>)> = latest
        .into_values()
        .map(|seen| (is_open(&closes, seen.pull.number, seen.key()), seen))
        .collect();
    newest.sort_by_key(|(open, seen)| std::cmp::Reverse((*open, seen.key())));
    newest.truncate(pulls_max);
    let pulls = newest
        .into_iter()
        .map(|(open, seen)| {
            let cells = columns.cells(log, &policy, &seen.pull.commit, now);
            PullSummary {
                number: seen.pull.number,
                base: &seen.pull.base,
                author: &seen.pull.author,
                title: &seen.pull.title,
                head: &seen.pull.commit,
                open,
                updated_at: seen.at,
                status: overall(&cells),
                cells,
            }
        })
        .collect();
    Some(Pulls {
        project: log.project,
        name: &policy.declaration.name,
        platforms: &policy.declaration.platforms,
        enabled: policy.pull_requests(),
        pulls,
    })
}

/// Pull request `number` of `log`'s project at `now`, its heads newest
/// first (a head announced twice counts once, at its first
/// announcement); `None` if the project has no declaration that counts
/// or no head of that pull request is announced.
pub fn pull(log: &ProjectLog, number: u64, now: Timestamp) -> Option<Pull<'_>> {
    let policy = Policy::of(log)?;
    let mut columns = Columns::new(&policy.declaration.platforms, &log.platforms);
    let mut first: BTreeMap<&CommitId, Seen<'_>> = BTreeMap::new();
    for seen in heads(log, &policy).filter(|s| s.pull.number == number) {
        let slot = first.entry(&seen.pull.commit).or_insert(seen);
        if seen.key() < slot.key() {
            *slot = seen;
        }
    }
    let mut seen: Vec<Seen<'_>> = first.into_values().collect();
    seen.sort_by_key(|s| std::cmp::Reverse(s.key()));
    let latest = *seen.first()?;
    // The newest announcement of any head decides, not the first of the
    // latest head: a head announced again (reopened) reopens the pull.
    let newest = heads(log, &policy)
        .filter(|s| s.pull.number == number)
        .map(|s| s.key())
        .max()
        .unwrap_or(latest.key());
    let open = is_open(&closes(log, &policy), number, newest);
    let heads = seen
        .into_iter()
        .map(|s| {
            let cells = columns.cells(log, &policy, &s.pull.commit, now);
            PullHead {
                commit: &s.pull.commit,
                title: &s.pull.title,
                announced_at: s.at,
                status: overall(&cells),
                cells,
            }
        })
        .collect();
    Some(Pull {
        project: log.project,
        name: &policy.declaration.name,
        platforms: &policy.declaration.platforms,
        enabled: policy.pull_requests(),
        number,
        base: &latest.pull.base,
        author: &latest.pull.author,
        open,
        heads,
    })
}

/// A row's cells as one state: the worst that any cell is, in the order
/// `Failed`, `Disagree`, `Flaky`, `Differs`, `Error`; else `Passed` if every cell
/// passed or was skipped (`Skipped` if all were); else `Claimed` if any
/// is being built; else `Pending`.
pub fn overall(cells: &[Cell]) -> CellStatus {
    overall_status(cells.iter().map(|c| c.status))
}

/// [`overall`] of bare statuses (a [`super::Summary`] keeps no cells).
pub fn overall_status(statuses: impl Iterator<Item = CellStatus> + Clone) -> CellStatus {
    use CellStatus::{Claimed, Differs, Disagree, Error, Failed, Flaky, Passed, Pending, Skipped};
    let any = |status| statuses.clone().any(|s| s == status);
    let done = statuses.clone().next().is_some()
        && statuses.clone().all(|s| matches!(s, Passed | Skipped));
    if let Some(worst) = [Failed, Disagree, Flaky, Differs, Error]
        .into_iter()
        .find(|s| any(*s))
    {
        worst
    } else if done && any(Passed) {
        Passed
    } else if done {
        Skipped
    } else if any(Claimed) {
        Claimed
    } else {
        Pending
    }
}

/// One pull request announcement that counts.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    at: Timestamp,
    id: EntryId,
    pull: &'a PullAnnouncement,
}

impl Seen<'_> {
    /// Time order, ties broken by id whatever the input order.
    fn key(&self) -> (Timestamp, EntryId) {
        (self.at, self.id)
    }
}

/// The pull request announcements of trusted announcers in good standing.
fn heads<'a, 'p>(
    log: &'a ProjectLog,
    policy: &'p Policy<'_>,
) -> impl Iterator<Item = Seen<'a>> + use<'a, 'p> {
    log.pulls
        .iter()
        .filter(|e| log.counts(e) && policy.may_announce(&e.author()))
        .filter_map(|entry| match entry.body() {
            Body::Pull(pull) if pull.project == log.project => Some(Seen {
                at: entry.timestamp(),
                id: entry.id(),
                pull,
            }),
            _ => None,
        })
}

/// The newest close of each pull request by trusted announcers in good
/// standing, as (time, id).
pub(super) fn closes(log: &ProjectLog, policy: &Policy<'_>) -> BTreeMap<u64, (Timestamp, EntryId)> {
    let mut newest: BTreeMap<u64, (Timestamp, EntryId)> = BTreeMap::new();
    let counting = log
        .pulls
        .iter()
        .filter(|e| log.counts(e) && policy.may_announce(&e.author()));
    for entry in counting {
        let Body::PullClosed(c) = entry.body() else {
            continue;
        };
        if c.project != log.project {
            continue;
        }
        let this = (entry.timestamp(), entry.id());
        let slot = newest.entry(c.number).or_insert(this);
        *slot = (*slot).max(this);
    }
    newest
}

/// Whether pull request `number`, whose newest announcement is `newest`
/// (time, id), is open: no close in `closes` is newer.
pub(super) fn is_open(
    closes: &BTreeMap<u64, (Timestamp, EntryId)>,
    number: u64,
    newest: (Timestamp, EntryId),
) -> bool {
    closes.get(&number).is_none_or(|closed| *closed < newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use CellStatus::{Claimed, Disagree, Error, Failed, Flaky, Passed, Pending, Skipped};

    fn of(statuses: &[CellStatus]) -> CellStatus {
        overall_status(statuses.iter().copied())
    }

    #[test]
    fn a_row_is_its_worst_cell_and_passes_only_when_every_cell_is_done() {
        assert_eq!(of(&[Passed, Flaky, Disagree]), Disagree);
        assert_eq!(of(&[Passed, Flaky, Error]), Flaky);
        assert_eq!(of(&[Disagree, Failed]), Failed);
        assert_eq!(of(&[Passed, Skipped]), Passed);
        assert_eq!(of(&[Skipped, Skipped]), Skipped);
        assert_eq!(of(&[Passed, Claimed]), Claimed);
        assert_eq!(of(&[Skipped, Pending]), Pending);
        assert_eq!(of(&[]), Pending);
    }
}
