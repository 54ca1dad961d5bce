//! One commit of a project, as `GET /api/v1/projects/{p}/commits/{c}`
//! and the commit page show it: the same derivation for both, so the API
//! and the page never tell a commit two ways.

use buildmesh_core::view::matrix;
use buildmesh_core::view::{
    ArtifactCheck, Matrix, MatrixOptions, ProjectLog, Row, artifact_checks,
};
use buildmesh_protocol::{CommitId, Timestamp};

/// A commit id from a path: 40 or 64 hex digits (SHA-1 or SHA-256 Git).
pub(crate) fn parse(hex_id: &str) -> Option<CommitId> {
    hex::decode(hex_id)
        .ok()
        .and_then(|bytes| CommitId::from_bytes(&bytes))
}

/// Hands `show` the project's matrix at `at` (every row, however old),
/// the commit's row, and how each of its cells' builders' artifacts
/// agree, in the row's platform order. `None` when the project never
/// announced the commit.
pub(crate) fn with_commit<T>(
    log: &ProjectLog,
    at: Timestamp,
    commit: &CommitId,
    show: impl FnOnce(&Matrix<'_>, &Row<'_>, &[Vec<ArtifactCheck>]) -> T,
) -> Option<T> {
    let options = MatrixOptions {
        branch: None,
        rows_max: None,
    };
    let m = matrix(log, at, &options)?;
    let row = m.rows.iter().find(|r| *r.commit == *commit)?;
    let artifacts: Vec<_> = row
        .cells
        .iter()
        .map(|cell| artifact_checks(log, &cell.results))
        .collect();
    Some(show(&m, row, &artifacts))
}
