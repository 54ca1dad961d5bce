//! Operator writes (bans, force builds) over a real socket on 127.0.0.1:
//! being on this machine is not enough, the operator token is needed.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::ChainWriter;
use buildmesh_core::view::{ProjectLog, Summary};
use buildmesh_http::views::{ProjectView, Views};
use buildmesh_http::{Backend, Command, LogReader, NodeStatus, Operator, bind};
use buildmesh_protocol::{Body, BuilderPolicy, ProjectDeclaration, ProjectId, Timestamp};
use ed25519_dalek::SigningKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const PEER: &str = "4998499849984998499849984998499849984998499849984998499849984998";

struct Empty;

impl LogReader for Empty {
    fn digest(&self) -> Result<(u64, [u8; 32]), String> {
        Ok((0, [0; 32]))
    }
}

/// A server holding one declared project, whose node side obeys every
/// ban and force and says on `asked` what it was asked, before it answers.
async fn server() -> (SocketAddr, ProjectId, mpsc::Receiver<String>) {
    let mut writer = ChainWriter::new(SigningKey::from_bytes(&[1; 32]));
    let declaration = ProjectDeclaration {
        name: "shop".into(),
        repository: "https://example.org/shop.git".into(),
        branches: vec!["main".into()],
        platforms: vec!["linux".into()],
        announcers: vec![],
        builders: BuilderPolicy::Open,
        builds_per_cell: 1,
    };
    let project = ProjectId::derive(&writer.author(), "shop");
    let entry = writer
        .write(Timestamp(1), Body::Project(declaration))
        .unwrap();
    let mut views = Views::default();
    views.projects.insert(
        project,
        ProjectView {
            log: Arc::new(ProjectLog::from_entries(
                &project,
                [&entry],
                Default::default(),
            )),
            matrix_json: Arc::from(&b"{}"[..]),
            summary: Summary {
                project,
                name: "shop".into(),
                owner: writer.author(),
                repository: String::new(),
                platforms: Vec::new(),
                newest: None,
            },
        },
    );
    let (publish, views) = watch::channel(Arc::new(views));
    std::mem::forget(publish);
    let (_publish, status) = watch::channel(NodeStatus::default());
    std::mem::forget(_publish);
    let (commands, mut node) = mpsc::channel(8);
    let backend = Backend {
        status,
        commands,
        log: Arc::new(Empty),
        hook_secret: None,
        views,
        libp2p_metrics: Arc::new(String::new),
        blobs: None,
        live: None,
        operator: Some(Operator {
            token: TOKEN.to_owned(),
            token_file: "/data/operator.token".into(),
        }),
        clock: || Timestamp(1_700_000_000_000),
    };
    let server = bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend, std::future::pending()));
    let (tell, asked) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(command) = node.recv().await {
            match command {
                Command::Ban { peer, reply } => {
                    tell.send(format!("ban {}", hex::encode(peer)))
                        .await
                        .unwrap();
                    let _ = reply.send(Ok(()));
                }
                Command::Unban { peer, reply } => {
                    tell.send(format!("unban {}", hex::encode(peer)))
                        .await
                        .unwrap();
                    let _ = reply.send(Ok(()));
                }
                Command::Force { target, reply, .. } => {
                    tell.send(format!("force {target:?}")).await.unwrap();
                    let _ = reply.send(Ok(()));
                }
                _ => {}
            }
        }
    });
    (addr, project, asked)
}

/// A response: status, head (lower-cased) and body.
struct Reply {
    code: u16,
    head: String,
    body: String,
}

/// One HTTP/1.1 request with `headers` (Host is added) over a fresh
/// connection, as curl in a build step would send it.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    Reply {
        code: head[9..12].parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

impl Reply {
    /// The first value of header `name` (lower-case).
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }
}

/// Logs in with the operator link; the cookie to send back.
async fn session(addr: SocketAddr) -> String {
    let reply = send(addr, "GET", &format!("/operator?token={TOKEN}"), &[], "").await;
    assert_eq!(reply.code, 303, "{}", reply.body);
    let line = reply.header("set-cookie").expect("a session cookie");
    line.split(';').next().unwrap().to_owned()
}

fn nothing_asked(asked: &mut mpsc::Receiver<String>) {
    assert_eq!(asked.try_recv().ok(), None, "the node was asked to act");
}

