//! The dashboard's pages and badges over a real socket on 127.0.0.1, from
//! views derived (as the node derives them) from signed entries: what a
//! person reads on the projects, audit and mesh pages, the badge snippet
//! of a project page, badges addressed by name, and a project's metrics
//! over time (its JSON and its charts).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_core::log::ChainWriter;
use buildmesh_core::view::{MatrixOptions, ProjectLog, Summary, matrix};
use buildmesh_http::views::{ProjectView, Views};
use buildmesh_http::{Backend, LogReader, NodeStatus, bind, json};
use buildmesh_protocol::{
    Body, BuildResult, BuilderPolicy, CommitAnnouncement, CommitId, Entry, Outcome,
    ProjectDeclaration, ProjectId, PublicKey, Timestamp,
};
use ed25519_dalek::SigningKey;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The time by the test server's clock.
const NOW: Timestamp = Timestamp(1_700_000_000_000);

/// A log of 42 entries whose digest is all sevens.
struct FixedLog;

impl LogReader for FixedLog {
    fn digest(&self) -> Result<(u64, [u8; 32]), String> {
        Ok((42, [7; 32]))
    }
}

fn declaration(name: &str) -> Body {
    Body::Project(ProjectDeclaration {
        name: name.into(),
        repository: format!("https://example.org/{name}.git"),
        branches: vec!["main".into()],
        platforms: vec!["linux".into(), "mac".into()],
        announcers: vec![],
        builders: BuilderPolicy::Open,
        builds_per_cell: 1,
    })
}

fn result(project: ProjectId, commit: &CommitId, platform: &str, outcome: Outcome) -> Body {
    Body::Result(BuildResult {
        project,
        commit: commit.clone(),
        platform: platform.into(),
        outcome,
        steps: vec![],
        artifacts: vec![],
        metrics: Default::default(),
        environment: Default::default(),
        error: None,
    })
}

/// What the test server holds: Ada's `shop` (one commit on `main`, passed
/// on linux and failed on mac, announced five minutes ago), Bob's `shop`
/// (no commit), and Ada's `my tools` (no commit).
struct World {
    ada: PublicKey,
    bob: PublicKey,
    shop: ProjectId,
    bobs_shop: ProjectId,
    tools: ProjectId,
    commit: CommitId,
    views: Views,
}

fn world() -> World {
    let mut ada = ChainWriter::new(SigningKey::from_bytes(&[1; 32]));
    let mut bob = ChainWriter::new(SigningKey::from_bytes(&[2; 32]));
    let mut builder = ChainWriter::new(SigningKey::from_bytes(&[3; 32]));
    let shop = ProjectId::derive(&ada.author(), "shop");
    let bobs_shop = ProjectId::derive(&bob.author(), "shop");
    let tools = ProjectId::derive(&ada.author(), "my tools");
    let commit = CommitId::from_bytes(&[0xc0; 20]).unwrap();
    let announced = Timestamp(NOW.0 - 5 * 60 * 1000);
    let mut entries: Vec<(ProjectId, Entry)> = vec![
        (shop, ada.write(Timestamp(1), declaration("shop")).unwrap()),
        (
            tools,
            ada.write(Timestamp(2), declaration("my tools")).unwrap(),
        ),
        (
            bobs_shop,
            bob.write(Timestamp(1), declaration("shop")).unwrap(),
        ),
    ];
    let announcement = Body::Announce(CommitAnnouncement {
        project: shop,
        branch: "main".into(),
        commit: commit.clone(),
        parents: vec![],
        title: "Fix the parser".into(),
        author: "Ada <ada@example.org>".into(),
        committed_at: announced,
    });
    entries.push((shop, ada.write(announced, announcement).unwrap()));
    for (at, platform, outcome) in [(10, "linux", Outcome::Passed), (20, "mac", Outcome::Failed)] {
        let body = result(shop, &commit, platform, outcome);
        let entry = builder.write(Timestamp(announced.0 + at), body).unwrap();
        entries.push((shop, entry));
    }
    let mut views = Views {
        at: NOW,
        ..Views::default()
    };
    for project in [shop, bobs_shop, tools] {
        let own = entries
            .iter()
            .filter(|(p, _)| *p == project)
            .map(|(_, e)| e);
        views.projects.insert(project, project_view(&project, own));
    }
    World {
        ada: ada.author(),
        bob: bob.author(),
        shop,
        bobs_shop,
        tools,
        commit,
        views,
    }
}

