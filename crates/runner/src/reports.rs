//! What a build's tests and tools reported: `[reports]` files, read after
//! the steps (also when one failed: failing tests are then the point), or
//! without a JUnit report the summary lines test runners print.
//!
//! Report files are hostile input: each is refused, with a reason, rather
//! than allowed to stop the build, the node, or change the build's outcome
//! ([`files`] for size and links, [`xml`] for DTDs, entities and
//! malformed XML). A recipe with `[reports]` gets one more step in its
//! result, [`REPORTS_STEP`], whose log says what was read and what was
//! refused and why: `Exited(0)` when everything named was read,
//! `Exited(1)` otherwise. That step never decides the outcome, which the
//! recipe's own steps did.
//!
//! The parsers ([`junit`], [`summary`], [`coverage`], [`hydra`]) are pure
//! functions over text; this module is the edge that finds and reads the
//! files and stores blobs.

pub(crate) mod coverage;
mod details;
mod files;
pub(crate) mod hydra;
pub(crate) mod junit;
pub(crate) mod summary;
mod tally;
mod xml;

pub use files::{REPORT_BYTES_MAX, REPORT_FILE_BYTES_MAX, REPORT_FILES_MAX};

use crate::blobs::BlobDir;
use crate::recipe::{ArtifactPattern, REPORTS_STEP, Recipe, Reports};
use buildmesh_protocol::{Artifact, BlobHash, BuildResult, StepResult, StepStatus, TestSummary};
use files::{Files, Unread};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use tally::Tally;

/// How much of the end of each step's log is searched for test runners'
/// summary lines, bytes: they come last.
pub const SUMMARY_LOG_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// The command the [`REPORTS_STEP`] step shows.
pub const REPORTS_COMMAND: &str = "read [reports]";

/// What a build reported, for its result.
#[derive(Debug, Default)]
pub(crate) struct Reported {
    /// The tests, from JUnit files or step output; `None` if neither had
    /// any.
    pub tests: Option<TestSummary>,
    /// Coverage and the metrics file's metrics, but none that the recipe's
    /// `[metrics]` already captured.
    pub metrics: BTreeMap<String, f64>,
    /// Each JUnit file read, kept whatever the outcome.
    pub artifacts: Vec<Artifact>,
    /// The [`REPORTS_STEP`] step, when the recipe has `[reports]`.
    pub step: Option<StepResult>,
}

impl Reported {
    /// Adds what was reported to `result` (a JUnit file that `[artifacts]`
    /// kept already is listed once; `[metrics]` win) and hands back the
    /// tests.
    pub(crate) fn apply(self, result: &mut BuildResult) -> Option<TestSummary> {
        for artifact in self.artifacts {
            if !result.artifacts.iter().any(|a| a.name == artifact.name) {
                result.artifacts.push(artifact);
            }
        }
        for (name, value) in self.metrics {
            result.metrics.entry(name).or_insert(value);
        }
        result.steps.extend(self.step);
        self.tests
    }
}

/// What was read, line by line, for the [`REPORTS_STEP`] step's log.
#[derive(Default)]
struct Journal {
    lines: Vec<String>,
    /// Whether everything named was read.
    complete: bool,
}

impl Journal {
    fn read(&mut self, line: String) {
        self.lines.push(line);
    }

    fn missed(&mut self, line: String) {
        self.complete = false;
        self.lines.push(line);
    }
}

