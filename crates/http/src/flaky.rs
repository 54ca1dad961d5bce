//! `/projects/{project}/flaky` and `GET /api/v1/projects/{project}/flaky`:
//! the tests whose verdict did not follow the code on a branch's newest
//! commits (`buildmesh_core::view::flaky_tests`).

use crate::dashboard::{page_view, problem};
use crate::pages::{self, Site};
use crate::projects::project_view;
use crate::{AppState, error};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use buildmesh_core::view::{FlakyTest, Policy, ProjectLog, flaky_tests};
use buildmesh_protocol::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

/// Commits read when the request does not say.
pub const FLAKY_ROWS_DEFAULT: usize = 200;

/// `?branch=&rows=`
#[derive(Debug, Deserialize)]
pub(crate) struct FlakyQuery {
    branch: Option<String>,
    rows: Option<usize>,
}

/// The branch and rows a query asks for, or why not.
pub(crate) fn options(log: &ProjectLog, query: &FlakyQuery) -> Result<(String, usize), String> {
    let rows = query.rows.unwrap_or(FLAKY_ROWS_DEFAULT);
    let max = crate::views::MATRIX_ROWS_MAX;
    if !(1..=max).contains(&rows) {
        return Err(format!("rows must be 1 to {max}"));
    }
    let declared = Policy::of(log)
        .map(|p| p.declaration.branches.clone())
        .unwrap_or_default();
    let branch = match &query.branch {
        Some(b) if b.is_empty() || b.len() > 256 => {
            return Err("branch must be 1 to 256 bytes".into());
        }
        Some(b) => b.clone(),
        None => declared.first().cloned().unwrap_or_else(|| "main".into()),
    };
    Ok((branch, rows))
}

fn derive<'a>(log: &'a ProjectLog, at: Timestamp, branch: &str, rows: usize) -> Vec<FlakyTest<'a>> {
    flaky_tests(log, at, Some(branch.to_owned()), rows)
}

/// The JSON of a list of flaky tests.
pub fn json(branch: &str, rows: usize, tests: &[FlakyTest<'_>]) -> Value {
    json!({
        "branch": branch,
        "rows": rows,
        "tests": tests.iter().map(|t| json!({
            "name": t.name,
            "platforms": t.platforms,
            "evidence": t.evidence.name(),
            "since": { "commit": t.since.0.to_string(), "announced_at": t.since.1.0 },
            "last": { "commit": t.last.0.to_string(), "announced_at": t.last.1.0 },
            "flaky_commits": t.flaky_commits,
            "failed_commits": t.failed_commits,
        })).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/projects/{project}/flaky?branch=&rows=`
pub(crate) async fn api(
    State(state): State<AppState>,
    Path(project): Path<String>,
    query: Result<Query<FlakyQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let (branch, rows) = match options(&view.log, &query) {
        Ok(options) => options,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let at = state.views.borrow().at;
    let body = tokio::task::spawn_blocking(move || {
        json(&branch, rows, &derive(&view.log, at, &branch, rows))
    })
    .await;
    match body {
        Ok(body) => axum::Json(body).into_response(),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "deriving failed"),
    }
}

/// `/projects/{project}/flaky?branch=&rows=`
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(project): Path<String>,
    query: Result<Query<FlakyQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return problem(
            &state,
            StatusCode::BAD_REQUEST,
            "the query is ?branch=NAME&rows=N",
        );
    };
    let view = match page_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let (branch, rows) = match options(&view.log, &query) {
        Ok(options) => options,
        Err(message) => return problem(&state, StatusCode::BAD_REQUEST, &message),
    };
    let at = state.views.borrow().at;
    let key = state.status.borrow().public_key.clone();
    let html = tokio::task::spawn_blocking(move || {
        let name = Policy::of(&view.log).map(|p| p.declaration.name.clone());
        let tests = derive(&view.log, at, &branch, rows);
        pages::flaky(
            Site { node_key: &key },
            &view.log.project,
            name.as_deref().unwrap_or(""),
            &branch,
            rows,
            &tests,
        )
    })
    .await;
    match html {
        Ok(html) => (StatusCode::OK, Html(html)).into_response(),
        Err(_) => problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed",
        ),
    }
}
