//! Whole builds: a real repository, a real mirror, real processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{BlobHash, Outcome, StepStatus};
use buildmesh_runner::{BuildReport, run_build};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Node, Source, assert_valid};

fn build(recipe: &str, files: &[(&str, &str)]) -> (Node, BuildReport) {
    let source = Source::new();
    let commit = source.commit_recipe(recipe, files);
    let node = Node::new();
    let report = run_build(&node.job(&source, &commit), &node.context);
    assert_valid(&report);
    assert!(node.work_is_empty(), "the work dir is removed");
    (node, report)
}

const TWO_STEPS: &str = r#"
[[step]]
name = "hello"
command = "echo out; echo err >&2"

[[step]]
name = "files"
command = "cat data.txt"
"#;

#[test]
fn a_passing_build_stores_each_steps_output() {
    let (node, report) = build(TWO_STEPS, &[("data.txt", "from the repo\n")]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed, "{result:?}");
    assert_eq!(result.error, None);
    assert_eq!(result.platform, "linux-x86_64");
    let [hello, files] = &result.steps[..] else {
        panic!("{result:?}")
    };
    assert_eq!(
        (hello.name.as_str(), hello.status),
        ("hello", StepStatus::Exited(0))
    );
    assert_eq!(hello.command, "echo out; echo err >&2");
    assert_eq!(node.log(&hello.log), "out\nerr\n");
    assert_eq!(hello.log_bytes, 8);
    assert_eq!(node.log(&files.log), "from the repo\n");
    for key in ["os", "arch", "kernel"] {
        assert!(result.environment.contains_key(key), "{key}");
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn a_failing_step_fails_the_build_and_skips_the_rest() {
    let recipe = r#"
        [[step]]
        name = "one"
        command = "echo fine"
        [[step]]
        name = "two"
        command = "echo broken; exit 4"
        [[step]]
        name = "three"
        command = "echo never"
    "#;
    let (node, report) = build(recipe, &[]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Failed);
    let statuses: Vec<_> = result.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::Exited(0),
            StepStatus::Exited(4),
            StepStatus::Skipped
        ]
    );
    let skipped = &result.steps[2];
    assert_eq!((skipped.log, skipped.log_bytes), (BlobHash::of(b""), 0));
    assert_eq!(skipped.name, "three");
    assert_eq!(node.log(&result.steps[1].log), "broken\n");
    assert!(node.context.blobs.path(&BlobHash::of(b"")).exists());
}

#[test]
fn a_timed_out_step_fails_the_build_quickly() {
    let recipe = r#"
        [[step]]
        name = "hang"
        command = "sleep 30 & sleep 30"
        timeout_secs = 1
        [[step]]
        name = "after"
        command = "true"
    "#;
    let started = Instant::now();
    let (_node, report) = build(recipe, &[]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.result.outcome, Outcome::Failed);
    assert_eq!(report.result.steps[0].status, StepStatus::TimedOut);
    assert_eq!(report.result.steps[1].status, StepStatus::Skipped);
}

#[test]
fn a_recipe_that_does_not_parse_is_an_error_and_runs_nothing() {
    let recipe = "[[step]]\nname = \"a\"\ncomand = \"touch /should-not-run\"\n";
    let (_node, report) = build(recipe, &[]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Error);
    assert!(result.steps.is_empty());
    let error = result.error.as_deref().unwrap();
    assert!(error.starts_with("recipe .buildmesh.toml at "), "{error}");
    assert!(
        error.contains("line 3") && error.contains("comand"),
        "{error}"
    );
}

#[test]
fn a_missing_recipe_is_an_error() {
    let source = Source::new();
    let commit = source.commit(&[("README", "no recipe here")], &[], "first");
    let node = Node::new();
    let report = run_build(&node.job(&source, &commit), &node.context);
    assert_valid(&report);
    assert_eq!(report.result.outcome, Outcome::Error);
    let error = report.result.error.unwrap();
    assert!(
        error.starts_with(&format!("no .buildmesh.toml at commit {commit}")),
        "{error}"
    );
    assert!(report.result.environment.contains_key("os"));
    assert!(node.work_is_empty());
}