/// Reads what `recipe`'s `[reports]` names in `work_dir`, or the tests
/// from the logs of `result`'s steps; `captured` are the metrics
/// `[metrics]` gave, which win over the reports' own.
pub(crate) fn read(
    recipe: &Recipe,
    result: &BuildResult,
    work_dir: &Path,
    blobs: &BlobDir,
    warnings: &mut Vec<String>,
) -> Reported {
    let began = Instant::now();
    let mut reported = Reported::default();
    let mut journal = Journal {
        complete: true,
        ..Journal::default()
    };
    let mut junit = None;
    if let Some(reports) = &recipe.reports {
        let mut files = Files::open(work_dir);
        junit = junit_files(
            &reports.junit,
            &mut files,
            blobs,
            &mut journal,
            &mut reported,
        );
        let mut metrics = BTreeMap::new();
        read_coverage(reports, &mut files, &mut journal, &mut metrics);
        read_metrics(reports, &mut files, &mut journal, &mut metrics);
        for (name, value) in metrics {
            if result.metrics.contains_key(&name) {
                journal.read(format!(
                    "metric {name} from [reports] not kept: [metrics] captured one of that name"
                ));
            } else {
                reported.metrics.insert(name, value);
            }
        }
    }
    let tests = match junit {
        Some(tally) => Some((tally, "junit".to_owned())),
        None => from_logs(result, blobs, &mut journal, recipe.reports.is_some()),
    };
    if let Some((tally, source)) = tests {
        reported.tests = Some(summary_of(&tally, &source, blobs, &mut journal, warnings));
    }
    if recipe.reports.is_some() {
        reported.step = Some(step(journal, began, blobs, warnings));
    }
    reported
}

/// Reads every JUnit file `patterns` give; `None` if none was read.
fn junit_files(
    patterns: &[ArtifactPattern],
    files: &mut Files,
    blobs: &BlobDir,
    journal: &mut Journal,
    reported: &mut Reported,
) -> Option<Tally> {
    let mut all: Option<Tally> = None;
    let names = files.matching(patterns, &mut |line| journal.missed(line));
    for (name, globbed) in names {
        let text = match files.text(&name) {
            Ok(text) => text,
            Err(Unread::Directory) if globbed => continue,
            Err(why) => {
                journal.missed(unread("junit", &name, why));
                continue;
            }
        };
        let tally = match junit::read(&text) {
            Ok(tally) => tally,
            Err(why) => {
                journal.missed(format!("junit {name} refused: {why}"));
                continue;
            }
        };
        journal.read(format!("junit {name}: {}", tally.describe()));
        match blobs.put(text.as_bytes()) {
            Ok(hash) => reported.artifacts.push(Artifact {
                name: name.clone(),
                hash,
                bytes: u64::try_from(text.len()).unwrap_or(u64::MAX),
            }),
            Err(e) => journal.missed(format!("junit {name} not kept as an artifact: {e}")),
        }
        all.get_or_insert_default().add(tally);
    }
    all
}

/// `coverage_lines` and `coverage_branches` from `[reports] coverage`.
fn read_coverage(
    reports: &Reports,
    files: &mut Files,
    journal: &mut Journal,
    metrics: &mut BTreeMap<String, f64>,
) {
    let Some(pattern) = &reports.coverage else {
        return;
    };
    let name = pattern.components.join("/");
    let read = files
        .text(&name)
        .map_err(|why| unread("coverage", &name, why))
        .and_then(|text| {
            coverage::read(&text).map_err(|why| format!("coverage {name} refused: {why}"))
        });
    let coverage = match read {
        Ok(coverage) => coverage,
        Err(line) => return journal.missed(line),
    };
    let mut said = Vec::new();
    for (metric, value) in [
        ("coverage_lines", coverage.lines),
        ("coverage_branches", coverage.branches),
    ] {
        if let Some(value) = value {
            metrics.insert(metric.to_owned(), value);
            said.push(format!("{metric} {value:.2}%"));
        }
    }
    if said.is_empty() {
        said.push("it counts no lines or branches".into());
    }
    journal.read(format!(
        "coverage {name} ({}): {}",
        coverage.format,
        said.join(", ")
    ));
}

/// The metrics of `[reports] metrics`.
fn read_metrics(
    reports: &Reports,
    files: &mut Files,
    journal: &mut Journal,
    metrics: &mut BTreeMap<String, f64>,
) {
    let Some(pattern) = &reports.metrics else {
        return;
    };
    let name = pattern.components.join("/");
    let read = match files.text(&name) {
        Ok(text) => hydra::read(&text),
        Err(why) => return journal.missed(unread("metrics", &name, why)),
    };
    journal.read(format!("metrics {name}: {} metrics", read.metrics.len()));
    for problem in read.problems {
        journal.missed(format!("metrics {name}: {problem}"));
    }
    for (metric, value) in read.metrics {
        metrics.entry(metric).or_insert(value);
    }
}

