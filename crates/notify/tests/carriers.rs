//! The carriers against real servers on 127.0.0.1, started here from the
//! Debian packages `scripts/setup` installs (buildmesh-test-servers): a mail
//! through aiosmtpd, a line through ngircd, webhooks and commit statuses
//! to HTTP receivers that record (and, for statuses, check) what they get.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::notify::{Event, EventKind, StatusState, StatusUpdate};
use buildmesh_core::view::CellStatus;
use buildmesh_notify::Error;
use buildmesh_notify::forge::{ForgeConfig, ForgeKind, StatusPoster};
use buildmesh_notify::irc::{self, IrcConfig};
use buildmesh_notify::message::{Notice, PlatformNote, Suspect, log_tail};
use buildmesh_notify::smtp::{Mailer, Security, SmtpConfig};
use buildmesh_notify::webhook::{Format, SIGNATURE_HEADER, Webhook, WebhookConfig};
use buildmesh_protocol::{CommitId, ProjectId, Timestamp};
use buildmesh_test_servers::{HttpSink, IrcListener, IrcServer, Request, SmtpSink, StatusApi};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// A long, non-ASCII log line: lettre sends such a body quoted-printable.
const LOG_LINE: &str = "thread 'parse::fast' panicked at src/parse.rs:42:9: assertion failed: «naïve» découpage of the input went wrong";

fn commit(byte: u8) -> CommitId {
    CommitId::from_bytes(&[byte; 20]).unwrap()
}

/// A notice as the node would gather it: two platforms failed the step
/// `test`, two suspects.
fn notice(kind: EventKind) -> Notice {
    let (earlier, this) = (commit(0x3c), commit(0x8d));
    let log = format!("running 3 tests\n\x1b[31mFAILED\x1b[0m parse::fast\n{LOG_LINE}\n");
    Notice {
        event: Event {
            project: ProjectId([1; 32]),
            branch: "main".into(),
            commit: this.clone(),
            kind,
            platforms: vec!["linux-aarch64".into(), "freebsd-x86_64".into()],
            blamelist: vec![earlier.clone(), this.clone()],
            at: Timestamp(1_764_000_000_000),
            row_decided: true,
            crossings: Vec::new(),
        },
        project_name: "demo".into(),
        title: "Make parsing faster — naïvely".into(),
        author: "Ada Lovelace <ada@example.org>".into(),
        platforms: ["linux-aarch64", "freebsd-x86_64"]
            .iter()
            .map(|p| PlatformNote {
                platform: p.to_string(),
                outcome: "failed".into(),
                step: Some("unit tests".into()),
                log_tail: log_tail(log.as_bytes()),
                link: Some(format!("https://ci.example.org/results/{p}")),
            })
            .collect(),
        blamelist: vec![
            Suspect {
                commit: earlier.to_string(),
                author: "Grace Hopper <grace@example.org>".into(),
                title: "Tidy the lexer".into(),
            },
            Suspect {
                commit: this.to_string(),
                author: "Ada Lovelace <ada@example.org>".into(),
                title: "Make parsing faster — naïvely".into(),
            },
        ],
        link: Some("https://ci.example.org/projects/demo/commits/8d8d8d8d".into()),
    }
}

#[tokio::test]
async fn mails_arrive_with_the_subject_envelope_blamelist_step_and_link() {
    if !SmtpSink::available() {
        return;
    }
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&SmtpConfig {
        host: "127.0.0.1".into(),
        port: sink.port(),
        security: Security::Plain,
        credentials: None,
        from: "buildmesh <ci@example.org>".into(),
        to: vec![
            "Ada Lovelace <ada@example.org>".into(),
            "dev@lists.example.org".into(),
        ],
    })
    .unwrap();
    let (broken, fixed) = (notice(EventKind::Broken), notice(EventKind::Fixed));
    mailer.send(&broken).await.unwrap();
    mailer.send(&fixed).await.unwrap();

    let mails = sink.wait_for(2, WAIT);
    assert_eq!(mails.len(), 2, "one mail per event, not per recipient");
    let mail = &mails[0];
    assert_eq!(mail.header("subject"), Some(broken.subject().as_str()));
    assert_eq!(mail.header("from"), Some("buildmesh <ci@example.org>"));
    let to = mail.header("to").unwrap();
    assert!(
        to.contains("ada@example.org") && to.contains("dev@lists.example.org"),
        "{to}"
    );
    assert_eq!(mail.header("x-mailfrom"), Some("ci@example.org"));
    let envelope = mail.header("x-rcptto").unwrap();
    assert!(
        envelope.contains("ada@example.org") && envelope.contains("dev@lists.example.org"),
        "{envelope}"
    );
    assert_eq!(
        mail.header("message-id"),
        Some(format!("<{}@buildmesh>", broken.id()).as_str())
    );
    // The body, decoded, is exactly the text: blamelist, failing step and
    // its log, the links.
    assert_eq!(
        mail.body.trim_end(),
        broken.text().trim_end(),
        "raw:\n{}",
        String::from_utf8_lossy(&mail.raw)
    );
    for wanted in [
        "Blamelist (the commits since the last passing build):",
        "  3c3c3c3c  Grace Hopper <grace@example.org>  Tidy the lexer",
        "  8d8d8d8d  Ada Lovelace <ada@example.org>  Make parsing faster — naïvely",
        "linux-aarch64: failed, step \"unit tests\" failed",
        "freebsd-x86_64: failed, step \"unit tests\" failed",
        LOG_LINE,
        "Page     https://ci.example.org/projects/demo/commits/8d8d8d8d",
        "https://ci.example.org/results/freebsd-x86_64",
    ] {
        assert!(
            mail.body.contains(wanted),
            "{wanted:?} is not in:\n{}",
            mail.body
        );
    }
    assert_eq!(mails[1].header("subject"), Some(fixed.subject().as_str()));
    assert!(
        mails[1]
            .header("subject")
            .unwrap()
            .contains("main fixed on")
    );
}

