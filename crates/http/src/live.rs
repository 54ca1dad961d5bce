//! Live build output: what running steps print, as it happens.
//!
//! The node's builds report to a [`LiveHub`]: when each starts, what its
//! steps print, when it ends. The hub keeps each running build's output
//! (its newest [`LIVE_TAIL_BYTES`]) and broadcasts each chunk;
//! `GET /api/v1/live/{project}/{commit}/{platform}` first sends what the
//! cell's build printed so far, then its chunks as they come, as
//! server-sent `output` events, then `end`; `/live/...` is the page that
//! shows them, and sends a browser on to the result once the build ended.
//! A client that falls behind skips chunks (and is told so); it never
//! slows a build.

mod buffer;

pub use buffer::{
    Backlog, Chunk, ENDED_REMEMBERED, LIVE_TAIL_BYTES, LiveBuffers, LiveCell, LiveState,
};

use crate::pages::{self, LiveGone, Site};
use crate::views::Views;
use crate::{AppState, error};
use axum::extract::ConnectInfo;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use buildmesh_core::view::Fact;
use buildmesh_protocol::{CommitId, EntryId, ProjectId, PublicKey, Timestamp};
use futures::StreamExt;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast;

/// Chunks kept for clients that are behind; more and they skip.
pub const LIVE_CHUNKS: usize = 1024;

/// How long after a build ended here its live page waits for the node's
/// result to show in the views (it is signed a moment after), looking
/// again each second; past this it answers as for any cell.
pub const RESULT_WAIT_MS: u64 = 30_000;

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

/// What the hub broadcasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// A running step printed something.
    Output(LiveOutput),
    /// The build of this cell ended.
    Ended(LiveCell),
}

/// Where running builds report, and live pages listen: the builds' output
/// so far (bounded, [`LiveBuffers`]) and a broadcast of what comes next.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveHub {
    buffers: Arc<Mutex<LiveBuffers>>,
    sender: broadcast::Sender<LiveEvent>,
}

impl Default for LiveHub {
    fn default() -> Self {
        LiveHub::new()
    }
}

impl LiveHub {
    /// A hub keeping [`LIVE_TAIL_BYTES`] of each running build.
    pub fn new() -> LiveHub {
        LiveHub {
            buffers: Arc::new(Mutex::new(LiveBuffers::default())),
            sender: broadcast::channel(LIVE_CHUNKS).0,
        }
    }

    /// The buffers; a panic elsewhere while they were held leaves them
    /// whole (each change is one call), so a poisoned lock is taken too.
    fn lock(&self) -> std::sync::MutexGuard<'_, LiveBuffers> {
        self.buffers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A build of `cell` started at `now`.
    pub fn started(&self, cell: LiveCell, now: Timestamp) {
        self.lock().started(cell, now);
    }

    /// A step of `cell`'s build printed `bytes`. Kept and sent under one
    /// lock, so that a client subscribing meanwhile gets each chunk once:
    /// in its backlog or from the channel.
    pub fn output(&self, cell: &LiveCell, step: &str, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let mut buffers = self.lock();
        if buffers.output(cell, step, &text) {
            // Nobody watching is not an error.
            let _ = self.sender.send(LiveEvent::Output(LiveOutput {
                project: cell.0,
                commit: cell.1.clone(),
                platform: cell.2.clone(),
                step: step.to_owned(),
                text,
            }));
        }
    }

    /// `cell`'s build ended at `now` (cancelled: it writes no result).
    /// Called once the node has signed its result, if any.
    pub fn ended(&self, cell: &LiveCell, now: Timestamp, cancelled: bool) {
        let mut buffers = self.lock();
        buffers.ended(cell, now, cancelled);
        let _ = self.sender.send(LiveEvent::Ended(cell.clone()));
    }

    /// Where `cell`'s build stands on this node.
    pub fn state(&self, cell: &LiveCell) -> LiveState {
        self.lock().state(cell)
    }

    /// What `cell`'s build printed so far (`None`: it is not running) and
    /// a receiver of what comes next, taken under one lock.
    fn subscribe(&self, cell: &LiveCell) -> (Option<Backlog>, broadcast::Receiver<LiveEvent>) {
        let buffers = self.lock();
        (buffers.backlog(cell), self.sender.subscribe())
    }
}