/// The views of `project` from its `entries`, as the views thread makes
/// them.
fn project_view<'e>(
    project: &ProjectId,
    entries: impl IntoIterator<Item = &'e Entry>,
) -> ProjectView {
    let log = ProjectLog::from_entries(project, entries, Default::default());
    let options = MatrixOptions {
        branch: None,
        rows_max: Some(50),
    };
    let derived = matrix(&log, NOW, &options).unwrap();
    let matrix_json: Arc<[u8]> = json::matrix(&derived).to_string().into_bytes().into();
    let summary = Summary::of(&derived);
    ProjectView {
        log: Arc::new(log),
        matrix_json,
        summary,
    }
}

/// A server of `views`, under `public_url` if given. The status the driver
/// publishes has 42 entries and, as the driver's does, no digest.
async fn serve(views: Views, public_url: Option<&str>) -> SocketAddr {
    let (publish, views) = watch::channel(Arc::new(views));
    std::mem::forget(publish);
    let (publish, status) = watch::channel(NodeStatus {
        public_key: "ab".repeat(32),
        entries: 42,
        ..NodeStatus::default()
    });
    std::mem::forget(publish);
    let (commands, node) = tokio::sync::mpsc::channel(8);
    std::mem::forget(node);
    let backend = Backend {
        status,
        commands,
        log: Arc::new(FixedLog),
        hook_secret: None,
        views,
        libp2p_metrics: Arc::new(String::new),
        blobs: None,
        live: None,
        operator: None,
        clock: || NOW,
    };
    let server = bind("127.0.0.1:0")
        .await
        .unwrap()
        .with_public_url(public_url.map(str::to_owned));
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(backend, std::future::pending()));
    addr
}

/// A response: status, head (lower-cased) and body.
struct Reply {
    code: u16,
    head: String,
    body: String,
}

/// One GET with `headers` over a fresh connection.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
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

/// The browser's Accept when it opens a URL itself.
const PAGE: (&str, &str) = ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8");

/// Item 13: the index names each project's newest commit (linking to its
/// page), its branch and age, and says each state in words with headers
/// and a legend; the JSON list carries the same.
#[tokio::test]
async fn the_projects_page_names_the_newest_commit_and_each_platforms_state() {
    let w = world();
    let addr = serve(w.views, None).await;
    let page = get(addr, "/", &[]).await;
    assert_eq!(page.code, 200);
    let html = page.body;
    let commit_href = format!("/projects/{}/commits/{}", w.shop, w.commit);
    assert!(
        html.contains(&format!(
            "<a class=\"id\" href=\"{commit_href}\" title=\"{}\">{}</a> Fix the parser",
            w.commit,
            w.commit.short()
        )),
        "{html}"
    );
    assert!(html.contains(&format!(
        "<a href=\"/projects/{}?branch=main\">main</a>",
        w.shop
    )));
    assert!(html.contains(">5 min ago</time>"));
    for header in [
        "Newest commit",
        "Branch",
        "Announced",
        "State",
        "Each platform",
    ] {
        assert!(html.contains(&format!("<th>{header}</th>")), "{header}");
    }
    assert!(html.contains("title=\"newest commit: failed\">✗ failed</a>"));
    assert!(html.contains("title=\"linux: passed\">✓ linux</a>"));
    assert!(html.contains("title=\"mac: failed\">✗ mac</a>"));
    assert!(html.contains("No commit announced yet"));
    assert!(html.contains("class=\"legend note\"") && html.contains("nobody builds it yet"));

    let list = get(addr, "/api/v1/projects", &[]).await;
    let list: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    let shop = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project"] == w.shop.to_string())
        .unwrap();
    assert_eq!(shop["newest"]["branches"], serde_json::json!(["main"]));
    assert_eq!(shop["newest"]["announced_at"], NOW.0 - 5 * 60 * 1000);
    assert_eq!(shop["newest"]["status"], "failed");
    assert_eq!(
        shop["newest"]["statuses"],
        serde_json::json!(["passed", "failed"])
    );
}

