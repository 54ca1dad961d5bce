//! `GET /api/v1/projects`, `GET /api/v1/projects/{project}/matrix` and
//! the pull requests' `/pulls` and `/pulls/{number}`, answered from the
//! views the node's views thread publishes.

use crate::views::{MATRIX_ROWS_DEFAULT, MATRIX_ROWS_MAX, ProjectView};
use crate::{AppState, error, json};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use buildmesh_core::view::{MatrixOptions, matrix as derive};
use buildmesh_protocol::ProjectId;
use serde::Deserialize;

/// Every declared project, with how its newest commit stands.
pub(crate) async fn list(State(state): State<AppState>) -> Response {
    let views = state.views.borrow().clone();
    let projects: Vec<serde_json::Value> = views
        .projects
        .values()
        .map(|p| json::summary(&p.summary))
        .collect();
    Json(serde_json::json!({ "projects": projects })).into_response()
}

/// `?branch=NAME&rows=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatrixQuery {
    branch: Option<String>,
    rows: Option<usize>,
}

/// A project's matrix: the published one when no option is given,
/// otherwise derived from the published log on a blocking thread.
pub(crate) async fn matrix(
    State(state): State<AppState>,
    Path(project): Path<String>,
    query: Result<Query<MatrixQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let options = match matrix_options(query) {
        Ok(Some(options)) => options,
        Ok(None) => {
            return (
                [(header::CONTENT_TYPE, "application/json")],
                view.matrix_json.to_vec(),
            )
                .into_response();
        }
        Err(why) => return error(StatusCode::BAD_REQUEST, &why),
    };
    let at = state.views.borrow().at;
    let derived = tokio::task::spawn_blocking(move || {
        derive(&view.log, at, &options).map(|m| json::matrix(&m))
    })
    .await;
    match derived {
        Ok(Some(matrix)) => Json(matrix).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no declared project with this id"),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "deriving the matrix failed",
        ),
    }
}

/// The options a matrix query asks for: `None` for none (the published
/// matrix answers), or why they are refused.
pub(crate) fn matrix_options(query: MatrixQuery) -> Result<Option<MatrixOptions>, String> {
    if query.branch.is_none() && query.rows.is_none() {
        return Ok(None);
    }
    let rows = query.rows.unwrap_or(MATRIX_ROWS_DEFAULT);
    if !(1..=MATRIX_ROWS_MAX).contains(&rows) {
        return Err(format!("rows must be 1 to {MATRIX_ROWS_MAX}"));
    }
    if query
        .branch
        .as_ref()
        .is_some_and(|b| b.is_empty() || b.len() > 256)
    {
        return Err("branch must be 1 to 256 bytes".into());
    }
    Ok(Some(MatrixOptions {
        branch: query.branch,
        rows_max: Some(rows),
    }))
}

/// Most pull requests `GET /api/v1/projects/{project}/pulls` lists.
pub const PULLS_MAX: usize = 50;

/// `GET /api/v1/projects/{project}/pulls`: the recent pull requests, the
/// most recently updated first.
pub(crate) async fn pulls(State(state): State<AppState>, Path(project): Path<String>) -> Response {
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let at = state.views.borrow().at;
    let derived = tokio::task::spawn_blocking(move || {
        buildmesh_core::view::pulls(&view.log, at, PULLS_MAX).map(|p| json::pulls(&p))
    })
    .await;
    match derived {
        Ok(Some(pulls)) => Json(pulls).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "no declared project with this id"),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "deriving the pull requests failed",
        ),
    }
}

/// `GET /api/v1/projects/{project}/pulls/{number}`: one pull request's
/// heads, newest first.
pub(crate) async fn pull(
    State(state): State<AppState>,
    Path((project, number)): Path<(String, String)>,
) -> Response {
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let Some(number) = pull_number(&number) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a pull request number is a whole number from 1",
        );
    };
    let at = state.views.borrow().at;
    let derived = tokio::task::spawn_blocking(move || {
        buildmesh_core::view::pull(&view.log, number, at).map(|p| json::pull(&p))
    })
    .await;
    match derived {
        Ok(Some(pull)) => Json(pull).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "this project has no announced pull request with this number",
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "deriving the pull request failed",
        ),
    }
}

/// A pull request number from a path: decimal digits, at least 1.
pub(crate) fn pull_number(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
    text.parse().ok().filter(|n| digits && *n >= 1)
}

/// The published views of `project` (hex), or the 4xx to answer.
pub(crate) fn project_view(state: &AppState, project: &str) -> Result<ProjectView, Box<Response>> {
    let Ok(id) = project.parse::<ProjectId>() else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "a project id is 64 hex digits (as `buildmesh project declare` prints)",
        )));
    };
    let found = state.views.borrow().projects.get(&id).cloned();
    found.ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "no declared project with this id in this node's log",
        ))
    })
}

/// `GET /api/v1/projects/{project}/commits/{commit}`: one commit's row.
pub(crate) async fn commit(
    State(state): State<AppState>,
    Path((project, commit)): Path<(String, String)>,
) -> Response {
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let Some(commit) = crate::commit::parse(&commit) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a commit id is 40 or 64 hex digits",
        );
    };
    let at = state.views.borrow().at;
    let found = tokio::task::spawn_blocking(move || {
        crate::commit::with_commit(&view.log, at, &commit, json::commit)
    })
    .await;
    match found {
        Ok(Some(commit)) => Json(commit).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "this project has no announced commit with this id",
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "deriving the commit failed",
        ),
    }
}
