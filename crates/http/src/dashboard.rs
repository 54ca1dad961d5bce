//! The dashboard's routes: each gathers what a page of [`crate::pages`]
//! shows, from the published views and status (or the driver, for one
//! entry), and answers HTML. Errors are pages too, with the right status.

use crate::pages::{self, AuditResult, ResultView, Site};
use crate::views::ProjectView;
use crate::{AppState, Command, Lookup, badge, fetch_entry};
use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use buildmesh_core::view::{
    CellStatus, Fact, Matrix, MatrixOptions, Named, NotSelected, Policy, ProjectLog, Summary,
    flaky_of, matrix, only_flaky_failures, proven_flaky, pulls, select_project,
};
use buildmesh_protocol::{BlobHash, EntryId, ForceTarget, ProjectId};
use serde::Deserialize;
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// How much of a step's log the result page shows: its tail.
pub const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// Rows of the matrix page.
pub const PAGE_ROWS: usize = 50;

/// Pull requests listed under the matrix.
pub const PAGE_PULLS: usize = 20;

fn page(status: StatusCode, html: String) -> Response {
    (status, Html(html)).into_response()
}

pub(crate) fn not_found(state: &AppState, what: &str) -> Response {
    let key = state.status.borrow().public_key.clone();
    page(
        StatusCode::NOT_FOUND,
        pages::not_found(Site { node_key: &key }, what),
    )
}

pub(crate) fn problem(state: &AppState, status: StatusCode, what: &str) -> Response {
    let key = state.status.borrow().public_key.clone();
    page(status, pages::error(Site { node_key: &key }, what))
}

/// The published views of `project` for a page: a 400 page if it is not
/// a project id at all, a 404 page if no such project is declared (as
/// docs/http-api.md says, and as the JSON routes answer).
pub(crate) fn page_view(state: &AppState, project: &str) -> Result<ProjectView, Box<Response>> {
    let Ok(id) = project.parse::<ProjectId>() else {
        return Err(Box::new(problem(
            state,
            StatusCode::BAD_REQUEST,
            "a project id is 64 hex digits (as `buildmesh project declare` prints)",
        )));
    };
    let found = state.views.borrow().projects.get(&id).cloned();
    found.ok_or_else(|| {
        Box::new(not_found(
            state,
            "no declared project with this id in this node's log",
        ))
    })
}

/// `/`: every project.
pub(crate) async fn index(State(state): State<AppState>) -> Response {
    let views = state.views.borrow().clone();
    let list: Vec<Summary> = views.projects.values().map(|v| v.summary.clone()).collect();
    let key = state.status.borrow().public_key.clone();
    page(
        StatusCode::OK,
        pages::projects(Site { node_key: &key }, &list, (state.clock)()),
    )
}

/// The URL people reach this node's dashboard at, for URLs a page gives
/// them to copy: the operator's `public_url`, else `http://` and the
/// `Host` the request came with (which the server checked is one of its
/// names: [`crate::local::known_host`]); anything in it but a host name,
/// address and port is not used, and the URLs are then relative.
pub(crate) fn base_url(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    host.map_or_else(String::new, |host| format!("http://{host}"))
}

/// `?branch=NAME`.
#[derive(Debug, Deserialize)]
pub(crate) struct BranchQuery {
    branch: Option<String>,
}

/// `/projects/{project}`: the matrix, with the force form for the
/// operator's browser.
pub(crate) async fn project(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Path(project): Path<String>,
    Query(query): Query<BranchQuery>,
) -> Response {
    let view = match page_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let at = state.views.borrow().at;
    let key = state.status.borrow().public_key.clone();
    let branch = query.branch.filter(|b| !b.is_empty() && b.len() <= 256);
    let options = MatrixOptions {
        branch: branch.clone(),
        rows_max: Some(PAGE_ROWS),
    };
    let csrf = crate::local::from_this_machine(&client, &headers)
        .ok()
        .and_then(|()| state.operator.csrf_for(&headers))
        .map(str::to_owned);
    let base = base_url(&state, &headers);
    let html = tokio::task::spawn_blocking(move || {
        let pulls = pulls(&view.log, at, PAGE_PULLS);
        matrix(&view.log, at, &options).map(|m| {
            pages::matrix_with_pulls(
                Site { node_key: &key },
                &m,
                pulls.as_ref(),
                branch.as_deref(),
                csrf.as_deref(),
                Some(&base),
                &flaky_cells(&view.log, &m),
            )
        })
    })
    .await;
    match html {
        Ok(Some(html)) => page(StatusCode::OK, html),
        Ok(None) => not_found(
            &state,
            "no declared project with this id in this node's log",
        ),
        Err(_) => problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed",
        ),
    }
}

