//! `GET /api/v1/events`: server-sent events for live pages and scripts.
//!
//! - `cell`: a project's matrix changed (`{"project": ID}`): a cell got a
//!   claim or a result, or a commit was announced;
//! - `entries`: the log grew (`{"entries": N, "last_applied_at": MS}`).
//!
//! Events are derived from what the node publishes, never queued per
//! client: a slow client misses intermediate states, not the latest one.

use crate::AppState;
use crate::views::Views;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use buildmesh_protocol::ProjectId;
use futures::Stream;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// What one client's stream remembers.
struct Watcher {
    state: AppState,
    seen: BTreeMap<ProjectId, Arc<[u8]>>,
    entries: u64,
    pending: VecDeque<Event>,
    /// Held while the stream lives.
    _permit: crate::streams::StreamPermit,
}

/// The event stream.
pub(crate) async fn stream(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
) -> Response {
    let permit = match state.stream_permit(client, crate::StreamKind::Events) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    events(state, permit).into_response()
}

fn events(
    state: AppState,
    permit: crate::streams::StreamPermit,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut state = state;
    let seen = matrices(&state.views.borrow_and_update());
    let entries = state.status.borrow_and_update().entries;
    let watcher = Watcher {
        state,
        seen,
        entries,
        pending: VecDeque::new(),
        _permit: permit,
    };
    let events = futures::stream::unfold(watcher, |mut watcher| async move {
        loop {
            if let Some(event) = watcher.pending.pop_front() {
                return Some((Ok(event), watcher));
            }
            tokio::select! {
                changed = watcher.state.views.changed() => {
                    changed.ok()?;
                    let views = watcher.state.views.borrow_and_update().clone();
                    watcher.cells_changed(&views);
                }
                changed = watcher.state.status.changed() => {
                    changed.ok()?;
                    watcher.log_grew();
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

impl Watcher {
    fn cells_changed(&mut self, views: &Views) {
        let now = matrices(views);
        for (project, matrix) in &now {
            if self.seen.get(project).is_none_or(|old| old != matrix) {
                let data = serde_json::json!({ "project": project.to_string() }).to_string();
                self.pending
                    .push_back(Event::default().event("cell").data(data));
            }
        }
        self.seen = now;
    }

    fn log_grew(&mut self) {
        let status = self.state.status.borrow_and_update().clone();
        if status.entries != self.entries {
            self.entries = status.entries;
            let data = serde_json::json!({
                "entries": status.entries,
                "last_applied_at": status.last_applied_at,
            })
            .to_string();
            self.pending
                .push_back(Event::default().event("entries").data(data));
        }
    }
}

fn matrices(views: &Views) -> BTreeMap<ProjectId, Arc<[u8]>> {
    views
        .projects
        .iter()
        .map(|(id, view)| (*id, view.matrix_json.clone()))
        .collect()
}
