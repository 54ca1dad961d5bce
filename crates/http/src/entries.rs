//! `GET /api/v1/entries`: every signed entry, streamed as JSON Lines in the
//! export format (docs/protocol.md §7), so anyone can audit a node's log
//! without stopping it. `?have=AUTHOR:SEQ,...` (a version vector) asks only
//! for what the client lacks: a client cut off mid-stream asks again with
//! what it got, and the stream resumes there. The linked entries come
//! first, by author and sequence number; then the entries of the node's
//! fork proofs that do not link, so that a verifier sees every fork the
//! node holds (a forked author counts nowhere, and a verifier that did not
//! know why would think the node's matrix doctored). Both are read in
//! bounded batches, so neither is ever cut, however many there are.

use crate::streams::{StreamKind, StreamPermit, Streams};
use crate::{AppState, LogReader, error};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use buildmesh_audit::{Header, export_line};
use buildmesh_protocol::{Entry, PublicKey, SyncCursor, VersionVector};
use serde::Deserialize;
use std::collections::VecDeque;
use std::sync::Arc;

/// Most authors a `have` vector may name.
pub const HAVE_AUTHORS_MAX: usize = 4096;

/// `?have=AUTHOR:SEQ,...`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntriesQuery {
    have: Option<String>,
}

/// Most wire bytes of entries one export reads from the store at a time
/// (fork siblings at one sequence number may add up to three entries
/// more). An export holds one such batch, decoded, and turns it into lines
/// one entry at a time as the client takes them, so what it holds stays
/// near twice this (the decoded entries and one line) whatever the log
/// holds and however slowly the client reads.
pub const EXPORT_BATCH_BYTES: usize = 1024 * 1024;

/// The stream: a header line, then entries batch by batch.
pub(crate) async fn stream(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    query: Result<Query<EntriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let have = match query.map(|Query(q)| have_of(&q)) {
        Ok(Ok(have)) => have,
        Ok(Err(why)) => return error(StatusCode::BAD_REQUEST, &why),
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let permit = match state.stream_permit(client, StreamKind::Export) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let now = (state.clock)();
    let export = Export {
        log: state.log.clone(),
        have: Arc::new(have),
        streams: state.streams.clone(),
        header: Some(format!("{}\n", Header::new(now).to_line())),
        batch: VecDeque::new(),
        next: Some(None),
        evidence_next: Some(None),
        _permit: permit,
    };
    let lines = futures::stream::unfold(export, |mut export| async move {
        let line = export.next_line().await?;
        Some((line, export))
    });
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// One export under way.
struct Export {
    log: Arc<dyn LogReader>,
    have: Arc<VersionVector>,
    streams: Streams,
    /// The header line, until sent.
    header: Option<String>,
    /// Entries read and not yet sent.
    batch: VecDeque<Entry>,
    /// Where the next batch starts; `None` once the log is read through
    /// (or reading it failed).
    next: Option<Option<SyncCursor>>,
    /// Where the next batch of fork evidence that does not link starts,
    /// once the rest is sent; `None` once it is read through.
    evidence_next: Option<Option<PublicKey>>,
    /// Held while the export lives.
    _permit: StreamPermit,
}

impl Export {
    /// The next line to send, reading the next batch when this one is
    /// sent; `None` at the end.
    async fn next_line(&mut self) -> Option<Result<String, std::io::Error>> {
        if let Some(header) = self.header.take() {
            return Some(Ok(header));
        }
        loop {
            if let Some(entry) = self.batch.pop_front() {
                let mut line = export_line(&entry);
                line.push('\n');
                return Some(Ok(line));
            }
            let Some(resume) = self.next.take() else {
                let after = self.evidence_next.take()?;
                match self.read_evidence(after).await {
                    Ok((entries, next)) => {
                        self.batch = entries.into();
                        self.evidence_next = next.map(Some);
                    }
                    Err(why) => return Some(Err(std::io::Error::other(why))),
                }
                continue;
            };
            match self.read(resume).await {
                Ok((entries, next)) => {
                    self.batch = entries.into();
                    self.next = next.map(Some);
                }
                // An error ends the stream early; the client asks again
                // with what it got.
                Err(why) => {
                    self.evidence_next = None;
                    return Some(Err(std::io::Error::other(why)));
                }
            }
        }
    }

    /// One batch of entries the asker lacks.
    async fn read(&self, resume: Option<SyncCursor>) -> Result<Batch, String> {
        let have = self.have.clone();
        self.in_turn(move |log| log.lacks(&have, resume)).await
    }

    /// One batch of the fork evidence a sync leaves out, read once the
    /// rest is sent.
    async fn read_evidence(&self, after: Option<PublicKey>) -> Result<EvidenceBatch, String> {
        self.in_turn(move |log| log.evidence(after)).await
    }

    /// `read` of the log on a blocking thread, in turn with the other
    /// exports.
    async fn in_turn<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn LogReader) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let _turn = self.streams.export_read().await;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || read(log.as_ref()))
            .await
            .map_err(|_| "reading the log failed".to_string())?
    }
}

/// Entries and where the next batch starts.
type Batch = (Vec<Entry>, Option<SyncCursor>);

/// Fork evidence and the author the next batch starts after.
type EvidenceBatch = (Vec<Entry>, Option<PublicKey>);

/// What the asker holds: its `have`, or nothing.
pub(crate) fn have_of(query: &EntriesQuery) -> Result<VersionVector, String> {
    query
        .have
        .as_deref()
        .map_or_else(|| Ok(VersionVector::new()), parse_have)
}

/// `AUTHOR:SEQ,...` as a version vector.
fn parse_have(text: &str) -> Result<VersionVector, String> {
    let mut have = VersionVector::new();
    for (index, pair) in text.split(',').filter(|p| !p.is_empty()).enumerate() {
        if index >= HAVE_AUTHORS_MAX {
            return Err(format!("have names more than {HAVE_AUTHORS_MAX} authors"));
        }
        let (author, seq) = pair
            .split_once(':')
            .ok_or_else(|| format!("have[{index}]: expected AUTHOR:SEQ"))?;
        let author: PublicKey = author
            .parse()
            .map_err(|_| format!("have[{index}]: an author is 64 hex digits"))?;
        let seq: u64 = seq
            .parse()
            .map_err(|_| format!("have[{index}]: a sequence number is a whole number"))?;
        have.raise(author, seq);
    }
    Ok(have)
}
