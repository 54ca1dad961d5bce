//! The servers themselves: a status sink refuses what GitHub would, and
//! every server is gone once dropped.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_test_servers::{HttpSink, IrcListener, IrcServer, SmtpSink};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// Sends one HTTP/1.1 request by hand; the status line's code.
fn post(port: u16, path: &str, headers: &str, body: &str) -> u16 {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_status_sink_refuses_what_github_would() {
    let sink = HttpSink::github_statuses("ghp_test");
    let sha = "ab".repeat(20);
    let path = format!("/repos/octo/demo/statuses/{sha}");
    let good_headers = "Authorization: Bearer ghp_test\r\nAccept: application/vnd.github+json\r\nUser-Agent: test\r\nContent-Type: application/json\r\n";
    let good = r#"{"state":"success","context":"buildmesh/linux","target_url":"https://ci.example.org/r","description":"Passed"}"#;
    assert_eq!(post(sink.port(), &path, good_headers, good), 201);
    let bad = r#"{"state":"passed","target_url":"ci.example.org"}"#;
    assert_eq!(post(sink.port(), &path, good_headers, bad), 422);
    let no_accept = "Authorization: token ghp_test\r\nContent-Type: application/json\r\n";
    assert_eq!(post(sink.port(), &path, no_accept, good), 422);
    assert_eq!(
        post(
            sink.port(),
            "/repos/octo/demo/statuses/main",
            good_headers,
            good
        ),
        422
    );
    assert_eq!(
        post(sink.port(), &path, "Authorization: Bearer nope\r\n", good),
        401
    );
    assert_eq!(
        post(sink.port(), "/repos/octo/statuses", good_headers, good),
        404
    );

    let requests = sink.wait_for(6, Duration::from_secs(5));
    assert!(requests[0].valid(), "{:?}", requests[0].problems);
    assert_eq!(requests[1].problems.len(), 3, "{:?}", requests[1].problems);
    assert_eq!(requests[2].problems.len(), 2, "{:?}", requests[2].problems);
    assert!(
        requests[3].problems[0].contains("40 hex"),
        "{:?}",
        requests[3].problems
    );
    assert!(requests[4..].iter().all(|r| !r.valid()));
}

fn refused(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err()
}

#[test]
fn servers_are_gone_once_dropped() {
    let http = HttpSink::start(vec![]);
    let port = http.port();
    drop(http);
    assert!(refused(port));
    if SmtpSink::available() {
        let smtp = SmtpSink::start();
        let port = smtp.port();
        assert!(smtp.mails().is_empty());
        drop(smtp);
        assert!(refused(port));
    }
    if IrcServer::available() {
        let irc = IrcServer::start();
        let listener = IrcListener::join(irc.port(), "alone", "#empty");
        assert!(listener.joins().is_empty());
        let port = irc.port();
        drop(irc);
        assert!(refused(port));
    }
}
