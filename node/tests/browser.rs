//! The dashboard in a real browser: headless Chromium (Debian's package,
//! which `scripts/setup` installs) loads the matrix page of a node with a
//! passed and a failed cell, and we check what a person sees there; a
//! failing result page, measured to show its failure without scrolling; a
//! live page opened mid-build, followed to the result; a project's metrics
//! page, whose 20 known values are read back from its SVG; and a hostile page
//! on another loopback port tries to make the browser ban a peer and force
//! a build.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::{Maintainer, Node, Repo, builder, declare, entries, http, wait_cell, wait_converged};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless, without what a test does not need.
const FLAGS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
];

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
        .args(FLAGS)
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
    // Its badge, as Markdown to copy, under the address the browser used.
    let badge = format!("[![buildmesh](http://{}/badges/shop.svg?owner=", node.http);
    assert!(dom.contains(&badge), "{dom}");

    // The projects page names the newest commit, linking to its page, and
    // says each platform's state in words, under headers.
    let output = chromium(&format!("http://{}/", node.http), &[]);
    let dom = String::from_utf8_lossy(&output.stdout);
    let commit_link = format!("href=\"/projects/{project}/commits/{bad}\"");
    assert!(dom.contains(&commit_link), "{dom}");
    assert!(
        dom.contains(&format!(">{}</a> Break &lt;the&gt; build", &bad[..10])),
        "{dom}"
    );
    assert!(dom.contains("title=\"linux: failed\">✗ linux</a>"), "{dom}");
    assert!(dom.contains("<th>Newest commit</th>") && dom.contains("<th>Each platform</th>"));
    assert!(
        dom.contains(" ago</time>") || dom.contains(">just now</time>"),
        "{dom}"
    );
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

/// Headless Chromium driven over the DevTools protocol, for what
/// `--dump-dom` cannot show: where things are on screen, and a page that
/// changes and moves on by itself. Chromium reads commands on descriptor
/// 3 and answers on 4 (`--remote-debugging-pipe`), JSON each ended by a
/// NUL; a shell opens those descriptors on two FIFOs, so no unsafe code
/// is needed to hand them over.
struct Browser {
    child: std::process::Child,
    commands: std::fs::File,
    /// Every message Chromium sent, as a reader thread parsed it.
    messages: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: u64,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Browser {
    /// A fresh browser, 1280×800, with a fresh profile.
    fn launch() -> Browser {
        let pipes = tempfile::tempdir().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let (to, from) = (pipes.path().join("to"), pipes.path().join("from"));
        for fifo in [&to, &from] {
            assert!(Command::new("mkfifo").arg(fifo).status().unwrap().success());
        }
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec \"$0\" \"$@\" 3<'{}' 4>'{}'",
                to.display(),
                from.display()
            ))
            .arg(CHROMIUM)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--remote-debugging-pipe", "--window-size=1280,800"])
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // In the order the shell opens them; each open waits for its peer.
        let commands = std::fs::OpenOptions::new().write(true).open(&to).unwrap();
        let replies = std::fs::File::open(&from).unwrap();
        let (sender, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut reader = std::io::BufReader::new(replies);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).unwrap_or(0) > 0 {
                if message.last() == Some(&0) {
                    message.pop();
                }
                if let Ok(value) = serde_json::from_slice(&message)
                    && sender.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        Browser {
            child,
            commands,
            messages,
            next_id: 0,
            _dirs: (pipes, profile),
        }
    }

