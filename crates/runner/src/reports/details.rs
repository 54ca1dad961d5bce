//! The details blob: every failing test with its output, as JSON, for
//! pages that list failing tests first (docs/recipe.md, "Test details").
//!
//! ```json
//! {"tests": [{"name": "demo::tests::breaks", "suite": "demo",
//!             "status": "failed", "message": "...", "output": "..."}],
//!  "omitted": 0}
//! ```

use super::tally::{Failing, Tally};
use serde::Serialize;

/// Largest details blob, bytes: tests past it are counted in `omitted`.
pub(crate) const DETAILS_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Serialize)]
struct Details<'a> {
    tests: Vec<Test<'a>>,
    /// Failing tests counted but not listed: past
    /// [`super::tally::DETAILS_TESTS_MAX`] or [`DETAILS_BYTES_MAX`].
    omitted: u64,
}

#[derive(Serialize)]
struct Test<'a> {
    name: &'a str,
    suite: &'a str,
    status: &'static str,
    message: &'a str,
    output: &'a str,
}

impl<'a> Test<'a> {
    fn of(failing: &'a Failing) -> Test<'a> {
        Test {
            name: &failing.name,
            suite: &failing.suite,
            status: failing.verdict.word(),
            message: &failing.message,
            output: &failing.output,
        }
    }
}

/// The JSON of `tally`'s failing tests; `None` when none failed.
pub(crate) fn json(tally: &Tally) -> Option<Vec<u8>> {
    let failing = tally.failed.saturating_add(tally.errored);
    if failing == 0 && tally.failing.is_empty() {
        return None;
    }
    let mut tests = Vec::new();
    // A generous estimate of each test's JSON (escapes can double text).
    let mut bytes = 64;
    for test in &tally.failing {
        let size =
            2 * (test.name.len() + test.suite.len() + test.message.len() + test.output.len()) + 96;
        if bytes + size > DETAILS_BYTES_MAX {
            break;
        }
        bytes += size;
        tests.push(Test::of(test));
    }
    let listed = u64::try_from(tests.len()).unwrap_or(u64::MAX);
    let details = Details {
        omitted: failing.saturating_sub(listed),
        tests,
    };
    serde_json::to_vec(&details).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::reports::tally::{DETAILS_OUTPUT_BYTES_MAX, Verdict};

    #[test]
    fn every_kept_failure_is_listed_and_the_rest_counted() {
        let mut tally = Tally {
            failed: 2,
            errored: 3,
            ..Tally::default()
        };
        tally.push(Failing::new(
            "a::b",
            Verdict::Failed,
            "boom",
            "line\n\"quoted\"",
        ));
        tally.push(Failing::new("c", Verdict::Errored, "", ""));
        let value: serde_json::Value = serde_json::from_slice(&json(&tally).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "tests": [
                    {"name": "a::b", "suite": "", "status": "failed", "message": "boom",
                     "output": "line\n\"quoted\""},
                    {"name": "c", "suite": "", "status": "errored", "message": "", "output": ""}
                ],
                "omitted": 3
            })
        );
        assert_eq!(
            json(&Tally {
                passed: 9,
                ..Tally::default()
            }),
            None
        );
    }

    #[test]
    fn the_blob_is_bounded() {
        let output = "\"".repeat(DETAILS_OUTPUT_BYTES_MAX);
        let mut tally = Tally {
            failed: 1000,
            ..Tally::default()
        };
        for i in 0..1000 {
            tally.push(Failing::new(&format!("t{i}"), Verdict::Failed, "", &output));
        }
        let bytes = json(&tally).unwrap();
        assert!(bytes.len() <= DETAILS_BYTES_MAX, "{}", bytes.len());
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let listed = value["tests"].as_array().unwrap().len();
        assert!((100..1000).contains(&listed), "{listed}");
        assert_eq!(value["omitted"], 1000 - listed);
    }
}
