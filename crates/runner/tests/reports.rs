//! What builds' tests report (issue 17): real cargo and pytest projects
//! made here, run by the real tools, their JUnit, coverage and summary
//! lines read into the result; and hostile report files refused, each
//! with a clear line in the `reports` step's log, the outcome unchanged.
//!
//! A tool that is missing (cargo-nextest, Debian's python3-pytest and
//! python3-pytest-cov) fails these tests when `BUILDMESH_REQUIRE_SERVERS`
//! is set, as `scripts/test` sets it, and skips them otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{Body, EntryContent, Outcome, StepResult, StepStatus, TestSummary};
use buildmesh_runner::{BuildReport, REPORTS_STEP, run_build};
use buildmesh_test_servers::{REQUIRE_ENV, require_python_module, skip_unusable};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Node, Source};

/// Builds `recipe` with `files` on a fresh node; the result, signed with
/// its tests as the node signs it, is valid.
fn build(recipe: &str, files: &[(&str, &str)]) -> (Node, BuildReport) {
    let source = Source::new();
    let commit = source.commit_recipe(recipe, files);
    let node = Node::new();
    let report = run_build(&node.job(&source, &commit), &node.context);
    let attestation = Some(buildmesh_protocol::BlobHash::ZERO);
    let body = Body::of_result(report.result.clone(), report.tests.clone(), attestation);
    body.validate().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let author = buildmesh_protocol::PublicKey::from(key.verifying_key());
    let content = EntryContent::first(author, buildmesh_protocol::Timestamp(1), body);
    buildmesh_protocol::Entry::sign(&key, content).unwrap();
    assert!(node.work_is_empty(), "the work dir is removed");
    (node, report)
}

fn step<'a>(report: &'a BuildReport, name: &str) -> &'a StepResult {
    let steps = &report.result.steps;
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
}

fn tests(report: &BuildReport) -> &TestSummary {
    report
        .tests
        .as_ref()
        .unwrap_or_else(|| panic!("no tests in {report:?}"))
}

/// The details blob's tests, as (name, status, output).
fn details(node: &Node, tests: &TestSummary) -> Vec<(String, String, String)> {
    let hash = tests.details.expect("failing tests have details");
    let json: serde_json::Value = serde_json::from_str(&node.log(&hash)).unwrap();
    let field = |test: &serde_json::Value, key: &str| test[key].as_str().unwrap().to_owned();
    json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (field(t, "name"), field(t, "status"), field(t, "output")))
        .collect()
}

/// A crate with one passing and one failing test, and a nextest profile
/// that writes JUnit to `target/nextest/ci/junit.xml`.
const CRATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    (
        "src/lib.rs",
        "pub fn add(a: i32, b: i32) -> i32 { a + b }\n\
         #[cfg(test)]\nmod tests {\n\
         \x20   #[test]\n    fn adds() { assert_eq!(super::add(1, 2), 3); }\n\
         \x20   #[test]\n    fn breaks() { assert_eq!(super::add(1, 1), 3, \"one and one\"); }\n}\n",
    ),
    (
        ".config/nextest.toml",
        "[profile.ci.junit]\npath = \"junit.xml\"\n",
    ),
];

/// The builder's toolchain, wherever rustup put it.
const TOOLCHAIN: &str = "[environment]\ninherit = [\"PATH\", \"CARGO_HOME\", \"RUSTUP_HOME\"]\n";

fn have_nextest() -> bool {
    let ran = Command::new("cargo")
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    ran.is_ok_and(|status| status.success())
        || skip_unusable(
            "cargo-nextest",
            "it is not installed (scripts/setup installs it: cargo install cargo-nextest)",
            REQUIRE_ENV,
        )
}

#[test]
fn a_cargo_projects_nextest_junit_report_names_its_failing_test() {
    if !have_nextest() {
        return;
    }
    let recipe = format!(
        "[[step]]\nname = \"test\"\ncommand = \"cargo nextest run --profile ci --no-fail-fast\"\n\
         [reports]\njunit = [\"target/nextest/ci/junit.xml\"]\n{TOOLCHAIN}"
    );
    let (node, report) = build(&recipe, CRATE);
    let result = &report.result;
    assert_eq!(
        result.outcome,
        Outcome::Failed,
        "the failing test fails the build"
    );
    assert_eq!(result.failing_step().map(|s| s.name.as_str()), Some("test"));
    let tests = tests(&report);
    assert_eq!(
        (
            tests.passed,
            tests.failed,
            tests.errored,
            tests.source.as_str()
        ),
        (1, 1, 0, "junit")
    );
    assert_eq!(tests.failing, ["demo::tests::breaks"]);
    let [(name, status, output)] = &details(&node, tests)[..] else {
        panic!("{tests:?}")
    };
    assert_eq!(
        (name.as_str(), status.as_str()),
        ("demo::tests::breaks", "failed")
    );
    assert!(output.contains("one and one"), "{output}");
    let reports = step(&report, REPORTS_STEP);
    assert_eq!(reports.status, StepStatus::Exited(0));
    assert_eq!(reports.command, "read [reports]");
    let log = node.log(&reports.log);
    assert!(
        log.contains("junit target/nextest/ci/junit.xml: 2 tests: 1 passed, 1 failed"),
        "{log}"
    );
    let kept = &result.artifacts;
    assert_eq!(kept.len(), 1, "a failing build keeps its report: {kept:?}");
    assert_eq!(kept[0].name, "target/nextest/ci/junit.xml");
    assert!(node.log(&kept[0].hash).contains("<testsuites"));
}

