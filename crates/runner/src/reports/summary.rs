//! Test counts from what test runners print, for a build without a JUnit
//! report: pure functions over a step's output, one module per runner.
//!
//! Each reads only the lines its runner writes in a fixed form (anchored
//! at the start of the line, every item checked), so that the output of
//! one runner quoted by another is not counted twice: cargo-nextest
//! indents the libtest output it shows, and its summary wins over the
//! `test result:` lines a `--no-capture` run lets through unindented.

mod cargo;
mod go;
mod nextest;
mod pytest;

use super::tally::Tally;

/// The tests one step's output tells of, and the runners that told: `None`
/// if it has no runner's summary.
pub(crate) fn read(log: &str) -> Option<(Tally, Vec<&'static str>)> {
    let mut tally = Tally::default();
    let mut runners = Vec::new();
    let libtest = match nextest::read(log) {
        Some(found) => Some(("cargo-nextest", found)),
        None => cargo::read(log).map(|found| ("cargo test", found)),
    };
    let others = [
        libtest,
        pytest::read(log).map(|found| ("pytest", found)),
        go::read(log).map(|found| ("go test", found)),
    ];
    for (runner, found) in others.into_iter().flatten() {
        tally.add(found);
        runners.push(runner);
    }
    (!runners.is_empty()).then_some((tally, runners))
}

/// `"12 passed"` as `(12, "passed")`; `None` unless it is a count and a
/// word.
fn count(item: &str) -> Option<(u64, &str)> {
    let (number, word) = item.trim().split_once(' ')?;
    Some((number.parse().ok()?, word.trim()))
}

/// The lines of `log`, without a `\r` a runner wrote for a terminal.
fn lines(log: &str) -> impl Iterator<Item = &str> {
    log.lines().map(|line| line.trim_end_matches('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build prints what it likes: counts past u64 saturate instead of
    /// overflowing (which would panic the build's thread in a debug build
    /// and lose the cell's slot).
    #[test]
    fn huge_counts_saturate() {
        let max = u64::MAX;
        let logs = [
            format!(
                "test result: ok. {max} passed; 0 failed; {max} ignored; 0 measured; 0 filtered out\n\
                 test result: ok. {max} passed; 0 failed; {max} ignored; 0 measured; 0 filtered out\n"
            ),
            format!(
                "     Summary [   0.1s] 1 tests run: {max} passed, {max} skipped\n\
                      Summary [   0.1s] 1 tests run: {max} passed, {max} skipped\n"
            ),
            format!(
                "=== {max} passed, {max} failed in 0.1s ===\n=== {max} passed, {max} failed in 0.1s ===\n"
            ),
        ];
        for log in &logs {
            let (tally, _) = read(log).unwrap_or_else(|| panic!("read: {log}"));
            assert_eq!(tally.passed, max, "{log}");
        }
    }

    #[test]
    fn counts_are_a_number_and_a_word() {
        assert_eq!(count(" 12 passed"), Some((12, "passed")));
        assert_eq!(count("1 exec failed"), Some((1, "exec failed")));
        assert_eq!(count("many passed"), None);
        assert_eq!(count("12"), None);
    }

    #[test]
    fn a_log_without_any_runners_summary_has_no_tests() {
        assert_eq!(
            read("Compiling demo\nerror[E0425]: cannot find value\n"),
            None
        );
        assert_eq!(read(""), None);
    }

    #[test]
    fn nextest_wins_over_the_libtest_lines_it_lets_through() {
        let log = "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n\
                   test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n\
                   Summary [   0.010s] 2 tests run: 2 passed, 0 skipped\n";
        let (tally, runners) = read(log).unwrap_or_default();
        assert_eq!((tally.passed, runners), (2, vec!["cargo-nextest"]));
    }

    #[test]
    fn several_runners_in_one_log_add_up() {
        let log = format!(
            "{}{}",
            include_str!("samples/cargo-test.txt"),
            include_str!("samples/pytest.txt")
        );
        let (tally, runners) = read(&log).unwrap_or_default();
        assert_eq!(runners, ["cargo test", "pytest"]);
        assert_eq!((tally.passed, tally.failed), (3 + 1, 2 + 1));
        assert_eq!(tally.failing.len(), 4);
    }
}