/// Item 11: the audit page gives a command that exists, with this node's
/// URL, and each result's project, commit, platform and outcome.
#[tokio::test]
async fn the_audit_page_gives_a_real_command_and_what_each_result_built() {
    let w = world();
    let addr = serve(w.views, None).await;
    let html = get(addr, "/audit", &[]).await.body;
    assert!(
        html.contains(&format!(
            "<code>curl -sS &#39;http://{addr}/api/v1/entries&#39; | buildmesh log verify</code>"
        )),
        "{html}"
    );
    assert!(!html.contains("<code>buildmesh verify</code>"));
    for header in [
        "Project", "Commit", "Platform", "Outcome", "Builder", "Trust",
    ] {
        assert!(html.contains(&format!("<th>{header}</th>")), "{header}");
    }
    assert!(html.contains("Results (2)"));
    assert_eq!(
        html.matches(&format!("<a href=\"/projects/{}\">shop</a>", w.shop))
            .count(),
        2
    );
    assert!(html.contains(&format!(
        "href=\"/projects/{}/commits/{}\" title=\"{}\">{}</a>",
        w.shop,
        w.commit,
        w.commit,
        w.commit.short()
    )));
    // Newest first: mac's failure was written after linux's pass.
    let mac = html.find("title=\"mac: failed\">✗ failed</a>").unwrap();
    let linux = html.find("title=\"linux: passed\">✓ passed</a>").unwrap();
    assert!(mac < linux);
    assert!(html.contains("<code>mac</code>") && html.contains("<code>linux</code>"));
}

/// Item 12: the mesh page shows the digest the log reader computed, over
/// as many entries as the node holds (the driver publishes no digest: the
/// page showed an empty one "covering 0 entries"), as the JSON does.
#[tokio::test]
async fn the_mesh_page_shows_the_digest_of_the_entries_it_counts() {
    let addr = serve(Views::default(), None).await;
    let html = get(addr, "/mesh", &[]).await.body;
    let sevens = "07".repeat(32);
    assert!(
        html.contains("<tr><th>Entries</th><td>42</td></tr>"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<code>{sevens}</code> <span class=\"note\">over all 42 entries</span>"
        )),
        "{html}"
    );
    assert!(!html.contains("covers 0"));
    let node = get(addr, "/api/v1/node", &[]).await;
    let node: serde_json::Value = serde_json::from_str(&node.body).unwrap();
    assert_eq!(
        (node["digest"].as_str(), node["digest_entries"].as_u64()),
        (Some(sevens.as_str()), Some(42))
    );
    assert_eq!(node["entries"], 42);
}

/// Item 14: the project page gives its badge as Markdown to copy, under
/// the node's public URL if it has one, else the address asked; and the
/// URL given answers the badge.
#[tokio::test]
async fn the_project_page_gives_its_badge_as_markdown_under_the_nodes_url() {
    let w = world();
    for public in [None, Some("https://ci.example.org")] {
        let addr = serve(w.views.clone(), public).await;
        let base = public.map_or_else(|| format!("http://{addr}"), str::to_owned);
        let html = get(addr, &format!("/projects/{}", w.shop), &[]).await.body;
        let badge = format!("{base}/badges/shop.svg?owner={}", w.ada);
        let markdown = format!("[![buildmesh]({badge})]({base}/projects/{})", w.shop);
        assert!(
            html.contains(&format!(
                "<pre class=\"snippet\"><code>{markdown}</code></pre>"
            )),
            "{html}"
        );
        let path = badge.strip_prefix(&base).unwrap();
        let svg = get(addr, path, &[]).await;
        assert_eq!(svg.code, 200);
        assert!(
            svg.body.contains("<title>shop: failed</title>"),
            "{}",
            svg.body
        );
    }
}

