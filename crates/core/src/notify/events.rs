//! The events of a branch's rows: broken, fixed, still failing, decided.

use crate::view::{
    Change, Described, Matrix, MatrixOptions, ProjectLog, crossings, matrix, table_of, transitions,
};
use buildmesh_protocol::{CommitId, EntryId, ProjectId, Threshold, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// What happened to a commit's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Some platform failed where it passed before (or had never been
    /// decided).
    Broken,
    /// Some platform passed where it failed before.
    Fixed,
    /// Some platform failed again.
    StillFailing,
    /// Every platform of the row is decided.
    Decided,
    /// Some metric crossed a threshold (`coverage_lines drop 1`).
    Regression,
    /// Trusted builders disagree on some platform (one passed, one
    /// failed): a lying or broken builder, or a flaky commit. Another
    /// builder decides.
    Disagree,
    /// Trusted builders kept disagreeing on some platform.
    Flaky,
    /// Trusted builders' artifacts differ on some platform, and the
    /// project requires them to agree.
    Differs,
}

impl EventKind {
    /// Its name in configs, records, JSON and CloudEvents types.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Broken => "broken",
            EventKind::Fixed => "fixed",
            EventKind::StillFailing => "still_failing",
            EventKind::Decided => "decided",
            EventKind::Regression => "regression",
            EventKind::Disagree => "disagree",
            EventKind::Flaky => "flaky",
            EventKind::Differs => "differs",
        }
    }

    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::Broken,
        EventKind::Fixed,
        EventKind::StillFailing,
        EventKind::Decided,
        EventKind::Regression,
        EventKind::Disagree,
        EventKind::Flaky,
        EventKind::Differs,
    ];
}

/// One message's worth: a commit's row and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The project.
    pub project: ProjectId,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: CommitId,
    /// What happened.
    pub kind: EventKind,
    /// The platforms it happened on (every platform, for `Decided`).
    pub platforms: Vec<String>,
    /// For `Broken`: the commits since the last that passed on those
    /// platforms, oldest first, this one last: who to ask.
    pub blamelist: Vec<CommitId>,
    /// When the newest result behind it was written.
    pub at: Timestamp,
    /// Every platform of the row is decided: no platform can join the
    /// event any more.
    pub row_decided: bool,
    /// For `Regression`: each metric that crossed a threshold.
    pub crossings: Vec<Crossing>,
}

/// One metric of one platform that crossed a threshold on a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The platform.
    pub platform: String,
    /// The metric.
    pub metric: String,
    /// The threshold, as people write it (`coverage_lines drop 1`).
    pub threshold: String,
    /// The previous commit's value on the platform.
    pub previous: f64,
    /// This commit's value.
    pub value: f64,
    /// The result that states it.
    pub result: EntryId,
}

// Values are finite (the protocol refuses others), so equality is total.
impl Eq for Crossing {}

/// What names an event for "sent once": the same row and kind found again
/// by a later derivation is the same event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    /// The project.
    pub project: ProjectId,
    /// The branch.
    pub branch: String,
    /// The commit.
    pub commit: CommitId,
    /// What happened.
    pub kind: EventKind,
}

impl Event {
    /// Its key.
    pub fn key(&self) -> EventKey {
        EventKey {
            project: self.project,
            branch: self.branch.clone(),
            commit: self.commit.clone(),
            kind: self.kind,
        }
    }
}

