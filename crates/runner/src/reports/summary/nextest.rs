//! cargo-nextest: `Summary [ 0.232s] 4 tests run: 2 passed, 2 failed,
//! 1 skipped` and one status line per test that did not pass
//! (`FAIL [ 0.008s] (1/4) my-crate tests::breaks`).

use super::{count, lines};
use crate::reports::tally::{Failing, Tally, Verdict};

/// The counts of every `Summary` line, summed, and the tests the final
/// status lines name; `None` without a `Summary` line.
pub(super) fn read(log: &str) -> Option<Tally> {
    let mut tally = Tally::default();
    let mut seen = false;
    for line in lines(log) {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("Summary [") {
            seen |= add_summary(&mut tally, rest);
        } else if let Some(failing) = status_line(line) {
            tally.push(failing);
        }
    }
    seen.then_some(tally)
}

/// Adds `0.232s] 8/10 tests run: 5 passed (1 flaky), 2 failed, 1 exec
/// failed, 1 timed out, 2 skipped; cancelled due to ...`; whether it was
/// such a line (a stress run's `iterations` are not tests).
fn add_summary(tally: &mut Tally, rest: &str) -> bool {
    let Some((_, rest)) = rest.split_once("] ") else {
        return false;
    };
    let Some((_, items)) = rest
        .split_once(" tests run: ")
        .or_else(|| rest.split_once(" test run: "))
    else {
        return false;
    };
    let items = items.split(';').next().unwrap_or_default();
    for item in items.split(", ") {
        // "5 passed (1 slow, 1 flaky)": the details are not counts.
        let item = item.split(" (").next().unwrap_or_default();
        match count(item) {
            Some((n, "passed")) => tally.passed = tally.passed.saturating_add(n),
            Some((n, "failed" | "timed out")) => tally.failed = tally.failed.saturating_add(n),
            Some((n, "exec failed")) => tally.errored = tally.errored.saturating_add(n),
            Some((n, "skipped")) => tally.skipped = tally.skipped.saturating_add(n),
            _ => {}
        }
    }
    true
}

/// A failing test from its status line: `FAIL`, `TIMEOUT`, a signal or
/// an abort failed; `XFAIL` (the test binary could not be run) errored.
/// Retries (`TRY 2 FAIL`) and passes are not failures.
fn status_line(line: &str) -> Option<Failing> {
    let (status, rest) = line.split_once(" [")?;
    let verdict = match status {
        "FAIL" | "FAIL + LEAK" | "LEAK-FAIL" | "TIMEOUT" | "ABORT" => Verdict::Failed,
        signal
            if signal.starts_with("SIG") && signal[3..].chars().all(|c| c.is_ascii_uppercase()) =>
        {
            Verdict::Failed
        }
        "XFAIL" => Verdict::Errored,
        _ => return None,
    };
    let (duration, rest) = rest.split_once("] ")?;
    if !duration.trim().ends_with('s') {
        return None;
    }
    // Newer versions count: "(1/4) ".
    let rest = match rest.strip_prefix('(') {
        Some(counted) => counted.split_once(") ")?.1,
        None => rest,
    };
    let (binary, test) = rest.trim().split_once(' ')?;
    let mut failing = Failing::new(&format!("{binary}::{test}"), verdict, status, "");
    failing.suite = binary.to_owned();
    Some(failing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `cargo nextest run --no-fail-fast` (cargo-nextest 0.9.143) on the
    /// crate of `cargo.rs`'s sample.
    const SAMPLE: &str = include_str!("../samples/nextest.txt");

    #[test]
    fn the_summary_counts_and_failing_lines_name_tests_once() {
        let tally = read(SAMPLE).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.skipped, tally.errored),
            (2, 2, 1, 0)
        );
        let names: Vec<&str> = tally.failing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["demo::tests::breaks", "demo::tests::breaks_too"]);
        assert_eq!(tally.failing[0].suite, "demo");
    }

    /// The summary and status lines of every kind, as nextest's own
    /// snapshot tests show them.
    #[test]
    fn every_kind_of_outcome_is_counted() {
        let log = "     Summary [  15.750s] 8/10 tests run: 5 passed (1 slow, 1 flaky, 1 leaky), \
                   2 failed, 1 exec failed, 1 timed out, 2 skipped\n\
                   warning: 2/10 tests were not run due to signal\n\
                   TIMEOUT-PASS [ 240.000s] (  3/100) my-binary-id passes_late\n\
                   \x20 TRY 2 FAIL [   1.000s] ( 15/100) my-binary-id retried\n\
                   \x20  FLAKY 2/2 [   1.000s] ( 25/100) my-binary-id flaky\n\
                   \x20FAIL + LEAK [   1.000s] (  9/100) my-binary-id leaks\n\
                   \x20      XFAIL [   1.000s] ( 10/100) my-binary-id cannot_exec\n\
                   \x20    TIMEOUT [  60.000s] ( 12/100) my-binary-id hangs\n\
                   \x20    SIGSEGV [   1.000s] ( 13/100) my-binary-id crashes\n\
                   \x20       FAIL [   0.004s] old-binary no_counter\n\
                   \x20    Summary [ 120.000s] 25/50 stress run iterations: 25 passed\n";
        let tally = read(log).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.skipped, tally.errored),
            (5, 3, 2, 1)
        );
        let failing: Vec<(&str, Verdict)> = tally
            .failing
            .iter()
            .map(|f| (f.name.as_str(), f.verdict))
            .collect();
        assert_eq!(
            failing,
            [
                ("my-binary-id::leaks", Verdict::Failed),
                ("my-binary-id::cannot_exec", Verdict::Errored),
                ("my-binary-id::hangs", Verdict::Failed),
                ("my-binary-id::crashes", Verdict::Failed),
                ("old-binary::no_counter", Verdict::Failed),
            ]
        );
    }

    #[test]
    fn without_a_summary_there_is_nothing() {
        assert_eq!(read("        FAIL [   0.004s] demo tests::x\n"), None);
    }
}
