//! `scripts/complexity`, the complexity step of buildmesh's own recipe
//! (docs/recipe.md, "buildmesh's own recipe"): on a file whose functions'
//! complexity is counted by hand, with the real rust-code-analysis-cli;
//! and without the tool, where it must fail naming the command that
//! installs it. The tool is no Debian package and `scripts/setup` does not
//! install it, so the tests that run it are skipped without it (and fail
//! if `BUILDMESH_REQUIRE_RECIPE_TOOLS` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use buildmesh_test_servers::{PYTHON, REQUIRE_RECIPE_TOOLS_ENV, require, skip_not_installed};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TOOL: &str = "rust-code-analysis-cli";
const INSTALL: &str = "cargo install --locked rust-code-analysis-cli";

/// Functions whose complexity is 1 plus the decisions rust-code-analysis
/// counts (each `if`, `else if`, `&&`, `||`, `?` and match arm).
const SOURCE: &str = r#"
pub fn plain() -> u32 {
    1
}

pub fn branchy(x: i32) -> i32 {
    if x > 0 && x < 10 {
        1
    } else if x < 0 {
        2
    } else {
        3
    }
}

pub fn folded(items: &[i32]) -> Option<i32> {
    let first = items.first()?;
    let sum: i32 = items.iter().filter(|i| **i > 0 || **i < -5).sum();
    Some(first + sum)
}

pub fn matched(x: u8) -> &'static str {
    match x {
        0 => "zero",
        1 => "one",
        _ => "more",
    }
}

pub static SMALL: fn(u8) -> bool = |x| x > 1 && x < 5;
"#;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/complexity")
}

/// Runs the script with `path` as its `PATH` (`None` if Debian's Python,
/// which it falls back on, is missing and the test is skipped).
fn complexity(args: &[&Path], path: &str) -> Option<Output> {
    if !require("python3", PYTHON, "python3") {
        return None;
    }
    let output = Command::new(script())
        .args(args)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/complexity");
    Some(output)
}

/// Whether rust-code-analysis-cli runs here; skipped if not.
fn have_tool() -> bool {
    Command::new(TOOL)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
        || skip_not_installed(TOOL, INSTALL, REQUIRE_RECIPE_TOOLS_ENV)
}

fn path_env() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// `SOURCE` and a function of 16 `if`s (complexity 17) in `dir/src`.
fn write_crate(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let mut big = String::from("\npub fn big(x: u32) -> u32 {\n");
    for i in 0..16 {
        writeln!(big, "    if x == {i} {{\n        return {i};\n    }}").unwrap();
    }
    big.push_str("    x\n}\n");
    std::fs::write(src.join("lib.rs"), format!("{SOURCE}{big}")).unwrap();
    src
}

#[test]
fn metric_lines_count_each_function_with_its_closures() {
    if !have_tool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = write_crate(dir.path());
    let Some(output) = complexity(&[&src], &path_env()) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/complexity failed: {stderr}"
    );
    // plain 1, branchy 4, folded 3 (its closure's || counts in it),
    // matched 4 (3 arms), the static's closure on its own 2, big 17.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "mccabe_max 17\nmccabe_mean 5.17\nfunctions_over_15 1\nfunctions 6\n"
    );
    let first = stderr.lines().nth(1).unwrap_or_default();
    let line = SOURCE.lines().count() + 2;
    assert!(
        first.trim_start().starts_with("17 big (") && first.ends_with(&format!("lib.rs:{line})")),
        "the most complex function first, with where it is: {stderr}"
    );
}

#[test]
fn a_path_without_functions_fails_rather_than_report_nothing() {
    if !have_tool() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(output) = complexity(&[dir.path()], &path_env()) else {
        return;
    };
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("found no Rust function"), "{stderr}");
}

#[test]
fn without_the_tool_it_fails_naming_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_crate(dir.path());
    // A PATH with nothing on it: the tool cannot be found (and the script
    // falls back on Debian's Python).
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let Some(output) = complexity(&[&src], empty.to_str().unwrap()) else {
        return;
    };
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{TOOL} is missing")) && stderr.contains(INSTALL),
        "{stderr}"
    );
}