fn irc_config(port: u16, nick: &str) -> IrcConfig {
    IrcConfig {
        host: "127.0.0.1".into(),
        port,
        tls: false,
        nick: nick.into(),
        channel: "#ci".into(),
        channel_key: None,
        password: None,
    }
}

#[tokio::test]
async fn the_bot_joins_and_says_the_line_even_when_its_nick_is_taken() {
    if !IrcServer::available() {
        return;
    }
    let server = IrcServer::start();
    let listener = IrcListener::join(server.port(), "watcher", "#ci");

    let broken = notice(EventKind::Broken);
    irc::say(&irc_config(server.port(), "buildmesh"), &[broken.line()])
        .await
        .unwrap();
    let said = listener.wait_for_message(|m| m.from == "buildmesh", WAIT);
    assert_eq!(said.target, "#ci");
    assert_eq!(said.text, broken.line());
    assert_eq!(listener.joins(), ["buildmesh"]);

    // The listener holds "watcher": the bot takes "watcher1".
    let fixed = notice(EventKind::Fixed);
    irc::say(&irc_config(server.port(), "watcher"), &[fixed.line()])
        .await
        .unwrap();
    let said = listener.wait_for_message(|m| m.text == fixed.line(), WAIT);
    assert_eq!(said.from, "watcher1");
    assert_eq!(listener.joins(), ["buildmesh", "watcher1"]);
    assert_eq!(listener.messages().len(), 2, "{:?}", listener.lines());
}

fn webhook(url: String, format: Format, secret: Option<&[u8]>, token: Option<&str>) -> Webhook {
    Webhook::new(WebhookConfig {
        url,
        format,
        secret: secret.map(<[u8]>::to_vec),
        token: token.map(str::to_owned),
        source: "https://ci.example.org".into(),
    })
    .unwrap()
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_cloudevent_is_signed_and_sent_again_after_a_500() {
    let sink = HttpSink::start(vec![500]);
    let secret = b"webhook secret";
    let hook = webhook(
        format!("{}/hooks/ci", sink.url()),
        Format::CloudEvents,
        Some(secret),
        None,
    );
    let broken = notice(EventKind::Broken);

    match hook.send(&broken).await {
        Err(Error::Status { status: 500, .. }) => {}
        other => panic!("the first send should fail with 500: {other:?}"),
    }
    hook.send(&broken).await.unwrap();

    let requests = sink.wait_for(2, WAIT);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 201]
    );
    assert_eq!(
        requests[0].body, requests[1].body,
        "a retry sends the same event"
    );
    let request = &requests[1];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hooks/ci")
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/cloudevents+json")
    );
    let event = request.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "org.buildmesh.build.broken");
    assert_eq!(event["source"], "https://ci.example.org");
    assert_eq!(event["id"], broken.id());
    assert_eq!(event["data"]["commit"]["id"], "8d".repeat(20));
    assert_eq!(event["data"]["platforms"][1]["failed_step"], "unit tests");
    assert_eq!(
        event["data"]["blamelist"][0]["author"],
        "Grace Hopper <grace@example.org>"
    );

    let signature = request.header(SIGNATURE_HEADER).unwrap();
    assert_eq!(signature, hmac_hex(secret, &request.body));
    assert_ne!(signature, hmac_hex(b"another secret", &request.body));
}

