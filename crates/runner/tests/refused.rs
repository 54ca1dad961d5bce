//! Files leave a build only as what they are: an artifact or metric file
//! that is a hard link, a symbolic link, a FIFO, a directory (anything but
//! a regular file with one link, reached without links, inside the work
//! dir) makes the build an error that names it, and nothing is published.
//! Real repositories, real processes, real links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{BlobHash, Outcome, StepStatus};
use buildmesh_runner::{BuildReport, run_build};
use std::path::PathBuf;
use std::time::Duration;
use support::{Node, Source, assert_valid, files_under};

const WHY: &str = "buildmesh publishes only regular files with a single link inside the work dir";
const SECRET: &str = "4242 secret bytes from outside the work dir";

/// A node, and a secret file beside its work dirs: outside every work
/// dir, but on the same file system, so a step can hard-link it.
fn node_with_secret() -> (Node, PathBuf) {
    let node = Node::new();
    let outside = node.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    // The premise of the tests: a hard link from here works at all.
    let probe = node.dir.path().join("probe");
    std::fs::hard_link(&secret, &probe).expect("hard links work in the temp dir");
    std::fs::remove_file(probe).unwrap();
    (node, secret)
}

/// Builds `recipe` on `node`, on a thread, failing if it takes more than
/// a minute (a FIFO opened for reading would wait forever).
fn build_on(node: &Node, recipe: &str) -> BuildReport {
    let source = Source::new();
    let commit = source.commit_recipe(recipe, &[]);
    let job = node.job(&source, &commit);
    let context = node.context.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The receiver is gone only if the test already failed.
        let _ = sender.send(run_build(&job, &context));
    });
    let report = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("the build ends: nothing waits on what a step left behind");
    assert_valid(&report);
    assert!(node.work_is_empty(), "the work dir is removed");
    report
}

/// Whether any stored blob holds `text`.
fn blobs_hold(node: &Node, text: &str) -> bool {
    let root = node.context.blobs.root();
    files_under(root).iter().any(|name| {
        let bytes = std::fs::read(root.join(name)).unwrap();
        bytes.windows(text.len()).any(|w| w == text.as_bytes())
    })
}

/// The build ran its steps, and is an error whose message is `expected`
/// followed by why; nothing is listed.
fn assert_refused(report: &BuildReport, expected: &str) {
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Error, "{result:?}");
    assert!(
        result
            .steps
            .iter()
            .all(|step| step.status == StepStatus::Exited(0)),
        "{:?}",
        result.steps
    );
    assert_eq!(
        result.error.as_deref(),
        Some(format!("{expected}; {WHY}").as_str())
    );
    assert!(result.artifacts.is_empty(), "{:?}", result.artifacts);
    assert!(result.metrics.is_empty(), "{:?}", result.metrics);
}

#[test]
fn an_artifact_hard_linked_from_outside_is_refused_and_nothing_is_published() {
    let (node, secret) = node_with_secret();
    let recipe = format!(
        r#"
        [[step]]
        name = "link"
        command = "ln {secret} shadow_hard && echo fine > ok.txt && echo 7 > n.txt"
        [metrics]
        n = {{ file = "n.txt" }}
        [artifacts]
        paths = ["ok.txt", "shadow_hard"]
        "#,
        secret = secret.display(),
    );
    let report = build_on(&node, &recipe);
    assert_refused(
        &report,
        "artifact \"shadow_hard\" refused: it has 2 hard links",
    );
    assert!(!blobs_hold(&node, SECRET), "the secret is in no blob");
    assert!(
        !node.context.blobs.path(&BlobHash::of(b"fine\n")).exists(),
        "nothing at all is stored"
    );
}

#[test]
fn a_metric_file_hard_linked_from_outside_is_refused() {
    let (node, secret) = node_with_secret();
    std::fs::write(&secret, "42").unwrap();
    let recipe = format!(
        r#"
        [[step]]
        name = "link"
        command = "ln {secret} passwd_hard && echo 7 > n.txt"
        [metrics]
        leaked = {{ file = "passwd_hard" }}
        n = {{ file = "n.txt" }}
        "#,
        secret = secret.display(),
    );
    let report = build_on(&node, &recipe);
    assert_refused(
        &report,
        "metric leaked file \"passwd_hard\" refused: it has 2 hard links",
    );
}

