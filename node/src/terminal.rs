//! What `buildmesh up` prints as it works: the terminal a maintainer
//! watches instead of a page. A build says where to watch it live, each
//! step says when it starts and how it ended, the result comes with its
//! page and, when a step failed, that step's last lines; a restart first
//! says where each branch stands.

use buildmesh_core::claim::CellKey;
use buildmesh_core::view::{Matrix, MatrixOptions, Policy, Row};
use buildmesh_http::views::{MATRIX_ROWS_MAX, Views};
use buildmesh_protocol::{
    BuildResult, CommitId, EntryId, Outcome, ProjectId, StepStatus, TestSummary,
};
use buildmesh_runner::{BlobDir, REPORTS_COMMAND, StepEvent};

/// Where `up`'s lines point: its dashboard, and the logs to quote.
pub struct Terminal {
    /// `http://ADDR`, with no trailing `/`.
    base: String,
    blobs: BlobDir,
}

impl Terminal {
    /// Prints links under `base` (`http://HOST:PORT`, no trailing `/`),
    /// and quotes logs from `blobs`.
    pub fn new(base: String, blobs: BlobDir) -> Terminal {
        Terminal { base, blobs }
    }

    /// A build starts: where to watch it.
    pub fn building(&self, cell: &CellKey) {
        println!(
            "building {} for {}, live at {}",
            cell.commit.short(),
            printable(&cell.platform, 64),
            self.live_url(cell.project, &cell.commit, &cell.platform)
        );
    }

    /// A step started or ended.
    pub fn step(&self, event: StepEvent<'_>) {
        println!("{}", step_line(event));
    }

    /// A result, before it is signed: its line, and (after the page's
    /// link, see [`Terminal::written`]) the failing step's last lines.
    pub fn result(&self, result: &BuildResult) {
        println!("{}", describe(result));
    }

    /// What the build's tests said, under its result line.
    pub fn tests(&self, tests: &TestSummary) {
        println!("{}", tests_line(tests));
    }

    /// The result is signed and stored as entry `id`: its page.
    pub fn written(&self, id: &EntryId) {
        println!("  {}/results/{id}", self.base);
    }

    /// The last lines of the step that failed `result`, if one did.
    pub fn failing_tail(&self, result: &BuildResult) {
        let Some(step) = result.failing_step() else {
            return;
        };
        let lines = match self.blobs.read_end(&step.log, TAIL_BYTES) {
            Ok(log) => buildmesh_notify::message::log_tail(&log),
            Err(error) => {
                tracing::debug!(%error, "cannot read the failing step's log");
                return;
            }
        };
        let name = printable(&step.name, 64);
        let mut text = if lines.is_empty() {
            format!("  {name} printed nothing\n")
        } else {
            format!("  last lines of {name}:\n")
        };
        for line in lines {
            text.push_str(&format!("  | {line}\n"));
        }
        print!("{text}");
    }

    /// Where each declared branch of each project stands, by the log this
    /// node kept: printed once at start, after a restart.
    pub fn standing(&self, views: &Views) {
        let mut lines = Vec::new();
        for view in views.projects.values() {
            let Some(policy) = Policy::of(&view.log) else {
                continue;
            };
            for branch in &policy.declaration.branches {
                let options = MatrixOptions {
                    branch: Some(branch.clone()),
                    rows_max: Some(MATRIX_ROWS_MAX),
                };
                let Some(matrix) = buildmesh_core::view::matrix(&view.log, views.at, &options)
                else {
                    continue;
                };
                if let Some(line) = self.branch_line(branch, &matrix) {
                    lines.push(line);
                }
            }
        }
        if !lines.is_empty() {
            // One write: a build starting meanwhile prints between blocks,
            // not inside this one.
            let mut text = "where things stand:\n".to_owned();
            for line in lines {
                text.push_str(&format!("  {line}\n"));
            }
            print!("{text}");
        }
    }

    /// One branch's newest built commit, each platform's verdict with its
    /// page, and how many newer commits wait.
    fn branch_line(&self, branch: &str, matrix: &Matrix<'_>) -> Option<String> {
        let (waiting, row) = newest_built(&matrix.rows)?;
        let verdicts: Vec<String> = matrix
            .platforms
            .iter()
            .zip(&row.cells)
            .filter_map(|(platform, cell)| {
                let newest = cell.results.iter().max_by_key(|r| r.at)?;
                Some(format!(
                    "{} {} {}/results/{}",
                    printable(platform, 64),
                    outcome_word(newest.outcome),
                    self.base,
                    newest.id
                ))
            })
            .collect();
        let mut line = format!(
            "{} {} {} {}: {}",
            printable(matrix.name, 64),
            printable(branch, 100),
            row.commit.short(),
            printable(row.title, 60),
            verdicts.join(", ")
        );
        if waiting > 0 {
            line.push_str(&format!(" ({waiting} newer not built yet)"));
        }
        Some(line)
    }

