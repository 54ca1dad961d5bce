//! A project as lists show it: what it is, and how its newest commit
//! stands.

use super::{CellStatus, Matrix, overall_status};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, Timestamp};

/// A project's summary. Owned, so it outlives the log it was read from
/// (the HTTP views keep one per project between derivations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The project.
    pub project: ProjectId,
    /// Its name.
    pub name: String,
    /// Its maintainer.
    pub owner: PublicKey,
    /// Where its code is.
    pub repository: String,
    /// The platforms it wants, in column order.
    pub platforms: Vec<String>,
    /// Its newest announced commit, if any.
    pub newest: Option<NewestCommit>,
}

/// The newest commit of a project and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewestCommit {
    /// The commit.
    pub commit: CommitId,
    /// Its title.
    pub title: String,
    /// The branches it was announced on, sorted: which line of work the
    /// newest commit is on, for a list that names it.
    pub branches: Vec<String>,
    /// When it was first announced: how fresh the list's news is.
    pub announced_at: Timestamp,
    /// Its cells' statuses, in the summary's platform order.
    pub statuses: Vec<CellStatus>,
}

impl NewestCommit {
    /// Its cells as one state, by the rule a pull request's head is
    /// judged by ([`super::overall`]): failed, error, passed (all of
    /// them), building, pending.
    pub fn overall(&self) -> CellStatus {
        overall_status(self.statuses.iter().copied())
    }
}

impl Summary {
    /// The summary of `matrix`, whose first row is its newest commit.
    pub fn of(matrix: &Matrix<'_>) -> Summary {
        Summary {
            project: matrix.project,
            name: matrix.name.to_owned(),
            owner: matrix.owner,
            repository: matrix.repository.to_owned(),
            platforms: matrix.platforms.to_vec(),
            newest: matrix.rows.first().map(|row| NewestCommit {
                commit: row.commit.clone(),
                title: row.title.to_owned(),
                branches: row.branches.iter().map(|b| (*b).to_owned()).collect(),
                announced_at: row.announced_at,
                statuses: row.cells.iter().map(|cell| cell.status).collect(),
            }),
        }
    }

    /// How many of the newest commit's cells have `status`.
    pub fn count(&self, status: CellStatus) -> usize {
        self.newest
            .iter()
            .flat_map(|newest| &newest.statuses)
            .filter(|s| **s == status)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::testing::{commits, matrix, row};
    use CellStatus::{Claimed, Failed, Passed};

    #[test]
    fn the_newest_row_is_summed_up() {
        let ids = commits(2);
        let platforms = vec!["linux".to_owned(), "mac".to_owned(), "bsd".to_owned()];
        let rows = vec![
            row(&ids[1], &[Passed, Failed, Claimed]),
            row(&ids[0], &[Failed, Failed, Failed]),
        ];
        let summary = Summary::of(&matrix(&platforms, rows));
        assert_eq!(summary.platforms, platforms);
        let newest = summary
            .newest
            .as_ref()
            .map(|n| (&n.commit, n.title.as_str()));
        assert_eq!(newest, Some((&ids[1], "a change")));
        assert_eq!(
            [Passed, Failed, Claimed].map(|s| summary.count(s)),
            [1, 1, 1]
        );
        let newest = summary.newest.as_ref();
        assert_eq!(
            newest.map(|n| (n.branches.clone(), n.announced_at, n.overall())),
            Some((
                vec!["main".to_owned()],
                buildmesh_protocol::Timestamp(1_764_000_000_000),
                Failed
            ))
        );
        let empty = Summary::of(&matrix(&platforms, Vec::new()));
        assert_eq!((empty.count(Passed), empty.newest), (0, None));
    }
}
