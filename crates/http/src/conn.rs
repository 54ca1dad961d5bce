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
//! - connections are counted, in all and per client address; past its
//!   client's cap a new connection is answered 503 at once and closed, so
//!   it neither waits in the kernel's backlog nor takes a descriptor;
//! - past the cap in all, a new connection takes the place of the one
//!   idle the longest (waiting for its first request head, or for the
//!   next on keep-alive), which is closed at once: else a few addresses
//!   holding silent connections, reopened as hyper closes them, would
//!   lock everyone else (the operator too) out. A connection with a
//!   request in flight (a response streaming, a body being read) is never
//!   closed so; when all are, the new one gets the 503.
//!
//! Only HTTP/1 is served: browsers speak HTTP/2 only over TLS, and
//! cleartext HTTP/2 would bring its own set of timers to bound.

use hyper::body::Incoming;
use hyper::body::{Bytes, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
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

/// Why a connection is refused when its client holds its share.
const PER_CLIENT_FULL: &str = "this address holds the most connections one client may; close some";
/// Why a connection is refused when every place is busy with a request.
const ALL_BUSY: &str = "the node holds the most HTTP connections it takes; try again later";

/// Connections open now, shared by the accept loop and each connection's
/// task (which marks its requests in flight).
#[derive(Debug, Clone)]
struct Connections {
    registry: Arc<Mutex<Registry>>,
}

/// Every open connection, with its client and whether it is idle, so
/// that a full server can make room by closing the longest idle one.
#[derive(Debug)]
struct Registry {
    max: usize,
    per_client: usize,
    next_id: u64,
    open: HashMap<u64, Entry>,
    by_client: HashMap<IpAddr, usize>,
}

/// One open connection.
#[derive(Debug)]
struct Entry {
    client: IpAddr,
    /// Requests read but not yet fully answered: while any is, the
    /// connection is busy (a stream, an export, a body being read) and is
    /// never closed to make room.
    in_flight: usize,
    /// When it last became idle (opened, or its last answer ended).
    idle_since: Instant,
    /// Tells the connection's task to close it at once. Its place is
    /// given to the new connection before that task runs, so for a moment
    /// the sockets open may pass the cap by the few being closed.
    close: oneshot::Sender<()>,
}

impl Registry {
    fn new(limits: &Limits) -> Self {
        Registry {
            max: limits.connections,
            per_client: limits.connections_per_client,
            next_id: 0,
            open: HashMap::new(),
            by_client: HashMap::new(),
        }
    }

    /// Takes a place for a connection of `client`, closing the longest
    /// idle connection if all are taken; the receiver fires when this one
    /// must close in turn. A client at its own cap is refused outright:
    /// it may not push others out to exceed its share.
    fn admit(
        &mut self,
        client: IpAddr,
        now: Instant,
    ) -> Result<(u64, oneshot::Receiver<()>), &'static str> {
        let held = self.by_client.get(&client).copied().unwrap_or(0);
        if held >= self.per_client {
            return Err(PER_CLIENT_FULL);
        }
        if self.open.len() >= self.max {
            let idle = self.longest_idle().ok_or(ALL_BUSY)?;
            if let Some(entry) = self.remove(idle) {
                let _ = entry.close.send(());
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let (close, closed) = oneshot::channel();
        let entry = Entry {
            client,
            in_flight: 0,
            idle_since: now,
            close,
        };
        self.open.insert(id, entry);
        *self.by_client.entry(client).or_default() += 1;
        Ok((id, closed))
    }

    /// The connection idle the longest, if any is idle (the older id
    /// first on a tie, so that the choice does not depend on the map).
    fn longest_idle(&self) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, entry)| entry.in_flight == 0)
            .min_by_key(|(id, entry)| (entry.idle_since, **id))
            .map(|(id, _)| *id)
    }

    /// Forgets a connection, giving its client's share back.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(held) = self.by_client.get_mut(&entry.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.by_client.remove(&entry.client);
            }
        }
        Some(entry)
    }

    /// A request of `id` was read: it is busy until the request ends.
    fn began(&mut self, id: u64) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.in_flight = entry.in_flight.saturating_add(1);
        }
    }

    /// A request of `id` was answered (or dropped): idle from `now` if it
    /// was the last in flight.
    fn ended(&mut self, id: u64, now: Instant) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 {
                entry.idle_since = now;
            }
        }
    }
}

/// One connection's handle on its entry in the registry.
#[derive(Debug, Clone)]
struct Slot {
    registry: Arc<Mutex<Registry>>,
    id: u64,
}

impl Slot {
    fn with<R>(&self, change: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut registry)
    }

    /// Marks a request in flight on this connection until the returned
    /// guard drops.
    fn begin(&self) -> InFlight {
        self.with(|registry| registry.began(self.id));
        InFlight(self.clone())
    }
}

/// One open connection's place, given back when its task ends (dropped).
#[derive(Debug)]
struct ConnectionPermit(Slot);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.with(|registry| registry.remove(self.0.id));
    }
}

/// A request in flight: dropped when its response body has ended or been
/// dropped (hyper drops it when the connection goes), which makes the
/// connection idle again if it was its last.
#[derive(Debug)]
struct InFlight(Slot);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .with(|registry| registry.ended(self.0.id, Instant::now()));
    }
}