/// The cells of `m` whose only failures are flaky tests, judged by the
/// flaky tests of the same rows.
fn flaky_cells(log: &ProjectLog, m: &Matrix<'_>) -> pages::FlakyCells {
    let flaky = proven_flaky(log, &flaky_of(log, m));
    let mut cells = pages::FlakyCells::new();
    if flaky.is_empty() {
        return cells;
    }
    for (n, row) in m.rows.iter().enumerate() {
        for (column, cell) in row.cells.iter().enumerate() {
            if only_flaky_failures(log, cell, &flaky) {
                cells.insert((n, column));
            }
        }
    }
    cells
}

/// `/projects/{project}/pulls/{number}`: one pull request's heads.
pub(crate) async fn pull(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, String)>,
) -> Response {
    let view = match page_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let Some(number) = crate::projects::pull_number(&number) else {
        return problem(
            &state,
            StatusCode::BAD_REQUEST,
            "a pull request number is a whole number from 1",
        );
    };
    let at = state.views.borrow().at;
    let key = state.status.borrow().public_key.clone();
    let html = tokio::task::spawn_blocking(move || {
        buildmesh_core::view::pull(&view.log, number, at)
            .map(|p| pages::pull(Site { node_key: &key }, &p))
    })
    .await;
    match html {
        Ok(Some(html)) => page(StatusCode::OK, html),
        Ok(None) => not_found(
            &state,
            "this project has no announced pull request with this number",
        ),
        Err(_) => problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed",
        ),
    }
}

/// `/projects/{project}/commits/{commit}`.
pub(crate) async fn commit(
    State(state): State<AppState>,
    Path((project, commit)): Path<(String, String)>,
) -> Response {
    let view = match page_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let Some(commit) = crate::commit::parse(&commit) else {
        return problem(
            &state,
            StatusCode::BAD_REQUEST,
            "a commit id is 40 or 64 hex digits",
        );
    };
    let at = state.views.borrow().at;
    let key = state.status.borrow().public_key.clone();
    let html = tokio::task::spawn_blocking(move || {
        crate::commit::with_commit(&view.log, at, &commit, |m, row, artifacts| {
            pages::commit(
                Site { node_key: &key },
                m.name,
                &m.project,
                row,
                m.platforms,
                artifacts,
            )
        })
    })
    .await;
    match html {
        Ok(Some(html)) => page(StatusCode::OK, html),
        Ok(None) => not_found(&state, "this project has no announced commit with this id"),
        Err(_) => problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed",
        ),
    }
}

/// `GET /api/v1/results/{id}`: a build result as JSON, with whether the
/// project trusts its builder.
pub(crate) async fn result_json(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = crate::hex32(&id) else {
        return crate::error(StatusCode::BAD_REQUEST, "a result id is 64 hex digits");
    };
    let entry = match fetch_entry(&state, id).await {
        Ok(entry) => entry,
        Err(Lookup::Missing) => {
            return crate::error(
                StatusCode::NOT_FOUND,
                "no entry with this id in this node's log",
            );
        }
        Err(Lookup::Stopping) => {
            return crate::error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
        }
    };
    let Some(result) = entry.body().result() else {
        return crate::error(StatusCode::NOT_FOUND, "this entry is not a build result");
    };
    let trusted = state
        .views
        .borrow()
        .projects
        .get(&result.project)
        .and_then(|view| {
            Policy::of(&view.log).map(|p| p.counts_result(&entry.author(), entry.seq()))
        })
        .unwrap_or(false);
    axum::Json(crate::json::result(&entry, result, trusted)).into_response()
}

