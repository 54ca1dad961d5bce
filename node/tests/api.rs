//! The HTTP API of a real node: every bad request is a 4xx with a JSON
//! error, never a 5xx.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};
use support::{Node, Repo, declare, entries, http, http_raw, http_with, wait_converged};

/// The curl that the audit page's command is pasted with (Debian's curl,
/// which `scripts/setup` installs).
const CURL: &str = "/usr/bin/curl";

#[test]
fn bad_parameters_and_unknown_ids_are_4xx_with_a_json_error() {
    let repo = Repo::new();
    repo.commit_recipe("[[step]]\nname = \"x\"\ncommand = \"true\"\n", "first");
    let node = Node::start(None);
    let keys = tempfile::tempdir().unwrap();
    let project = declare(keys.path(), &node, "api", &repo, &["nowhere"], &node, &[]);
    let matrix = format!("/api/v1/projects/{project}/matrix");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http(&node.http, "GET", &matrix, "").0 != 200 {
        assert!(Instant::now() < deadline, "the project never showed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let zeros = "0".repeat(64);
    let cases: &[(&str, &str, u16)] = &[
        ("GET", "/api/v1/projects/zz/matrix", 400),
        ("GET", &format!("/api/v1/projects/{zeros}/matrix"), 404),
        ("GET", &format!("{matrix}?rows=0"), 400),
        ("GET", &format!("{matrix}?rows=1001"), 400),
        ("GET", &format!("{matrix}?rows=many"), 400),
        ("GET", &format!("{matrix}?colour=red"), 400),
        ("GET", &format!("{matrix}?branch="), 400),
        ("GET", "/api/v1/entries/zz", 400),
        ("GET", &format!("/api/v1/entries/{zeros}"), 404),
        ("GET", "/api/v1/blobs/not-hex", 400),
        ("POST", "/api/v1/entries", 400),
        // Operator writes need the token before anything else is looked at.
        ("POST", "/api/v1/peers/zz/ban", 403),
        ("POST", "/api/v1/hooks/github", 404),
        ("GET", "/api/v1/nothing-here", 404),
    ];
    for (method, path, expected) in cases {
        let (code, body) = http(&node.http, method, path, "{\"not\": \"entries\"}");
        assert_eq!(code, *expected, "{method} {path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {body}"
        );
    }
    // Good requests still answer.
    let (code, body) = http(
        &node.http,
        "GET",
        &format!("{matrix}?rows=5&branch=main"),
        "",
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(&node.http, "GET", "/api/v1/projects", "");
    assert_eq!(
        (code, body["projects"][0]["project"].as_str()),
        (200, Some(project.as_str()))
    );
    // Pages and badges of unknown things are 4xx too.
    for path in [
        format!("/projects/{zeros}"),
        "/results/zz".into(),
        format!("/results/{zeros}"),
    ] {
        let (code, _) = http_raw(&node.http, &path);
        assert!((400..500).contains(&code), "{path}: {code}");
    }
    let (code, svg) = http_raw(&node.http, &format!("/badges/{project}.svg"));
    assert_eq!(code, 200);
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    // By its name too, as the project page's snippet gives it.
    let (code, svg) = http_raw(&node.http, "/badges/api.svg");
    assert_eq!(code, 200);
    assert!(String::from_utf8(svg).unwrap().contains("<title>api: "));
}

/// What a build step could do on the node's machine: `curl -X POST
/// http://127.0.0.1:7878/api/v1/peers/KEY/ban`. Without the operator
/// token it is refused and the peer stays; with it, the peer is cut off.
#[test]
fn a_client_on_this_machine_without_the_operator_token_cannot_ban() {
    let a = Node::start(None);
    let b = Node::start(Some(&a));
    a.wait_connected(&b);
    assert_eq!(
        a.operator_link,
        format!("http://{}/operator?token={}", a.http, a.token())
    );
    let path = format!("/api/v1/peers/{}/ban", b.key());
    let wrong = format!("Bearer {}", b.token());
    for headers in [vec![], vec![("Authorization", wrong.as_str())]] {
        let (code, body) = http_with(&a.http, "POST", &path, "", &headers);
        assert_eq!(code, 403, "{body}");
        let error = body["error"].as_str().unwrap();
        let file = a.dir().join("operator.token");
        assert!(
            error.contains(&format!("Authorization: Bearer $(cat {})", file.display())),
            "{error}"
        );
    }
    // b was not cut off: what it takes reaches a.
    b.submit(&entries(7, 3));
    wait_converged(&[&a, &b], 3, Duration::from_secs(30));
    // The operator, with the token from the data dir, can.
    a.ban(&b, true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.peers().contains(&b.key()) {
        assert!(Instant::now() < deadline, "the ban did not cut b off");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET as HTTP/1.0: the body comes unchunked, until the server closes.
fn get_1_0(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head[9..12].parse().unwrap(), body.to_string())
}

#[test]
fn the_whole_log_streams_as_a_verifiable_export_and_resumes() {
    let node = Node::start(None);
    let signed = support::entries(31, 2_500);
    node.submit(&signed);
    let (code, body) = get_1_0(&node.http, "/api/v1/entries");
    assert_eq!(code, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2_501, "a header and every entry");
    assert!(lines[0].contains("buildmesh-log-export"));
    // The export verifies with the same tool an auditor would use.
    let mut verify = std::process::Command::new(env!("CARGO_BIN_EXE_buildmesh"))
        .args(["log", "verify", "-", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    verify
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let verdict = verify.wait_with_output().unwrap();
    assert!(
        verdict.status.success(),
        "{}",
        String::from_utf8_lossy(&verdict.stdout)
    );
    // Resuming with what one holds sends only the rest.
    let author = node_author(&signed[0]);
    let (code, rest) = get_1_0(&node.http, &format!("/api/v1/entries?have={author}:1000"));
    assert_eq!(code, 200);
    assert_eq!(rest.lines().count(), 1 + 1_500);
    let (code, _) = get_1_0(&node.http, "/api/v1/entries?have=nonsense");
    assert_eq!(code, 400);
}

/// The author of an entry's wire bytes (content bytes 1..33 after the
/// 64-byte signature and the version byte).
fn node_author(wire: &[u8]) -> String {
    hex::encode(&wire[65..97])
}

/// One `GET` with this `Host`: the status and the body.
fn get_as(addr: &str, host: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    (response[9..12].parse().unwrap(), response)
}

/// Issue 13: the Host check holds whatever the node is bound to; the
/// names its operator lists (`--http-host`, `http_hosts`) are answered,
/// hostile names (DNS rebinding) are a 421 that says what to set.
#[test]
fn a_node_answers_the_host_names_its_operator_lists_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::launch(dir, vec![], &["--http-host", "ci.example.org"]);
    let port = node.http.rsplit(':').next().unwrap().to_owned();
    for (host, expected) in [
        (format!("ci.example.org:{port}"), 200),
        (node.http.clone(), 200),
        (format!("rebound.example:{port}"), 421),
    ] {
        let (code, response) = get_as(&node.http, &host, "/api/v1/node");
        assert_eq!(code, expected, "{host}: {response}");
        if code == 421 {
            assert!(response.contains("http_hosts"), "{response}");
        }
    }
}

/// The text of the first `<code>` after `marker` in `html`, unescaped as
/// a person copying it would get it.
fn code_after(html: &str, marker: &str) -> String {
    let rest = &html[html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker}: {html}"))..];
    let start = rest.find("<code>").unwrap() + "<code>".len();
    let end = start + rest[start..].find("</code>").unwrap();
    rest[start..end]
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The dashboard issue, items 11 and 12, on a real node: the mesh page's
/// digest is the log's, over as many entries as it counts (it showed an
/// empty digest "covering 0 entries"), and the audit page's command,
/// pasted into a shell, verifies the node's log (it named a command that
/// does not exist).
#[test]
fn the_mesh_digest_covers_the_entries_counted_and_the_audit_command_verifies_the_log() {
    let node = Node::start(None);
    node.submit(&entries(41, 23));
    wait_converged(&[&node], 23, Duration::from_secs(30));
    let digest = node.status()["digest"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, html) = http_raw(&node.http, "/mesh");
        let html = String::from_utf8(html).unwrap();
        assert_eq!(code, 200);
        assert!(
            html.contains("<tr><th>Entries</th><td>23</td></tr>"),
            "{html}"
        );
        let shown =
            format!("<code>{digest}</code> <span class=\"note\">over all 23 entries</span>");
        if html.contains(&shown) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mesh page never showed {shown}: {html}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, html) = http_raw(&node.http, "/audit");
    assert_eq!(code, 200);
    let command = code_after(&String::from_utf8(html).unwrap(), "run:</p>");
    let url = format!("http://{}/api/v1/entries", node.http);
    assert_eq!(command, format!("curl -sS '{url}' | buildmesh log verify"));
    // What the command does, without curl: this node's export, verified.
    let (code, export) = get_1_0(&node.http, "/api/v1/entries");
    assert_eq!(code, 200);
    let verdict = verify_text(
        std::process::Command::new(env!("CARGO_BIN_EXE_buildmesh")),
        &["log", "verify"],
        &export,
    );
    assert!(
        verdict.status.success(),
        "{}",
        String::from_utf8_lossy(&verdict.stdout)
    );
    // And the command itself, pasted into a shell: it needs curl, which
    // fails the test if `BUILDMESH_REQUIRE_CURL` is set (`scripts/test`
    // sets it), and is otherwise skipped, saying so.
    if std::path::Path::new(CURL).exists()
        || buildmesh_test_servers::skip(CURL, "curl", "BUILDMESH_REQUIRE_CURL")
    {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_buildmesh"))
            .parent()
            .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let pasted = std::process::Command::new("sh")
            .args(["-c", &command])
            .env("PATH", path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&pasted.stdout);
        assert!(
            pasted.status.success(),
            "{report}{}",
            String::from_utf8_lossy(&pasted.stderr)
        );
        assert!(report.contains("23"), "{report}");
    }
}

/// `command args`, with `input` on its standard input; what it printed.
fn verify_text(
    mut command: std::process::Command,
    args: &[&str],
    input: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What Prometheus 2 sends when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,\
    text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The `content-type` line of a response head from `http_get`.
fn content_type(head: &str) -> &str {
    head.lines()
        .find_map(|line| line.strip_prefix("content-type: "))
        .unwrap_or_default()
}

/// Issue 16, item 17: `/metrics` of a node with a peer is OpenMetrics to
/// a scraper that asks for it and otherwise the Prometheus text format,
/// which `promtool check metrics` parses and lints clean (a counter typed
/// under a name without `_total` made it exit 3); libp2p's families are
/// named `libp2p_…` once.
#[test]
fn metrics_are_served_as_asked_and_pass_promtool() {
    if !buildmesh_test_servers::Prometheus::available() {
        return;
    }
    let a = Node::start(None);
    let b = Node::start(Some(&a));
    a.wait_connected(&b);
    let (code, head, text) = support::http_get(&a.http, "/metrics", &[]);
    assert_eq!(code, 200);
    assert_eq!(
        content_type(&head),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(head.contains("\nvary: accept\r\n"), "{head}");
    if let Err(said) = buildmesh_test_servers::check_metrics(&text) {
        panic!("{said}\n{}", String::from_utf8_lossy(&text));
    }
    let text = String::from_utf8(text).unwrap();
    for line in [
        "# TYPE buildmesh_builds_total counter",
        "buildmesh_builds_total{outcome=\"passed\"} 0",
        "# TYPE libp2p_swarm_connections_established_total counter",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(!text.contains("libp2p_libp2p_"), "{text}");
    assert!(!text.contains("# EOF"), "{text}");

    let (code, head, openmetrics) =
        support::http_get(&a.http, "/metrics", &[("Accept", PROMETHEUS_ACCEPT)]);
    assert_eq!(code, 200);
    assert_eq!(
        content_type(&head),
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let openmetrics = String::from_utf8(openmetrics).unwrap();
    assert!(openmetrics.ends_with("\n# EOF\n"), "{openmetrics}");
    assert_eq!(openmetrics.matches("# EOF").count(), 1, "{openmetrics}");
    for line in [
        "# TYPE buildmesh_builds counter",
        "buildmesh_builds_total{outcome=\"passed\"} 0",
        "# TYPE libp2p_swarm_connections_established counter",
        "# UNIT buildmesh_sync_age_seconds seconds",
    ] {
        assert!(
            openmetrics.lines().any(|l| l == line),
            "no {line:?} in\n{openmetrics}"
        );
    }
    let (_, head, _) = support::http_get(&a.http, "/metrics", &[("Accept", "text/plain")]);
    assert_eq!(
        content_type(&head),
        "text/plain; version=0.0.4; charset=utf-8"
    );
}

/// Prometheus itself scrapes a node and takes its counters as counters
/// (served as text 0.0.4 with OpenMetrics names, they read as untyped),
/// its units as units, and every sample.
#[test]
fn prometheus_reads_the_counters_as_counters() {
    if !buildmesh_test_servers::Prometheus::available() {
        return;
    }
    let node = Node::start(None);
    let prometheus = buildmesh_test_servers::Prometheus::scraping(&node.http);
    let target = prometheus.scraped();
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
    for (family, kind, unit) in [
        ("buildmesh_builds", "counter", ""),
        ("buildmesh_entries_received", "counter", ""),
        ("buildmesh_entries", "gauge", ""),
        ("buildmesh_sync_age_seconds", "gauge", "seconds"),
        ("libp2p_swarm_dial_attempt", "counter", ""),
    ] {
        let metadata = prometheus.api(&format!("/api/v1/metadata?metric={family}"));
        assert_eq!(metadata[family][0]["type"], kind, "{family}: {metadata}");
        assert_eq!(metadata[family][0]["unit"], unit, "{family}: {metadata}");
    }
    let builds = prometheus.api("/api/v1/query?query=buildmesh_builds_total");
    assert_eq!(builds["result"].as_array().unwrap().len(), 4, "{builds}");
}