#[test]
fn an_unreachable_repository_is_an_error() {
    let source = Source::new();
    let commit = source.commit_recipe(TWO_STEPS, &[]);
    let node = Node::new();
    let mut job = node.job(&source, &commit);
    job.repository = node.dir.path().join("gone").to_str().unwrap().to_owned();
    let report = run_build(&job, &node.context);
    assert_valid(&report);
    assert_eq!(report.result.outcome, Outcome::Error);
    assert!(report.result.error.unwrap().starts_with("fetching "));
}

#[test]
fn metrics_come_from_output_and_files() {
    let recipe = r#"
        [[step]]
        name = "test"
        command = "echo 'test result: 42 passed; 0 failed'; printf ' 87.5\n' > coverage.txt"

        [metrics]
        passed = { step = "test", regex = "(\\d+) passed" }
        coverage = { file = "coverage.txt" }
        failed_count = { step = "test", regex = "(\\d+) exploded" }
        missing = { file = "nope.txt" }

        [environment]
        tools = ["echo tool 1.2.3; echo second line", "no-such-tool --version"]
    "#;
    let (_node, report) = build(recipe, &[]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed);
    assert_eq!(result.metrics.get("passed"), Some(&42.0));
    assert_eq!(result.metrics.get("coverage"), Some(&87.5));
    assert_eq!(result.metrics.len(), 2, "{:?}", result.metrics);
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("metric failed_count not captured"),
        "{warnings}"
    );
    assert!(
        warnings.contains("metric missing not captured"),
        "{warnings}"
    );
    assert_eq!(
        result.environment["echo tool 1.2.3; echo second line"],
        "tool 1.2.3"
    );
    let missing = &result.environment["no-such-tool --version"];
    assert!(missing.starts_with("unavailable (exit 127)"), "{missing}");
}

/// Issue item 7: `cargo test` over a workspace prints one `test result:`
/// line per test binary; a metric that takes the first one counted 8 of
/// 73 tests. `take` chooses how the matches combine.
#[test]
fn a_metric_takes_the_first_last_sum_max_or_min_of_its_matches() {
    let recipe = r#"
        [[step]]
        name = "test"
        command = "cat cargo-test.txt"

        [metrics]
        default = { step = "test", regex = 'test result: ok\. (\d+) passed' }
        first = { step = "test", regex = 'test result: ok\. (\d+) passed', take = "first" }
        last = { step = "test", regex = 'test result: ok\. (\d+) passed', take = "last" }
        passed = { step = "test", regex = 'test result: ok\. (\d+) passed', take = "sum" }
        slowest = { step = "test", regex = 'finished in ([0-9.]+)s', take = "max" }
        quickest = { step = "test", regex = 'finished in ([0-9.]+)s', take = "min" }
        broken = { step = "test", regex = '(\d+|many) passed', take = "sum" }
        none = { step = "test", regex = '(\d+) exploded', take = "sum" }
    "#;
    let output = "\
running 8 tests
test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

running 41 tests
test result: ok. 41 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 2.50s

running 0 tests
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

running 24 tests
test result: ok. 24 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.75s
many passed
";
    let (_node, report) = build(recipe, &[("cargo-test.txt", output)]);
    let metrics = &report.result.metrics;
    assert_eq!(report.result.outcome, Outcome::Passed);
    assert_eq!(metrics.get("default"), Some(&8.0), "{metrics:?}");
    assert_eq!(metrics.get("first"), Some(&8.0));
    assert_eq!(metrics.get("last"), Some(&24.0));
    assert_eq!(metrics.get("passed"), Some(&73.0));
    assert_eq!(metrics.get("slowest"), Some(&2.5));
    assert_eq!(metrics.get("quickest"), Some(&0.0));
    assert_eq!(metrics.len(), 6, "{metrics:?}");
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("metric broken not captured: \"many\" is not a finite number"),
        "a sum does not quietly leave a match out: {warnings}"
    );
    assert!(
        warnings.contains("metric none not captured: no match"),
        "{warnings}"
    );
}