/// `/results/{id}`: a build result with its steps and logs' tails.
pub(crate) async fn result(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = crate::hex32(&id) else {
        return problem(
            &state,
            StatusCode::BAD_REQUEST,
            "an entry id is 64 hex digits",
        );
    };
    let entry = match fetch_entry(&state, id).await {
        Ok(entry) => entry,
        Err(Lookup::Missing) => {
            return not_found(&state, "no entry with this id in this node's log");
        }
        Err(Lookup::Stopping) => {
            return problem(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "the node is shutting down",
            );
        }
    };
    let Some(result) = entry.body().result() else {
        return not_found(&state, "this entry is not a build result");
    };
    let project_view = state.views.borrow().projects.get(&result.project).cloned();
    let (name, trusted) = match &project_view {
        Some(view) => {
            let policy = Policy::of(&view.log);
            (
                policy
                    .as_ref()
                    .map_or("", |p| p.declaration.name.as_str())
                    .to_owned(),
                policy.is_some_and(|p| p.counts_result(&entry.author(), entry.seq())),
            )
        }
        None => (String::new(), false),
    };
    let hashes: Vec<BlobHash> = result.steps.iter().map(|s| s.log).collect();
    let details = entry.body().tests().and_then(|t| t.details);
    let blobs = state.blobs.clone();
    let (logs, failing_tests) =
        tokio::task::spawn_blocking(move || read_blobs(blobs.as_deref(), &hashes, details))
            .await
            .unwrap_or_default();
    let key = state.status.borrow().public_key.clone();
    let view = ResultView {
        id: &EntryId(id),
        builder: &entry.author(),
        project_name: &name,
        project: &result.project,
        result,
        written_at: entry.timestamp(),
        signature_ok: true,
        trusted,
        logs,
        tests: entry.body().tests(),
        failing_tests,
        attestation: entry.body().attestation(),
    };
    page(
        StatusCode::OK,
        pages::result(Site { node_key: &key }, &view),
    )
}

/// What the result page reads from blobs: each step's log tail, and the
/// failing tests of the details blob, of those this node holds.
fn read_blobs(
    dir: Option<&std::path::Path>,
    logs: &[BlobHash],
    details: Option<BlobHash>,
) -> (Vec<Option<String>>, Option<Vec<pages::FailingTest>>) {
    let tails = logs
        .iter()
        .map(|hash| dir.and_then(|dir| tail(dir, hash)))
        .collect();
    let failing = details
        .zip(dir)
        .and_then(|(hash, dir)| failing_tests(dir, &hash));
    (tails, failing)
}

/// The failing tests of a details blob this node holds, if it is no
/// larger than [`pages::DETAILS_BYTES_MAX`] and is the documented JSON.
fn failing_tests(dir: &std::path::Path, hash: &BlobHash) -> Option<Vec<pages::FailingTest>> {
    use std::io::Read;
    let file = std::fs::File::open(dir.join(hash.to_string())).ok()?;
    if file.metadata().ok()?.len() > pages::DETAILS_BYTES_MAX {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(pages::DETAILS_BYTES_MAX)
        .read_to_end(&mut bytes)
        .ok()?;
    pages::parse_details(&bytes)
}

/// The last [`LOG_TAIL_BYTES`] of a blob this node holds, as text.
fn tail(dir: &std::path::Path, hash: &BlobHash) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(dir.join(hash.to_string())).ok()?;
    let size = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(size.saturating_sub(LOG_TAIL_BYTES)))
        .ok()?;
    let mut bytes = Vec::new();
    file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `/mesh`: this node and its peers, with the log's digest read as
/// `GET /api/v1/node` reads it.
pub(crate) async fn mesh(State(state): State<AppState>) -> Response {
    let status = match crate::status_with_digest(&state).await {
        Ok(status) => status,
        Err(why) => return problem(&state, StatusCode::INTERNAL_SERVER_ERROR, &why),
    };
    page(
        StatusCode::OK,
        pages::mesh(
            Site {
                node_key: &status.public_key,
            },
            &status,
        ),
    )
}