/// Item 14: badges by name; a name two owners use is a 409 naming both
/// projects (as a badge, or a page for a browser), settled by `?owner=`;
/// ids and their starts still work.
#[tokio::test]
async fn badges_are_addressed_by_name_and_an_ambiguous_name_is_a_409() {
    let w = world();
    let addr = serve(w.views, None).await;
    let badge = |path: String| async move { get(addr, &path, &[]).await };
    let title = |reply: &Reply| {
        let start = reply.body.find("<title>").unwrap() + 7;
        reply.body[start..reply.body.find("</title>").unwrap()].to_owned()
    };
    for (path, expected) in [
        ("/badges/my%20tools.svg".to_owned(), "my tools: unknown"),
        (format!("/badges/shop.svg?owner={}", w.ada), "shop: failed"),
        (
            format!("/badges/shop.svg?owner={}", &w.ada.to_string()[..6]),
            "shop: failed",
        ),
        (format!("/badges/shop.svg?owner={}", w.bob), "shop: unknown"),
        (
            format!("/badges/shop.svg?owner={}&platform=linux", w.ada),
            "shop linux: passed",
        ),
        (format!("/badges/{}.svg", w.shop), "shop: failed"),
        (format!("/badges/{}.svg", w.shop.short()), "shop: failed"),
        (format!("/badges/{}.svg", w.tools), "my tools: unknown"),
        ("/badges/nothing.svg".to_owned(), "buildmesh: unknown"),
    ] {
        let reply = badge(path.clone()).await;
        assert_eq!(reply.code, 200, "{path}");
        assert!(reply.head.contains("content-type: image/svg+xml"), "{path}");
        assert_eq!(title(&reply), expected, "{path}");
    }

    let ambiguous = badge("/badges/shop.svg".to_owned()).await;
    assert_eq!(ambiguous.code, 409);
    assert!(ambiguous.head.contains("content-type: image/svg+xml"));
    assert!(ambiguous.body.contains(">ambiguous name</text>"));
    let why = title(&ambiguous);
    assert!(why.contains("names 2 projects"), "{why}");
    for id in [w.shop, w.bobs_shop] {
        assert!(why.contains(&id.to_string()), "{why}");
    }
    assert!(
        why.contains(&format!("/badges/shop.svg?owner={}", w.bob)),
        "{why}"
    );

    let page = get(addr, "/badges/shop.svg", &[PAGE]).await;
    assert_eq!(page.code, 409);
    assert!(page.head.contains("content-type: text/html"));
    for id in [w.shop, w.bobs_shop] {
        assert!(page.body.contains(&id.to_string()), "{}", page.body);
    }
    let missing = get(addr, "/badges/nothing.svg", &[PAGE]).await;
    assert_eq!(missing.code, 404);
    assert!(missing.body.contains("It has: "), "{}", missing.body);
    assert!(
        missing
            .body
            .contains(&format!("my tools ({})", w.tools.short()))
    );
}

/// The attack the review found, tried over HTTP: a stranger declares
/// projects named exactly like my project's id and like the 12 digits of
/// it lists show. My badge by id still answers mine; by those 12 digits it
/// is ambiguous (409), never the stranger's.
#[tokio::test]
async fn a_stranger_naming_projects_after_my_id_does_not_take_my_badge() {
    let mut w = world();
    let mut eve = ChainWriter::new(SigningKey::from_bytes(&[9; 32]));
    let (full, short) = (w.shop.to_string(), w.shop.short());
    for (t, name) in [(1, full.as_str()), (2, short.as_str())] {
        let copycat = ProjectId::derive(&eve.author(), name);
        let entry = eve.write(Timestamp(t), declaration(name)).unwrap();
        w.views
            .projects
            .insert(copycat, project_view(&copycat, [&entry]));
    }
    let addr = serve(w.views, None).await;
    let by_id = get(addr, &format!("/badges/{full}.svg"), &[]).await;
    assert_eq!(by_id.code, 200);
    assert!(
        by_id.body.contains("<title>shop: failed</title>"),
        "{}",
        by_id.body
    );
    let by_start = get(addr, &format!("/badges/{short}.svg"), &[]).await;
    assert_eq!(by_start.code, 409, "{}", by_start.body);
    assert!(by_start.body.contains(&full), "{}", by_start.body);
}

