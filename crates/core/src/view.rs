//! Views: pure functions of the entry set and the time.
//!
//! [`ProjectLog::load`] gathers from a store the entries one project's
//! views read; [`matrix`] turns them into the platform matrix. Neither looks
//! at arrival order, so the same entries give the same page on every node.

mod acceptance;
mod blame;
mod cell;
mod flaky;
mod leases;
mod matrix;
mod policy;
mod project_log;
mod pulls;
mod quorum;
mod reproducible;
mod select;
mod summary;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod thresholds;
mod transitions;
mod trends;
mod work;

pub use acceptance::{Acceptance, Verdict};
pub use blame::{Blame, blame};
pub use cell::{Cell, CellResult, CellStatus};
pub use flaky::{Evidence, FlakyTest, flaky_of, flaky_tests, only_flaky_failures, proven_flaky};
pub use leases::{
    LEASES_MAX, LEASES_PER_BUILDER_MAX, LiveLeases, RENEWAL_LEASE_MS_MAX, RENEWAL_SKEW_MS, Renewed,
    renews_a_claim,
};
pub use matrix::{Matrix, MatrixOptions, Row, matrix};
pub use policy::{Builders, Policy};
pub use project_log::{CellFact, Fact, FailingTests, LEASE_MS_MAX, Labels, Measures, ProjectLog};
pub use pulls::{Pull, PullHead, PullSummary, Pulls, overall, overall_status, pull, pulls};
pub use quorum::{Decision, Tally};
pub use reproducible::{
    Agreement, ArtifactBuild, ArtifactCheck, artifact_checks, overall_agreement,
};
pub use select::{Named, NotSelected, select_project};
pub use summary::{NewestCommit, Summary};
pub use thresholds::{Described, ThresholdError, crosses, crossings, parse_threshold};
pub use transitions::{Change, RowChanges, transitions};
pub use trends::{
    DURATION, Point, STEP_DURATION, SeriesOptions, metric_names, series, series_table, table_of,
};
pub use work::{
    CellEvent, Declined, Uncounted, WantedCell, Watch, Work, projects, same_repository, work,
};