#[tokio::test]
async fn slack_gets_text_and_matrix_a_put_per_event_with_the_token() {
    let sink = HttpSink::start(Vec::new());
    let broken = notice(EventKind::Broken);
    webhook(
        format!("{}/services/T0/B0/x", sink.url()),
        Format::Slack,
        None,
        None,
    )
    .send(&broken)
    .await
    .unwrap();
    let room = "/_matrix/client/v3/rooms/!ci:example.org/send/m.room.message";
    webhook(
        format!("{}{room}", sink.url()),
        Format::Matrix,
        None,
        Some("syt_secret"),
    )
    .send(&broken)
    .await
    .unwrap();

    let requests = sink.wait_for(2, WAIT);
    let slack: &Request = &requests[0];
    assert_eq!(
        (slack.method.as_str(), slack.path.as_str()),
        ("POST", "/services/T0/B0/x")
    );
    assert_eq!(slack.header("content-type"), Some("application/json"));
    assert_eq!(
        slack.header(SIGNATURE_HEADER),
        None,
        "no secret, no signature"
    );
    let body = slack.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(
        body["text"].as_str().unwrap().starts_with(&broken.line()),
        "{body}"
    );

    let matrix = &requests[1];
    assert_eq!(matrix.method, "PUT");
    assert_eq!(matrix.path, format!("{room}/{}", broken.id()));
    assert_eq!(matrix.header("authorization"), Some("Bearer syt_secret"));
    let body = matrix.json();
    assert_eq!(body["msgtype"], "m.text");
    assert!(
        body["body"].as_str().unwrap().contains(&broken.line()),
        "{body}"
    );
}

fn status(state: StatusState) -> StatusUpdate {
    StatusUpdate {
        project: ProjectId([1; 32]),
        commit: commit(0x8d),
        platform: "linux-aarch64".into(),
        state,
        cell: match state {
            StatusState::Pending => CellStatus::Claimed,
            StatusState::Success => CellStatus::Passed,
            StatusState::Failure => CellStatus::Failed,
            StatusState::Error => CellStatus::Error,
        },
        result: None,
        results: 1,
        at: Timestamp(1_764_000_000_000),
    }
}

fn poster(kind: ForgeKind, api: String, token: &str) -> StatusPoster {
    StatusPoster::new(ForgeConfig {
        kind,
        api,
        repository: "octo/demo".into(),
        token: token.into(),
    })
    .unwrap()
}

#[tokio::test]
async fn github_statuses_have_the_documented_shape() {
    let sink = HttpSink::github_statuses("ghp_test");
    let github = poster(ForgeKind::GitHub, sink.api_root(), "ghp_test");
    let link = "https://ci.example.org/projects/demo/commits/8d8d8d8d";
    github
        .post(&status(StatusState::Pending), None)
        .await
        .unwrap();
    for state in [
        StatusState::Success,
        StatusState::Failure,
        StatusState::Error,
    ] {
        github.post(&status(state), Some(link)).await.unwrap();
    }
    let wrong = poster(ForgeKind::GitHub, sink.api_root(), "ghp_wrong");
    match wrong.post(&status(StatusState::Success), Some(link)).await {
        Err(Error::Status { status: 401, .. }) => {}
        other => panic!("a wrong token should be refused: {other:?}"),
    }

    let requests = sink.wait_for(5, WAIT);
    for (request, state) in requests
        .iter()
        .zip(["pending", "success", "failure", "error"])
    {
        assert!(request.valid(), "{:?}", request.problems);
        assert_eq!(request.status, 201);
        assert_eq!(
            request.path,
            format!("/repos/octo/demo/statuses/{}", "8d".repeat(20))
        );
        assert_eq!(request.header("authorization"), Some("Bearer ghp_test"));
        let body = request.json();
        assert_eq!(body["state"], state);
        assert_eq!(body["context"], "buildmesh/linux-aarch64");
        assert!(
            body["description"]
                .as_str()
                .unwrap()
                .contains("linux-aarch64")
        );
    }
    assert!(requests[0].json()["target_url"].is_null());
    assert_eq!(requests[1].json()["target_url"], link);
    assert_eq!(requests[4].status, 401);
}

#[tokio::test]
async fn gitea_statuses_carry_a_token_authorization() {
    let sink = HttpSink::statuses(StatusApi::Gitea, "gitea_test");
    assert!(sink.api_root().ends_with("/api/v1"));
    poster(ForgeKind::Gitea, sink.api_root(), "gitea_test")
        .post(
            &status(StatusState::Failure),
            Some("https://ci.example.org/r"),
        )
        .await
        .unwrap();
    let requests = sink.wait_for(1, WAIT);
    let request = &requests[0];
    assert!(request.valid(), "{:?}", request.problems);
    assert_eq!(
        request.path,
        format!("/api/v1/repos/octo/demo/statuses/{}", "8d".repeat(20))
    );
    assert_eq!(request.header("authorization"), Some("token gitea_test"));
    assert_eq!(request.json()["state"], "failure");
}
