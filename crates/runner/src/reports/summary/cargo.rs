//! `cargo test` (libtest): one `test result:` line per test binary, the
//! failing tests in `failures:` lists, each one's output in a
//! `---- name stdout ----` section.

use super::{count, lines};
use crate::reports::tally::{DETAILS_OUTPUT_BYTES_MAX, Failing, Tally, Verdict};
use std::collections::BTreeMap;

/// The counts of every `test result:` line, summed, and the tests its
/// `failures:` lists (or `test x ... FAILED` lines) name; `None` without a
/// `test result:` line.
pub(super) fn read(log: &str) -> Option<Tally> {
    let mut tally = Tally::default();
    let mut seen = false;
    let mut names = Vec::new();
    let mut outputs: BTreeMap<&str, String> = BTreeMap::new();
    let mut section: Option<&str> = None;
    let mut listing = false;
    for line in lines(log) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            seen |= add_result(&mut tally, rest);
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            section = Some(name);
            continue;
        }
        if line == "failures:" || line.starts_with("test result: ") {
            (section, listing) = (None, line == "failures:");
            continue;
        }
        if let Some(name) = section {
            let output = outputs.entry(name).or_default();
            if output.len() < DETAILS_OUTPUT_BYTES_MAX {
                output.push_str(line);
                output.push('\n');
            }
        } else if listing {
            match line.strip_prefix("    ") {
                Some(name) if !name.trim().is_empty() => names.push(name.trim()),
                _ => listing = false,
            }
        } else if let Some(name) = line
            .strip_prefix("test ")
            .and_then(|l| l.strip_suffix(" ... FAILED"))
        {
            names.push(name);
        }
    }
    for name in names {
        let output = outputs.get(name).map_or("", |o| o.trim());
        tally.push(Failing::new(name, Verdict::Failed, "", output));
    }
    seen.then_some(tally)
}

/// Adds `ok. 38 passed; 1 failed; 2 ignored; 0 measured; ...` (or
/// `FAILED. ...`); whether it was such a line.
fn add_result(tally: &mut Tally, rest: &str) -> bool {
    let Some((_, items)) = rest.split_once(". ") else {
        return false;
    };
    let mut found = false;
    for item in items.split(';') {
        match count(item) {
            Some((n, "passed")) => tally.passed = tally.passed.saturating_add(n),
            Some((n, "failed")) => tally.failed = tally.failed.saturating_add(n),
            Some((n, "ignored")) => tally.skipped = tally.skipped.saturating_add(n),
            Some(_) => {}
            None => continue,
        }
        found = true;
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `cargo test --no-fail-fast` (cargo 1.95) on a crate with unit tests
    /// (one passing, two failing, one ignored), an integration test and a
    /// doc test.
    const SAMPLE: &str = include_str!("../samples/cargo-test.txt");

    #[test]
    fn every_binarys_result_line_adds_up_and_failures_are_named() {
        let tally = read(SAMPLE).unwrap();
        assert_eq!(
            (tally.passed, tally.failed, tally.skipped, tally.errored),
            (3, 2, 1, 0)
        );
        let names: Vec<&str> = tally.failing.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tests::breaks", "tests::breaks_too"]);
        let breaks = &tally.failing[0].output;
        assert!(breaks.starts_with("some output\n"), "{breaks}");
        assert!(
            breaks.contains("one and one") && !breaks.contains("on purpose"),
            "{breaks}"
        );
        assert!(tally.failing[1].output.contains("on purpose"));
    }

    #[test]
    fn failed_lines_name_tests_when_there_is_no_list() {
        let log = "test a::b ... FAILED\ntest c ... ok\n\
                   test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        let tally = read(log).unwrap();
        assert_eq!(tally.failing[0].name, "a::b");
        assert_eq!((tally.passed, tally.failed), (1, 1));
    }

    #[test]
    fn indented_or_missing_result_lines_count_nothing() {
        assert_eq!(
            read("    test result: ok. 1 passed; 0 failed; 0 ignored\n"),
            None
        );
        assert_eq!(read("running 1 test\ntest x ... ok\n"), None);
        assert_eq!(read("test result: what\n"), None);
    }
}
