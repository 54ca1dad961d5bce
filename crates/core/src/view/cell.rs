//! One cell of the matrix: a commit on a platform.

use super::project_log::{CellFact, Fact};
use buildmesh_protocol::{EntryId, Outcome, PublicKey, Timestamp};
use serde::Serialize;

/// What a person reading the matrix needs to know about a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CellStatus {
    /// Nobody is building it.
    Pending,
    /// A builder holds a live lease on it.
    Claimed,
    /// Enough independent builders passed it.
    Passed,
    /// A trusted builder saw it fail.
    Failed,
    /// A build could not judge it (no recipe, checkout failed, ...).
    Error,
}

/// A cell and the entries behind its status. Cells sit in their row in
/// the matrix's column order, so the platform is the column's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// The verdict.
    pub status: CellStatus,
    /// Results that count, in id order, each with its builder and verdict.
    pub results: Vec<CellResult>,
    /// The live claim with the latest lease, if any: builder and expiry.
    /// A claim ends early when its builder writes a result after it.
    pub claimed_by: Option<(PublicKey, Timestamp)>,
}

/// One result behind a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CellResult {
    /// The result entry.
    pub id: EntryId,
    /// Who built it.
    pub builder: PublicKey,
    /// What it found.
    pub outcome: Outcome,
    /// When its builder wrote it, by its clock.
    pub at: Timestamp,
}

impl Cell {
    /// The distinct builders behind the results, in key order.
    pub fn builders(&self) -> Vec<PublicKey> {
        let mut builders: Vec<PublicKey> = self.results.iter().map(|r| r.builder).collect();
        builders.sort_unstable();
        builders.dedup();
        builders
    }

    /// Judges a cell from the claims and results that count (trusted
    /// builders in good standing), at time `now`.
    ///
    /// Precedence: a failure by anyone is `Failed`; otherwise
    /// `builds_needed` distinct passing builders make `Passed`; otherwise
    /// any error is `Error`; otherwise a lease that has not expired is
    /// `Claimed`; otherwise `Pending` (a lapsed lease reopens the cell).
    pub fn judge<'a>(
        facts: impl IntoIterator<Item = &'a CellFact>,
        builds_needed: u8,
        now: Timestamp,
    ) -> Cell {
        let facts = facts.into_iter();
        let mut results: Vec<CellResult> = Vec::with_capacity(facts.size_hint().0);
        // Each builder's latest result and its live claims.
        let mut finished: Vec<(PublicKey, Timestamp)> = Vec::new();
        let mut claims: Vec<(PublicKey, Timestamp, Timestamp)> = Vec::new();
        for fact in facts {
            match fact.what {
                Fact::Result { outcome } => {
                    results.push(CellResult {
                        id: fact.id,
                        builder: fact.author,
                        outcome,
                        at: fact.at,
                    });
                    finished.push((fact.author, fact.at));
                }
                Fact::Claim { lease_expires, .. } if lease_expires > now => {
                    claims.push((fact.author, fact.at, lease_expires));
                }
                Fact::Claim { .. } => {}
            }
        }
        // A builder's result ends its claims written before it: the build
        // is over, whatever the lease said.
        let claimed_by = claims
            .into_iter()
            .filter(|(builder, at, _)| !finished.iter().any(|(b, done)| b == builder && done >= at))
            .map(|(builder, _, lease)| (builder, lease))
            .max_by_key(|(builder, lease)| (*lease, *builder));
        results.sort_unstable();
        let status = Self::status(&results, claimed_by.is_some(), builds_needed);
        Cell {
            status,
            results,
            claimed_by,
        }
    }

    fn status(results: &[CellResult], claimed: bool, builds_needed: u8) -> CellStatus {
        let any = |outcome| results.iter().any(|r| r.outcome == outcome);
        if any(Outcome::Failed) {
            CellStatus::Failed
        } else if distinct_passers(results) >= usize::from(builds_needed.max(1)) {
            CellStatus::Passed
        } else if any(Outcome::Error) {
            CellStatus::Error
        } else if claimed {
            CellStatus::Claimed
        } else {
            CellStatus::Pending
        }
    }
}

/// Distinct builders among passing results (usually one or two, so a
/// quadratic scan beats allocating a set).
fn distinct_passers(results: &[CellResult]) -> usize {
    let passing = || results.iter().filter(|r| r.outcome == Outcome::Passed);
    passing()
        .enumerate()
        .filter(|(i, r)| {
            !passing()
                .take(*i)
                .any(|earlier| earlier.builder == r.builder)
        })
        .count()
}
