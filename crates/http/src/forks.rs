//! `GET /api/v1/forks`: the authors this node holds a fork proof against.
//!
//! A fork proof is two entries one key signed that cannot both be honest
//! (docs/protocol.md §6). None of a forked author's entries count, and the
//! node keeps and serves nothing the author signed past the proof's
//! sequence number. The same list is on the `/audit` page; this is it for
//! machines (and for checking that a proof reached every node of a mesh).

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use buildmesh_core::log::{ForkKind, ForkProof};
use buildmesh_protocol::PublicKey;
use serde::Serialize;

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

/// The list, by author, as of the latest views.
pub(crate) async fn list(State(state): State<AppState>) -> Response {
    let forks: Vec<Fork> = state.views.borrow().forks.iter().map(Fork::of).collect();
    Json(serde_json::json!({ "forks": forks })).into_response()
}
