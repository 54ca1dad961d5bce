//! `GET /api/v1/entries`: every signed entry, streamed as JSON Lines in the
//! export format (docs/protocol.md §7), so anyone can audit a node's log
//! without stopping it. `?have=AUTHOR:SEQ,...` (a version vector) asks only
//! for what the client lacks: a client cut off mid-stream asks again with
//! what it got, and the stream resumes there.

use crate::{AppState, error};
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use buildmesh_audit::{Header, export_line};
use buildmesh_protocol::{PublicKey, SyncCursor, Timestamp, VersionVector};
use serde::Deserialize;

/// Most authors a `have` vector may name.
pub const HAVE_AUTHORS_MAX: usize = 4096;

/// `?have=AUTHOR:SEQ,...`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntriesQuery {
    have: Option<String>,
}

/// The stream: a header line, then entries batch by batch.
pub(crate) async fn stream(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    query: Result<Query<EntriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let have = match query.map(|Query(q)| q.have.as_deref().map(parse_have)) {
        Ok(None) => VersionVector::new(),
        Ok(Some(Ok(have))) => have,
        Ok(Some(Err(why))) => return error(StatusCode::BAD_REQUEST, &why),
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let permit = match state.stream_permit(client) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let header_line = format!("{}\n", Header::new(Timestamp(now)).to_line());
    let log = state.log.clone();
    let batches = futures::stream::unfold(
        (Some(header_line), Some(None::<SyncCursor>), permit),
        move |(header, next, permit)| {
            let (log, have) = (log.clone(), have.clone());
            async move {
                if let Some(header) = header {
                    return Some((Ok::<_, std::io::Error>(header), (None, next, permit)));
                }
                let resume = next?;
                let batch = tokio::task::spawn_blocking(move || log.lacks(&have, resume)).await;
                match batch {
                    Ok(Ok((entries, cursor))) => {
                        let text: String = entries.iter().map(|e| export_line(e) + "\n").collect();
                        Some((Ok(text), (None, cursor.map(Some), permit)))
                    }
                    // An error ends the stream early; the client asks again
                    // with what it got.
                    Ok(Err(why)) => Some((Err(std::io::Error::other(why)), (None, None, permit))),
                    Err(_) => Some((
                        Err(std::io::Error::other("reading the log failed")),
                        (None, None, permit),
                    )),
                }
            }
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(batches),
    )
        .into_response()
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