/// `/audit`: how to verify the log, fork proofs, and every result with
/// what it built, its signer and trust, newest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let views = state.views.borrow().clone();
    let mut results = Vec::new();
    for view in views.projects.values() {
        let policy = Policy::of(&view.log);
        let name = policy.as_ref().map_or("", |p| p.declaration.name.as_str());
        for (commit, facts) in &view.log.cells {
            for fact in facts {
                let Fact::Result { outcome } = fact.what else {
                    continue;
                };
                let trusted = policy
                    .as_ref()
                    .is_some_and(|p| p.counts_result(&fact.author, fact.seq));
                let result = AuditResult {
                    id: fact.id,
                    project: view.log.project,
                    project_name: name,
                    commit,
                    platform: view.log.platforms.label(fact.platform).unwrap_or("?"),
                    outcome,
                    builder: fact.author,
                    trusted,
                };
                results.push((fact.at, result));
            }
        }
    }
    results.sort_by(|(a, x), (b, y)| b.cmp(a).then(x.id.cmp(&y.id)));
    let results: Vec<AuditResult<'_>> = results.into_iter().map(|(_, r)| r).collect();
    let key = state.status.borrow().public_key.clone();
    let base = base_url(&state, &headers);
    page(
        StatusCode::OK,
        pages::audit(Site { node_key: &key }, &views.forks, &results, &base),
    )
}

/// `?platform=LABEL&branch=NAME&owner=KEY` of a badge.
#[derive(Debug, Deserialize)]
pub(crate) struct BadgeQuery {
    platform: Option<String>,
    branch: Option<String>,
    owner: Option<String>,
}

/// `/badges/{project}.svg`: the newest commit's status, on one platform or
/// over all of them (failed if any failed, then error, then building,
/// passed when all passed). `{project}` is a name, a full id or the start
/// of one, as `buildmesh status --project` takes it ([`select_project`]);
/// `?owner=` (the owner's key or its start) picks among projects of one
/// name. A name several projects share is a 409 naming them; a project
/// this node does not know is an `unknown` badge. A browser opening the
/// URL itself (asking for HTML) gets those answers as pages instead.
pub(crate) async fn badge(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(file): Path<String>,
    Query(query): Query<BadgeQuery>,
) -> Response {
    let Some(selector) = file.strip_suffix(".svg") else {
        return not_found(&state, "badges are /badges/{project}.svg");
    };
    let views = state.views.borrow().clone();
    let named: Vec<Named<'_>> = views
        .projects
        .values()
        .map(|v| Named {
            id: v.summary.project,
            name: &v.summary.name,
            owner: v.summary.owner,
        })
        .collect();
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let view = match select_project(&named, selector, query.owner.as_deref()) {
        Ok(project) => views.projects.get(&project.id),
        Err(NotSelected::Ambiguous(candidates)) => {
            let why = ambiguous(selector, &candidates);
            if wants_page {
                return problem(&state, StatusCode::CONFLICT, &why);
            }
            let svg = badge::titled("buildmesh", "ambiguous name", badge::Color::Error, &why);
            return svg_response(StatusCode::CONFLICT, svg);
        }
        Err(NotSelected::Unknown) if wants_page => {
            return not_found(&state, &unknown(selector, query.owner.as_deref(), &named));
        }
        Err(NotSelected::Unknown) => None,
    };
    let found = view.and_then(|view| badge_status(&view.log, views.at, &query));
    let svg = match found {
        Some((label, status)) => badge::for_status(&label, status),
        None => badge::for_status("buildmesh", None),
    };
    svg_response(StatusCode::OK, svg)
}

/// The label and status of a project's badge.
fn badge_status(
    log: &buildmesh_core::view::ProjectLog,
    at: buildmesh_protocol::Timestamp,
    query: &BadgeQuery,
) -> Option<(String, Option<CellStatus>)> {
    let options = MatrixOptions {
        branch: query.branch.clone(),
        rows_max: Some(1),
    };
    let m = matrix(log, at, &options)?;
    let row = m.rows.first();
    let status = match &query.platform {
        Some(platform) => {
            let column = m.platforms.iter().position(|p| p == platform)?;
            row.map(|r| r.cells[column].status)
        }
        None => row.and_then(|r| overall(r.cells.iter().map(|c| c.status))),
    };
    let label = match &query.platform {
        Some(platform) => format!("{} {platform}", m.name),
        None => m.name.to_owned(),
    };
    Some((label, status))
}

