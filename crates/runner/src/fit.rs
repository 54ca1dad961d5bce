//! Making a result fit what the protocol accepts.
//!
//! Two limits apply: each string's own ([`SHORT_TEXT_BYTES_MAX`],
//! [`LONG_TEXT_BYTES_MAX`], which `Body::validate` checks) and the size of
//! the whole signed entry ([`ENTRY_BYTES_MAX`]), which a result with many
//! long step commands can pass even when every string is in bounds. A
//! result that breaks either could never be signed, so the build would be
//! lost; instead strings are cut, each cut noted in the report's warnings.
//! Artifact names are never cut (a cut name would name another file): an
//! artifact that does not fit is left out whole.

use buildmesh_protocol::{
    BlobHash, Body, BuildResult, Entry, EntryContent, FAILING_TESTS_MAX, LIST_ITEMS_MAX,
    LONG_TEXT_BYTES_MAX, PublicKey, SHORT_TEXT_BYTES_MAX, TestSummary, Timestamp,
};
use ed25519_dalek::SigningKey;

/// Marks where a string was cut.
const ELLIPSIS: &str = "…";

/// `text` cut to at most `bytes_max` bytes on a character boundary, with an
/// ellipsis at the end when anything was cut.
pub(crate) fn truncate(text: &str, bytes_max: usize) -> String {
    if text.len() <= bytes_max {
        return text.to_owned();
    }
    let mark = if bytes_max >= ELLIPSIS.len() {
        ELLIPSIS
    } else {
        ""
    };
    let mut end = bytes_max - mark.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &text[..end])
}

/// Cuts every string of `result` to its own limit and every list to
/// [`LIST_ITEMS_MAX`] items; drops artifacts whose name is over its limit
/// (the runner lists none, so this only guards the rule).
pub(crate) fn fit_texts(result: &mut BuildResult) {
    result.steps.truncate(LIST_ITEMS_MAX);
    result.artifacts.truncate(LIST_ITEMS_MAX);
    result.metrics = std::mem::take(&mut result.metrics)
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (truncate(&k, SHORT_TEXT_BYTES_MAX), v))
        .take(LIST_ITEMS_MAX)
        .collect();
    result.platform = truncate(&result.platform, SHORT_TEXT_BYTES_MAX);
    for step in &mut result.steps {
        step.name = truncate(&step.name, SHORT_TEXT_BYTES_MAX);
        step.command = truncate(&step.command, LONG_TEXT_BYTES_MAX);
    }
    result
        .artifacts
        .retain(|artifact| artifact.name.len() <= LONG_TEXT_BYTES_MAX);
    result.environment = std::mem::take(&mut result.environment)
        .into_iter()
        .map(|(k, v)| {
            (
                truncate(&k, SHORT_TEXT_BYTES_MAX),
                truncate(&v, LONG_TEXT_BYTES_MAX),
            )
        })
        .take(LIST_ITEMS_MAX)
        .collect();
    result.error = result
        .error
        .as_deref()
        .map(|e| truncate(e, LONG_TEXT_BYTES_MAX));
}

/// Cuts a test summary to the protocol's limits: at most
/// [`FAILING_TESTS_MAX`] failing names, each and the source at most
/// [`SHORT_TEXT_BYTES_MAX`] bytes (the runner makes none longer; this
/// guards the rule).
pub(crate) fn fit_tests(tests: &mut TestSummary) {
    tests.failing.truncate(FAILING_TESTS_MAX);
    for name in &mut tests.failing {
        *name = truncate(name, SHORT_TEXT_BYTES_MAX);
    }
    tests.source = truncate(&tests.source, SHORT_TEXT_BYTES_MAX);
}

