//! The HTTP API of a real node: every bad request is a 4xx with a JSON
//! error, never a 5xx.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};
use support::{Node, Repo, declare, http, http_raw};

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
        ("POST", "/api/v1/peers/zz/ban", 400),
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
}