/// buildmesh's own recipe counts the tests of every test binary, not the
/// first binary's alone (issue item 7: it said 8 of 73).
#[test]
fn buildmeshs_own_recipe_sums_its_test_counts() {
    use buildmesh_runner::{MetricSource, MetricTake, Recipe};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.buildmesh.toml");
    let recipe = Recipe::parse(&std::fs::read(path).unwrap()).unwrap();
    let MetricSource::Output { step, regex, take } = &recipe.metrics["protocol_tests_passed"]
    else {
        panic!("{:?}", recipe.metrics);
    };
    assert!(recipe.step(step).is_some());
    assert_eq!(*take, MetricTake::Sum);
    let output = b"\
test result: ok. 8 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s
test result: ok. 41 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.20s
test result: ok. 24 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.05s
";
    let counts = regex.captures_iter(output).map(|c| {
        let text = std::str::from_utf8(&c[1]).unwrap();
        text.parse::<f64>().unwrap()
    });
    assert_eq!(take.combine(counts), Some(73.0));
}

/// buildmesh's own recipe reads the coverage and complexity its steps write
/// (docs/recipe.md, "buildmesh's own recipe"): renaming the file on one
/// side only would leave the metrics out of every build.
#[test]
fn buildmeshs_own_recipe_reports_what_its_steps_write() {
    use buildmesh_runner::Recipe;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.buildmesh.toml");
    let recipe = Recipe::parse(&std::fs::read(path).unwrap()).unwrap();
    let reports = recipe.reports.as_ref().expect("[reports]");
    for (step, file, writer) in [
        ("coverage", &reports.coverage, "--output-path "),
        ("complexity", &reports.metrics, "> "),
    ] {
        let file = &file.as_ref().expect(step).text;
        let command = &recipe.step(step).expect(step).command;
        assert!(
            command.contains(&format!("{writer}{file}")),
            "step {step} writes {file}: {command}"
        );
    }
}

/// The `take` example in docs/recipe.md parses, and each metric's pattern
/// finds its number in the sample line the comment above it quotes.
#[test]
fn the_take_example_in_the_recipe_docs_works() {
    use buildmesh_runner::{MetricSource, Recipe};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/recipe.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let from = doc.find("**`take`: which matches count.**").unwrap();
    let block = doc[from..].split("```toml\n").nth(1).unwrap();
    let block = block.split("```").next().unwrap();
    let steps: String = ["test", "nextest", "pytest"]
        .map(|n| format!("[[step]]\nname = \"{n}\"\ncommand = \"x\"\n"))
        .concat();
    let recipe = Recipe::parse(format!("{steps}{block}").as_bytes()).unwrap();
    let mut sample = None;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            sample = comment.split('"').nth(1);
            continue;
        }
        let Some((name, _)) = line.split_once(" = ") else {
            continue;
        };
        let MetricSource::Output { regex, .. } = &recipe.metrics[name] else {
            panic!("{name}");
        };
        let sample = sample.unwrap();
        assert!(regex.is_match(sample.as_bytes()), "{name}: {sample:?}");
    }
    assert_eq!(recipe.metrics.len(), 4);
}

#[test]
fn output_over_the_cap_is_truncated_with_a_note() {
    let source = Source::new();
    let commit = source.commit_recipe(
        "[[step]]\nname = \"loud\"\ncommand = \"head -c 3000 /dev/zero | tr '\\\\0' y\"\n",
        &[],
    );
    let mut node = Node::new();
    node.context.log_bytes_max = 1000;
    let report = run_build(&node.job(&source, &commit), &node.context);
    assert_valid(&report);
    let step = &report.result.steps[0];
    let log = node.log(&step.log);
    assert!(log.starts_with(&"y".repeat(1000)) && !log.starts_with(&"y".repeat(1001)));
    assert!(
        log.contains("[output truncated at 1000 bytes; 3000 bytes in all]"),
        "{log}"
    );
    assert_eq!(step.log_bytes, log.len() as u64);
}

#[test]
fn a_result_too_large_for_one_entry_is_cut_to_fit() {
    let padding = "#".repeat(3900);
    let recipe: String = (0..15)
        .map(|i| format!("[[step]]\nname = \"s{i}\"\ncommand = \"true {padding}\"\n"))
        .collect();
    let (_node, report) = build(&recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Passed);
    assert_eq!(report.result.steps.len(), 15);
    assert!(report.result.steps[0].command.len() <= 256);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("too large for one entry"))
    );
}

