//! Flaky tests: tests whose verdict does not follow the code. Found from
//! the failing tests that signed results name ([`ProjectLog::failing_tests`]),
//! on a branch's newest commits, platform by platform:
//!
//! - **same commit**: one result of a cell failed the test and another
//!   result of the same cell (another builder, or a rebuild) did not;
//! - **flipped**: the test failed on one commit and did not fail on the
//!   commits just before and after it on the same platform.
//!
//! A result "did not fail" a test when it reported tests and named every
//! failing one (a result names at most 32; one that had more says nothing
//! of the rest). A commit that broke a test and the very next one that
//! fixed it also look "flipped": `buildmesh force --flaky-check` builds the
//! commit again, and a second result settles it: "same commit" if the test
//! passes, broken (not listed) if it fails again. Only tests proven flaky
//! on one commit excuse a red cell ([`only_flaky_failures`]).

use super::cell::Cell;
use super::matrix::{Matrix, MatrixOptions, matrix};
use super::project_log::{FailingTests, ProjectLog};
use buildmesh_protocol::{CommitId, Outcome, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// How a test was seen to be flaky, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evidence {
    /// It failed on one commit between two it did not fail on.
    Flipped,
    /// It failed and did not fail on the same commit and platform.
    SameCommit,
}

impl Evidence {
    /// Its name in JSON and on pages.
    pub fn name(self) -> &'static str {
        match self {
            Evidence::Flipped => "flipped",
            Evidence::SameCommit => "same_commit",
        }
    }
}

/// One flaky test.
#[derive(Debug, Clone, PartialEq)]
pub struct FlakyTest<'a> {
    /// The test's name, as its results name it.
    pub name: &'a str,
    /// The platforms it was flaky on.
    pub platforms: BTreeSet<&'a str>,
    /// The oldest commit it was seen flaky on, and when that was announced.
    pub since: (&'a CommitId, Timestamp),
    /// The newest.
    pub last: (&'a CommitId, Timestamp),
    /// On how many commits (per platform) it was seen flaky.
    pub flaky_commits: usize,
    /// On how many commits (per platform) it failed at all.
    pub failed_commits: usize,
    /// The strongest evidence.
    pub evidence: Evidence,
}

impl<'a> FlakyTest<'a> {
    /// A test seen failing first on `at`, not yet seen flaky.
    fn new(name: &'a str, at: (&'a CommitId, Timestamp)) -> FlakyTest<'a> {
        FlakyTest {
            name,
            platforms: BTreeSet::new(),
            since: at,
            last: at,
            flaky_commits: 0,
            failed_commits: 0,
            evidence: Evidence::Flipped,
        }
    }

    /// It failed on `at` on `platform`, flaky there if `evidence` says so.
    fn saw(
        &mut self,
        platform: &'a str,
        at: (&'a CommitId, Timestamp),
        evidence: Option<Evidence>,
    ) {
        self.failed_commits += 1;
        let Some(evidence) = evidence else {
            return;
        };
        self.platforms.insert(platform);
        self.flaky_commits += 1;
        self.evidence = self.evidence.max(evidence);
        let first = self.flaky_commits == 1;
        if first || at.1 < self.since.1 {
            self.since = at;
        }
        if first || at.1 > self.last.1 {
            self.last = at;
        }
    }
}

/// The flaky tests of `branch`'s newest `rows` commits, most often flaky
/// first.
pub fn flaky_tests<'a>(
    log: &'a ProjectLog,
    now: Timestamp,
    branch: Option<String>,
    rows: usize,
) -> Vec<FlakyTest<'a>> {
    let options = MatrixOptions {
        branch,
        rows_max: Some(rows),
    };
    matrix(log, now, &options)
        .map(|m| flaky_of(log, &m))
        .unwrap_or_default()
}