    /// Sends `method` (to the page of `session`, or to the browser) and
    /// waits for its answer: the result, or the error.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        use std::io::Write;
        self.next_id += 1;
        let id = self.next_id;
        let mut message = serde_json::json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if reply["id"] == id {
                return match reply.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    /// Opens `url` in a new tab; the session that talks to it.
    fn open(&mut self, url: &str) -> String {
        let target = self
            .call(
                None,
                "Target.createTarget",
                serde_json::json!({ "url": url }),
            )
            .unwrap();
        let params = serde_json::json!({ "targetId": target["targetId"], "flatten": true });
        let attached = self.call(None, "Target.attachToTarget", params).unwrap();
        attached["sessionId"].as_str().unwrap().to_owned()
    }

    /// The value of `expression` in the page (`None`: it threw, or the
    /// page was between documents).
    fn eval(&mut self, session: &str, expression: &str) -> Option<serde_json::Value> {
        let params = serde_json::json!({ "expression": expression, "returnByValue": true });
        let reply = self.call(Some(session), "Runtime.evaluate", params).ok()?;
        if reply.get("exceptionDetails").is_some() {
            return None;
        }
        reply["result"].get("value").cloned()
    }

    /// Evaluates `expression` until it is neither null nor false; that
    /// value.
    fn wait_for(&mut self, session: &str, expression: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            match self.eval(session, expression) {
                Some(value) if !value.is_null() && value != false => return value,
                _ => {}
            }
            if Instant::now() > deadline {
                let page = self.eval(session, "location.href + '\\n' + document.body.outerHTML");
                panic!("never true: {expression}\npage: {page:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the result page shows of a failing log, measured in the browser:
/// the marked lines of the "where it failed" box and whether its last is
/// on screen, and of the step's whole log box whether it overflows and
/// shows its end (and not its start) without being scrolled.
const MEASURE_FAILURE: &str = r#"(() => {
  const tail = document.getElementById('failure');
  const full = document.querySelector('#log-0 .log-box');
  if (!tail || !full) return null;
  const within = (rect, box) => rect.height > 0 && rect.top >= box.top - 1 && rect.bottom <= box.bottom + 1;
  const last = (box) => { const marks = box.querySelectorAll('mark.fail'); return marks[marks.length - 1]; };
  const start = document.createRange();
  start.setStart(full.querySelector('pre').firstChild, 0);
  start.setEnd(full.querySelector('pre').firstChild, 1);
  const screen = { top: 0, bottom: window.innerHeight };
  return {
    marks: [...tail.querySelectorAll('mark.fail')].map((m) => m.textContent),
    failure_on_screen: within(last(tail).getBoundingClientRect(), screen)
      && within(last(tail).getBoundingClientRect(), tail.getBoundingClientRect()),
    scrolled: window.scrollY,
    open: document.getElementById('log-0').open,
    overflows: full.scrollHeight > full.clientHeight + 10,
    end_shown: within(last(full).getBoundingClientRect(), full.getBoundingClientRect()),
    start_shown: within(start.getBoundingClientRect(), full.getBoundingClientRect()),
    colour: getComputedStyle(last(full)).backgroundColor,
  };
})()"#;

/// Item 8 of "the first hour of a maintainer": the result page of a
/// failing build shows the lines that say what failed without scrolling,
/// marked: in its "where it failed" box on screen, and at the end of the
/// step's log box, which opens there although the log is far longer.
#[test]
fn a_failing_result_shows_what_failed_without_scrolling() {
    if !have_chromium() {
        return;
    }
    let repo = Repo::new();
    let failing = "seq 1 300; echo 'FAILED tests/test_cart.py::test_total'; \
                   echo '==== 1 failed, 1317 passed in 0.12s ===='; exit 1";
    let commit = repo.commit_recipe(
        &format!("[[step]]\nname = \"test\"\ncommand = \"{failing}\"\n"),
        "A test that fails",
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
    let mut browser = Browser::launch();
    let cell = wait_cell(
        &node,
        &project,
        &commit,
        "linux",
        Duration::from_secs(60),
        |c| c["status"] == "failed",
    );
    let id = cell["results"][0]["id"].as_str().unwrap();
    let page = browser.open(&format!("http://{}/results/{id}", node.http));
    let seen = browser.wait_for(&page, MEASURE_FAILURE, Duration::from_secs(30));
    assert_eq!(
        seen["marks"],
        serde_json::json!([
            "FAILED tests/test_cart.py::test_total",
            "==== 1 failed, 1317 passed in 0.12s ===="
        ]),
        "{seen}"
    );
    assert_eq!(seen["failure_on_screen"], true, "{seen}");
    assert_eq!(seen["scrolled"], 0, "{seen}");
    assert_eq!(seen["open"], true, "the failing step's log is open: {seen}");
    assert_eq!(
        seen["overflows"], true,
        "the log is longer than its box: {seen}"
    );
    assert_eq!(seen["end_shown"], true, "{seen}");
    assert_eq!(seen["start_shown"], false, "{seen}");
    assert_eq!(
        seen["colour"], "rgb(139, 30, 30)",
        "marked lines stand out: {seen}"
    );
}

/// A step that prints `early` and says so in the project's cache (where
/// the test sees it), waits until the test creates `go` there (at most a
/// minute), then prints `late`.
const GATED: &str = "[[step]]\nname = \"slow\"\ncommand = 'echo early; touch \"$BUILDMESH_CACHE/early\"; \
                     for i in $(seq 600); do if [ -e \"$BUILDMESH_CACHE/go\" ]; then break; fi; \
                     sleep 0.1; done; echo late'\n";

/// Item 10 of "the first hour of a maintainer": a live page opened after
/// the build printed something shows it, then what follows, and moves to
/// the result when the build ends; the live address then sends there.
#[test]
fn a_live_page_opened_mid_build_shows_it_all_then_the_result() {
    if !have_chromium() {
        return;
    }
    let repo = Repo::new();
    let commit = repo.commit_recipe(GATED, "A step that waits");
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
    let mut browser = Browser::launch();
    let live = format!("/live/{project}/{commit}/linux");
    let cache = node.dir().join("cache").join(&project);
    wait_file(&cache.join("early"));
    // The step made the file, but its `early` may still be on its way to
    // the node's live hub: seen on the live stream, it is held there (the
    // hub keeps each chunk before it sends it on).
    wait_live_output(&node.http, &format!("/api/v1{live}"), "early");

    // Opened after the node had `early`, the page can only have it from
    // the backlog: the step prints nothing more until the test says so.
    let page = browser.open(&format!("http://{}{live}", node.http));
    let log = browser.wait_for(
        &page,
        "(() => { const log = document.getElementById('log'); \
         return log && log.textContent.includes('early') ? log.textContent : null; })()",
        Duration::from_secs(30),
    );
    let log = log.as_str().unwrap();
    assert!(log.contains("== slow =="), "{log}");
    assert_eq!(log.matches("early").count(), 1, "{log}");
    assert!(!log.contains("late"), "{log}");
    let heading = browser.eval(&page, "document.querySelector('h1').textContent");
    assert!(
        heading
            .as_ref()
            .and_then(|h| h.as_str())
            .is_some_and(|h| h.starts_with("Building")),
        "{heading:?}"
    );

    std::fs::write(cache.join("go"), "").unwrap();
    let shown = browser.wait_for(
        &page,
        "location.pathname.startsWith('/results/') && document.readyState === 'complete' \
         ? [location.pathname, document.body.textContent] : null",
        Duration::from_secs(60),
    );
    let (path, text) = (shown[0].as_str().unwrap(), shown[1].as_str().unwrap());
    assert!(text.contains("✓ passed"), "{text}");
    assert!(text.contains("early\nlate"), "{text}");
    // Asked again, the live address sends a browser to that result.
    assert_eq!(redirect(&node.http, &live), (303, path.to_owned()));
}

/// Reads the live stream at `path` until an `output` event carries
/// `text`: then the node's live hub holds it, for whoever subscribes next.
fn wait_live_output(addr: &str, path: &str, text: &str) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    // Only a safety net: the output is there within moments.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let carried = |seen: &[u8]| {
        String::from_utf8_lossy(seen)
            .split("\n\n")
            .any(|event| event.contains("event: output") && event.contains(text))
    };
    while !carried(&seen) {
        assert!(Instant::now() < deadline, "{text:?} never streamed");
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = Some(left.max(Duration::from_millis(1)));
        stream.set_read_timeout(timeout).unwrap();
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => panic!("the live stream ended: {}", String::from_utf8_lossy(&seen)),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(error) => panic!("{error}: {}", String::from_utf8_lossy(&seen)),
        }
    }
}

/// Waits until `path` exists (a step made it).
fn wait_file(path: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never made", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The status and `Location` of `GET path`.
fn redirect(addr: &str, path: &str) -> (u16, String) {
    use std::io::{BufRead, Write};
    let stream = std::net::TcpStream::connect(addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    write!(
        writer,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code = status.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut location = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line.trim_end().is_empty() {
            return (code, location);
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("location")
        {
            location = value.trim().to_owned();
        }
    }
}

/// The known coverage of the `i`th commit of the metrics test: fractions,
/// negatives and repeats, each printed exactly by the page.
fn coverage_of(i: u32) -> f64 {
    f64::from((i * 37) % 23) * 1.25 - 5.0 + f64::from(i) / 1000.0
}

/// Issue 17: a project of 20 commits, each with one trusted result whose
/// coverage is known; its metrics page, as Chromium renders it, draws the
/// 20 values oldest first, each point linking to its result and naming
/// its commit.
#[test]
fn the_metrics_page_draws_the_known_values_in_order() {
    use buildmesh_core::log::ChainWriter;
    use buildmesh_protocol::{
        Body, BuildResult, BuilderPolicy, Outcome, ProjectDeclaration, ProjectId, Timestamp,
    };
    use ed25519_dalek::SigningKey;

    if !have_chromium() {
        return;
    }
    let mut maintainer = ChainWriter::new(SigningKey::from_bytes(&[31; 32]));
    let mut builder = ChainWriter::new(SigningKey::from_bytes(&[32; 32]));
    let project = ProjectId::derive(&maintainer.author(), "metered");
    let declaration = Body::Project(ProjectDeclaration {
        name: "metered".into(),
        repository: "https://example.invalid/metered.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux".into()],
        announcers: Vec::new(),
        builders: BuilderPolicy::Only(vec![builder.author()]),
        builds_per_cell: 1,
    });
    let mut wire = vec![
        maintainer
            .write(Timestamp(1), declaration)
            .unwrap()
            .to_wire(),
    ];
    for i in 0..20u32 {
        let at = Timestamp(1_000 + u64::from(i) * 1_000);
        let announce = support::announcement(project, i, at);
        wire.push(maintainer.write(at, announce).unwrap().to_wire());
        let result = Body::Result(BuildResult {
            project,
            commit: support::commit_of(i),
            platform: "linux".into(),
            outcome: Outcome::Passed,
            steps: Vec::new(),
            artifacts: Vec::new(),
            metrics: [("coverage".to_owned(), coverage_of(i))].into(),
            environment: Default::default(),
            error: None,
        });
        wire.push(builder.write(at.plus_ms(500), result).unwrap().to_wire());
    }
    let node = Node::start(None);
    node.submit(&wire);
    let api = format!("/api/v1/projects/{project}/metrics?metric=coverage");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, answer) = http(&node.http, "GET", &api, "");
        let points = answer["series"][0]["points"].as_array().map_or(0, Vec::len);
        if code == 200 && points == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "never 20 points: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let output = chromium(
        &format!("http://{}/projects/{project}/metrics", node.http),
        &[],
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    let section = dom
        .split("<section class=\"metric\">")
        .find(|s| s.contains("<code>coverage</code>"))
        .unwrap_or_else(|| panic!("no coverage section: {dom}"));
    let chart = &section[..section.find("</svg>").expect("a chart")];
    let circles: Vec<&str> = chart.split("<circle").skip(1).collect();
    let attribute = |circle: &str, name: &str| -> String {
        let marker = format!("{name}=\"");
        let start = circle.find(&marker).expect(name) + marker.len();
        circle[start..start + circle[start..].find('"').unwrap()].to_owned()
    };
    let drawn: Vec<f64> = circles
        .iter()
        .map(|c| attribute(c, "data-value").parse().unwrap())
        .collect();
    let known: Vec<f64> = (0..20).map(coverage_of).collect();
    assert_eq!(drawn, known, "{chart}");
    let commits: Vec<String> = circles
        .iter()
        .map(|c| attribute(c, "data-commit"))
        .collect();
    let expected: Vec<String> = (0..20).map(|i| support::commit_of(i).to_string()).collect();
    assert_eq!(commits, expected);
    assert_eq!(chart.matches("<a href=\"/results/").count(), 20, "{chart}");
    assert!(chart.contains("commit number 19: "), "{chart}");
    assert!(
        dom.contains("<span class=\"platform\">linux</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("duration_seconds"),
        "durations are charted too"
    );
}
