//! What a build's tests said, however it was read: counts and the failing
//! tests, with what each printed.

use crate::fit::truncate;
use buildmesh_protocol::{BlobHash, FAILING_TESTS_MAX, SHORT_TEXT_BYTES_MAX, TestSummary};

/// Most failing tests kept with their output (in the details blob); past
/// this they are only counted.
pub(crate) const DETAILS_TESTS_MAX: usize = 1000;
/// Most of one failing test's output kept, bytes.
pub(crate) const DETAILS_OUTPUT_BYTES_MAX: usize = 8 * 1024;
/// Longest failure message or test name kept in the details, bytes.
pub(crate) const DETAILS_TEXT_BYTES_MAX: usize = 1024;

/// How a test that did not pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// An assertion did not hold.
    Failed,
    /// It could not run to a verdict (JUnit's `error`, pytest's `ERROR`).
    Errored,
}

impl Verdict {
    /// As the details JSON spells it.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Verdict::Failed => "failed",
            Verdict::Errored => "errored",
        }
    }
}

/// One test that did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failing {
    /// Its full name (`classname::name` in JUnit terms).
    pub name: String,
    /// Its suite (JUnit's `testsuite`, a test binary, a Go package), or
    /// empty.
    pub suite: String,
    /// How it ended.
    pub verdict: Verdict,
    /// The one-line reason, if the runner gave one.
    pub message: String,
    /// What it printed, at most [`DETAILS_OUTPUT_BYTES_MAX`] bytes.
    pub output: String,
}

impl Failing {
    /// A failing test with `name`; the other texts cut to their limits.
    pub(crate) fn new(name: &str, verdict: Verdict, message: &str, output: &str) -> Failing {
        Failing {
            name: truncate(name, DETAILS_TEXT_BYTES_MAX),
            suite: String::new(),
            verdict,
            message: truncate(message.trim(), DETAILS_TEXT_BYTES_MAX),
            output: truncate(output, DETAILS_OUTPUT_BYTES_MAX),
        }
    }
}

/// Counts and failing tests, added up over files or step logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub errored: u64,
    /// The first [`DETAILS_TESTS_MAX`] failing tests, in the order read.
    pub failing: Vec<Failing>,
}

impl Tally {
    /// Tests counted, whatever their verdict.
    pub(crate) fn total(&self) -> u64 {
        [self.passed, self.failed, self.skipped, self.errored]
            .into_iter()
            .fold(0, u64::saturating_add)
    }

    /// Adds `other`'s counts and failing tests to this one's.
    pub(crate) fn add(&mut self, other: Tally) {
        self.passed = self.passed.saturating_add(other.passed);
        self.failed = self.failed.saturating_add(other.failed);
        self.skipped = self.skipped.saturating_add(other.skipped);
        self.errored = self.errored.saturating_add(other.errored);
        for failing in other.failing {
            self.push(failing);
        }
    }

    /// Keeps `failing` if there is room and no test of that name is kept
    /// yet (a runner may name a failure twice: as it happens and in its
    /// summary).
    pub(crate) fn push(&mut self, failing: Failing) {
        if self.failing.len() < DETAILS_TESTS_MAX
            && !self.failing.iter().any(|f| f.name == failing.name)
        {
            self.failing.push(failing);
        }
    }

    /// The protocol's summary: the counts, the first
    /// [`FAILING_TESTS_MAX`] failing names, each cut to
    /// [`SHORT_TEXT_BYTES_MAX`] bytes, `source`, and the `details` blob.
    pub(crate) fn summary(&self, source: &str, details: Option<BlobHash>) -> TestSummary {
        TestSummary {
            passed: self.passed,
            failed: self.failed,
            skipped: self.skipped,
            errored: self.errored,
            failing: self
                .failing
                .iter()
                .take(FAILING_TESTS_MAX)
                .map(|f| truncate(&f.name, SHORT_TEXT_BYTES_MAX))
                .collect(),
            source: truncate(source, SHORT_TEXT_BYTES_MAX),
            details,
        }
    }

    /// `40 tests: 36 passed, 2 failed, 1 errored, 1 skipped`.
    pub(crate) fn describe(&self) -> String {
        let total = self.total();
        format!(
            "{total} {}: {} passed, {} failed, {} errored, {} skipped",
            if total == 1 { "test" } else { "tests" },
            self.passed,
            self.failed,
            self.errored,
            self.skipped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(name: &str) -> Failing {
        Failing::new(name, Verdict::Failed, "", "")
    }

    #[test]
    fn the_summary_names_the_first_failing_tests_cut_on_a_character() {
        let mut tally = Tally {
            failed: 40,
            ..Tally::default()
        };
        tally.push(failing(&"é".repeat(200)));
        for i in 0..40 {
            tally.push(failing(&format!("t{i}")));
        }
        tally.push(failing("t0"));
        assert_eq!(tally.failing.len(), 41, "t0 is kept once");
        let summary = tally.summary("junit", None);
        assert_eq!(summary.failing.len(), FAILING_TESTS_MAX);
        assert!(summary.failing[0].len() <= SHORT_TEXT_BYTES_MAX);
        assert!(summary.failing[0].starts_with("éé") && summary.failing[0].ends_with('…'));
        assert_eq!(summary.failing[1], "t0");
        assert_eq!((summary.failed, summary.source.as_str()), (40, "junit"));
    }

    #[test]
    fn adding_keeps_counts_and_bounds_the_kept_failures() {
        let mut all = Tally::default();
        for i in 0..3 {
            all.add(Tally {
                passed: 1,
                failed: u64::MAX,
                failing: (0..DETAILS_TESTS_MAX)
                    .map(|j| failing(&format!("{i}-{j}")))
                    .collect(),
                ..Tally::default()
            });
        }
        assert_eq!((all.passed, all.failed), (3, u64::MAX));
        assert_eq!(all.failing.len(), DETAILS_TESTS_MAX);
        assert_eq!(all.total(), u64::MAX);
    }
}
