//! Hand-made matrices for tests of what reads them (the blame here, the
//! pages in the HTTP crate): rows of given statuses, without a log.
//! Compiled for this crate's tests and with the `testing` feature.

use super::{Cell, CellStatus, Matrix, Row};
use buildmesh_protocol::{CommitId, ProjectId, PublicKey, Timestamp};

/// Commit ids 0, 1, 2, ... (ids live as long as the test).
pub fn commits(count: u8) -> Vec<CommitId> {
    (0..count)
        .filter_map(|n| CommitId::from_bytes(&[n; 20]))
        .collect()
}

/// A cell of `status` with no results or claim behind it.
pub fn cell(status: CellStatus) -> Cell {
    Cell {
        status,
        results: Vec::new(),
        claimed_by: None,
    }
}

/// A row of `commit` on `main` whose cells have `statuses`, in column
/// order.
pub fn row<'a>(commit: &'a CommitId, statuses: &[CellStatus]) -> Row<'a> {
    Row {
        commit,
        branches: vec!["main"],
        title: "a change",
        author: "Ada <ada@example.org>",
        announced_at: Timestamp(1_764_000_000_000),
        cells: statuses.iter().copied().map(cell).collect(),
    }
}

/// The matrix of a made-up project with these columns and rows.
pub fn matrix<'a>(platforms: &'a [String], rows: Vec<Row<'a>>) -> Matrix<'a> {
    Matrix {
        project: ProjectId([5; 32]),
        name: "hello",
        owner: PublicKey([7; 32]),
        repository: "https://example.org/hello.git",
        platforms,
        branches: &[],
        rows,
    }
}
