//! The dashboard in a real browser: headless Chromium (Debian's package,
//! which `scripts/setup` installs) loads the matrix page of a node with a passed
//! and a failed cell, and we check what a person sees there; and a hostile
//! page on another loopback port tries to make the browser ban a peer and
//! force a build.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, builder, declare, entries, http, wait_converged};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; if not, the test fails if
/// `BUILDMESH_REQUIRE_CHROMIUM` is set (`scripts/test` sets it), and is
/// otherwise skipped, saying so.
fn have_chromium() -> bool {
    std::path::Path::new(CHROMIUM).exists()
        || buildmesh_test_servers::skip(CHROMIUM, "chromium", "BUILDMESH_REQUIRE_CHROMIUM")
}

/// Headless Chromium with a fresh profile, loading `url`; what it printed.
fn chromium(url: &str, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg("--dump-dom")
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = finish_within(child, Duration::from_secs(90));
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_matrix_page_shows_a_passed_and_a_failed_cell() {
    if !have_chromium() {
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

    let output = chromium(&format!("http://{}/projects/{project}", node.http), &[]);
    let dom = String::from_utf8_lossy(&output.stdout);
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

/// A page on another loopback port, in a browser where the operator has
/// opened the node's operator link, posts to the node's ban endpoint and
/// submits a force form to it. Both are refused: the peer stays connected
/// and no force build is signed. With the token, both work, so the node
/// could have done them.
#[test]
fn a_page_on_another_loopback_port_cannot_ban_or_force() {
    if !have_chromium() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let maintainer = keys.path().join("maintainer.key");
    let maintainer = maintainer.to_str().unwrap();
    let a = Node::launch(
        tempfile::tempdir().unwrap(),
        vec![],
        &["--maintainer-key", maintainer],
    );
    let b = Node::start(Some(&a));
    a.wait_connected(&b);
    let repo = Repo::new();
    repo.commit_file("README", "hello", "Add a README");
    // Nobody builds "nowhere", and a does not fetch local repositories: no
    // entry is written but the declaration and what this test asks for.
    let project = declare(keys.path(), &a, "shop", &repo, &["nowhere"], &a, &[]);
    wait_converged(&[&a, &b], 1, Duration::from_secs(30));

    let hostile = Hostile::serve(&hostile_page(&a, &project, &b.key()));
    let output = chromium(
        &format!("http://{}/", hostile.addr),
        &["--virtual-time-budget=5000"],
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    let seen = hostile.requests();
    // The browser held the operator's session while the page ran (browsers
    // send a host's cookies to all its ports, so this page's server sees it
    // too), and the ban request had been answered.
    let cookie = format!("buildmesh_operator_{}=", a.http.rsplit(':').next().unwrap());
    let done = seen
        .iter()
        .find(|(line, _)| line.starts_with("GET /done"))
        .unwrap_or_else(|| panic!("the page never finished: {seen:?}\n{dom}"));
    assert!(done.0.contains("ban=answered"), "{seen:?}");
    assert!(done.1.contains(&cookie), "no operator session: {seen:?}");
    assert!(
        seen.iter()
            .any(|(line, _)| line.starts_with("GET /submitted")),
        "the node never answered the form: {seen:?}"
    );
    assert_eq!(a.status()["entries"], 1, "a force build was signed");
    // b is still connected to a: what b takes reaches a.
    b.submit(&entries(7, 3));
    wait_converged(&[&a, &b], 4, Duration::from_secs(30));

    // The same with the token: the force is signed, the ban cuts b off.
    let form = "branch=main&reason=operator";
    let code = post_form(
        &a.http,
        &format!("/projects/{project}/force"),
        form,
        &a.bearer(),
    );
    assert_eq!(code, 303);
    wait_converged(&[&a], 5, Duration::from_secs(30));
    a.ban(&b, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.peers().contains(&b.key()) {
        assert!(Instant::now() < deadline, "the ban did not cut b off");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The hostile page. To stand for an operator who opened the operator
/// link in this browser earlier, it first fetches that link itself (the
/// page has no other way to learn the token); then it attacks. The form
/// posts into a frame: headless Chromium's `--dump-dom` never returns once
/// the page itself navigates away.
fn hostile_page(node: &Node, project: &str, peer: &str) -> String {
    let origin = format!("http://{}", node.http);
    format!(
        r#"<!DOCTYPE html>
<html><body>
<iframe name="sink"></iframe>
<form id="force" method="post" action="{origin}/projects/{project}/force" target="sink">
<input name="branch" value="main"><input name="reason" value="hostile">
</form>
<script>
(async () => {{
  await fetch("{link}", {{mode: "no-cors", credentials: "include"}});
  let ban = "answered";
  try {{
    await fetch("{origin}/api/v1/peers/{peer}/ban", {{method: "POST", mode: "no-cors", credentials: "include"}});
  }} catch (e) {{
    ban = "failed";
  }}
  await fetch("/done?ban=" + ban);
  document.querySelector("iframe").onload = () => fetch("/submitted");
  document.getElementById("force").submit();
}})();
</script>
</body></html>
"#,
        link = node.operator_link,
    )
}

/// A tiny HTTP server on 127.0.0.1 serving one page at `/`, answering
/// anything else with 204, and keeping each request's line and `Cookie`.
struct Hostile {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Hostile {
    fn serve(page: &str) -> Hostile {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (page, log) = (page.to_owned(), seen.clone());
        std::thread::spawn(move || {
            // A connection each thread: browsers open spare connections
            // they may never send a request on.
            for stream in listener.incoming().flatten() {
                let (page, log) = (page.clone(), log.clone());
                std::thread::spawn(move || answer(stream, &page, &log));
            }
        });
        Hostile { addr, seen }
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Reads one request from `stream`, notes it in `log`, answers it.
fn answer(
    mut stream: std::net::TcpStream,
    page: &str,
    log: &std::sync::Mutex<Vec<(String, String)>>,
) {
    use std::io::{BufRead, BufReader, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut cookie = String::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("cookie")
        {
            cookie = value.trim().to_owned();
        }
    }
    let line = line.trim().to_owned();
    let response = if line.starts_with("GET / ") {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{page}",
            page.len()
        )
    } else {
        "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_owned()
    };
    log.lock().unwrap().push((line, cookie));
    let _ = stream.write_all(response.as_bytes());
}

/// Posts a URL-encoded form with `Authorization: {authorization}`; the
/// status.
fn post_form(addr: &str, path: &str, form: &str, authorization: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response[9..12].parse().unwrap()
}