/// Shrinks `result` (signed with `tests`) until it fits in one signed
/// entry. Failing tests' names go first, since the details blob keeps
/// them whole: the last named first, each left out whole (the counts
/// stay). Then step commands, environment values and the error to a few
/// hundred bytes, then to a few dozen, then the environment to os, arch
/// and kernel, and last artifacts, the last listed first. Without artifacts, recipe limits (64 steps, 64
/// metrics, 16 tools, 64-byte names) make the environment stage always
/// enough; artifacts (at most 32, and as many JUnit files, but names up
/// to 4096 bytes) can still be too many, and are what the build is for,
/// so they go last.
pub(crate) fn fit_entry(
    result: &mut BuildResult,
    tests: &mut Option<TestSummary>,
    warnings: &mut Vec<String>,
) {
    // Names are left out whole, the last first, never cut: the same test
    // must have the same name in every result, or two results failing it
    // would look like one failing and one passing it (flaky). A shorter
    // list says nothing of the tests it leaves out.
    if let Some(tests) = tests.as_mut() {
        let named = tests.failing.len();
        while !tests.failing.is_empty() && !fits(result, Some(tests)) {
            tests.failing.pop();
        }
        if tests.failing.len() < named {
            warnings.push(format!(
                "result too large for one entry: {} of {named} failing tests named \
                 (the details blob has them all)",
                tests.failing.len()
            ));
        }
    }
    for (command_max, value_max) in [(256, 256), (48, 64)] {
        if fits(result, tests.as_ref()) {
            return;
        }
        shrink(result, command_max, value_max);
        warnings.push(format!(
            "result too large for one entry: commands cut to {command_max} bytes, \
             environment values to {value_max}"
        ));
    }
    if !fits(result, tests.as_ref()) {
        result
            .environment
            .retain(|k, _| matches!(k.as_str(), "os" | "arch" | "kernel"));
        warnings.push("result too large for one entry: tool versions left out".into());
    }
    drop_artifacts(result, tests.as_ref(), warnings);
}

/// Drops artifacts, the last listed first, until `result` fits.
fn drop_artifacts(
    result: &mut BuildResult,
    tests: Option<&TestSummary>,
    warnings: &mut Vec<String>,
) {
    let mut dropped = Vec::new();
    while !fits(result, tests) {
        let Some(artifact) = result.artifacts.pop() else {
            break;
        };
        dropped.push(artifact.name);
    }
    if !dropped.is_empty() {
        dropped.reverse();
        let names: Vec<String> = dropped.iter().map(|n| truncate(n, 200)).collect();
        warnings.push(format!(
            "result too large for one entry: {} artifacts left out: {}",
            dropped.len(),
            names.join(", ")
        ));
    }
}

fn shrink(result: &mut BuildResult, command_max: usize, value_max: usize) {
    for step in &mut result.steps {
        step.command = truncate(&step.command, command_max);
    }
    for value in result.environment.values_mut() {
        *value = truncate(value, value_max);
    }
    result.error = result.error.as_deref().map(|e| truncate(e, 4 * value_max));
}

