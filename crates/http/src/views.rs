//! What the node's views thread publishes for the HTTP server to read:
//! each project's log as views read it, and its default matrix already
//! serialized, so the busiest request costs a map lookup and a copy.

use buildmesh_core::log::ForkProof;
use buildmesh_core::view::{ProjectLog, Summary};
use buildmesh_protocol::{ProjectId, PublicKey, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rows of a matrix when the request does not say (`?rows=N`).
pub const MATRIX_ROWS_DEFAULT: usize = 50;

/// Most rows one matrix request may ask for.
pub const MATRIX_ROWS_MAX: usize = 1000;

/// Every project's views, as of `at`.
#[derive(Debug, Clone, Default)]
pub struct Views {
    /// When these were derived (leases are judged at this time).
    pub at: Timestamp,
    /// Each declared project.
    pub projects: BTreeMap<ProjectId, ProjectView>,
    /// Authors proven to have forked their chain, with the proof.
    pub forks: Vec<(PublicKey, ForkProof)>,
}

/// One project's views.
#[derive(Debug, Clone)]
pub struct ProjectView {
    /// Its entries as views read them (the newest [`MATRIX_ROWS_MAX`]
    /// commits), for requests with options.
    pub log: Arc<ProjectLog>,
    /// `GET /api/v1/projects/{id}/matrix` with no options, as JSON bytes.
    pub matrix_json: Arc<[u8]>,
    /// The summary `GET /api/v1/projects` lists.
    pub summary: Summary,
}
