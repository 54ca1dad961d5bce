//! What each commit changed on a branch, platform by platform: the events
//! people are told of (broken, fixed, still failing) and when a commit's
//! whole row is decided. A pure function of the matrix, so every node that
//! holds the same entries derives the same transitions.

use super::{CellStatus, Matrix, Row};

/// How a commit's cell on one platform compares with the same platform's
/// previous decided cell on the branch (passed or failed; errors do not
/// count as either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Failed, where the previous passed, or where nothing passed or failed
    /// before: the build is broken here.
    Broken,
    /// Passed, where the previous failed.
    Fixed,
    /// Failed, as the previous did.
    StillFailing,
    /// Passed, as the previous did (or the first to be decided).
    StillPassing,
    /// The build could not judge the commit (no recipe, a step past its
    /// timeout, ...). The platform's pass/fail history goes on past it.
    Errored,
    /// Trusted builders disagree on the commit; another builder is
    /// wanted. Not decided yet, and the history goes on past it.
    Disagree,
    /// Trusted builders kept disagreeing. Decided, but neither passed nor
    /// failed: the history goes on past it.
    Flaky,
    /// The recipe does not build this platform at this commit.
    Skipped,
    /// Builders passed it with differing artifacts, and the project
    /// requires them to agree. Decided; the history goes on past it.
    Differs,
}

/// One commit's row, with each platform's change.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChanges<'m> {
    /// The row.
    pub row: &'m Row<'m>,
    /// Per platform, in column order: its change, or `None` while the
    /// cell is undecided (pending or building).
    pub changes: Vec<Option<Change>>,
}

impl RowChanges<'_> {
    /// Every cell of the row is decided (a cell whose builders disagree
    /// is not: a build is still wanted).
    pub fn decided(&self) -> bool {
        self.changes
            .iter()
            .all(|c| c.is_some_and(|c| c != Change::Disagree))
    }

    /// The columns whose change is `change`.
    pub fn columns(&self, change: Change) -> impl Iterator<Item = usize> + '_ {
        self.changes
            .iter()
            .enumerate()
            .filter(move |(_, c)| **c == Some(change))
            .map(|(column, _)| column)
    }
}

/// Each row of `matrix` (filter it to one branch first: the rows are read
/// as one history), oldest first, with how each platform changed from its
/// previous decided cell. Rows whose cells are all undecided are kept
/// (with no change), so callers see every commit.
pub fn transitions<'m>(matrix: &'m Matrix<'_>) -> Vec<RowChanges<'m>> {
    let mut last: Vec<Option<CellStatus>> = vec![None; matrix.platforms.len()];
    matrix
        .rows
        .iter()
        .rev()
        .map(|row| {
            let changes = row
                .cells
                .iter()
                .zip(last.iter_mut())
                .map(|(cell, last)| change(cell.status, last))
                .collect();
            RowChanges { row, changes }
        })
        .collect()
}

/// The change `status` makes after `last`, moving `last` on.
fn change(status: CellStatus, last: &mut Option<CellStatus>) -> Option<Change> {
    let change = match (status, *last) {
        (CellStatus::Failed, Some(CellStatus::Failed)) => Change::StillFailing,
        (CellStatus::Failed, _) => Change::Broken,
        (CellStatus::Passed, Some(CellStatus::Failed)) => Change::Fixed,
        (CellStatus::Passed, _) => Change::StillPassing,
        (CellStatus::Error, _) => return Some(Change::Errored),
        (CellStatus::Disagree, _) => return Some(Change::Disagree),
        (CellStatus::Flaky, _) => return Some(Change::Flaky),
        (CellStatus::Skipped, _) => return Some(Change::Skipped),
        (CellStatus::Differs, _) => return Some(Change::Differs),
        (CellStatus::Pending | CellStatus::Claimed, _) => return None,
    };
    *last = Some(status);
    Some(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::testing::{commits, matrix, row};

    use CellStatus::{Claimed as B, Error as E, Failed as F, Passed as P, Pending as U};
    use Change::{Broken, Errored, Fixed, StillFailing, StillPassing};

    /// The changes of rows given oldest first (two platforms).
    fn changes(rows: &[[CellStatus; 2]]) -> Vec<Vec<Option<Change>>> {
        let ids = commits(rows.len() as u8);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let newest_first = rows
            .iter()
            .zip(&ids)
            .rev()
            .map(|(statuses, id)| row(id, statuses))
            .collect();
        let m = matrix(&platforms, newest_first);
        let found = transitions(&m);
        // Oldest first, one per row, each the row it names.
        for (n, changes) in found.iter().enumerate() {
            assert_eq!(changes.row.commit, &ids[n]);
        }
        found.into_iter().map(|r| r.changes).collect()
    }

    #[test]
    fn a_platform_breaks_stays_broken_and_is_fixed() {
        assert_eq!(
            changes(&[[P, P], [F, P], [F, P], [P, P]]),
            [
                [Some(StillPassing), Some(StillPassing)],
                [Some(Broken), Some(StillPassing)],
                [Some(StillFailing), Some(StillPassing)],
                [Some(Fixed), Some(StillPassing)],
            ]
        );
    }

    #[test]
    fn undecided_and_errored_cells_are_skipped_by_the_history() {
        // The failure after an error and a pending cell still compares
        // with the pass before them.
        assert_eq!(
            changes(&[[P, F], [E, U], [B, E], [F, P]]),
            [
                [Some(StillPassing), Some(Broken)],
                [Some(Errored), None],
                [None, Some(Errored)],
                [Some(Broken), Some(Fixed)],
            ]
        );
    }

    /// Disagreement and flakiness are told, but a platform's history
    /// reads past them: a failure after a flaky cell is compared with the
    /// pass before it. A disagreeing cell still wants a build, so its row
    /// is not decided.
    #[test]
    fn disagree_and_flaky_cells_are_told_and_the_history_reads_past_them() {
        use CellStatus::{Disagree as D, Flaky as K, Skipped as S};
        assert_eq!(
            changes(&[[P, P], [D, K], [K, S], [F, F]]),
            [
                [Some(StillPassing), Some(StillPassing)],
                [Some(Change::Disagree), Some(Change::Flaky)],
                [Some(Change::Flaky), Some(Change::Skipped)],
                [Some(Broken), Some(Broken)],
            ]
        );
        let ids = commits(2);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let m = matrix(
            &platforms,
            vec![row(&ids[1], &[K, S]), row(&ids[0], &[D, P])],
        );
        let found = transitions(&m);
        assert!(!found[0].decided());
        assert!(found[1].decided());
    }

    #[test]
    fn a_first_failure_is_broken_and_a_row_is_decided_when_every_cell_is() {
        let ids = commits(2);
        let platforms = vec!["linux".to_string(), "mac".to_string()];
        let m = matrix(
            &platforms,
            vec![row(&ids[1], &[F, B]), row(&ids[0], &[F, P])],
        );
        let found = transitions(&m);
        assert_eq!(found[0].changes, [Some(Broken), Some(StillPassing)]);
        assert!(found[0].decided());
        assert!(!found[1].decided());
        assert_eq!(found[1].columns(StillFailing).collect::<Vec<_>>(), [0]);
    }
}