/// The events of `matrix`'s rows (filtered to `branch`), oldest first. A
/// platform in `flaky` is not called broken (nor still failing) on a cell
/// only one builder decided: a second builder's result must agree.
pub fn events(matrix: &Matrix<'_>, branch: &str, flaky: &BTreeSet<String>) -> Vec<Event> {
    let mut found = Vec::new();
    let mut last_pass: Vec<Option<usize>> = vec![None; matrix.platforms.len()];
    let rows = transitions(matrix);
    for (n, row) in rows.iter().enumerate() {
        let counts = |column: &usize| {
            let platform = &matrix.platforms[*column];
            !flaky.contains(platform) || row.row.cells[*column].builders().len() > 1
        };
        let named = |columns: Vec<usize>| -> Vec<String> {
            columns
                .iter()
                .map(|c| matrix.platforms[*c].clone())
                .collect()
        };
        let broken: Vec<usize> = row.columns(Change::Broken).filter(counts).collect();
        let still: Vec<usize> = row.columns(Change::StillFailing).filter(counts).collect();
        let fixed: Vec<usize> = row.columns(Change::Fixed).collect();
        let first_suspect = broken
            .iter()
            .filter_map(|c| last_pass[*c].map(|p| p + 1))
            .min()
            .unwrap_or(0);
        let at = row
            .row
            .cells
            .iter()
            .flat_map(|c| c.results.iter().map(|r| r.at))
            .max()
            .unwrap_or(row.row.announced_at);
        let event = |kind, platforms: Vec<String>, blamelist: Vec<CommitId>| Event {
            project: matrix.project,
            branch: branch.to_owned(),
            commit: row.row.commit.clone(),
            kind,
            platforms,
            blamelist,
            at,
            row_decided: row.decided(),
            crossings: Vec::new(),
        };
        if !broken.is_empty() {
            let blamelist = rows[first_suspect..=n]
                .iter()
                .map(|r| r.row.commit.clone())
                .collect();
            found.push(event(EventKind::Broken, named(broken), blamelist));
        }
        if !still.is_empty() {
            found.push(event(EventKind::StillFailing, named(still), Vec::new()));
        }
        if !fixed.is_empty() {
            found.push(event(EventKind::Fixed, named(fixed), Vec::new()));
        }
        for (kind, change) in [
            (EventKind::Disagree, Change::Disagree),
            (EventKind::Flaky, Change::Flaky),
            (EventKind::Differs, Change::Differs),
        ] {
            let columns: Vec<usize> = row.columns(change).collect();
            if !columns.is_empty() {
                found.push(event(kind, named(columns), Vec::new()));
            }
        }
        if row.decided() {
            found.push(event(
                EventKind::Decided,
                matrix.platforms.to_vec(),
                Vec::new(),
            ));
        }
        for column in row
            .columns(Change::StillPassing)
            .chain(row.columns(Change::Fixed))
        {
            last_pass[column] = Some(n);
        }
    }
    found
}

/// The events of `branch`'s newest `rows` commits in `log` at `now`.
///
/// A row's change is read against the rows before it, so the oldest rows
/// shown would have no history: as many rows again are derived as their
/// history and their own events dropped (else, as new commits push the
/// window along, a commit still failing would be found "broken" again when
/// it becomes the oldest).
pub fn recent_events(
    log: &ProjectLog,
    now: Timestamp,
    branch: &str,
    rows: usize,
    flaky: &BTreeSet<String>,
) -> Vec<Event> {
    let options = MatrixOptions {
        branch: Some(branch.to_owned()),
        rows_max: Some(rows.saturating_mul(2)),
    };
    let Some(derived) = matrix(log, now, &options) else {
        return Vec::new();
    };
    let shown: BTreeSet<&CommitId> = derived.rows.iter().take(rows).map(|r| r.commit).collect();
    let mut found = events(&derived, branch, flaky);
    found.retain(|e| shown.contains(&e.commit));
    found
}

/// The regressions of `branch`'s newest `rows` commits: one event per
/// commit naming every metric and platform that crossed one of
/// `thresholds` there. Like [`recent_events`], as many rows again are read
/// so the oldest shown commit has a previous value to compare with.
pub fn regressions(
    log: &ProjectLog,
    now: Timestamp,
    branch: &str,
    rows: usize,
    thresholds: &[Threshold],
) -> Vec<Event> {
    let options = MatrixOptions {
        branch: Some(branch.to_owned()),
        rows_max: Some(rows.saturating_mul(2)),
    };
    let Some(derived) = matrix(log, now, &options).filter(|_| !thresholds.is_empty()) else {
        return Vec::new();
    };
    let table = table_of(log, &derived);
    let mut by_commit: BTreeMap<&CommitId, (Timestamp, Vec<Crossing>)> = BTreeMap::new();
    for threshold in thresholds {
        let series = table.iter().filter(|((m, _), _)| *m == threshold.metric);
        for ((metric, platform), points) in series {
            let crossed = crossings(points, threshold.rule);
            for (n, point) in points.iter().enumerate().filter(|(n, _)| crossed[*n]) {
                let slot = by_commit.entry(point.commit).or_default();
                slot.0 = slot.0.max(point.written_at);
                slot.1.push(Crossing {
                    platform: (*platform).to_owned(),
                    metric: (*metric).to_owned(),
                    threshold: Described(threshold).to_string(),
                    previous: points[n - 1].value,
                    value: point.value,
                    result: point.result,
                });
            }
        }
    }
    let decided: BTreeMap<&CommitId, bool> = transitions(&derived)
        .iter()
        .map(|r| (r.row.commit, r.decided()))
        .collect();
    let shown: BTreeSet<&CommitId> = derived.rows.iter().take(rows).map(|r| r.commit).collect();
    by_commit
        .into_iter()
        .filter(|(commit, _)| shown.contains(commit))
        .map(|(commit, (at, crossings))| {
            let platforms: BTreeSet<String> =
                crossings.iter().map(|c| c.platform.clone()).collect();
            Event {
                project: log.project,
                branch: branch.to_owned(),
                commit: commit.clone(),
                kind: EventKind::Regression,
                platforms: platforms.into_iter().collect(),
                blamelist: Vec::new(),
                at,
                row_decided: decided.get(commit).copied().unwrap_or(false),
                crossings,
            }
        })
        .collect()
}