/// A project `metered` on branches main and dev, on linux and mac, with
/// three commits on main whose results state `coverage` (linux 10, 30,
/// 20; mac 1, 2, 3) and one commit on dev (linux 99); the views and the
/// commits, oldest first.
fn metered() -> (ProjectId, Vec<CommitId>, Views) {
    let mut ada = ChainWriter::new(SigningKey::from_bytes(&[1; 32]));
    let mut builder = ChainWriter::new(SigningKey::from_bytes(&[3; 32]));
    let project = ProjectId::derive(&ada.author(), "metered");
    let mut declared = declaration("metered");
    if let Body::Project(p) = &mut declared {
        p.branches = vec!["main".into(), "dev".into()];
    }
    let mut entries = vec![ada.write(Timestamp(1), declared).unwrap()];
    let commits: Vec<CommitId> = (1..=4u8)
        .map(|n| CommitId::from_bytes(&[n; 20]).unwrap())
        .collect();
    let values = [(10.0, 1.0), (30.0, 2.0), (20.0, 3.0), (99.0, 99.0)];
    for (n, (commit, (linux, mac))) in commits.iter().zip(values).enumerate() {
        let at = Timestamp(NOW.0 - 60_000 + n as u64 * 1_000);
        let announcement = Body::Announce(CommitAnnouncement {
            project,
            branch: if n == 3 { "dev" } else { "main" }.into(),
            commit: commit.clone(),
            parents: vec![],
            title: format!("Change <{n}>"),
            author: "Ada <ada@example.org>".into(),
            committed_at: at,
        });
        entries.push(ada.write(at, announcement).unwrap());
        for (platform, value) in [("linux", linux), ("mac", mac)] {
            let mut body = result(project, commit, platform, Outcome::Passed);
            if let Body::Result(r) = &mut body {
                r.metrics.insert("coverage".into(), value);
            }
            entries.push(builder.write(at.plus_ms(10), body).unwrap());
        }
    }
    let mut views = Views {
        at: NOW,
        ..Views::default()
    };
    views
        .projects
        .insert(project, project_view(&project, &entries));
    (project, commits, views)
}

/// `GET /api/v1/projects/{project}/metrics` and its errors, as JSON.
async fn metrics_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let reply = get(addr, path, &[]).await;
    assert!(
        reply.head.contains("content-type: application/json"),
        "{path}: {}",
        reply.head
    );
    (reply.code, serde_json::from_str(&reply.body).unwrap())
}

