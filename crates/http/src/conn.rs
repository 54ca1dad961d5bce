//! Connections: how long a client may take and how many it may hold.
//!
//! A stranger with an HTTP client must not be able to exhaust the node.
//! Without bounds, connections that send their headers slowly, bodies that
//! never finish, and idle keep-alive connections each hold a file
//! descriptor for ever, until the process cannot accept any more (or open
//! its own store). So:
//!
//! - hyper closes a connection that has not sent a whole request head
//!   within [`Limits::header`] of opening or of its last response (its
//!   `header_read_timeout`: in hyper 1 the same timer bounds the idle
//!   keep-alive wait, as the next head is awaited);
//! - write routes answer 408 when their request is not done within
//!   [`Limits::body`] (tower-http's `TimeoutLayer`, in `crate::router_with`):
//!   only writes carry bodies, and timing out only them leaves long-lived
//!   responses (event streams, the entries export) alone;
//! - connections are counted, in all and per client address; past either
//!   cap a new connection is answered 503 at once and closed, so it
//!   neither waits in the kernel's backlog nor takes a descriptor.
//!
//! Only HTTP/1 is served: browsers speak HTTP/2 only over TLS, and
//! cleartext HTTP/2 would bring its own set of timers to bound.

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

/// How long a client may take to send a request head, counted from when
/// the connection opens or its last response ends (so also how long an
/// idle keep-alive connection stays open). A head is one packet or a few:
/// ten seconds is ample even over a slow link, and short enough that
/// half-sent heads cannot pile up.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write (a POST or DELETE: the only requests with bodies) may
/// take from its head to its answer, body included. Bodies are at most a
/// few MiB (`POST /api/v1/entries`): 30 s carries one over 1 Mbit/s.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most HTTP connections open at once. Well under the usual 1024
/// descriptors a process may hold, leaving room for the store, peers and
/// builds; the node lowers it under a smaller limit.
pub const CONNECTIONS_MAX: usize = 512;
/// Most connections one client address holds at once: a browser opens
/// six per host, a CI script a handful; an eighth of the whole leaves
/// room for seven other busy clients, or many ordinary ones.
pub const CONNECTIONS_PER_CLIENT_MAX: usize = CONNECTIONS_MAX / 8;
/// Longest request head (request line and headers) hyper takes: past it
/// hyper answers 431 with no body, before the node sees the request.
/// Also bounds each connection's buffer (hyper's default is 400 KiB).
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Longest URI (path and query) the node takes; longer is a JSON 414.
/// Under [`HEAD_BYTES_MAX`], so that hyper's own (empty) 414, for URIs
/// past 64 KiB, is never reached: such a head is a 431 first.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// How long the accept loop waits after an error other than a failed
/// connection (such as `EMFILE`: no descriptor left) before it tries
/// again: long enough not to spin, short enough not to stall.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The server's time and connection bounds; [`Default`] gives the
/// constants of this module. Tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_TIMEOUT`].
    pub header: Duration,
    /// See [`BODY_TIMEOUT`].
    pub body: Duration,
    /// See [`CONNECTIONS_MAX`].
    pub connections: usize,
    /// See [`CONNECTIONS_PER_CLIENT_MAX`].
    pub connections_per_client: usize,
    /// See [`crate::SUBMIT_BURST_BYTES`].
    pub submit_burst_bytes: u64,
    /// See [`crate::SUBMIT_BYTES_PER_SECOND`].
    pub submit_bytes_per_second: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header: HEADER_TIMEOUT,
            body: BODY_TIMEOUT,
            connections: CONNECTIONS_MAX,
            connections_per_client: CONNECTIONS_PER_CLIENT_MAX,
            submit_burst_bytes: crate::SUBMIT_BURST_BYTES,
            submit_bytes_per_second: crate::SUBMIT_BYTES_PER_SECOND,
        }
    }
}

/// The address a connection came in on, put in each request's extensions
/// for the `Host` check (with a wildcard bind, it says which of the
/// machine's addresses the client used).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr(pub(crate) SocketAddr);

/// Connections open now, in all and by client address.
#[derive(Debug, Clone)]
struct Connections {
    all: Arc<Semaphore>,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_client: usize,
}

/// One open connection's place, given back when it closes (dropped).
#[derive(Debug)]
struct ConnectionPermit {
    _all: OwnedSemaphorePermit,
    client: IpAddr,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Connections {
    fn new(limits: &Limits) -> Self {
        Connections {
            all: Arc::new(Semaphore::new(limits.connections)),
            by_client: Arc::default(),
            per_client: limits.connections_per_client,
        }
    }

    /// A place for one more connection of `client`, or why not.
    fn permit(&self, client: IpAddr) -> Result<ConnectionPermit, &'static str> {
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        let held = by_client.get(&client).copied().unwrap_or(0);
        if held >= self.per_client {
            return Err("this address holds the most connections one client may; close some");
        }
        let all =
            self.all.clone().try_acquire_owned().map_err(
                |_| "the node holds the most HTTP connections it takes; try again later",
            )?;
        by_client.insert(client, held + 1);
        Ok(ConnectionPermit {
            _all: all,
            client,
            by_client: self.by_client.clone(),
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = by_client.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// Accepts and serves connections until `shutdown`, then lets each open
/// one finish its request and waits for them all.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let connections = Connections::new(&limits);
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, client) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                if !is_connection_error(&error) {
                    if !failing {
                        tracing::error!("HTTP accept failed (retrying): {error}");
                    }
                    failing = true;
                    tokio::time::sleep(ACCEPT_RETRY).await;
                }
                continue;
            }
        };
        failing = false;
        match connections.permit(client.ip()) {
            Ok(permit) => {
                let connection = serve_one(stream, client, app.clone(), &limits, stopping.clone());
                tokio::spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
            Err(why) => refuse(stream, why),
        }
    }
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
}

/// Serves one connection with hyper, its timer and bounds, until it
/// closes or, after `stopping`, its current request is done.
fn serve_one(
    stream: TcpStream,
    client: SocketAddr,
    app: axum::Router,
    limits: &Limits,
    mut stopping: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let local = stream.local_addr().ok();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        let extensions = request.extensions_mut();
        extensions.insert(axum::extract::ConnectInfo(client));
        if let Some(local) = local {
            extensions.insert(LocalAddr(local));
        }
        app.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_header_size(HEAD_BYTES_MAX)
        .max_buf_size(HEAD_BYTES_MAX);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    async move {
        let mut connection = std::pin::pin!(connection);
        let mut stopped = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!("HTTP connection from {client} ended: {error}");
                    }
                    return;
                }
                changed = stopping.changed(), if !stopped => {
                    stopped = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Answers a connection past a cap with a 503 if the socket takes it at
/// once (it never waits on the client), then closes it.
fn refuse(stream: TcpStream, why: &str) {
    let body = serde_json::json!({ "error": why }).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// Errors of one connection that failed while being accepted: the next
/// accept may go on at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_per_client_and_in_all_and_free_on_drop() {
        let connections = Connections::new(&Limits {
            connections: 3,
            connections_per_client: 2,
            ..Limits::default()
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = connections.permit(a);
        let second = connections.permit(a);
        assert!(first.is_ok() && second.is_ok());
        assert!(connections.permit(a).is_err(), "per client");
        let third = connections.permit(b);
        assert!(third.is_ok());
        assert!(connections.permit(b).is_err(), "in all");
        drop(first);
        assert!(connections.permit(b).is_ok(), "given back on drop");
    }
}