/// Whether `event` may be told at `now`: its row is decided, or its
/// newest result is `settle_ms` old. Waiting for the row makes one message
/// name every platform that broke ("broken on linux and mac"); the bound
/// keeps a platform that never finishes from holding the others' news.
/// A platform that decides after the event was told is not told again.
pub fn settled(event: &Event, now: Timestamp, settle_ms: u64) -> bool {
    event.row_decided || now.ms_since(event.at) >= settle_ms
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::view::testing::{cell, commits, matrix, row};
    use crate::view::{CellResult, CellStatus};
    use buildmesh_protocol::{EntryId, Outcome, PublicKey};

    use CellStatus::{Claimed as B, Failed as F, Passed as P};

    const T: Timestamp = Timestamp(1_764_000_000_000);

    /// Events of rows given oldest first, on linux and mac; `by_two` names
    /// the cells (row, column) two builders decided.
    fn events_of(
        rows: &[[CellStatus; 2]],
        flaky: &[&str],
        by_two: &[(usize, usize)],
    ) -> Vec<(u8, EventKind, Vec<String>, Vec<u8>)> {
        let ids = commits(rows.len() as u8);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let mut made: Vec<_> = rows.iter().zip(&ids).map(|(s, id)| row(id, s)).collect();
        for (n, r) in made.iter_mut().enumerate() {
            for (column, c) in r.cells.iter_mut().enumerate() {
                let builders = if by_two.contains(&(n, column)) { 2 } else { 1 };
                if c.status != B {
                    *c = cell(c.status);
                    c.results = (0..builders)
                        .map(|b| CellResult {
                            id: EntryId([b; 32]),
                            builder: PublicKey([b; 32]),
                            outcome: if c.status == P {
                                Outcome::Passed
                            } else {
                                Outcome::Failed
                            },
                            at: T.plus_ms(n as u64),
                        })
                        .collect();
                }
            }
        }
        made.reverse();
        let m = matrix(&platforms, made);
        let flaky = flaky.iter().map(|p| p.to_string()).collect();
        events(&m, "main", &flaky)
            .into_iter()
            .map(|e| {
                let number = |c: &CommitId| c.as_bytes()[0];
                (
                    number(&e.commit),
                    e.kind,
                    e.platforms,
                    e.blamelist.iter().map(number).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn one_event_per_row_and_kind_with_the_blamelist_since_the_last_pass() {
        use EventKind::{Broken, Decided, Fixed, StillFailing};
        let found = events_of(&[[P, P], [B, P], [F, F], [F, P]], &[], &[]);
        let both = || vec!["linux".to_string(), "mac".to_string()];
        assert_eq!(
            found,
            [
                (0, Decided, both(), vec![]),
                (2, Broken, both(), vec![1, 2]),
                (2, Decided, both(), vec![]),
                (3, StillFailing, vec!["linux".to_string()], vec![]),
                (3, Fixed, vec!["mac".to_string()], vec![]),
                (3, Decided, both(), vec![]),
            ]
        );
    }

    #[test]
    fn an_event_waits_for_its_row_or_for_the_settle_time() {
        let found = events_of(&[[P, P], [F, B]], &[], &[]);
        assert_eq!(found[1].1, EventKind::Broken);
        let ids = commits(2);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let m = matrix(
            &platforms,
            vec![row(&ids[1], &[F, B]), row(&ids[0], &[P, P])],
        );
        let broken = events(&m, "main", &BTreeSet::new())
            .into_iter()
            .find(|e| e.kind == EventKind::Broken)
            .unwrap();
        assert!(!broken.row_decided);
        assert!(!settled(&broken, broken.at.plus_ms(999), 1_000));
        assert!(settled(&broken, broken.at.plus_ms(1_000), 1_000));
    }

    #[test]
    fn a_flaky_platform_is_broken_only_when_two_builders_agree() {
        let broken = |by_two: &[(usize, usize)]| {
            events_of(&[[P, P], [F, P]], &["linux"], by_two)
                .into_iter()
                .any(|(_, kind, _, _)| kind == EventKind::Broken)
        };
        assert!(!broken(&[]), "one builder on a flaky platform");
        assert!(broken(&[(1, 0)]), "two builders agree");
    }
}