/// Whether `result` signs, with `tests` and its attestations' hash, as
/// the node signs it ([`Body::of_result`], a [`Body::Attested`]): the
/// protocol's own check of limits and size, run with a throwaway key and
/// hash (an entry's size does not depend on the key, the hash, the
/// sequence number or the time, which are all fixed-width).
pub(crate) fn fits(result: &BuildResult, tests: Option<&TestSummary>) -> bool {
    let key = SigningKey::from_bytes(&[1; 32]);
    let author = PublicKey::from(key.verifying_key());
    let body = Body::of_result(result.clone(), tests.cloned(), Some(BlobHash::ZERO));
    let content = EntryContent::first(author, Timestamp(0), body);
    Entry::sign(&key, content).is_ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use buildmesh_protocol::{Artifact, Outcome, ProjectId};
    use std::collections::BTreeMap;

    fn result_with(artifacts: Vec<Artifact>) -> BuildResult {
        BuildResult {
            project: ProjectId([1; 32]),
            commit: "ab".repeat(20).parse().unwrap(),
            platform: "linux-x86_64".into(),
            outcome: Outcome::Passed,
            steps: Vec::new(),
            artifacts,
            metrics: BTreeMap::new(),
            environment: BTreeMap::from([("os".to_owned(), "linux".to_owned())]),
            error: None,
        }
    }

    fn artifact(i: usize, name_bytes: usize) -> Artifact {
        let name = format!("{i:02}-{}", "n".repeat(name_bytes - 3));
        Artifact {
            hash: BlobHash::of(name.as_bytes()),
            name,
            bytes: 1,
        }
    }

    #[test]
    fn artifacts_that_do_not_fit_are_dropped_last_first_never_cut() {
        let artifacts: Vec<_> = (0..32).map(|i| artifact(i, 4000)).collect();
        let mut result = result_with(artifacts.clone());
        let mut warnings = Vec::new();
        fit_texts(&mut result);
        fit_entry(&mut result, &mut None, &mut warnings);
        assert!(fits(&result, None));
        let kept = result.artifacts.len();
        assert!((1..32).contains(&kept), "{kept}");
        assert_eq!(result.artifacts[..], artifacts[..kept], "a prefix, uncut");
        let warning = warnings.last().unwrap();
        assert!(
            warning.contains(&format!("{} artifacts left out", 32 - kept)),
            "{warning}"
        );
    }

    #[test]
    fn an_artifact_name_over_the_limit_is_dropped_not_cut() {
        let mut result = result_with(vec![artifact(0, 10), artifact(1, LONG_TEXT_BYTES_MAX + 1)]);
        fit_texts(&mut result);
        assert_eq!(result.artifacts.len(), 1);
        assert_eq!(result.artifacts[0].name.len(), 10);
    }

    fn tests_failing(count: usize, name_bytes: usize) -> TestSummary {
        TestSummary {
            passed: 1,
            failed: u64::try_from(count).unwrap(),
            skipped: 0,
            errored: 0,
            failing: (0..count)
                .map(|i| format!("{i:02}{}", "t".repeat(name_bytes - 2)))
                .collect(),
            source: "junit".into(),
            details: Some(BlobHash::of(b"details")),
        }
    }

    fn step(i: usize, command_bytes: usize) -> buildmesh_protocol::StepResult {
        buildmesh_protocol::StepResult {
            name: format!("step {i}"),
            command: "c".repeat(command_bytes),
            status: buildmesh_protocol::StepStatus::Exited(0),
            duration_ms: 1,
            log: BlobHash::of(b""),
            log_bytes: 0,
        }
    }

    /// Ten commands of 4 KiB fit with a few failing names and not with
    /// 32 names of 256 bytes: names are left out whole (never cut, so one
    /// test has one name in every result), the commands stay.
    #[test]
    fn failing_names_are_left_out_whole_before_anything_else() {
        let mut result = result_with(Vec::new());
        result.steps = (0..10).map(|i| step(i, LONG_TEXT_BYTES_MAX)).collect();
        let mut tests = Some(tests_failing(FAILING_TESTS_MAX, SHORT_TEXT_BYTES_MAX));
        assert!(fits(&result, None) && !fits(&result, tests.as_ref()));
        let mut warnings = Vec::new();
        fit_entry(&mut result, &mut tests, &mut warnings);
        assert!(fits(&result, tests.as_ref()));
        let tests = tests.unwrap();
        assert!(!tests.failing.is_empty() && tests.failing.len() < FAILING_TESTS_MAX);
        assert!(
            tests
                .failing
                .iter()
                .all(|n| n.len() == SHORT_TEXT_BYTES_MAX)
        );
        assert!(tests.failing[1].starts_with("01"));
        assert!(
            result
                .steps
                .iter()
                .all(|s| s.command.len() == LONG_TEXT_BYTES_MAX)
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    /// Names go before artifacts, which are what the build is for.
    #[test]
    fn failing_names_go_before_artifacts() {
        let artifacts: Vec<_> = (0..10).map(|i| artifact(i, 4000)).collect();
        let mut result = result_with(artifacts);
        let mut tests = Some(tests_failing(FAILING_TESTS_MAX, SHORT_TEXT_BYTES_MAX));
        assert!(fits(&result, None) && !fits(&result, tests.as_ref()));
        let mut warnings = Vec::new();
        fit_entry(&mut result, &mut tests, &mut warnings);
        assert!(fits(&result, tests.as_ref()));
        assert_eq!(result.artifacts.len(), 10, "{warnings:?}");
        assert_eq!(tests.unwrap().failed, 32, "the counts stay");
    }

    #[test]
    fn summaries_are_cut_to_the_protocols_limits() {
        let mut tests = tests_failing(FAILING_TESTS_MAX + 5, SHORT_TEXT_BYTES_MAX + 9);
        tests.source = "s".repeat(SHORT_TEXT_BYTES_MAX + 1);
        fit_tests(&mut tests);
        assert_eq!(tests.failing.len(), FAILING_TESTS_MAX);
        assert!(
            tests
                .failing
                .iter()
                .all(|n| n.len() <= SHORT_TEXT_BYTES_MAX)
        );
        assert!(tests.source.len() <= SHORT_TEXT_BYTES_MAX);
        assert!(
            Body::of_result(result_with(Vec::new()), Some(tests), None)
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(10), 8);
        assert!(cut.len() <= 8, "{cut}");
        assert!(cut.ends_with(ELLIPSIS));
        assert_eq!(truncate("abcdef", 4).len(), 4);
        assert_eq!(truncate("abcdef", 2), "ab");
    }
}