#[test]
fn without_a_report_cargo_tests_summary_lines_count() {
    let recipe = format!("[[step]]\nname = \"test\"\ncommand = \"cargo test\"\n{TOOLCHAIN}");
    let (node, report) = build(&recipe, CRATE);
    assert_eq!(report.result.outcome, Outcome::Failed);
    let tests = tests(&report);
    assert_eq!(
        (
            tests.passed,
            tests.failed,
            tests.skipped,
            tests.source.as_str()
        ),
        (1, 1, 0, "cargo test")
    );
    assert_eq!(tests.failing, ["tests::breaks"]);
    let details = details(&node, tests);
    assert!(details[0].2.contains("one and one"), "{details:?}");
    assert!(
        report.result.steps.iter().all(|s| s.name != REPORTS_STEP),
        "no [reports], no reports step"
    );
    assert!(report.result.artifacts.is_empty());
}

#[test]
fn a_pytest_projects_junit_and_coverage_are_read() {
    if !require_python_module("pytest", "python3-pytest")
        || !require_python_module("pytest_cov", "python3-pytest-cov")
    {
        return;
    }
    let recipe = "[[step]]\nname = \"test\"\n\
                  command = \"/usr/bin/python3 -m pytest -p no:cacheprovider \
                  --junitxml=reports/junit.xml --cov=calc --cov-branch \
                  --cov-report=xml:coverage.xml\"\n\
                  [reports]\njunit = [\"reports/*.xml\"]\ncoverage = \"coverage.xml\"\n";
    let files = [
        (
            "calc.py",
            "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    if a < b:\n        \
             return b - a\n    return a - b\n",
        ),
        (
            "test_calc.py",
            "import calc\n\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n\n\n\
             def test_sub():\n    assert calc.sub(1, 1) == 1, \"one minus one\"\n",
        ),
    ];
    let (node, report) = build(recipe, &files);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Failed);
    let tests = tests(&report);
    assert_eq!(
        (tests.passed, tests.failed, tests.source.as_str()),
        (1, 1, "junit")
    );
    assert_eq!(tests.failing, ["test_calc::test_sub"]);
    assert!(details(&node, tests)[0].2.contains("one minus one"));
    // 5 of 6 lines and 1 of 2 branches of calc.py, as coverage.py counts.
    assert_eq!(result.metrics.get("coverage_lines"), Some(&83.33));
    assert_eq!(result.metrics.get("coverage_branches"), Some(&50.0));
    let log = node.log(&step(&report, REPORTS_STEP).log);
    assert!(
        log.contains(
            "coverage coverage.xml (Cobertura): coverage_lines 83.33%, coverage_branches 50.00%"
        ),
        "{log}"
    );
    assert_eq!(result.artifacts[0].name, "reports/junit.xml");
}

#[test]
fn a_hydra_metrics_file_and_lcov_coverage_are_read() {
    let recipe = r#"
[[step]]
name = "measure"
command = "printf 'mccabe_max 14\nbinary_size 2048 bytes\nnot a metric line\nnoise_ms 3\n' > metrics.txt; printf 'SF:a.rs\nLF:4\nLH:3\nend_of_record\n' > lcov.info"
[metrics]
noise_ms = { step = "measure", regex = "(never)" }
binary_size = { file = "size.txt" }
[reports]
metrics = "metrics.txt"
coverage = "lcov.info"
"#;
    let (node, report) = build(recipe, &[("size.txt", "1000\n")]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed);
    assert_eq!(result.metrics.get("mccabe_max"), Some(&14.0));
    assert_eq!(
        result.metrics.get("binary_size"),
        Some(&1000.0),
        "[metrics] wins"
    );
    assert_eq!(
        result.metrics.get("noise_ms"),
        Some(&3.0),
        "[metrics] got none"
    );
    assert_eq!(result.metrics.get("coverage_lines"), Some(&75.0));
    assert_eq!(report.tests, None, "no tests anywhere");
    let reports = step(&report, REPORTS_STEP);
    assert_eq!(reports.status, StepStatus::Exited(1), "a line was not read");
    assert_eq!(result.failing_step(), None, "yet the build passed");
    let log = node.log(&reports.log);
    assert!(log.contains("metrics metrics.txt: 3 metrics"), "{log}");
    assert!(
        log.contains("line 3: \"not a metric line\" has 4 fields"),
        "{log}"
    );
    assert!(
        log.contains("metric binary_size from [reports] not kept"),
        "{log}"
    );
    assert!(
        log.contains("coverage lcov.info (LCOV): coverage_lines 75.00%"),
        "{log}"
    );
}