#[test]
fn live_output_reaches_the_callback() {
    let source = Source::new();
    let commit = source.commit_recipe(TWO_STEPS, &[("data.txt", "data\n")]);
    let mut node = Node::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    node.context.on_output = Some(Arc::new(move |index, name: &str, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes).into_owned();
        sink.lock().unwrap().push((index, name.to_owned(), text));
    }));
    run_build(&node.job(&source, &commit), &node.context);
    let seen = seen.lock().unwrap();
    let steps: String = seen
        .iter()
        .filter(|s| s.0 == 0)
        .map(|s| s.2.as_str())
        .collect();
    assert_eq!(steps, "out\nerr\n");
    assert!(seen.iter().any(|s| s.1 == "files" && s.2.contains("data")));
}

#[test]
fn cancel_stops_a_build_and_removes_its_work_dir() {
    let recipe = r#"
        [[step]]
        name = "long"
        command = "sleep 30"
        [[step]]
        name = "after"
        command = "true"
    "#;
    let source = Source::new();
    let commit = source.commit_recipe(recipe, &[]);
    let node = Node::new();
    let cancel = node.context.cancel.clone();
    let pulled = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        cancel.cancel();
    });
    let started = Instant::now();
    let report = run_build(&node.job(&source, &commit), &node.context);
    pulled.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_valid(&report);
    assert_eq!(report.result.outcome, Outcome::Error);
    assert_eq!(report.result.error.as_deref(), Some("build cancelled"));
    let statuses: Vec<_> = report.result.steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Signalled(9), StepStatus::Skipped]);
    assert!(node.work_is_empty());
}

#[test]
fn a_commit_already_mirrored_is_built_without_fetching() {
    let source = Source::new();
    let commit = source.commit_recipe(TWO_STEPS, &[("data.txt", "x\n")]);
    let node = Node::new();
    let job = node.job(&source, &commit);
    assert_eq!(
        run_build(&job, &node.context).result.outcome,
        Outcome::Passed
    );
    // With the source gone, a fetch would fail: the build must not need one.
    let url = source.url();
    drop(source);
    assert!(!std::path::Path::new(&url).exists());
    let report = run_build(&job, &node.context);
    assert_eq!(
        report.result.outcome,
        Outcome::Passed,
        "{:?}",
        report.result.error
    );
}

#[test]
fn a_panic_during_a_build_still_kills_the_step_and_removes_the_work_dir() {
    let source = Source::new();
    let group_file = tempfile::NamedTempFile::new().unwrap();
    let recipe = format!(
        "[[step]]\nname = \"s\"\ncommand = \"echo $$ > {}; echo go; sleep 30\"\n",
        group_file.path().display()
    );
    let commit = source.commit_recipe(&recipe, &[]);
    let mut node = Node::new();
    node.context.on_output = Some(Arc::new(|_, _: &str, _: &[u8]| panic!("callback failed")));
    let job = node.job(&source, &commit);
    let started = Instant::now();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_build(&job, &node.context)
    }));
    assert!(unwound.is_err());
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(node.work_is_empty());
    assert!(support::group_is_gone(support::read_pid(group_file.path())));
}

#[test]
fn local_repositories_are_refused_unless_allowed() {
    let source = Source::new();
    let commit = source.commit_recipe(TWO_STEPS, &[]);
    let mut node = Node::new();
    node.context.allow_local_repositories = false;
    let report = run_build(&node.job(&source, &commit), &node.context);
    assert_valid(&report);
    assert_eq!(report.result.outcome, Outcome::Error);
    let error = report.result.error.unwrap();
    assert!(error.contains("is on this machine"), "{error}");
    assert!(!node.context.mirrors.exists(), "nothing was fetched");
}

/// A metric of a step skipped after an earlier failure is expected to be
/// missing: no warning (issue 16, item 7). One of a step that ran and did
/// not print it still warns.
#[test]
fn a_metric_of_a_skipped_step_is_no_warning() {
    let recipe = r#"
        [[step]]
        name = "build"
        command = "echo broken; exit 1"

        [[step]]
        name = "test"
        command = "echo 'test result: 42 passed'"

        [metrics]
        passed = { step = "test", regex = "(\\d+) passed" }
        built = { step = "build", regex = "(\\d+) built" }
    "#;
    let (_node, report) = build(recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Failed);
    let warnings = report.warnings.join("\n");
    assert!(!warnings.contains("metric passed"), "{warnings}");
    assert!(warnings.contains("metric built not captured"), "{warnings}");
}