    /// The live page of a build.
    fn live_url(&self, project: ProjectId, commit: &CommitId, platform: &str) -> String {
        format!(
            "{}/live/{project}/{commit}/{}",
            self.base,
            percent_encode(platform)
        )
    }
}

/// Most of a failing log read for its last lines: enough for them, and
/// never the whole of a log of many megabytes.
const TAIL_BYTES: u64 = 64 * 1024;

/// The newest row with a result, and how many newer rows have none.
fn newest_built<'m, 'a>(rows: &'m [Row<'a>]) -> Option<(usize, &'m Row<'a>)> {
    rows.iter()
        .enumerate()
        .find(|(_, row)| row.cells.iter().any(|c| !c.results.is_empty()))
}

/// A step's line: `[2/3] test …` as it starts, `[2/3] test failed (exit 1)
/// in 12.3s` as it ends.
fn step_line(event: StepEvent<'_>) -> String {
    match event {
        StepEvent::Fetching => "  fetching the repository …".to_owned(),
        StepEvent::CheckedOut { duration_ms } => {
            format!("  checked out in {}", seconds(duration_ms))
        }
        StepEvent::Started { index, count, name } => {
            format!("  [{}/{count}] {} …", index + 1, printable(name, 64))
        }
        StepEvent::Ended {
            index,
            count,
            name,
            status,
            duration_ms,
        } => {
            let verdict = match status {
                StepStatus::Exited(0) => "passed".to_owned(),
                other => format!("FAILED ({})", status_text(other)),
            };
            format!(
                "  [{}/{count}] {} {verdict} in {}",
                index + 1,
                printable(name, 64),
                seconds(duration_ms)
            )
        }
    }
}

/// "  tests: 38 passed, 2 failed, 1 skipped (cargo test); failing: a, b".
pub fn tests_line(tests: &TestSummary) -> String {
    let mut parts = vec![format!("{} passed", tests.passed)];
    for (n, word) in [
        (tests.failed, "failed"),
        (tests.errored, "errored"),
        (tests.skipped, "skipped"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let mut line = format!(
        "  tests: {} ({})",
        parts.join(", "),
        printable(&tests.source, 64)
    );
    const NAMED: usize = 5;
    if !tests.failing.is_empty() {
        let names: Vec<String> = tests
            .failing
            .iter()
            .take(NAMED)
            .map(|t| printable(t, 200))
            .collect();
        line.push_str(&format!("; failing: {}", names.join(", ")));
        let total = tests.failed.saturating_add(tests.errored);
        let more = total.saturating_sub(names.len() as u64);
        if more > 0 {
            line.push_str(&format!(" and {more} more"));
        }
    }
    line
}

/// One line about a result: `result 3f2a1b4c5d linux FAILED: format ok
/// 0.4s, test exit 1 12.3s, lint skipped`, with the reason of an error.
pub fn describe(result: &BuildResult) -> String {
    let steps: Vec<String> = result
        .steps
        .iter()
        .map(|s| match s.status {
            StepStatus::Skipped => format!("{} skipped", printable(&s.name, 64)),
            // Reading [reports] never changes the verdict: a report it
            // could not read is a gap its log names, not a failed step.
            StepStatus::Exited(code) if code != 0 && s.command == REPORTS_COMMAND => {
                format!("{} incomplete (see its log)", printable(&s.name, 64))
            }
            status => format!(
                "{} {} {}",
                printable(&s.name, 64),
                status_text(status),
                seconds(s.duration_ms)
            ),
        })
        .collect();
    let mut line = format!(
        "result {} {} {}",
        result.commit.short(),
        printable(&result.platform, 64),
        outcome_word(result.outcome)
    );
    if !steps.is_empty() {
        line.push_str(&format!(": {}", steps.join(", ")));
    }
    let reason = result
        .error
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| printable(e, 1000));
    match (reason, steps.is_empty()) {
        (Some(reason), true) => line.push_str(&format!(": {reason}")),
        (Some(reason), false) => line.push_str(&format!(" ({reason})")),
        (None, _) if result.outcome == Outcome::Error => {
            line.push_str(": the build could not judge the commit (no reason given)");
        }
        (None, _) => {}
    }
    line
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "FAILED",
        Outcome::Error => "ERROR",
        Outcome::Warnings => "passed with WARNINGS",
        Outcome::Skipped => "skipped by the recipe",
        Outcome::Retry => "stopped before a verdict (retry)",
        Outcome::Cancelled => "cancelled",
    }
}