/// Issue 17: every metric on every platform over the first declared
/// branch, oldest first, with last, min and max; the options narrow it;
/// malformed options are a 400 and unknown names a 404 naming what exists.
#[tokio::test]
async fn the_metrics_api_gives_each_series_oldest_first_and_says_what_exists() {
    let (project, commits, views) = metered();
    let addr = serve(views, None).await;
    let base = format!("/api/v1/projects/{project}/metrics");
    let (code, all) = metrics_json(addr, &base).await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(all["project"], project.to_string());
    assert_eq!(all["name"], "metered");
    assert_eq!(all["branch"], "main");
    assert_eq!(all["rows"], 50);
    let names: Vec<(String, String)> = all["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap().to_owned();
            (text("metric"), text("platform"))
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("coverage", "linux"),
        ("coverage", "mac"),
        ("duration_seconds", "linux"),
        ("duration_seconds", "mac"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(names, expected, "own metrics first, platforms as declared");
    let linux = &all["series"][0];
    let values: Vec<f64> = linux["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [10.0, 30.0, 20.0]);
    assert_eq!(
        (&linux["last"], &linux["min"], &linux["max"]),
        (
            &serde_json::json!(20.0),
            &serde_json::json!(10.0),
            &serde_json::json!(30.0)
        )
    );
    let first = &linux["points"][0];
    assert_eq!(first["commit"], commits[0].to_string());
    assert_eq!(first["title"], "Change <0>");
    assert_eq!(first["announced_at"], NOW.0 - 60_000);
    assert_eq!(first["result"].as_str().unwrap().len(), 64);

    let (_, one) = metrics_json(addr, &format!("{base}?metric=coverage&platform=mac&rows=2")).await;
    assert_eq!(one["series"].as_array().unwrap().len(), 1);
    let mac: Vec<f64> = one["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(mac, [2.0, 3.0], "the newest 2, oldest first");
    let (_, dev) = metrics_json(addr, &format!("{base}?branch=dev&metric=coverage")).await;
    assert_eq!(dev["branch"], "dev");
    assert_eq!(
        dev["series"][0]["points"][0]["commit"],
        commits[3].to_string()
    );
    assert_eq!(dev["series"][0]["last"], 99.0);

    for (query, code, says) in [
        ("rows=501", 400, "1 to 500"),
        ("rows=0", 400, "1 to 500"),
        ("rows=many", 400, "1 to 500"),
        ("branch=", 400, "1 to 256 bytes"),
        ("colour=red", 400, "unknown field"),
        (
            "branch=nope",
            404,
            "has no branch \"nope\"; it has \"dev\", \"main\"",
        ),
        ("platform=plan9", 404, "it declares \"linux\", \"mac\""),
        ("metric=speed", 404, "\"coverage\", \"duration_seconds\""),
    ] {
        let (got, body) = metrics_json(addr, &format!("{base}?{query}")).await;
        assert_eq!(got, code, "{query}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
    }
    let (code, _) = metrics_json(addr, "/api/v1/projects/nothex/metrics").await;
    assert_eq!(code, 400);
    let unknown = format!("/api/v1/projects/{}/metrics", "ab".repeat(32));
    let (code, body) = metrics_json(addr, &unknown).await;
    assert_eq!(code, 404, "{body}");
}

/// Issue 17: the page draws the same values, says so when there is
/// nothing to draw, and answers errors as pages.
#[tokio::test]
async fn the_metrics_page_draws_each_value_and_answers_errors_as_pages() {
    let (project, commits, mut views) = metered();
    let w = world();
    views
        .projects
        .insert(w.tools, w.views.projects[&w.tools].clone());
    let addr = serve(views, None).await;
    let page = get(
        addr,
        &format!("/projects/{project}/metrics?metric=coverage"),
        &[],
    )
    .await;
    assert_eq!(page.code, 200);
    assert!(page.head.contains("content-type: text/html"));
    let html = page.body;
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 2, "{html}");
    for (value, commit) in [
        ("10", &commits[0]),
        ("30", &commits[1]),
        ("20", &commits[2]),
    ] {
        assert!(
            html.contains(&format!("data-value=\"{value}\" data-commit=\"{commit}\"")),
            "{value}: {html}"
        );
    }
    assert!(html.contains("Change &lt;0&gt;: 10</title>"));
    assert!(!html.contains("Change <0>"));
    let matrix = get(addr, &format!("/projects/{project}"), &[]).await.body;
    assert!(matrix.contains(&format!("href=\"/projects/{project}/metrics\"")));

    let empty = get(addr, &format!("/projects/{}/metrics", w.tools), &[]).await;
    assert_eq!(empty.code, 200);
    assert!(
        empty.body.contains("Nothing to chart yet"),
        "{}",
        empty.body
    );
    assert!(empty.body.contains("<code>[metrics]</code>"));
    let missing = get(
        addr,
        &format!("/projects/{project}/metrics?metric=speed"),
        &[],
    )
    .await;
    assert_eq!(missing.code, 404);
    assert!(missing.head.contains("content-type: text/html"));
    assert!(
        missing.body.contains("&quot;coverage&quot;"),
        "{}",
        missing.body
    );
    let too_many = get(addr, &format!("/projects/{project}/metrics?rows=501"), &[]).await;
    assert_eq!(too_many.code, 400);
    assert!(too_many.body.contains("1 to 500"));
}
