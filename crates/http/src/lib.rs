//! The HTTP surface of a buildmesh node.
//!
//! Handlers answer from a [`NodeStatus`] snapshot that the node's driver
//! publishes through a `tokio::sync::watch` channel: HTTP never locks the
//! store or waits on the network, so a slow client cannot slow the node.
//!
//! ```no_run
//! # async fn example() -> Result<(), buildmesh_http::HttpError> {
//! let (publish, status) = tokio::sync::watch::channel(buildmesh_http::NodeStatus::default());
//! let server = buildmesh_http::bind("127.0.0.1:0").await?;
//! println!("serving on http://{}", server.local_addr()?);
//! server.serve(status, std::future::pending()).await?;
//! # drop(publish);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What `GET /api/v1/node` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    /// The node's ed25519 public key, hex: its identity and signing key.
    pub public_key: String,
    /// Its libp2p peer id.
    pub peer_id: String,
    /// Addresses it listens on (multiaddrs).
    pub listen: Vec<String>,
    /// Platform labels it builds for.
    pub platforms: Vec<String>,
    /// Connected peers' public keys, hex.
    pub peers: Vec<String>,
    /// Entries in its log.
    pub entries: u64,
    /// SHA-256 over the ids of every entry held, in id order, hex: two
    /// nodes with equal digests hold the same log.
    pub digest: String,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using it? pick another with --http)")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("HTTP server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// A bound, not yet serving, HTTP server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
}

/// Binds `addr` (such as `127.0.0.1:7878`; port 0 picks a free one).
pub async fn bind(addr: &str) -> Result<Server, HttpError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr: addr.to_owned(), source })?;
    Ok(Server { listener })
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, HttpError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        status: watch::Receiver<NodeStatus>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        axum::serve(self.listener, router(status))
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}

/// The routes.
pub fn router(status: watch::Receiver<NodeStatus>) -> Router {
    Router::new()
        .route("/api/v1/node", get(node))
        .fallback(not_found)
        .with_state(status)
}

async fn node(State(status): State<watch::Receiver<NodeStatus>>) -> Json<NodeStatus> {
    Json(status.borrow().clone())
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
}

async fn not_found() -> Response {
    let body = ErrorBody { error: "no such endpoint; see docs/http-api.md" };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}
