//! Live build output: what running steps print, as it happens.
//!
//! The node's builds send [`LiveOutput`] chunks into a broadcast channel;
//! `GET /api/v1/live/{project}/{commit}/{platform}` streams one cell's
//! chunks as server-sent `output` events, and `/live/...` is the page that
//! shows them. A client that falls behind skips chunks (and is told so);
//! it never slows a build.

use crate::pages::{self, Site};
use crate::{AppState, error};
use axum::extract::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use buildmesh_protocol::{CommitId, ProjectId};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast;

/// Chunks kept for clients that are behind; more and they skip.
pub const LIVE_CHUNKS: usize = 1024;

/// Some output of a running step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOutput {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform.
    pub platform: String,
    /// The step's name.
    pub step: String,
    /// What it printed (lossy UTF-8).
    pub text: String,
}

/// The cell a path names, or the 400 to answer.
fn cell(project: &str, commit: &str) -> Result<(ProjectId, CommitId), Box<Response>> {
    let project: ProjectId = project.parse().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "a project id is 64 hex digits",
        ))
    })?;
    let commit = hex::decode(commit)
        .ok()
        .and_then(|b| CommitId::from_bytes(&b))
        .ok_or_else(|| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                "a commit id is 40 or 64 hex digits",
            ))
        })?;
    Ok((project, commit))
}

/// `GET /api/v1/live/{project}/{commit}/{platform}`: `output` events with
/// `{"step": NAME, "text": TEXT}`, and `skipped` when this client fell behind.
pub(crate) async fn stream(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path((project, commit, platform)): Path<(String, String, String)>,
) -> Response {
    let (project, commit) = match cell(&project, &commit) {
        Ok(cell) => cell,
        Err(response) => return *response,
    };
    let Some(live) = state.live.as_ref() else {
        return error(StatusCode::NOT_FOUND, "this node does not build");
    };
    let permit = match state.stream_permit(client, crate::StreamKind::Live) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let receiver = (live.subscribe(), permit);
    let events = futures::stream::unfold(receiver, move |(mut receiver, permit)| {
        let (project, commit, platform) = (project, commit.clone(), platform.clone());
        async move {
            loop {
                match receiver.recv().await {
                    Ok(out)
                        if out.project == project
                            && out.commit == commit
                            && out.platform == platform =>
                    {
                        let data =
                            serde_json::json!({ "step": out.step, "text": out.text }).to_string();
                        let event = Event::default().event("output").data(data);
                        return Some((Ok::<_, Infallible>(event), (receiver, permit)));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let data = serde_json::json!({ "chunks": n }).to_string();
                        let event = Event::default().event("skipped").data(data);
                        return Some((Ok(event), (receiver, permit)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `/live/{project}/{commit}/{platform}`: the page that tails a running
/// build, and points to its result once the cell has one.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path((project, commit, platform)): Path<(String, String, String)>,
) -> Response {
    // A page: the 400 is a page too.
    let (project, commit) = match cell(&project, &commit) {
        Ok(cell) => cell,
        Err(_) => {
            return crate::dashboard::problem(
                &state,
                StatusCode::BAD_REQUEST,
                "a project id is 64 hex digits and a commit id 40 or 64",
            );
        }
    };
    let key = state.status.borrow().public_key.clone();
    Html(pages::live(
        Site { node_key: &key },
        &project,
        &commit,
        &platform,
    ))
    .into_response()
}