/// [`flaky_tests`] of a matrix already derived.
pub fn flaky_of<'a>(log: &'a ProjectLog, matrix: &Matrix<'a>) -> Vec<FlakyTest<'a>> {
    let mut found: BTreeMap<u32, FlakyTest<'a>> = BTreeMap::new();
    for (column, platform) in matrix.platforms.iter().enumerate() {
        let verdicts: Vec<(usize, Verdicts)> = matrix
            .rows
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(n, row)| Some((n, verdicts(log, row.cells.get(column)?)?)))
            .collect();
        for (k, (n, here)) in verdicts.iter().enumerate() {
            let row = &matrix.rows[*n];
            let around = |test| {
                let before = k.checked_sub(1).and_then(|b| verdicts.get(b));
                let after = verdicts.get(k + 1);
                [before, after]
                    .iter()
                    .all(|v| v.is_some_and(|(_, v)| v.passed(test)))
            };
            for &test in &here.failed {
                // A cell built twice that failed the test both times
                // settled it: broken there, not flaky.
                let evidence = if here.passed(test) {
                    Some(Evidence::SameCommit)
                } else if here.reports == 1 && around(test) {
                    Some(Evidence::Flipped)
                } else {
                    None
                };
                let Some(name) = log.test_names.label(test) else {
                    continue;
                };
                let at = (row.commit, row.announced_at);
                found
                    .entry(test)
                    .or_insert_with(|| FlakyTest::new(name, at))
                    .saw(platform, at, evidence);
            }
        }
    }
    let mut flaky: Vec<FlakyTest<'a>> = found
        .into_values()
        .filter(|t| t.flaky_commits > 0)
        .collect();
    flaky.sort_by(|a, b| {
        b.flaky_commits
            .cmp(&a.flaky_commits)
            .then(a.name.cmp(b.name))
    });
    flaky
}

/// Whether `cell` failed and every failure its results name is a test in
/// `flaky` (test numbers of [`ProjectLog::test_names`]): the matrix marks
/// such a cell, whose red may say nothing about the code.
pub fn only_flaky_failures(log: &ProjectLog, cell: &Cell, flaky: &BTreeSet<u32>) -> bool {
    let failed: Vec<&FailingTests> = cell
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .filter_map(|r| log.failing_tests.get(&r.id))
        .collect();
    let failures = cell
        .results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    failures > 0
        && failed.len() == failures
        && failed
            .iter()
            .all(|f| f.complete && !f.names.is_empty() && f.names.iter().all(|n| flaky.contains(n)))
}

/// The numbers of the tests of `tests` proven flaky (failed and did not
/// fail on one commit): those a matrix cell may be excused for. A flipped
/// test is only suspected: a commit that broke it and the next that fixed
/// it look the same, and a real regression must stay red.
pub fn proven_flaky(log: &ProjectLog, tests: &[FlakyTest<'_>]) -> BTreeSet<u32> {
    tests
        .iter()
        .filter(|t| t.evidence == Evidence::SameCommit)
        .filter_map(|t| log.test_names.number(t.name))
        .collect()
}

/// What one cell's results say of its tests.
struct Verdicts {
    /// Tests some result failed.
    failed: BTreeSet<u32>,
    /// The complete failing lists of results that reported tests: a test
    /// missing from one of them did not fail there.
    complete: Vec<BTreeSet<u32>>,
    /// How many results reported tests.
    reports: usize,
}

impl Verdicts {
    /// Whether some result reported tests and did not fail `test`.
    fn passed(&self, test: u32) -> bool {
        self.complete.iter().any(|failing| !failing.contains(&test))
    }
}

/// The cell's test verdicts, if any of its results reported tests.
fn verdicts(log: &ProjectLog, cell: &Cell) -> Option<Verdicts> {
    let mut verdicts = Verdicts {
        failed: BTreeSet::new(),
        complete: Vec::new(),
        reports: 0,
    };
    for result in &cell.results {
        let Some(tests) = log.failing_tests.get(&result.id) else {
            continue;
        };
        verdicts.reports += 1;
        verdicts.failed.extend(tests.names.iter().copied());
        if tests.complete {
            verdicts
                .complete
                .push(tests.names.iter().copied().collect());
        }
    }
    (verdicts.reports > 0).then_some(verdicts)
}