fn svg_response(status: StatusCode, svg: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response()
}

/// Most projects an answer about a badge lists: anyone can declare many
/// projects of one name, and each badge request must stay small.
const LISTED_MAX: usize = 20;

/// Why `selector` picks no one badge: the candidates (the first
/// [`LISTED_MAX`]), each with the badge URL only it answers.
fn ambiguous(selector: &str, candidates: &[Named<'_>]) -> String {
    let mut each: Vec<String> = candidates
        .iter()
        .take(LISTED_MAX)
        .map(|p| {
            format!(
                "{} (project {}, owner {}: /badges/{}.svg?owner={})",
                p.name,
                p.id,
                p.owner,
                pages::query_value(p.name),
                p.owner
            )
        })
        .collect();
    if candidates.len() > LISTED_MAX {
        each.push(format!("and {} more", candidates.len() - LISTED_MAX));
    }
    format!(
        "{selector:?} names {} projects on this node: {}. Add ?owner= with the owner's key \
         (or its start), or give the project id.",
        candidates.len(),
        each.join("; ")
    )
}

/// Why `selector` (of `owner`) names no project, and which ones this
/// node has.
fn unknown(selector: &str, owner: Option<&str>, known: &[Named<'_>]) -> String {
    let mut names: Vec<String> = known
        .iter()
        .take(LISTED_MAX)
        .map(|p| format!("{} ({})", p.name, p.id.short()))
        .collect();
    if known.len() > LISTED_MAX {
        names.push(format!("and {} more", known.len() - LISTED_MAX));
    }
    format!(
        "No project {selector:?} (a name, a full id or the start of one) on this node{}. \
         It has: {}.",
        if owner.is_some() {
            " with that owner"
        } else {
            ""
        },
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// One status for a row: the worst that matters; `None` for no cells.
fn overall(statuses: impl Iterator<Item = CellStatus>) -> Option<CellStatus> {
    let all: Vec<CellStatus> = statuses.collect();
    (!all.is_empty()).then(|| buildmesh_core::view::overall_status(all.into_iter()))
}

/// The force form's fields (`platform` may repeat), with its `csrf` field
/// and the session cookie, or the operator token as a bearer token.
pub(crate) async fn force(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    Path(project): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(why) = crate::local::from_this_machine(&client, &headers) {
        return problem(&state, StatusCode::FORBIDDEN, why);
    }
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str());
    if let Err(refusal) = state.operator.check_form(&headers, csrf) {
        return problem(
            &state,
            StatusCode::FORBIDDEN,
            &state.operator.message(refusal),
        );
    }
    let Ok(id) = project.parse::<ProjectId>() else {
        return problem(
            &state,
            StatusCode::BAD_REQUEST,
            "a project id is 64 hex digits",
        );
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
    };
    let target = match (field("commit"), field("branch")) {
        (Some(commit), _) => match crate::commit::parse(&commit) {
            Some(commit) => ForceTarget::Commit(commit),
            None => {
                return problem(
                    &state,
                    StatusCode::BAD_REQUEST,
                    "a commit id is 40 or 64 hex digits",
                );
            }
        },
        (None, Some(branch)) => ForceTarget::Branch(branch),
        (None, None) => {
            return problem(
                &state,
                StatusCode::BAD_REQUEST,
                "say which branch or commit to build",
            );
        }
    };
    let platforms = fields
        .iter()
        .filter(|(k, _)| k == "platform")
        .map(|(_, v)| v.clone())
        .collect();
    let reason = field("reason").unwrap_or_else(|| "forced from the dashboard".into());
    let (reply, answer) = oneshot::channel();
    let command = Command::Force {
        project: id.0,
        target,
        platforms,
        reason,
        reply,
    };
    if state.commands.send(command).await.is_err() {
        return problem(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is shutting down",
        );
    }
    match answer.await {
        Ok(Ok(())) => Redirect::to(&format!("/projects/{project}")).into_response(),
        Ok(Err(why)) => problem(&state, StatusCode::FORBIDDEN, &why),
        Err(_) => problem(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "the node is shutting down",
        ),
    }
}
