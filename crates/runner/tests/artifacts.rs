//! Artifacts: files a passing build keeps, matched in the work dir after
//! the steps and stored as blobs. Real repositories, real processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use buildmesh_protocol::{BlobHash, Outcome};
use buildmesh_runner::{ARTIFACTS_MAX, BuildReport, run_build};
use support::{Node, Source, assert_valid, files_under};

/// Builds `recipe` (with `files` committed beside it) on a fresh node,
/// after `setup` has adjusted the node's context.
fn build_with(
    recipe: &str,
    files: &[(&str, &str)],
    setup: impl FnOnce(&mut Node),
) -> (Node, BuildReport) {
    let source = Source::new();
    let commit = source.commit_recipe(recipe, files);
    let mut node = Node::new();
    setup(&mut node);
    let report = run_build(&node.job(&source, &commit), &node.context);
    assert_valid(&report);
    assert!(node.work_is_empty(), "the work dir is removed");
    let blobs = files_under(node.context.blobs.root());
    assert!(
        blobs.iter().all(|name| !name.starts_with('.')),
        "no partial blob is left behind: {blobs:?}"
    );
    (node, report)
}

fn build(recipe: &str, files: &[(&str, &str)]) -> (Node, BuildReport) {
    build_with(recipe, files, |_| {})
}

fn warnings(report: &BuildReport) -> String {
    report.warnings.join("\n")
}

const MAKES_FILES: &str = r#"
[[step]]
name = "build"
command = """
mkdir -p target/release dist
printf 'hello binary' > target/release/hello
printf 'tarball one' > dist/hello-1.0.tar.gz
printf 'not a tarball' > dist/notes.txt
printf 'hidden' > dist/.partial.tar.gz
mkdir dist/dir.tar.gz
"""

[artifacts]
paths = ["target/release/hello", "dist/*.tar.gz"]
"#;

#[test]
fn a_passing_build_keeps_exact_and_globbed_files() {
    let (node, report) = build(MAKES_FILES, &[]);
    let result = &report.result;
    assert_eq!(result.outcome, Outcome::Passed, "{result:?}");
    let listed: Vec<_> = result
        .artifacts
        .iter()
        .map(|a| (a.name.as_str(), a.hash, a.bytes))
        .collect();
    assert_eq!(
        listed,
        [
            ("dist/hello-1.0.tar.gz", BlobHash::of(b"tarball one"), 11),
            ("target/release/hello", BlobHash::of(b"hello binary"), 12),
        ],
        "sorted by name; no hidden file, directory or non-matching name"
    );
    for artifact in &result.artifacts {
        let stored = std::fs::read(node.context.blobs.path(&artifact.hash)).unwrap();
        assert_eq!(BlobHash::of(&stored), artifact.hash);
        assert_eq!(stored.len() as u64, artifact.bytes);
    }
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn a_failing_build_keeps_nothing() {
    let recipe = MAKES_FILES.replace("mkdir dist/dir.tar.gz\n", "mkdir dist/dir.tar.gz\nexit 3\n");
    let (node, report) = build(&recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Failed);
    assert!(
        report.result.artifacts.is_empty(),
        "{:?}",
        report.result.artifacts
    );
    assert!(
        !node
            .context
            .blobs
            .path(&BlobHash::of(b"hello binary"))
            .exists()
    );
}

#[test]
fn symlinks_are_refused_even_inside_the_work_dir() {
    let recipe = r#"
        [[step]]
        name = "link"
        command = "mkdir out && ln -s ../README.md out/readme"
        [artifacts]
        paths = ["README.md", "out/*"]
    "#;
    let (node, report) = build(recipe, &[("README.md", "read me\n")]);
    assert_eq!(report.result.outcome, Outcome::Error);
    assert!(report.result.artifacts.is_empty());
    let error = report.result.error.unwrap();
    assert!(
        error.starts_with("artifact \"out/readme\" refused: it is a symbolic link; "),
        "{error}"
    );
    assert!(
        !node
            .context
            .blobs
            .path(&BlobHash::of(b"read me\n"))
            .exists(),
        "not even the committed file is stored"
    );
}

#[test]
fn a_pattern_that_matches_nothing_is_a_warning() {
    let recipe = r#"
        [[step]]
        name = "build"
        command = "mkdir -p dist/only-a-dir && echo x > kept.txt"
        [artifacts]
        paths = ["kept.txt", "target/release/missing", "nowhere/*.zip", "dist/*"]
    "#;
    let (_node, report) = build(recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Passed);
    assert_eq!(report.result.error, None);
    assert_eq!(report.result.artifacts.len(), 1);
    let warnings = warnings(&report);
    assert!(
        warnings.contains("artifact path \"target/release/missing\" matches no file"),
        "{warnings}"
    );
    assert!(
        warnings.contains("artifact path \"nowhere/*.zip\" matches no file"),
        "{warnings}"
    );
    assert!(
        warnings.contains("artifact path \"dist/*\" matches no regular file"),
        "{warnings}"
    );
}

#[test]
fn a_symlink_out_of_the_work_dir_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "do not publish").unwrap();
    let recipe = format!(
        r#"
        [[step]]
        name = "link"
        command = "mkdir dist && ln -s {secret} dist/secret.txt && ln -s {secret} leak && ln -s {dir} outdir && echo ok > dist/ok.txt"
        [artifacts]
        paths = ["dist/*.txt", "leak", "outdir/*"]
        "#,
        secret = secret.display(),
        dir = outside.path().display(),
    );
    let (node, report) = build(&recipe, &[]);
    assert_eq!(report.result.outcome, Outcome::Error);
    assert!(report.result.artifacts.is_empty());
    let error = report.result.error.unwrap();
    for expected in [
        "artifact \"dist/secret.txt\" refused: it is a symbolic link",
        "artifact \"leak\" refused: it is a symbolic link",
        "artifact path \"outdir/*\": directory \"outdir\" refused: its path goes through a \
         symbolic link",
    ] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
    assert!(
        !node
            .context
            .blobs
            .path(&BlobHash::of(b"do not publish"))
            .exists()
    );
}

