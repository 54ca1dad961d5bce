//! Which commit broke the build, and who to ask about it.

use super::{CellStatus, Matrix, Row};
use buildmesh_protocol::CommitId;

/// Where a broken matrix went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Blame<'m> {
    /// The oldest commit of the newest run of failing commits.
    pub first_failing: &'m CommitId,
    /// The commits from `first_failing` (first) to the newest (last): the
    /// changes that may have broken the build or not fixed it yet.
    pub blamelist: Vec<&'m Row<'m>>,
}

/// What one row says about the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Some cell failed.
    Failing,
    /// No cell failed and at least one passed.
    Passing,
    /// Nothing decided yet: only pending, building or error cells.
    Unsettled,
}

fn verdict(row: &Row<'_>) -> Verdict {
    let any = |status| row.cells.iter().any(|c| c.status == status);
    if any(CellStatus::Failed) {
        Verdict::Failing
    } else if any(CellStatus::Passed) {
        Verdict::Passing
    } else {
        Verdict::Unsettled
    }
}

/// Whether `matrix` is broken and since which commit, reading its rows as
/// one history (newest first, as the matrix orders them; filter the
/// matrix to one branch for a branch's answer).
///
/// Newest commits with nothing decided yet (only pending, building or
/// error cells) are skipped: they have not fixed anything so far. If the
/// newest decided commit has no failed cell, nothing is broken (`None`).
/// Otherwise the run of failing commits goes back until a commit passed
/// (at least one passed cell, none failed); its oldest failing commit is
/// the first failing one, and the blamelist is every commit from it to
/// the newest, undecided ones included.
pub fn blame<'m>(matrix: &'m Matrix<'_>) -> Option<Blame<'m>> {
    let rows = &matrix.rows;
    let newest_decided = rows.iter().position(|r| verdict(r) != Verdict::Unsettled)?;
    if verdict(&rows[newest_decided]) != Verdict::Failing {
        return None;
    }
    let run_end = rows[newest_decided..]
        .iter()
        .position(|r| verdict(r) == Verdict::Passing)
        .map_or(rows.len(), |offset| newest_decided + offset);
    let first_failing = rows[..run_end]
        .iter()
        .rposition(|r| verdict(r) == Verdict::Failing)?;
    Some(Blame {
        first_failing: rows[first_failing].commit,
        blamelist: rows[..=first_failing].iter().rev().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::testing::{commits, matrix, row};

    use CellStatus::{Claimed as B, Error as E, Failed as F, Passed as P, Pending as U};

    /// The blame of rows given newest first, as (first failing, blamelist)
    /// in commit numbers.
    fn blame_of(rows: &[&[CellStatus]]) -> Option<(u8, Vec<u8>)> {
        let ids = commits(u8::try_from(rows.len()).unwrap_or(u8::MAX));
        let platforms = vec!["linux".to_owned(), "mac".to_owned()];
        let rows = ids.iter().zip(rows).map(|(c, s)| row(c, s)).collect();
        let m = matrix(&platforms, rows);
        let number = |c: &CommitId| c.as_bytes()[0];
        blame(&m).map(|b| {
            (
                number(b.first_failing),
                b.blamelist.iter().map(|r| number(r.commit)).collect(),
            )
        })
    }

    #[test]
    fn no_rows_or_no_failures_is_not_broken() {
        assert_eq!(blame_of(&[]), None);
        assert_eq!(blame_of(&[&[P, P], &[P, U], &[E, B]]), None);
        assert_eq!(blame_of(&[&[U, U], &[B, U]]), None);
    }

    #[test]
    fn a_passing_newest_commit_fixed_it() {
        assert_eq!(blame_of(&[&[P, P], &[F, P], &[F, F], &[P, P]]), None);
        assert_eq!(blame_of(&[&[U, P], &[F, P]]), None);
    }

    #[test]
    fn the_oldest_of_the_newest_failing_run_is_first_failing() {
        // Rows newest first: 0 and 1 fail, 2 passed, 3 failed long ago.
        assert_eq!(
            blame_of(&[&[F, P], &[P, F], &[P, P], &[F, F]]),
            Some((1, vec![1, 0]))
        );
        assert_eq!(blame_of(&[&[F, F]]), Some((0, vec![0])));
    }

    #[test]
    fn a_failing_run_down_to_the_oldest_row() {
        assert_eq!(
            blame_of(&[&[F, P], &[F, P], &[F, P]]),
            Some((2, vec![2, 1, 0]))
        );
    }

    #[test]
    fn undecided_commits_neither_fix_nor_break() {
        // 0 and 1 not built yet, 2 failed, 3 building, 4 failed, 5 passed.
        assert_eq!(
            blame_of(&[&[U, U], &[B, U], &[F, P], &[B, E], &[F, U], &[P, P]]),
            Some((4, vec![4, 3, 2, 1, 0]))
        );
        // Undecided commits just above the last pass are not blamed.
        assert_eq!(blame_of(&[&[F, P], &[U, U], &[P, P]]), Some((0, vec![0])));
    }
}
