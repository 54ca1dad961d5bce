//! One cell of the matrix: a commit on a platform.

use super::project_log::ProjectLog;
use super::project_log::{CellFact, Fact};
use super::quorum::{Decision, Tally};
use super::reproducible::{Agreement, artifact_checks, overall_agreement};
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
    /// Trusted builders disagree (one passed, one failed): a builder that
    /// has not built it decides ([`super::quorum`]).
    Disagree,
    /// Trusted builders kept disagreeing, two or more on each side: the
    /// verdict depends on who builds it.
    Flaky,
    /// The recipe at this commit does not build this platform.
    Skipped,
    /// Builders passed it but their artifacts differ, and the project
    /// requires them to agree ([`super::reproducible`]).
    Differs,
}

impl CellStatus {
    /// Every status.
    pub const ALL: [CellStatus; 9] = [
        CellStatus::Pending,
        CellStatus::Claimed,
        CellStatus::Passed,
        CellStatus::Failed,
        CellStatus::Error,
        CellStatus::Disagree,
        CellStatus::Flaky,
        CellStatus::Skipped,
        CellStatus::Differs,
    ];

    /// Its name in the API, pages and messages.
    pub fn name(self) -> &'static str {
        match self {
            CellStatus::Pending => "pending",
            CellStatus::Claimed => "building",
            CellStatus::Passed => "passed",
            CellStatus::Failed => "failed",
            CellStatus::Error => "error",
            CellStatus::Disagree => "disagree",
            CellStatus::Flaky => "flaky",
            CellStatus::Skipped => "skipped",
            CellStatus::Differs => "differs",
        }
    }
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
    /// Precedence: what the builders' votes decide ([`Tally::decide`]:
    /// `Failed`, `Passed`, `Disagree` or `Flaky`); otherwise any error is
    /// `Error`; otherwise a skip is `Skipped`; otherwise a lease that has
    /// not expired is `Claimed`; otherwise `Pending` (a lapsed lease
    /// reopens the cell).
    pub fn judge<'a>(
        facts: impl IntoIterator<Item = &'a CellFact>,
        builds_needed: u8,
        now: Timestamp,
    ) -> Cell {
        let facts = facts.into_iter();
        let mut results: Vec<CellResult> = Vec::with_capacity(facts.size_hint().0);
        // Live claims.
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
            .filter(|(builder, at, _)| {
                !results.iter().any(|r| r.builder == *builder && r.at >= *at)
            })
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

    /// Holds back a `Passed` cell whose artifacts do not agree, for a
    /// project that requires them to: one that differs makes it
    /// `Differs`; one that only one builder reported leaves it `Claimed`
    /// or `Pending` until a second builder does.
    pub fn require_agreement(&mut self, log: &ProjectLog) {
        if self.status != CellStatus::Passed {
            return;
        }
        match overall_agreement(&artifact_checks(log, &self.results)) {
            Some(Agreement::Differs) => self.status = CellStatus::Differs,
            Some(Agreement::Unchecked) if self.claimed_by.is_some() => {
                self.status = CellStatus::Claimed;
            }
            Some(Agreement::Unchecked) => self.status = CellStatus::Pending,
            Some(Agreement::Reproducible) | None => {}
        }
    }

    fn status(results: &[CellResult], claimed: bool, builds_needed: u8) -> CellStatus {
        let any = |outcome| results.iter().any(|r| r.outcome == outcome);
        match tally(results).decide(builds_needed) {
            Decision::Failed => CellStatus::Failed,
            Decision::Passed => CellStatus::Passed,
            Decision::Disagree => CellStatus::Disagree,
            Decision::Flaky => CellStatus::Flaky,
            Decision::Undecided if any(Outcome::Error) => CellStatus::Error,
            Decision::Undecided if any(Outcome::Skipped) => CellStatus::Skipped,
            Decision::Undecided if claimed => CellStatus::Claimed,
            Decision::Undecided => CellStatus::Pending,
        }
    }
}

/// The votes of `results`.
pub(super) fn tally(results: &[CellResult]) -> Tally {
    let mut tally = Tally::default();
    for r in results {
        tally.add(r.builder, r.at, r.id, r.outcome);
    }
    tally
}