#[tokio::test]
async fn a_ban_needs_the_operator_token_as_a_bearer_token() {
    let (addr, _, mut asked) = server().await;
    let path = format!("/api/v1/peers/{PEER}/ban");
    // A build step on this machine, without the token.
    let reply = send(addr, "POST", &path, &[], "").await;
    assert_eq!(reply.code, 403, "{}", reply.body);
    let error: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(error.contains("operator token"), "{error}");
    assert!(
        error.contains("Authorization: Bearer $(cat /data/operator.token)"),
        "{error}"
    );
    nothing_asked(&mut asked);
    // A wrong token, a token of the wrong length, and the token in another
    // scheme: refused.
    let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
    for authorization in [wrong.as_str(), "Bearer 0011", TOKEN, "Basic 00112233"] {
        let reply = send(addr, "POST", &path, &[("Authorization", authorization)], "").await;
        assert_eq!(reply.code, 403, "{authorization}: {}", reply.body);
        nothing_asked(&mut asked);
    }
    // The dashboard's session cookie does not ban: no dashboard form bans.
    let cookie = session(addr).await;
    let reply = send(addr, "POST", &path, &[("Cookie", &cookie)], "").await;
    assert_eq!(reply.code, 403, "{}", reply.body);
    assert!(
        reply.body.contains("Authorization: Bearer"),
        "{}",
        reply.body
    );
    nothing_asked(&mut asked);
    // The token, but sent by a page on another loopback port.
    let bearer = format!("Bearer {TOKEN}");
    let from_page = [
        ("Authorization", bearer.as_str()),
        ("Origin", "http://127.0.0.1:9999"),
    ];
    let reply = send(addr, "POST", &path, &from_page, "").await;
    assert_eq!(reply.code, 403, "{}", reply.body);
    nothing_asked(&mut asked);
    // The token: obeyed, both ways.
    let reply = send(addr, "POST", &path, &[("Authorization", &bearer)], "").await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert!(reply.body.contains("\"banned\":true"), "{}", reply.body);
    assert_eq!(asked.try_recv().ok(), Some(format!("ban {PEER}")));
    let reply = send(addr, "DELETE", &path, &[("Authorization", &bearer)], "").await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert_eq!(asked.try_recv().ok(), Some(format!("unban {PEER}")));
}

#[tokio::test]
async fn the_operator_link_sets_a_session_cookie_and_leaves_the_address_bar() {
    let (addr, _, _) = server().await;
    let wrong = send(addr, "GET", "/operator?token=00", &[], "").await;
    assert_eq!(wrong.code, 403);
    assert_eq!(wrong.header("set-cookie"), None);
    assert!(
        wrong.body.contains("wrong operator token"),
        "{}",
        wrong.body
    );
    let reply = send(addr, "GET", &format!("/operator?token={TOKEN}"), &[], "").await;
    assert_eq!(reply.code, 303);
    assert_eq!(reply.header("location"), Some("/"));
    let cookie = reply.header("set-cookie").unwrap();
    let name = format!("buildmesh_operator_{}=", addr.port());
    assert!(cookie.starts_with(&name), "{cookie}");
    for attribute in ["; httponly", "; samesite=strict", "; path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains(TOKEN), "the cookie is not the token");
}

#[tokio::test]
async fn a_forced_build_needs_the_session_and_the_csrf_field() {
    let (addr, project, mut asked) = server().await;
    let matrix = format!("/projects/{project}");
    let force = format!("/projects/{project}/force");
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    // Without the session, the matrix has no form, and posting one fails.
    let page = send(addr, "GET", &matrix, &[], "").await;
    assert_eq!(page.code, 200, "{}", page.body);
    assert!(!page.body.contains("name=\"csrf\""), "{}", page.body);
    assert!(page.body.contains("/operator?token="), "{}", page.body);
    let reply = send(addr, "POST", &force, &form, "branch=main").await;
    assert_eq!(reply.code, 403);
    assert!(reply.body.contains("operator token"), "{}", reply.body);
    nothing_asked(&mut asked);

    let cookie = session(addr).await;
    let with_cookie = [form[0], ("Cookie", cookie.as_str())];
    let page = send(addr, "GET", &matrix, &with_cookie[1..], "").await;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the operator's matrix page has the form")
        .to_owned();
    assert!(!csrf.is_empty() && csrf != TOKEN);
    // The cookie alone, as a page on another loopback port could make the
    // browser send it: refused, whatever the CSRF field holds.
    for body in [
        "branch=main".to_owned(),
        "branch=main&csrf=".to_owned(),
        format!("branch=main&csrf={}", TOKEN),
    ] {
        let reply = send(addr, "POST", &force, &with_cookie, &body).await;
        assert_eq!(reply.code, 403, "{body}: {}", reply.body);
        assert!(reply.body.contains("reload the page"), "{}", reply.body);
        nothing_asked(&mut asked);
    }
    // The CSRF field without the cookie: refused.
    let body = format!("branch=main&csrf={csrf}");
    let reply = send(addr, "POST", &force, &form, &body).await;
    assert_eq!(reply.code, 403, "{}", reply.body);
    nothing_asked(&mut asked);
    // Both: the node is asked, and the browser goes back to the matrix.
    let reply = send(addr, "POST", &force, &with_cookie, &body).await;
    assert_eq!(reply.code, 303, "{}", reply.body);
    assert_eq!(reply.header("location"), Some(matrix.as_str()));
    assert_eq!(
        asked.try_recv().ok(),
        Some("force Branch(\"main\")".to_owned())
    );
}

#[tokio::test]
async fn no_page_or_answer_may_be_framed() {
    let (addr, project, _) = server().await;
    for path in [
        "/".to_owned(),
        format!("/projects/{project}"),
        "/api/v1/node".to_owned(),
        "/operator".to_owned(),
        "/no/such/page".to_owned(),
    ] {
        let reply = send(addr, "GET", &path, &[], "").await;
        assert_eq!(
            reply.header("content-security-policy"),
            Some("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(reply.header("x-frame-options"), Some("deny"), "{path}");
    }
}
