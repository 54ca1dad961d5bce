//! `go test`: one `--- PASS: TestX (0.00s)`, `--- FAIL:` or `--- SKIP:`
//! line per test and subtest (subtests indented, named `TestX/sub`), and
//! one `ok  pkg 0.01s` or `FAIL pkg 0.01s` line per package; a package
//! that does not compile is `FAIL pkg [build failed]`.
//!
//! Without `-v`, `go test` prints no line for a test that passed or was
//! skipped: then only failures are counted. A failing parent test and its
//! failing subtest are two failures, as `go test -json` counts them.

use super::lines;
use crate::fit::truncate;
use crate::reports::tally::{DETAILS_OUTPUT_BYTES_MAX, Failing, Tally, Verdict};
use std::collections::BTreeMap;

/// The tests' lines, counted; `None` without any.
pub(super) fn read(log: &str) -> Option<Tally> {
    let mut tally = Tally::default();
    let mut seen = false;
    let mut failing = Vec::new();
    // Indented lines are a test's output: under -v they follow its
    // `=== RUN`, without -v its `--- FAIL`.
    let mut outputs: BTreeMap<&str, String> = BTreeMap::new();
    let mut current = None;
    for line in lines(log) {
        if let Some(name) = line.strip_prefix("=== RUN   ") {
            current = Some(name.trim());
        } else if let Some((verdict, name)) = test_line(line) {
            seen = true;
            match verdict {
                "PASS" => tally.passed += 1,
                "SKIP" => tally.skipped += 1,
                _ => {
                    tally.failed += 1;
                    failing.push(Failing::new(name, Verdict::Failed, "", ""));
                }
            }
            current = Some(name);
        } else if let Some(package) = unbuilt(line) {
            seen = true;
            tally.errored += 1;
            failing.push(Failing::new(package, Verdict::Errored, line, ""));
            current = None;
        } else if let Some(name) = current.filter(|_| line.starts_with("    ")) {
            let output = outputs.entry(name).or_default();
            if output.len() < DETAILS_OUTPUT_BYTES_MAX {
                output.push_str(line.trim_start());
                output.push('\n');
            }
        }
    }
    for mut test in failing {
        if let Some(output) = outputs.get(test.name.as_str()) {
            test.output = truncate(output.trim_end(), DETAILS_OUTPUT_BYTES_MAX);
        }
        tally.push(test);
    }
    seen.then_some(tally)
}

/// `--- FAIL: TestX/sub (0.00s)`, indented or not: the verdict and name.
fn test_line(line: &str) -> Option<(&str, &str)> {
    let rest = line.trim_start().strip_prefix("--- ")?;
    let (verdict, rest) = rest.split_once(": ")?;
    if !matches!(verdict, "PASS" | "FAIL" | "SKIP") {
        return None;
    }
    let (name, duration) = rest.rsplit_once(" (")?;
    duration.ends_with("s)").then_some((verdict, name))
}

/// `FAIL\texample.com/pkg [build failed]` (or `[setup failed]`): the
/// package, whose tests never ran.
fn unbuilt(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("FAIL\t")?;
    let package = rest
        .strip_suffix(" [build failed]")
        .or_else(|| rest.strip_suffix(" [setup failed]"))?;
    Some(package.trim())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// No Go toolchain on the machine these tests were written on: this is
    /// `go test -v ./...` as `go help test` and the testing package
    /// document it (test lines, subtests indented below their parent,
    /// `ok`/`FAIL` per package, a package that did not build), not
    /// captured output.
    const VERBOSE: &str = include_str!("../samples/go-test.txt");
    /// The same, without `-v`: only failures print a line.
    const QUIET: &str = include_str!("../samples/go-test-quiet.txt");

    #[test]
    fn verbose_output_counts_tests_and_subtests() {
        let tally = read(VERBOSE).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.skipped, tally.errored),
            (3, 3, 1, 1)
        );
        let failing: Vec<(&str, &str)> = tally
            .failing
            .iter()
            .map(|f| (f.name.as_str(), f.output.as_str()))
            .collect();
        assert_eq!(
            failing,
            [
                ("TestSub", "calc_test.go:12: sub(1, 1) = 0, want 1"),
                ("TestTable", ""),
                ("TestTable/two", "calc_test.go:25: two: got 3, want 4"),
                ("example.com/calc/broken", ""),
            ]
        );
        assert_eq!(tally.failing[3].verdict, Verdict::Errored);
    }

    #[test]
    fn quiet_output_counts_failures_with_what_follows_them() {
        let tally = read(QUIET).unwrap();
        assert_eq!((tally.passed, tally.failed), (0, 1));
        assert_eq!(
            tally.failing[0].output,
            "calc_test.go:12: sub(1, 1) = 0, want 1"
        );
        assert_eq!(read("ok  \texample.com/calc\t0.002s\n"), None);
        assert_eq!(read("--- FAIL: not a test line\n"), None);
    }
}
