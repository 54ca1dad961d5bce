//! `POST|DELETE /api/v1/peers/{key}/ban`: an operator cuts a peer off, or
//! lets it back in before its ban ends. Both need the operator token as a
//! bearer token ([`crate::operator`]).

use crate::{AppState, Command, error};
use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::net::SocketAddr;
use tokio::sync::oneshot;

#[derive(Serialize)]
struct BanReply {
    peer: String,
    banned: bool,
}

/// Closes every connection to the peer and refuses it, both ways.
pub(crate) async fn ban(
    state: State<AppState>,
    client: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    key: Path<String>,
) -> Response {
    set_ban(state, client, headers, key, true).await
}

/// Lifts the peer's ban; a bootstrap peer is dialed again within seconds.
pub(crate) async fn unban(
    state: State<AppState>,
    client: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    key: Path<String>,
) -> Response {
    set_ban(state, client, headers, key, false).await
}

async fn set_ban(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(key): Path<String>,
    banned: bool,
) -> Response {
    // Whoever reaches a node's HTTP port (a build step on this machine, a
    // web page the operator visits) must not be able to cut it off from
    // the mesh: only the operator token may, as a bearer token.
    if let Err(why) = crate::local::from_this_machine(&client, &headers) {
        return error(StatusCode::FORBIDDEN, why);
    }
    if let Err(refusal) = state.operator.check_bearer(&headers) {
        return error(StatusCode::FORBIDDEN, &state.operator.message(refusal));
    }
    let Some(peer) = crate::hex32(&key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a peer is named by its public key: 64 hex digits",
        );
    };
    let (reply, answer) = oneshot::channel();
    let command = if banned {
        Command::Ban { peer, reply }
    } else {
        Command::Unban { peer, reply }
    };
    if state.commands.send(command).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    match answer.await {
        Ok(Ok(())) => Json(BanReply { peer: key, banned }).into_response(),
        Ok(Err(why)) => error(StatusCode::BAD_REQUEST, why.as_str()),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}
