//! `GET /api/v1/authors/{key}`: how far this node holds one key's chain.
//!
//! What `buildmesh project trust --revoke` asks before it signs: a
//! builder's revocation names the last entry of the builder's chain that
//! keeps counting (docs/protocol.md §6.3), and the maintainer's command
//! takes the newest one the node holds.

use crate::{AppState, error, hex32};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use buildmesh_protocol::PublicKey;
use serde_json::json;

pub(crate) async fn chain(State(state): State<AppState>, Path(key): Path<String>) -> Response {
    let Some(author) = hex32(&key).map(PublicKey) else {
        return error(StatusCode::BAD_REQUEST, "a key is 64 hex digits");
    };
    let log = state.log.clone();
    match tokio::task::spawn_blocking(move || log.version(&author)).await {
        Ok(Ok(seq)) => Json(json!({ "author": author.to_string(), "seq": seq })).into_response(),
        Ok(Err(why)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read the log: {why}"),
        ),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the log reader failed"),
    }
}
