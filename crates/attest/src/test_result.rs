//! The in-toto test-result predicate (`spec/predicates/test-result.md`,
//! v0.1) of one build result, and buildmesh's extension field.

use crate::statement::ResourceDescriptor;
use buildmesh_protocol::{Outcome, TestSummary};
use serde::Serialize;

/// The test-result predicate's type URI.
pub const TEST_RESULT_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// The predicate: the verdict, the configuration the build ran with (its
/// recipe), the build's page, the failing tests; and, under `buildmesh`,
/// what the predicate has no field for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// `PASSED`, `WARNED` or `FAILED` ([`verdict`]).
    pub result: &'static str,
    /// The recipe, by name and SHA-256; empty when the build stopped
    /// before reading one (no recipe at the commit, a failed fetch).
    pub configuration: Vec<ResourceDescriptor>,
    /// The page of the commit on the builder's node, when the node knows
    /// its public URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The tests that failed or errored, by name (at most 32: the result
    /// entry's own list), when the build reported tests and named those
    /// that failed (an empty list: none failed). Tests that passed are
    /// counted, not named, so `passedTests` is left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_tests: Option<Vec<String>>,
    /// buildmesh's extension field (the framework's parsing rules let
    /// producers add fields; consumers ignore those they do not know).
    pub buildmesh: Extension,
}

/// What a buildmesh result says beyond the predicate's fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extension {
    /// The project's id, hex.
    pub project: String,
    /// The platform label built on.
    pub platform: String,
    /// The outcome as the result entry names it (`Passed`, `Failed`,
    /// `Error`: `Body`'s JSON in `GET /api/v1/entries/{id}`).
    pub outcome: Outcome,
    /// Why, for an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The test counts, when the build reported tests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<Counts>,
}

/// A test summary's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests skipped.
    pub skipped: u64,
    /// Tests that could not run to a verdict.
    pub errored: u64,
    /// Where the numbers came from (`junit`, `cargo test`, ...).
    pub source: String,
}

impl Counts {
    /// A summary's counts.
    pub fn of(tests: &TestSummary) -> Counts {
        Counts {
            passed: tests.passed,
            failed: tests.failed,
            skipped: tests.skipped,
            errored: tests.errored,
            source: tests.source.clone(),
        }
    }
}

/// The predicate's `result` for a build's outcome: `WARNED` for a pass
/// with warnings. A build with no verdict of its own (`Error`, `Skipped`,
/// `Retry`, `Cancelled`; the `buildmesh` field names which) is `FAILED`:
/// the predicate has no word for it, and a policy that reads `PASSED` must
/// never be given one that did not pass.
pub fn verdict(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "PASSED",
        Outcome::Warnings => "WARNED",
        Outcome::Failed
        | Outcome::Error
        | Outcome::Skipped
        | Outcome::Retry
        | Outcome::Cancelled => "FAILED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pass_is_passed() {
        assert_eq!(verdict(Outcome::Passed), "PASSED");
        assert_eq!(verdict(Outcome::Failed), "FAILED");
        assert_eq!(verdict(Outcome::Warnings), "WARNED");
        assert_eq!(verdict(Outcome::Skipped), "FAILED");
        assert_eq!(verdict(Outcome::Retry), "FAILED");
        assert_eq!(verdict(Outcome::Error), "FAILED");
    }
}