/// A response body that keeps its request in flight until it ends: a
/// connection streaming events or an export is busy, not idle, for as
/// long as its response lasts.
struct Tracked {
    inner: axum::body::Body,
    in_flight: Option<InFlight>,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Connections {
    fn new(limits: &Limits) -> Self {
        Connections {
            registry: Arc::new(Mutex::new(Registry::new(limits))),
        }
    }

    /// A place for one more connection of `client` (made by closing the
    /// longest idle one if need be) and the signal to close it, or why not.
    fn permit(
        &self,
        client: IpAddr,
    ) -> Result<(ConnectionPermit, oneshot::Receiver<()>), &'static str> {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        let (id, closed) = registry.admit(client, Instant::now())?;
        let slot = Slot {
            registry: self.registry.clone(),
            id,
        };
        Ok((ConnectionPermit(slot), closed))
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
            Ok((permit, closed)) => {
                let signals = Signals {
                    stopping: stopping.clone(),
                    closed,
                };
                let connection =
                    serve_one(stream, client, app.clone(), &limits, &permit.0, signals);
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

/// What may end a connection from outside: the server stopping (its
/// current request is let finish) or its place being taken (it is closed
/// at once: it was idle).
struct Signals {
    stopping: watch::Receiver<bool>,
    closed: oneshot::Receiver<()>,
}

/// Serves one connection with hyper, its timer and bounds, until it
/// closes, or, after `stopping`, its current request is done, or its
/// place is taken (dropping hyper's connection closes the socket).
fn serve_one(
    stream: TcpStream,
    client: SocketAddr,
    app: axum::Router,
    limits: &Limits,
    slot: &Slot,
    signals: Signals,
) -> impl Future<Output = ()> + Send + 'static {
    let local = stream.local_addr().ok();
    let service = service(app, client, local, slot.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header)
        .max_header_size(HEAD_BYTES_MAX)
        .max_buf_size(HEAD_BYTES_MAX);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    let Signals {
        mut stopping,
        mut closed,
    } = signals;
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
                _ = &mut closed => {
                    tracing::debug!("HTTP connection from {client} closed: idle, its place taken");
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

/// The app as hyper calls it for each request of one connection: with the
/// addresses in the request's extensions, and the request counted in
/// flight on `slot` until its response body ends.
fn service(
    app: axum::Router,
    client: SocketAddr,
    local: Option<SocketAddr>,
    slot: Slot,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = hyper::Response<Tracked>,
    Error = Infallible,
    Future = impl Future<Output = Result<hyper::Response<Tracked>, Infallible>> + Send,
> {
    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = slot.begin();
        let mut request = request.map(axum::body::Body::new);
        let extensions = request.extensions_mut();
        extensions.insert(axum::extract::ConnectInfo(client));
        if let Some(local) = local {
            extensions.insert(LocalAddr(local));
        }
        let response = app.clone().oneshot(request);
        async move {
            let response = response.await?;
            Ok(response.map(|inner| Tracked {
                inner,
                in_flight: Some(in_flight),
            }))
        }
    })
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn connections(all: usize, per_client: usize) -> Connections {
        Connections::new(&Limits {
            connections: all,
            connections_per_client: per_client,
            ..Limits::default()
        })
    }

    #[test]
    fn caps_hold_per_client_and_in_all_and_free_on_drop() {
        let connections = connections(3, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = connections.permit(a).unwrap();
        let second = connections.permit(a).unwrap();
        assert!(connections.permit(a).is_err(), "per client");
        let third = connections.permit(b).unwrap();
        // Every place busy with a request: nothing to take.
        let busy = [&first, &second, &third].map(|(permit, _)| permit.0.begin());
        assert_eq!(connections.permit(b).err(), Some(ALL_BUSY), "in all");
        drop(first);
        assert!(connections.permit(b).is_ok(), "given back on drop");
        let (_, mut second_closed) = second;
        let (_, mut third_closed) = third;
        assert!(second_closed.try_recv().is_err() && third_closed.try_recv().is_err());
        drop(busy);
    }

    #[test]
    fn a_full_server_closes_the_longest_idle_connection_never_a_busy_one() {
        let mut registry = Registry::new(&Limits {
            connections: 3,
            connections_per_client: 2,
            ..Limits::default()
        });
        let [a, b, c, d]: [IpAddr; 4] = [1, 2, 3, 4].map(|x| [127, 0, 0, x].into());
        let t = |ms| Instant::now() + Duration::from_millis(ms);
        let (first, mut first_closed) = registry.admit(a, t(0)).unwrap();
        let (busy, mut busy_closed) = registry.admit(a, t(1)).unwrap();
        let (third, mut third_closed) = registry.admit(b, t(2)).unwrap();
        // The first served a request that ended after the third opened:
        // the third is now the one idle the longest.
        registry.began(first);
        registry.ended(first, t(3));
        registry.began(busy);
        let (fourth, _) = registry.admit(c, t(4)).unwrap();
        assert!(third_closed.try_recv().is_ok(), "the longest idle closed");
        assert!(first_closed.try_recv().is_err() && busy_closed.try_recv().is_err());
        // Its place and its client's share are given back at once.
        assert!(!registry.by_client.contains_key(&b));
        assert!(registry.remove(third).is_none(), "already forgotten");
        let (fifth, _) = registry.admit(b, t(5)).unwrap();
        assert!(first_closed.try_recv().is_ok(), "then the next idle one");
        // With every connection busy, a new one is refused and none closed.
        registry.began(fourth);
        registry.began(fifth);
        assert_eq!(registry.admit(d, t(6)).err(), Some(ALL_BUSY));
        assert_eq!(registry.open.len(), 3);
        // Over its own share a client is refused, even with an idle
        // connection to take.
        registry.ended(fifth, t(7));
        assert!(registry.admit(a, t(8)).is_ok(), "takes the idle fifth");
        assert_eq!(registry.admit(a, t(9)).err(), Some(PER_CLIENT_FULL));
        assert_eq!(registry.open.len(), 3);
    }
}