#[test]
fn a_file_over_the_size_cap_is_left_out_whole() {
    let recipe = r#"
        [[step]]
        name = "build"
        command = "head -c 100 /dev/zero > fits.bin && head -c 101 /dev/zero > big.bin"
        [artifacts]
        paths = ["*.bin"]
    "#;
    let (node, report) = build_with(recipe, &[], |node| node.context.artifact_bytes_max = 100);
    assert_eq!(report.result.outcome, Outcome::Passed);
    let [fits] = &report.result.artifacts[..] else {
        panic!("{:?}", report.result.artifacts)
    };
    assert_eq!((fits.name.as_str(), fits.bytes), ("fits.bin", 100));
    assert_eq!(fits.hash, BlobHash::of(&[0; 100]));
    let warnings = warnings(&report);
    assert!(
        warnings.contains(
            "artifact big.bin left out: it is 101 bytes; the limit is 100 (artifact_bytes_max)"
        ),
        "{warnings}"
    );
    assert!(!node.context.blobs.path(&BlobHash::of(&[0; 101])).exists());
}

#[test]
fn at_most_32_artifacts_are_kept_the_first_by_name() {
    let recipe = r#"
        [[step]]
        name = "many"
        command = "mkdir out && for i in $(seq -w 1 40); do echo $i > out/f$i; done"
        [artifacts]
        paths = ["out/f*", "out/f01"]
    "#;
    let (_node, report) = build(recipe, &[]);
    let artifacts = &report.result.artifacts;
    assert_eq!(artifacts.len(), ARTIFACTS_MAX);
    assert_eq!(
        artifacts[0].name, "out/f01",
        "listed once though matched twice"
    );
    assert_eq!(artifacts[31].name, "out/f32");
    let warnings = warnings(&report);
    assert!(
        warnings.contains("8 more artifacts matched and were left out"),
        "{warnings}"
    );
}

#[test]
fn an_artifact_path_out_of_the_work_dir_refuses_the_recipe() {
    for (path, expected) in [
        ("../outside", "without '..'"),
        ("/etc/passwd", "must be relative"),
    ] {
        let recipe = format!(
            "[[step]]\nname = \"a\"\ncommand = \"touch ran\"\n[artifacts]\npaths = [\"ok\", \"{path}\"]\n"
        );
        let (_node, report) = build(&recipe, &[]);
        assert_eq!(report.result.outcome, Outcome::Error);
        assert!(report.result.steps.is_empty(), "nothing ran");
        let error = report.result.error.unwrap();
        assert!(error.contains("artifacts.paths[1]"), "{error}");
        assert!(error.contains(expected), "{error}");
    }
}
