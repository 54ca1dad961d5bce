//! The dashboard in a real browser: headless Chromium (Debian's package,
//! which `.ci/run` installs) loads the matrix page of a node with a passed
//! and a failed cell, and we check what a person sees there.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Maintainer, Repo, builder, declare, http};

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn the_matrix_page_shows_a_passed_and_a_failed_cell() {
    if !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("BUILDMESH_REQUIRE_CHROMIUM").is_none(),
            "{CHROMIUM} is missing; `.ci/run` installs Debian's chromium package"
        );
        eprintln!("skipped: no {CHROMIUM} (apt-get install chromium to run this test)");
        return;
    }
    let repo = Repo::new();
    repo.commit_file("README", "hello", "Add a README");
    let good = repo.commit_recipe(
        "[[step]]\nname = \"check\"\ncommand = \"test -f README\"\n",
        "Add the check",
    );
    let keys = Maintainer::new();
    let node = builder(vec![], &["linux"], &keys);
    let project = declare(
        keys.path(),
        &node,
        "shop",
        &repo,
        &["linux"],
        &node,
        &[&node],
    );
    wait_status(&node.http, &project, &good, "passed");
    repo.git(&["rm", "-q", "README"]);
    repo.git(&["commit", "-q", "-m", "Break <the> build"]);
    let bad = repo.git(&["rev-parse", "HEAD"]);
    wait_status(&node.http, &project, &bad, "failed");

    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("http://{}/projects/{project}", node.http))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish_within(output, Duration::from_secs(90));
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The page names the project and both commits, newest first, with the
    // hostile title shown as text.
    assert!(dom.contains(">shop<"), "{dom}");
    assert!(dom.contains("Break &lt;the&gt; build"), "{dom}");
    let at_bad = dom.find(&bad[..10]).expect("the failing commit is listed");
    let at_good = dom.find(&good[..10]).expect("the passing commit is listed");
    assert!(at_bad < at_good, "newest commit first");
    // Each cell says what it is in words as well as colour, and links to
    // its build.
    assert!(
        dom.contains("status passed") && dom.contains("✓ passed"),
        "{dom}"
    );
    assert!(
        dom.contains("status failed") && dom.contains("✗ failed"),
        "{dom}"
    );
    assert!(
        dom.contains("href=\"/results/"),
        "cells link to their builds"
    );
    // The broken branch is called out, with the first failing commit.
    assert!(dom.contains("first failing"), "{dom}");
}

/// Waits for `child` and its output, killing it past `limit` (a hung
/// browser must fail the test, not hang it).
fn finish_within(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id().to_string();
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match output.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid]).status();
            panic!("chromium took longer than {limit:?}");
        }
    }
}

fn wait_status(addr: &str, project: &str, commit: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, matrix) = http(
            addr,
            "GET",
            &format!("/api/v1/projects/{project}/matrix"),
            "",
        );
        let found = code == 200
            && matrix["rows"]
                .as_array()
                .unwrap()
                .iter()
                .any(|row| row["commit"] == commit && row["cells"][0]["status"] == status);
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{commit} never {status}: {matrix}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