/// A journal line for a file `what` named `name` that was not read.
fn unread(what: &str, name: &str, why: Unread) -> String {
    match why {
        Unread::Missing => format!("{what} {name}: no such file"),
        Unread::Directory => format!("{what} {name} refused: it is a directory"),
        Unread::Refused(why) => format!("{what} {name} refused: {why}"),
        Unread::Failed(why) => format!("{what} {name} not read: {why}"),
    }
}

/// The tests the output of `result`'s steps tells of, and the runners
/// that told, as a source (`cargo test, pytest`).
fn from_logs(
    result: &BuildResult,
    blobs: &BlobDir,
    journal: &mut Journal,
    reports: bool,
) -> Option<(Tally, String)> {
    let mut all = Tally::default();
    let mut runners: Vec<&str> = Vec::new();
    let mut steps = Vec::new();
    for step in result
        .steps
        .iter()
        .filter(|s| s.status != StepStatus::Skipped)
    {
        let Some((tally, found)) = step_log(step, blobs).as_deref().and_then(summary::read) else {
            continue;
        };
        all.add(tally);
        steps.push(step.name.as_str());
        for runner in found {
            if !runners.contains(&runner) {
                runners.push(runner);
            }
        }
    }
    if runners.is_empty() {
        return None;
    }
    if reports {
        journal.read(format!(
            "no JUnit report read: tests from the output of {} ({})",
            steps.join(", "),
            runners.join(", ")
        ));
    }
    Some((all, runners.join(", ")))
}

/// The last [`SUMMARY_LOG_BYTES_MAX`] bytes of `step`'s log, from the
/// first whole line, as text.
fn step_log(step: &StepResult, blobs: &BlobDir) -> Option<String> {
    let end = blobs.read_end(&step.log, SUMMARY_LOG_BYTES_MAX).ok()?;
    let whole = if step.log_bytes > SUMMARY_LOG_BYTES_MAX {
        let first = end
            .iter()
            .position(|b| *b == b'\n')
            .map_or(end.len(), |i| i + 1);
        &end[first..]
    } else {
        &end[..]
    };
    Some(String::from_utf8_lossy(whole).into_owned())
}

/// The protocol's summary of `tally`, with its failing tests stored as
/// the details blob.
fn summary_of(
    tally: &Tally,
    source: &str,
    blobs: &BlobDir,
    journal: &mut Journal,
    warnings: &mut Vec<String>,
) -> TestSummary {
    let details = details::json(tally).and_then(|json| match blobs.put(&json) {
        Ok(hash) => Some(hash),
        Err(e) => {
            warnings.push(format!("the failing tests' details were not stored: {e}"));
            None
        }
    });
    journal.read(format!("tests ({source}): {}", tally.describe()));
    tally.summary(source, details)
}

/// The [`REPORTS_STEP`] step, its log the journal.
fn step(
    journal: Journal,
    began: Instant,
    blobs: &BlobDir,
    warnings: &mut Vec<String>,
) -> StepResult {
    let mut log = journal.lines.join("\n");
    log.push('\n');
    let hash = blobs.put(log.as_bytes()).unwrap_or_else(|e| {
        warnings.push(format!(
            "the log of step {REPORTS_STEP} was not stored: {e}"
        ));
        BlobHash::of(log.as_bytes())
    });
    StepResult {
        name: REPORTS_STEP.to_owned(),
        command: REPORTS_COMMAND.to_owned(),
        status: StepStatus::Exited(if journal.complete { 0 } else { 1 }),
        duration_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
        log: hash,
        log_bytes: u64::try_from(log.len()).unwrap_or(u64::MAX),
    }
}
