//! Gathering what a message says: the commit and its blamelist from the
//! views, the failing step and its log's last lines from the node (which
//! fetches the result and the log from a peer when it holds neither).

use buildmesh_core::notify::Event;
use buildmesh_core::view::{CellStatus, MatrixOptions, ProjectLog, matrix};
use buildmesh_http::Command;
use buildmesh_notify::message::{Notice, PlatformNote, Suspect, log_tail};
use buildmesh_protocol::{EntryId, Timestamp};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Rows searched for the commit and its blamelist.
const ROWS_SEARCHED: usize = 200;

/// How long a message waits for a result or a log from a peer; past it,
/// the message goes without the log's lines.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the views say of an event; the failing steps come later.
pub struct Draft {
    notice: Notice,
    /// Each platform's newest result, in `notice.platforms` order.
    results: Vec<Option<EntryId>>,
}

/// The draft of `event`'s message, from `log` at `now`.
pub fn draft(
    event: &Event,
    log: &ProjectLog,
    now: Timestamp,
    public_url: Option<&str>,
) -> Option<Draft> {
    let options = MatrixOptions {
        branch: Some(event.branch.clone()),
        rows_max: Some(ROWS_SEARCHED),
    };
    let derived = matrix(log, now, &options)?;
    let row = derived.rows.iter().find(|r| *r.commit == event.commit)?;
    let blamelist = event
        .blamelist
        .iter()
        .filter_map(|commit| derived.rows.iter().find(|r| r.commit == commit))
        .map(|r| Suspect {
            commit: r.commit.to_string(),
            author: r.author.to_owned(),
            title: r.title.to_owned(),
        })
        .collect();
    let mut platforms = Vec::new();
    let mut results = Vec::new();
    for (cell, platform) in row.cells.iter().zip(derived.platforms) {
        if !event.platforms.contains(platform) {
            continue;
        }
        let newest = cell
            .results
            .iter()
            .max_by_key(|r| (r.at, r.id))
            .map(|r| r.id);
        let outcome = match cell.status {
            CellStatus::Pending | CellStatus::Claimed => "not decided",
            status => status.name(),
        };
        platforms.push(PlatformNote {
            platform: platform.clone(),
            outcome: outcome.into(),
            step: None,
            log_tail: Vec::new(),
            link: public_url
                .zip(newest)
                .map(|(url, id)| format!("{url}/results/{id}")),
        });
        results.push(
            (cell.status == CellStatus::Failed)
                .then_some(newest)
                .flatten(),
        );
    }
    let link =
        public_url.map(|url| format!("{url}/projects/{}/commits/{}", event.project, event.commit));
    Some(Draft {
        notice: Notice {
            event: event.clone(),
            project_name: derived.name.to_owned(),
            title: row.title.to_owned(),
            author: row.author.to_owned(),
            platforms,
            blamelist,
            link,
        },
        results,
    })
}

/// The finished message: each failed platform's failing step and the last
/// lines of its log, as far as the node can get them in time.
pub async fn finish(draft: Draft, commands: &mpsc::Sender<Command>) -> Notice {
    let mut notice = draft.notice;
    for (note, result) in notice.platforms.iter_mut().zip(draft.results) {
        let Some(result) = result else { continue };
        let Some((step, log)) = failing_step(result, commands).await else {
            continue;
        };
        note.step = Some(step);
        if let Some(log) = log {
            note.log_tail = log_tail(&log);
        }
    }
    notice
}

/// The first step of `result` that did not succeed, and its log.
async fn failing_step(
    result: EntryId,
    commands: &mpsc::Sender<Command>,
) -> Option<(String, Option<Vec<u8>>)> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::Entry {
            id: result.0,
            reply,
        })
        .await
        .ok()?;
    let entry = tokio::time::timeout(FETCH_TIMEOUT, answer)
        .await
        .ok()?
        .ok()??;
    let built = entry.body().result()?;
    let step = built.failing_step()?;
    let (reply, answer) = oneshot::channel();
    let log = match commands
        .send(Command::Blob {
            hash: step.log.0,
            reply,
        })
        .await
    {
        Ok(()) => tokio::time::timeout(FETCH_TIMEOUT, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten(),
        Err(_) => None,
    };
    Some((step.name.clone(), log))
}