/// The cell a path names, or the 400 to answer.
fn cell(project: &str, commit: &str) -> Result<(ProjectId, CommitId), Box<Response>> {
    let project: ProjectId = project.parse().map_err(|_| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "a project id is 64 hex digits",
        ))
    })?;
    let commit = crate::commit::parse(commit).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "a commit id is 40 or 64 hex digits",
        ))
    })?;
    Ok((project, commit))
}

fn output_event(step: &str, text: &str) -> Event {
    let data = serde_json::json!({ "step": step, "text": text }).to_string();
    Event::default().event("output").data(data)
}

fn end_event() -> Event {
    Event::default().event("end").data("{}")
}

/// The events a client gets first: what was cut, then what was kept, or
/// (nothing running) the end.
fn first_events(backlog: Option<&Backlog>) -> Vec<Event> {
    let Some(backlog) = backlog else {
        return vec![end_event()];
    };
    let cut = (backlog.cut_bytes > 0).then(|| {
        let data = serde_json::json!({ "bytes": backlog.cut_bytes }).to_string();
        Event::default().event("cut").data(data)
    });
    cut.into_iter()
        .chain(
            backlog
                .chunks
                .iter()
                .map(|c| output_event(&c.step, &c.text)),
        )
        .collect()
}

/// `GET /api/v1/live/{project}/{commit}/{platform}`: `cut` with
/// `{"bytes": N}` if older output was dropped, `output` events with
/// `{"step": NAME, "text": TEXT}` (first what was printed so far), `skipped`
/// when this client fell behind, and `end` when the build ended (at once
/// if none runs), after which the stream closes.
pub(crate) async fn stream(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    Path((project, commit, platform)): Path<(String, String, String)>,
) -> Response {
    let (project, commit) = match cell(&project, &commit) {
        Ok(cell) => cell,
        Err(response) => return *response,
    };
    let Some(live) = state.live.clone() else {
        return error(StatusCode::NOT_FOUND, "this node does not build");
    };
    let permit = match state.stream_permit(client, crate::StreamKind::Live) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let cell: LiveCell = (project, commit, platform);
    let (backlog, receiver) = live.subscribe(&cell);
    let first = futures::stream::iter(
        first_events(backlog.as_ref())
            .into_iter()
            .map(Ok::<_, Infallible>),
    );
    // `None`: the end was sent.
    let following = backlog.map(|_| (receiver, permit, live, cell));
    let rest = futures::stream::unfold(following, |following| async move {
        let (mut receiver, permit, live, cell) = following?;
        loop {
            match receiver.recv().await {
                Ok(LiveEvent::Output(out))
                    if out.project == cell.0 && out.commit == cell.1 && out.platform == cell.2 =>
                {
                    let event = output_event(&out.step, &out.text);
                    return Some((Ok(event), Some((receiver, permit, live, cell))));
                }
                Ok(LiveEvent::Ended(ended)) if ended == cell => {
                    return Some((Ok(end_event()), None));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    // The end may be among what was skipped.
                    if live.state(&cell) != LiveState::Running {
                        return Some((Ok(end_event()), None));
                    }
                    let data = serde_json::json!({ "chunks": n }).to_string();
                    let event = Event::default().event("skipped").data(data);
                    return Some((Ok(event), Some((receiver, permit, live, cell))));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(first.chain(rest))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The newest result of `cell` written at `since` or later, by `builder`
/// if given, that the views hold.
fn result_of(
    views: &Views,
    cell: &LiveCell,
    builder: Option<&PublicKey>,
    since: Timestamp,
) -> Option<EntryId> {
    let log = &views.projects.get(&cell.0)?.log;
    let platform = log.platforms.number(&cell.2)?;
    log.cells
        .get(&cell.1)?
        .iter()
        .filter(|f| f.platform == platform && matches!(f.what, Fact::Result { .. }))
        .filter(|f| f.at >= since && builder.is_none_or(|b| f.author == *b))
        .max_by_key(|f| (f.at, f.id))
        .map(|f| f.id)
}

/// What the live page of a cell answers, given where its build stands
/// here, this node's key and the time.
fn answer(
    views: &Views,
    cell: &LiveCell,
    here: LiveState,
    me: Option<&PublicKey>,
    now: Timestamp,
) -> LiveAnswer {
    match here {
        LiveState::Running => return LiveAnswer::Live,
        LiveState::Ended {
            started,
            ended,
            cancelled: false,
        } if now.0 < ended.0.saturating_add(RESULT_WAIT_MS) => {
            return match me.and_then(|me| result_of(views, cell, Some(me), started)) {
                Some(id) => LiveAnswer::Result(id),
                None => LiveAnswer::Gone(LiveGone::Recording),
            };
        }
        _ => {}
    }
    match result_of(views, cell, None, Timestamp(0)) {
        Some(id) => LiveAnswer::Result(id),
        None => LiveAnswer::Gone(LiveGone::NotHere),
    }
}

/// See [`answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LiveAnswer {
    /// The live page.
    Live,
    /// A 303 to this result.
    Result(EntryId),
    /// A page saying why nothing is live, looking again soon.
    Gone(LiveGone),
}

/// `/live/{project}/{commit}/{platform}`: the page that tails a running
/// build; once it ended, a 303 to its result, or a page that says the
/// result is on its way (200) or that nothing is known (404), and looks
/// again (`Refresh`).
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
    let cell: LiveCell = (project, commit, platform);
    let here = state
        .live
        .as_ref()
        .map_or(LiveState::Unknown, |live| live.state(&cell));
    let key = state.status.borrow().public_key.clone();
    let me = key.parse::<PublicKey>().ok();
    let views = state.views.borrow().clone();
    let site = Site { node_key: &key };
    let (project, commit, platform) = (&cell.0, &cell.1, cell.2.as_str());
    match answer(&views, &cell, here, me.as_ref(), (state.clock)()) {
        LiveAnswer::Live => Html(pages::live(site, project, commit, platform)).into_response(),
        LiveAnswer::Result(id) => Redirect::to(&format!("/results/{id}")).into_response(),
        LiveAnswer::Gone(gone) => {
            let (status, refresh) = match gone {
                LiveGone::Recording => (StatusCode::OK, "1"),
                LiveGone::NotHere => (StatusCode::NOT_FOUND, "5"),
            };
            let html = pages::live_gone(site, project, commit, platform, gone);
            (status, [(header::REFRESH, refresh)], Html(html)).into_response()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn a_cell() -> LiveCell {
        (
            ProjectId([5; 32]),
            CommitId::from_bytes(&[0xcd; 20]).unwrap(),
            "linux".to_owned(),
        )
    }

    #[test]
    fn a_subscriber_gets_each_chunk_once_then_the_end() {
        let hub = LiveHub::new();
        let cell = a_cell();
        hub.started(cell.clone(), Timestamp(1));
        hub.output(&cell, "build", b"early\n");
        let (backlog, mut receiver) = hub.subscribe(&cell);
        hub.output(&cell, "build", b"late\n");
        hub.ended(&cell, Timestamp(2), false);
        let backlog = backlog.unwrap();
        assert_eq!(backlog.chunks.len(), 1);
        assert_eq!(backlog.chunks[0].text, "early\n");
        match receiver.try_recv().unwrap() {
            LiveEvent::Output(out) => assert_eq!(out.text, "late\n"),
            other => panic!("{other:?}"),
        }
        assert_eq!(receiver.try_recv().unwrap(), LiveEvent::Ended(cell.clone()));
        // Once ended, a newcomer gets no backlog: the stream sends `end`.
        assert_eq!(hub.subscribe(&cell).0, None);
        assert_eq!(first_events(None).len(), 1);
    }

    #[test]
    fn a_cut_is_announced_before_the_backlog() {
        let backlog = Backlog {
            cut_bytes: 7,
            chunks: vec![Chunk {
                step: "test".into(),
                text: "x".into(),
            }],
        };
        assert_eq!(first_events(Some(&backlog)).len(), 2);
        assert_eq!(first_events(Some(&Backlog::default())).len(), 0);
    }

    /// Views holding `entries` of `cell`'s project.
    fn views_of(cell: &LiveCell, entries: &[&buildmesh_protocol::Entry]) -> Views {
        use crate::views::ProjectView;
        use buildmesh_core::view::{ProjectLog, Summary};
        let log = ProjectLog::from_entries(&cell.0, entries.iter().copied(), Default::default());
        let mut views = Views::default();
        let summary = Summary {
            project: cell.0,
            name: "shop".into(),
            owner: PublicKey([0; 32]),
            repository: String::new(),
            platforms: Vec::new(),
            newest: None,
        };
        let view = ProjectView {
            log: Arc::new(log),
            matrix_json: Arc::from(&b"{}"[..]),
            summary,
        };
        views.projects.insert(cell.0, view);
        views
    }

    /// Each builder signs a result of `cell` at the times given.
    fn results(cell: &LiveCell, at: &[(u8, u64)]) -> Vec<buildmesh_protocol::Entry> {
        use buildmesh_core::log::ChainWriter;
        use buildmesh_protocol::{Body, BuildResult, Outcome};
        let mut writers: Vec<ChainWriter> = (1..=2)
            .map(|n| ChainWriter::new(ed25519_dalek::SigningKey::from_bytes(&[n; 32])))
            .collect();
        at.iter()
            .map(|&(builder, at)| {
                let result = BuildResult {
                    project: cell.0,
                    commit: cell.1.clone(),
                    platform: cell.2.clone(),
                    outcome: Outcome::Passed,
                    steps: Vec::new(),
                    artifacts: Vec::new(),
                    metrics: Default::default(),
                    environment: Default::default(),
                    error: None,
                };
                let writer = &mut writers[usize::from(builder) - 1];
                writer.write(Timestamp(at), Body::Result(result)).unwrap()
            })
            .collect()
    }

    #[test]
    fn the_page_goes_to_this_nodes_result_of_this_build() {
        let cell = a_cell();
        let me = ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key();
        let me = PublicKey(me.to_bytes());
        // Mine before the build started, another builder's since.
        let entries = results(&cell, &[(1, 10), (2, 30), (1, 40)]);
        let now = Timestamp(50);
        let ended = LiveState::Ended {
            started: Timestamp(20),
            ended: Timestamp(45),
            cancelled: false,
        };
        let before = views_of(&cell, &[&entries[0], &entries[1]]);
        assert_eq!(
            answer(&before, &cell, ended, Some(&me), now),
            LiveAnswer::Gone(LiveGone::Recording),
            "neither is the result of this build"
        );
        let after = views_of(&cell, &[&entries[0], &entries[1], &entries[2]]);
        assert_eq!(
            answer(&after, &cell, ended, Some(&me), now),
            LiveAnswer::Result(entries[2].id())
        );
        // Not built here: the newest result by anyone.
        assert_eq!(
            answer(&before, &cell, LiveState::Unknown, Some(&me), now),
            LiveAnswer::Result(entries[1].id())
        );
        let other = (cell.0, cell.1.clone(), "arm".to_owned());
        assert_eq!(
            answer(&after, &other, LiveState::Unknown, Some(&me), now),
            LiveAnswer::Gone(LiveGone::NotHere)
        );
    }

    #[test]
    fn the_page_follows_the_build_to_its_result() {
        let views = Views::default();
        let cell = a_cell();
        let me = PublicKey([1; 32]);
        let now = Timestamp(100_000);
        let answer_when = |here| answer(&views, &cell, here, Some(&me), now);
        assert_eq!(answer_when(LiveState::Running), LiveAnswer::Live);
        let ended = |ended, cancelled| LiveState::Ended {
            started: Timestamp(1),
            ended: Timestamp(ended),
            cancelled,
        };
        // Just ended, no result in the views yet: on its way.
        assert_eq!(
            answer_when(ended(99_000, false)),
            LiveAnswer::Gone(LiveGone::Recording)
        );
        // Cancelled, or ended long ago, or never here: nothing known.
        for here in [ended(99_000, true), ended(1_000, false), LiveState::Unknown] {
            assert_eq!(answer_when(here), LiveAnswer::Gone(LiveGone::NotHere));
        }
    }
}