#[test]
fn symbolic_links_are_refused_wherever_they_are_on_the_path() {
    let (node, secret) = node_with_secret();
    let outside = secret.parent().unwrap();
    let recipe = format!(
        r#"
        [[step]]
        name = "link"
        command = "mkdir real && echo x > real/x && ln -s {secret} leak && ln -s {outside} outdir && ln -s real inner"
        [artifacts]
        paths = ["real/x", "leak", "outdir/*", "inner/x"]
        "#,
        secret = secret.display(),
        outside = outside.display(),
    );
    let report = build_on(&node, &recipe);
    assert_refused(
        &report,
        "artifact path \"outdir/*\": directory \"outdir\" refused: its path goes through a \
         symbolic link; \
         artifact \"inner/x\" refused: its path goes through a symbolic link; \
         artifact \"leak\" refused: it is a symbolic link",
    );
    assert!(!blobs_hold(&node, SECRET));
    let error = report.result.error.unwrap();
    assert!(!error.contains("secret"), "no name from outside: {error}");
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let node = Node::new();
    let recipe = r#"
        [[step]]
        name = "fifos"
        command = "mkfifo pipe && mkfifo number"
        [metrics]
        x = { file = "number" }
        [artifacts]
        paths = ["pipe"]
    "#;
    let report = build_on(&node, recipe);
    assert_refused(
        &report,
        "artifact \"pipe\" refused: it is a FIFO, not a regular file; \
         metric x file \"number\" refused: it is a FIFO, not a regular file",
    );
}

#[test]
fn a_directory_named_as_an_artifact_is_refused_but_one_a_glob_matches_is_skipped() {
    let node = Node::new();
    let named = r#"
        [[step]]
        name = "dirs"
        command = "mkdir -p dist/sub && echo x > dist/x"
        [artifacts]
        paths = ["dist/*", "dist/sub"]
    "#;
    let report = build_on(&node, named);
    assert_refused(
        &report,
        "artifact \"dist/sub\" refused: it is a directory, not a regular file",
    );
    let globbed = named.replace(", \"dist/sub\"", "");
    let report = build_on(&node, &globbed);
    assert_eq!(
        report.result.outcome,
        Outcome::Passed,
        "{:?}",
        report.result
    );
    let names: Vec<_> = report.result.artifacts.iter().map(|a| &a.name).collect();
    assert_eq!(names, ["dist/x"]);
}

#[test]
fn a_metric_file_out_of_the_work_dir_refuses_the_recipe() {
    let node = Node::new();
    for path in ["../x", "/etc/passwd"] {
        let recipe = format!(
            "[[step]]\nname = \"a\"\ncommand = \"touch ran\"\n[metrics]\nx = {{ file = \"{path}\" }}\n"
        );
        let report = build_on(&node, &recipe);
        assert_eq!(report.result.outcome, Outcome::Error);
        assert!(report.result.steps.is_empty(), "nothing ran");
        let error = report.result.error.unwrap();
        assert!(error.contains("metrics.x"), "{error}");
        assert!(error.contains("without '..'"), "{error}");
    }
}

#[test]
fn missing_and_oversize_files_stay_warnings() {
    let mut node = Node::new();
    node.context.artifact_bytes_max = 4;
    let recipe = r#"
        [[step]]
        name = "files"
        command = "echo 12345678 > big && echo 3 > small && echo 5 > n.txt"
        [metrics]
        n = { file = "n.txt" }
        gone = { file = "gone.txt" }
        [artifacts]
        paths = ["big", "small", "missing"]
    "#;
    let report = build_on(&node, recipe);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed, "{result:?}");
    assert_eq!(result.error, None);
    let names: Vec<_> = result.artifacts.iter().map(|a| &a.name).collect();
    assert_eq!(names, ["small"]);
    assert_eq!(result.metrics.get("n"), Some(&5.0));
    let warnings = report.warnings.join("\n");
    for expected in [
        "artifact big left out: it is 9 bytes; the limit is 4",
        "artifact path \"missing\" matches no file",
        "metric gone not captured: file gone.txt: no such file",
    ] {
        assert!(warnings.contains(expected), "{expected}: {warnings}");
    }
}