/// How a step ended, in a few words.
fn status_text(status: StepStatus) -> String {
    match status {
        StepStatus::Exited(0) => "ok".to_owned(),
        StepStatus::Exited(code) => format!("exit {code}"),
        StepStatus::Signalled(signal) => format!("killed by signal {signal}"),
        StepStatus::TimedOut => "timed out".to_owned(),
        StepStatus::Skipped => "skipped".to_owned(),
        StepStatus::FailedToStart => "did not start".to_owned(),
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// At most `max` characters of `text` for the terminal: line breaks and
/// tabs as spaces, other control characters (which could drive the
/// terminal: anyone can write a commit title, a project name, a recipe
/// that fails to parse) as `?`.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| match c {
            '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// `text` as one URL path segment or query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use buildmesh_protocol::{BlobHash, StepResult};

    /// A result with no steps, for the node's unit tests.
    pub(crate) fn result(outcome: Outcome, error: Option<&str>) -> BuildResult {
        BuildResult {
            project: ProjectId([1; 32]),
            commit: CommitId::from_bytes(&[0xab; 20]).unwrap(),
            platform: "linux".into(),
            outcome,
            steps: Vec::new(),
            artifacts: Vec::new(),
            metrics: Default::default(),
            environment: Default::default(),
            error: error.map(str::to_owned),
        }
    }

    fn step(name: &str, status: StepStatus, duration_ms: u64) -> StepResult {
        StepResult {
            name: name.into(),
            command: "true".into(),
            status,
            duration_ms,
            log: BlobHash::of(b""),
            log_bytes: 0,
        }
    }

    /// Issue 16, item 5: an error with no steps said "ERROR:  (…)".
    #[test]
    fn the_tests_line_counts_and_names_the_first_failures() {
        let mut tests = TestSummary {
            passed: 38,
            failed: 7,
            skipped: 1,
            errored: 0,
            failing: (0..7).map(|n| format!("t::case_{n}")).collect(),
            source: "cargo test".into(),
            details: None,
        };
        assert_eq!(
            tests_line(&tests),
            "  tests: 38 passed, 7 failed, 1 skipped (cargo test); failing: t::case_0, \
             t::case_1, t::case_2, t::case_3, t::case_4 and 2 more"
        );
        tests.failed = 0;
        tests.skipped = 0;
        tests.failing.clear();
        assert_eq!(tests_line(&tests), "  tests: 38 passed (cargo test)");
    }

    #[test]
    fn an_error_result_says_why_in_one_clause() {
        assert_eq!(
            describe(&result(
                Outcome::Error,
                Some("no .buildmesh.toml in the commit")
            )),
            "result ababababab linux ERROR: no .buildmesh.toml in the commit"
        );
        assert_eq!(
            describe(&result(Outcome::Error, Some("  "))),
            "result ababababab linux ERROR: the build could not judge the commit (no reason given)"
        );
        assert_eq!(
            describe(&result(Outcome::Passed, None)),
            "result ababababab linux passed"
        );
    }

    /// Issue 16, item 1: steps read as words, not `Exited(1)`.
    #[test]
    fn a_result_names_each_step_and_how_it_ended() {
        let mut failed = result(Outcome::Failed, None);
        failed.steps = vec![
            step("format", StepStatus::Exited(0), 400),
            step("test", StepStatus::Exited(101), 12_345),
            step("lint", StepStatus::Skipped, 0),
        ];
        assert_eq!(
            describe(&failed),
            "result ababababab linux FAILED: format ok 0.4s, test exit 101 12.3s, lint skipped"
        );
    }

    /// A report file missing (buildmesh's own recipe without
    /// cargo-llvm-cov) read as `reports exit 1`, like a failed step, on a
    /// build that passed.
    #[test]
    fn reports_not_all_read_are_incomplete_not_a_failed_step() {
        let mut passed = result(Outcome::Passed, None);
        let mut reports = step("reports", StepStatus::Exited(1), 0);
        reports.command = REPORTS_COMMAND.into();
        passed.steps = vec![step("test", StepStatus::Exited(0), 1_000), reports];
        assert_eq!(
            describe(&passed),
            "result ababababab linux passed: test ok 1.0s, reports incomplete (see its log)"
        );
    }

    #[test]
    fn a_step_says_when_it_starts_and_how_it_ended() {
        let started = StepEvent::Started {
            index: 1,
            count: 3,
            name: "test",
        };
        assert_eq!(step_line(started), "  [2/3] test …");
        let ended = |status| StepEvent::Ended {
            index: 1,
            count: 3,
            name: "test",
            status,
            duration_ms: 2_060,
        };
        assert_eq!(
            step_line(ended(StepStatus::Exited(0))),
            "  [2/3] test passed in 2.1s"
        );
        assert_eq!(
            step_line(ended(StepStatus::TimedOut)),
            "  [2/3] test FAILED (timed out) in 2.1s"
        );
        let hostile = StepEvent::Started {
            index: 0,
            count: 1,
            name: "a\x1b[2Jb",
        };
        assert_eq!(step_line(hostile), "  [1/1] a?[2Jb …");
    }

    #[test]
    fn a_platform_is_one_path_segment() {
        assert_eq!(percent_encode("linux-x86_64"), "linux-x86_64");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
