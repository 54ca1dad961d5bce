//! `GET /api/v1/forks`: the authors this node holds a fork proof against.
//!
//! A fork proof is two entries one key signed that cannot both be honest
//! (docs/protocol.md §6). None of a forked author's entries count, and the
//! node keeps and serves nothing the author signed past the proof's
//! sequence number. The same list is on the `/audit` page; this is it for
//! machines (and for checking that a proof reached every node of a mesh).

use crate::{AppState, error};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use buildmesh_core::log::{ForkKind, ForkProof};
use buildmesh_protocol::PublicKey;
use serde::{Deserialize, Serialize};

/// One proof, as served.
#[derive(Debug, Serialize)]
struct Fork {
    /// The author's public key, hex.
    author: String,
    /// The sequence number of the proof: the last one kept of the author.
    seq: u64,
    /// `equivocation` (two entries at `seq`) or `broken_link` (the entry
    /// at `seq` does not follow the one at `seq - 1`).
    kind: &'static str,
    /// The two entries' ids, hex; both are served by
    /// `GET /api/v1/entries/{id}` and in `GET /api/v1/entries`.
    first: String,
    second: String,
}

impl Fork {
    fn of((author, proof): &(PublicKey, ForkProof)) -> Fork {
        Fork {
            author: author.to_string(),
            seq: proof.seq,
            kind: match proof.kind {
                ForkKind::Equivocation => "equivocation",
                ForkKind::BrokenLink => "broken_link",
            },
            first: proof.first.to_string(),
            second: proof.second.to_string(),
        }
    }
}

/// Most proofs one answer lists, and how many when `limit` is not given.
pub const FORKS_PAGE_MAX: usize = 1000;

/// `?after=AUTHOR&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForksQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// The list, by author, as of the latest views: at most `limit` (at most
/// [`FORKS_PAGE_MAX`]) proofs from the first author after `after`, and
/// `next`, the author to ask after for the rest (`null`: none). Anyone
/// with keys can make forks, so no answer lists them all at once.
pub(crate) async fn list(
    State(state): State<AppState>,
    query: Result<Query<ForksQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (after, limit) = match query.map(|Query(q)| page_of(&q)) {
        Ok(Ok(page)) => page,
        Ok(Err(why)) => return error(StatusCode::BAD_REQUEST, &why),
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let views = state.views.borrow();
    let all = &views.forks;
    let from = after.map_or(0, |after| {
        all.partition_point(|(author, _)| *author <= after)
    });
    let page = &all[from..all.len().min(from.saturating_add(limit))];
    let next = match page.last() {
        Some((author, _)) if from + page.len() < all.len() => Some(author.to_string()),
        _ => None,
    };
    let forks: Vec<Fork> = page.iter().map(Fork::of).collect();
    Json(serde_json::json!({ "forks": forks, "total": all.len(), "next": next })).into_response()
}

/// The page asked for: after which author, and how many.
fn page_of(query: &ForksQuery) -> Result<(Option<PublicKey>, usize), String> {
    let after = match query.after.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<PublicKey>()
                .map_err(|_| "after: an author is 64 hex digits".to_string())?,
        ),
    };
    let limit = query.limit.unwrap_or(FORKS_PAGE_MAX);
    if limit == 0 || limit > FORKS_PAGE_MAX {
        return Err(format!("limit: from 1 to {FORKS_PAGE_MAX}"));
    }
    Ok((after, limit))
}
