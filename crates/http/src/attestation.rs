//! `GET /api/v1/results/{id}/attestation`: a result's attestations, the
//! in-toto bundle its builder signed and its entry names by hash
//! (`Body::Attested`), for stock tools to verify (`docs/trust.md`).

use crate::blob_file::BlobKind;
use crate::{AppState, Lookup, error, fetch_entry, hex32, serve_blob};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::net::SocketAddr;

/// The bundle, from this node or its peers, as
/// `application/vnd.in-toto.bundle`; a 404 that says why when the entry
/// is not a result or its builder made no attestations.
pub(crate) async fn serve(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = hex32(&id) else {
        return error(StatusCode::BAD_REQUEST, "a result id is 64 hex digits");
    };
    let entry = match fetch_entry(&state, id).await {
        Ok(entry) => entry,
        Err(Lookup::Missing) => {
            return error(
                StatusCode::NOT_FOUND,
                "no entry with this id in this node's log",
            );
        }
        Err(Lookup::Stopping) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
        }
    };
    if entry.body().result().is_none() {
        return error(StatusCode::NOT_FOUND, "this entry is not a build result");
    }
    let Some(hash) = entry.body().attestation() else {
        return error(
            StatusCode::NOT_FOUND,
            "this result has no attestation: its builder signed it without one (a node \
             older than attestations, or one that could not store them); its entry \
             (GET /api/v1/entries/{id}) is signed all the same",
        );
    };
    serve_blob(&state, client, hash.0, BlobKind::Attestation).await
}
