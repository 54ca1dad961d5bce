//! pytest: the closing line (`=== 1 failed, 38 passed, 1 skipped in
//! 0.12s ===`, without the `=` under `-q`) and the short test summary's
//! `FAILED path::test - message` and `ERROR path::test - message` lines.

use super::{count, lines};
use crate::reports::tally::{Failing, Tally, Verdict};

/// The counts of every closing line, summed, and the tests the short
/// summary names; `None` without a closing line.
pub(super) fn read(log: &str) -> Option<Tally> {
    let mut tally = Tally::default();
    let mut failing = Vec::new();
    let mut seen = false;
    for line in lines(log) {
        if let Some(found) = closing_line(line) {
            tally.add(found);
            seen = true;
        } else if let Some(test) = summary_line(line) {
            failing.push(test);
        }
    }
    for test in failing {
        tally.push(test);
    }
    seen.then_some(tally)
}

/// `=== 2 failed, 38 passed, 1 skipped, 1 error in 0.12s (0:00:00) ===`.
/// Every item must be a count of something pytest counts: a line that
/// merely ends in `in 2s` is not one.
fn closing_line(line: &str) -> Option<Tally> {
    let inner = line.trim_matches(|c| c == '=' || c == ' ');
    let (items, duration) = inner.rsplit_once(" in ")?;
    let seconds = duration.split(' ').next()?.strip_suffix('s')?;
    seconds.parse::<f64>().ok()?;
    let mut tally = Tally::default();
    let mut tests = false;
    for item in items.split(", ") {
        let (n, word) = count(item)?;
        match word {
            "passed" | "xpassed" => tally.passed = tally.passed.saturating_add(n),
            "failed" => tally.failed = tally.failed.saturating_add(n),
            "skipped" | "xfailed" => tally.skipped = tally.skipped.saturating_add(n),
            "error" | "errors" => tally.errored = tally.errored.saturating_add(n),
            "deselected" | "warning" | "warnings" | "rerun" => continue,
            _ => return None,
        }
        tests = true;
    }
    tests.then_some(tally)
}

/// `FAILED tests/test_calc.py::test_sub - AssertionError: ...` or
/// `ERROR tests/test_calc.py - ImportError: ...` (a module that could not
/// be collected): the name must be a path to Python or a node id.
fn summary_line(line: &str) -> Option<Failing> {
    let (verdict, rest) = match line.split_once(' ')? {
        ("FAILED", rest) => (Verdict::Failed, rest),
        ("ERROR", rest) => (Verdict::Errored, rest),
        _ => return None,
    };
    let (name, message) = rest.split_once(" - ").unwrap_or((rest, ""));
    let name = name.trim();
    (name.contains("::") || name.contains(".py")).then(|| Failing::new(name, verdict, message, ""))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// pytest 7.2.1 with pytest-cov 4.0.0: one test passed, one failed,
    /// one skipped, one fixture raised.
    const SAMPLE: &str = include_str!("../samples/pytest.txt");
    /// The same, with `-k` choosing the passing and the skipped test.
    const PASSING: &str = include_str!("../samples/pytest-pass.txt");

    #[test]
    fn the_closing_line_counts_and_the_short_summary_names() {
        let tally = read(SAMPLE).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.skipped, tally.errored),
            (1, 1, 1, 1)
        );
        let [sub, errors] = &tally.failing[..] else {
            panic!("{tally:?}")
        };
        assert_eq!(
            (sub.name.as_str(), sub.verdict),
            ("test_calc.py::test_sub", Verdict::Failed)
        );
        assert_eq!(sub.message, "AssertionError: one minus one");
        assert_eq!(
            (errors.name.as_str(), errors.verdict),
            ("test_calc.py::test_errors", Verdict::Errored)
        );
    }

    #[test]
    fn deselected_tests_are_not_counted() {
        let tally = read(PASSING).unwrap();
        assert_eq!((tally.passed, tally.skipped, tally.total()), (1, 1, 2));
        assert!(tally.failing.is_empty());
    }

    #[test]
    fn quiet_lines_count_and_look_alikes_do_not() {
        let quiet = read("..F\n1 failed, 2 passed, 3 warnings in 0.05s\n").unwrap();
        assert_eq!((quiet.passed, quiet.failed), (2, 1));
        let slow = read("= 1 xfailed, 1 xpassed, 2 errors in 61.20s (0:01:01) =").unwrap();
        assert_eq!((slow.passed, slow.skipped, slow.errored), (1, 1, 2));
        assert_eq!(read("finished 3 jobs in 2s\n"), None);
        assert_eq!(read("all 3 passed in 2 seconds\n"), None);
        assert_eq!(read("= no tests ran in 0.01s =\n"), None);
        assert!(summary_line("ERROR something went wrong").is_none());
        let collection = summary_line("ERROR tests/test_x.py - ImportError: no").unwrap();
        assert_eq!(collection.name, "tests/test_x.py");
    }
}
