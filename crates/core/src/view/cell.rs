//! One cell of the matrix: a commit on a platform.

use buildmesh_protocol::{Body, Entry, EntryId, Outcome, PublicKey, Timestamp};
use serde::Serialize;
use std::collections::BTreeSet;

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

/// A cell and the entries behind its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// The platform label.
    pub platform: String,
    /// The verdict.
    pub status: CellStatus,
    /// Results that count, in id order.
    pub results: Vec<EntryId>,
    /// Their builders, in key order, each once.
    pub builders: Vec<PublicKey>,
    /// The live claim with the latest lease, if any: builder and expiry.
    pub claimed_by: Option<(PublicKey, Timestamp)>,
}

impl Cell {
    /// Judges a cell from the claims and results that count (trusted
    /// builders in good standing), at time `now`.
    ///
    /// Precedence: a failure by anyone is `Failed`; otherwise
    /// `builds_needed` distinct passing builders make `Passed`; otherwise
    /// any error is `Error`; otherwise a lease that has not expired is
    /// `Claimed`; otherwise `Pending` (a lapsed lease reopens the cell).
    pub fn judge(platform: &str, entries: &[&Entry], builds_needed: u8, now: Timestamp) -> Cell {
        let mut outcomes = BTreeSet::new();
        let mut passers = BTreeSet::new();
        let mut results = Vec::new();
        let mut builders = BTreeSet::new();
        let mut claimed_by: Option<(PublicKey, Timestamp)> = None;
        for entry in entries {
            match entry.body() {
                Body::Result(r) => {
                    outcomes.insert(r.outcome);
                    if r.outcome == Outcome::Passed {
                        passers.insert(entry.author());
                    }
                    results.push(entry.id());
                    builders.insert(entry.author());
                }
                Body::Claim(c) if c.lease_expires > now => {
                    let candidate = (entry.author(), c.lease_expires);
                    if claimed_by.is_none_or(|held| (held.1, held.0) < (candidate.1, candidate.0)) {
                        claimed_by = Some(candidate);
                    }
                }
                _ => {}
            }
        }
        results.sort();
        let status = if outcomes.contains(&Outcome::Failed) {
            CellStatus::Failed
        } else if passers.len() >= usize::from(builds_needed.max(1)) {
            CellStatus::Passed
        } else if outcomes.contains(&Outcome::Error) {
            CellStatus::Error
        } else if claimed_by.is_some() {
            CellStatus::Claimed
        } else {
            CellStatus::Pending
        };
        Cell {
            platform: platform.to_owned(),
            status,
            results,
            builders: builders.into_iter().collect(),
            claimed_by,
        }
    }
}