/// Every kind of hostile report in one build, beside a good one: each is
/// refused with a line that says why, the build passes as its step did,
/// quickly, and the node builds again afterwards.
#[test]
fn hostile_reports_are_refused_each_saying_why_and_change_nothing() {
    let laughs = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n \
                  <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n \
                  <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n]>\n\
                  <testsuites><testsuite name=\"x\"><testcase name=\"&lol2;\"/></testsuite></testsuites>\n";
    let good =
        "<testsuites><testsuite name=\"s\"><testcase name=\"fine\"/></testsuite></testsuites>\n";
    let truncated = "<testsuites>\n<testsuite name=\"s\">\n<testcase name=\"cut\">\n";
    let recipe = r#"
[[step]]
name = "write"
command = '''
mkdir -p reports
truncate -s 1G reports/huge.xml
printf '<testsuites><testsuite name="caf\351"/></testsuites>' > reports/latin1.xml
ln -s /etc/passwd reports/passwd.xml
ln -s /etc/passwd coverage.xml
'''
[reports]
junit = ["reports/*.xml", "fixtures/laughs.xml", "fixtures/truncated.xml", "fixtures/good.xml"]
coverage = "coverage.xml"
"#;
    let files = [
        ("fixtures/laughs.xml", laughs),
        ("fixtures/truncated.xml", truncated),
        ("fixtures/good.xml", good),
    ];
    let started = Instant::now();
    let (node, report) = build(recipe, &files);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed, "{result:?}");
    assert_eq!(result.error, None);
    assert_eq!(result.failing_step(), None);
    let reports = step(&report, REPORTS_STEP);
    assert_eq!(reports.status, StepStatus::Exited(1));
    let log = node.log(&reports.log);
    for expected in [
        "junit fixtures/good.xml: 1 test: 1 passed",
        "junit fixtures/laughs.xml refused: its <!DOCTYPE> at line 2, column 1 declares a DTD",
        "junit fixtures/truncated.xml refused: truncated: the file ends inside <testcase>",
        "junit reports/huge.xml refused: it is 1073741824 bytes; the limit is 16777216",
        "junit reports/latin1.xml refused: not UTF-8: invalid utf-8 sequence",
        "junit reports/passwd.xml refused: it is a symbolic link",
        "coverage coverage.xml refused: it is a symbolic link",
    ] {
        assert!(log.contains(expected), "{expected:?} in:\n{log}");
    }
    assert!(!log.contains("root:"), "nothing of /etc/passwd is read");
    let tests = tests(&report);
    assert_eq!((tests.passed, tests.failed + tests.errored), (1, 0));
    let kept: Vec<&str> = result.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(kept, ["fixtures/good.xml"], "only what was read is kept");
    assert!(!result.metrics.contains_key("coverage_lines"));
    // The runner is fine: the next build on the same node works.
    let (_, again) = build("[[step]]\nname = \"a\"\ncommand = \"true\"\n", &[]);
    assert_eq!(again.result.outcome, Outcome::Passed);
}

#[test]
fn a_report_the_failed_step_never_wrote_is_said_missing() {
    let recipe = "[[step]]\nname = \"test\"\ncommand = \"exit 3\"\n\
                  [reports]\njunit = [\"junit.xml\", \"reports/*.xml\"]\n";
    let (node, report) = build(recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Failed);
    assert_eq!(
        report.result.failing_step().map(|s| s.name.as_str()),
        Some("test")
    );
    let reports = step(&report, REPORTS_STEP);
    assert_eq!(reports.status, StepStatus::Exited(1));
    let log = node.log(&reports.log);
    assert!(log.contains("junit junit.xml: no such file"), "{log}");
    assert!(
        log.contains("junit reports/*.xml: matches no file"),
        "{log}"
    );
    assert_eq!(report.tests, None);
}
