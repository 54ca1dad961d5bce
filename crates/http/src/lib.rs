//! The HTTP surface of a buildmesh node.
//!
//! Handlers answer from a [`NodeStatus`] snapshot that the node's driver
//! publishes through a `tokio::sync::watch` channel, and read what costs a
//! scan straight from the log through a [`LogReader`], on a blocking
//! thread: HTTP never waits on the driver for a read, so a slow client
//! cannot slow the node.
//!
//! ```no_run
//! # async fn example() -> Result<(), buildmesh_http::HttpError> {
//! let (publish, status) = tokio::sync::watch::channel(buildmesh_http::NodeStatus::default());
//! let (commands, _node_side) = tokio::sync::mpsc::channel(64);
//! let server = buildmesh_http::bind("127.0.0.1:0").await?;
//! println!("serving on http://{}", server.local_addr()?);
//! # struct Empty;
//! # impl buildmesh_http::LogReader for Empty {
//! #     fn digest(&self) -> Result<(u64, [u8; 32]), String> { Ok((0, [0; 32])) }
//! # }
//! let backend = buildmesh_http::Backend {
//!     status,
//!     commands,
//!     log: std::sync::Arc::new(Empty),
//!     hook_secret: None,
//!     views: tokio::sync::watch::channel(Default::default()).1,
//!     libp2p_metrics: std::sync::Arc::new(String::new),
//!     blobs: None,
//!     live: None,
//!     operator: Some(buildmesh_http::Operator {
//!         token: "a random secret of at least 32 hex digits".into(),
//!         token_file: "/var/lib/buildmesh/operator.token".into(),
//!     }),
//!     clock: || buildmesh_protocol::Timestamp(1_700_000_000_000),
//! };
//! server.serve(backend, std::future::pending()).await?;
//! # drop(publish);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod attestation;
mod authors;
pub mod badge;
mod blob_file;
mod commit;
mod conn;
mod dashboard;
mod entries;
mod events;
mod flaky;
mod forks;
mod hooks;
pub mod json;
pub mod live;
mod local;
mod metrics;
mod operator;
pub mod pages;
mod peers;
mod per_client;
mod projects;
mod streams;
pub mod trends;
pub mod views;

pub use conn::{
    BODY_TIMEOUT, CONNECTIONS_MAX, CONNECTIONS_PER_CLIENT_MAX, HEAD_BYTES_MAX, HEADER_TIMEOUT,
    Limits, URI_BYTES_MAX,
};
pub use forks::FORKS_PAGE_MAX;
pub use hooks::{
    DELIVERIES_REMEMBERED, HOOK_BYTES_MAX, POLL_INTERVAL_MIN, PullRequestClosed, PullRequestEvent,
    signature_matches,
};
pub use operator::{Operator, TOKEN_CHARS_MIN};
pub use per_client::{
    BLOB_FETCHES_PER_CLIENT_BURST, BLOB_FETCHES_PER_CLIENT_PER_SECOND, SUBMIT_BURST_BYTES,
    SUBMIT_BYTES_PER_SECOND,
};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use buildmesh_protocol::Timestamp;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tower_http::timeout::TimeoutLayer;

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
    /// Entries in its log now.
    pub entries: u64,
    /// Entries this process has taken from peers since it started (sync
    /// and gossip); a restarted node that fetches only what it lacks shows
    /// just the new ones here.
    pub entries_received: u64,
    /// Peers disconnected for misbehaving since start.
    pub peers_disconnected: u64,
    /// SHA-256 over the ids of every entry held, in id order, hex: two
    /// nodes with equal digests hold the same log. While the log grows it
    /// may lag `entries` by a moment; `digest_entries` says what it covers.
    pub digest: String,
    /// How many entries `digest` covers.
    pub digest_entries: u64,
    /// When this node last added an entry to its log, ms since the Unix
    /// epoch (0: not since it started): with an entry's own timestamp, how
    /// long the entry took to get here.
    pub last_applied_at: u64,
    /// When this node last finished a sync with a peer, ms since the Unix
    /// epoch (0: not yet).
    pub last_sync_at: u64,
    /// Builds running here now: the node's load.
    pub builds_running: u64,
    /// Cells on this node's platforms that still wait for results: the
    /// build queue as this node sees it.
    pub cells_waiting: u64,
    /// Builds this node finished since it started, by outcome.
    pub builds_passed: u64,
    /// See `builds_passed`.
    pub builds_failed: u64,
    /// See `builds_passed`.
    pub builds_errored: u64,
    /// Builds this node started then cancelled (another node held the
    /// cell, or enough results came).
    pub builds_cancelled: u64,
    /// Peers this node is connected to or has heard bid, with what their
    /// bids said.
    pub peer_details: Vec<PeerDetail>,
    /// What this node's operator accepted to build.
    pub accepts: Accepts,
    /// How build steps are confined here.
    pub sandbox: SandboxStatus,
}

/// The projects a node builds: only what its operator accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accepts {
    /// Project ids accepted one by one, hex.
    pub projects: Vec<String>,
    /// Maintainer keys whose every project is accepted, hex.
    pub maintainers: Vec<String>,
    /// When nothing is accepted: how to accept something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// How a node runs build steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SandboxStatus {
    /// `bubblewrap` (every step sandboxed), `unavailable` (no sandbox can
    /// run: only this node's own maintainers' projects build) or
    /// `off` (the operator passed --unsandboxed).
    pub mode: String,
    /// Why, in words, and what it means for builds.
    pub detail: String,
    /// Whether steps may use the network at all.
    pub network: bool,
}

/// Reads the node's log beside the driver, for answers that cost a scan.
pub trait LogReader: Send + Sync + 'static {
    /// The digest of a set of entries the log holds
    /// (`buildmesh_protocol::SetDigest`) and how many it covers; a reader
    /// may serve a digest a moment old while the log grows.
    fn digest(&self) -> Result<(u64, [u8; 32]), String>;

    /// The sequence number of `author`'s newest linked entry (0: none),
    /// for `GET /api/v1/authors/{key}`.
    fn version(&self, author: &buildmesh_protocol::PublicKey) -> Result<u64, String> {
        let _ = author;
        Err("this node does not serve its entries".into())
    }

    /// The next bounded batch of entries someone holding `have` lacks,
    /// from `resume` on, and where to resume (`None`: done). As a sync
    /// peer would be served (`buildmesh_core::log::lacks`), but within
    /// [`EXPORT_BATCH_BYTES`]: each export holds one batch.
    fn lacks(
        &self,
        have: &buildmesh_protocol::VersionVector,
        resume: Option<buildmesh_protocol::SyncCursor>,
    ) -> Result<
        (
            Vec<buildmesh_protocol::Entry>,
            Option<buildmesh_protocol::SyncCursor>,
        ),
        String,
    > {
        let _ = (have, resume);
        Err("this node does not serve its entries".into())
    }

    /// The next bounded batch of the entries of the fork proofs the log
    /// holds that [`LogReader::lacks`] leaves out because they do not link
    /// (`buildmesh_core::log::unlinked_evidence`), from the first forked
    /// author after `after`, and the author to resume after (`None`:
    /// done): what an export adds at its end so that whoever checks it
    /// sees each fork the node sees. Read in batches, since anyone with a
    /// key can make forks, and never cut: a verifier that missed one would
    /// count a forked author the node rightly does not.
    fn evidence(
        &self,
        after: Option<buildmesh_protocol::PublicKey>,
    ) -> Result<
        (
            Vec<buildmesh_protocol::Entry>,
            Option<buildmesh_protocol::PublicKey>,
        ),
        String,
    > {
        let _ = after;
        Ok((Vec::new(), None))
    }
}

/// A peer as this node knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PeerDetail {
    /// Its public key, hex.
    pub key: String,
    /// Whether a connection to it is up now.
    pub connected: bool,
    /// Platforms it bid for (empty: it has not bid since this node started).
    pub platforms: Vec<String>,
    /// Builds it was running at its last bid.
    pub load: Option<u32>,
    /// When it was last seen, ms since the Unix epoch: its last bid (0:
    /// none); `GET /api/v1/peers` answers the present time for a peer
    /// connected now.
    pub last_seen: u64,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound.
    /// (The cause is not in the message: `{:#}` prints it after, once.)
    #[error("cannot listen on {addr} (is another process using it? pick another with --http)")]
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
    limits: Limits,
    hosts: Vec<String>,
    public_url: Option<Arc<str>>,
}

/// Binds `addr` (such as `127.0.0.1:7878`; port 0 picks a free one).
pub async fn bind(addr: &str) -> Result<Server, HttpError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind {
            addr: addr.to_owned(),
            source,
        })?;
    Ok(Server {
        listener,
        limits: Limits::default(),
        hosts: Vec::new(),
        public_url: None,
    })
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, HttpError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves with these timeouts and caps instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Names (or addresses) clients may give in `Host` besides the
    /// address they connected to and loopback names: those the operator
    /// serves the node under, such as `ci.example.org` behind a proxy.
    /// A port, if given, is ignored.
    pub fn with_hosts(mut self, hosts: Vec<String>) -> Self {
        self.hosts = hosts;
        self
    }

    /// The dashboard's URL as people outside reach it (such as
    /// `https://ci.example.org`, no trailing `/`): what pages put in the
    /// URLs they give to copy (badges, the audit command). Without it they
    /// use `http://` and the `Host` the request came with.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| Arc::from(u.trim_end_matches('/')));
        self
    }

    /// Serves until `shutdown` completes. Writes go to the node as
    /// [`Command`]s on `commands`.
    pub async fn serve(
        self,
        backend: Backend,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        let hosts = Arc::new(local::KnownHosts::new(
            self.listener.local_addr()?,
            &self.hosts,
        ));
        let app = app(backend, &self.limits, self.public_url).layer(
            axum::middleware::from_fn_with_state(hosts, local::known_host),
        );
        conn::serve(self.listener, app, self.limits, shutdown).await;
        Ok(())
    }
}

/// What the server answers from: the node's published status, its command
/// channel, a reader of its log, and the webhook secret (none: webhooks
/// off).
pub struct Backend {
    /// The status the driver publishes.
    pub status: watch::Receiver<NodeStatus>,
    /// Requests to the driver.
    pub commands: mpsc::Sender<Command>,
    /// Reads the log beside the driver.
    pub log: Arc<dyn LogReader>,
    /// The HMAC secret forges sign push webhooks with.
    pub hook_secret: Option<Vec<u8>>,
    /// Every project's views, as the node's views thread publishes them.
    pub views: watch::Receiver<Arc<views::Views>>,
    /// libp2p's metric families in the OpenMetrics text format, with or
    /// without the closing `# EOF` (`/metrics` adds its own).
    pub libp2p_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Where the node keeps blobs (build logs), one file per hash, for
    /// pages that show a log's tail.
    pub blobs: Option<std::path::PathBuf>,
    /// Where running builds report their output (none: the node does not
    /// build).
    pub live: Option<live::LiveHub>,
    /// The operator token, which bans and force builds need (none, or one
    /// under [`TOKEN_CHARS_MIN`] characters: nobody may do those here).
    pub operator: Option<Operator>,
    /// The wall clock, as the node reads it: HTTP never reads it itself,
    /// so that the node has one clock (and tests may fix it).
    pub clock: fn() -> Timestamp,
}

/// Most entries one `POST /api/v1/entries` may carry.
pub const SUBMIT_ENTRIES_MAX: usize = 1024;

/// What the HTTP side asks of the node.
#[derive(Debug)]
pub enum Command {
    /// Store these signed entries (wire bytes) and spread them.
    Submit {
        /// The entries.
        entries: Vec<Vec<u8>>,
        /// Each entry's fate, in order.
        reply: oneshot::Sender<Vec<SubmitResult>>,
    },
    /// The blob with this SHA-256, from this node or fetched from a peer
    /// (`None` if no connected peer has it).
    Blob {
        /// Its hash.
        hash: [u8; 32],
        /// Its bytes.
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// One entry (`None`: not held).
    Entry {
        /// The entry id.
        id: [u8; 32],
        /// The entry.
        reply: oneshot::Sender<Option<buildmesh_protocol::Entry>>,
    },
    /// Sign a force build with the maintainer key this node holds.
    Force {
        /// The project.
        project: [u8; 32],
        /// What to build.
        target: buildmesh_protocol::ForceTarget,
        /// Only these platforms (empty: all).
        platforms: Vec<String>,
        /// Why.
        reason: String,
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// A forge reported a push: poll the watched repositories now.
    Poll,
    /// A forge reported a pull request opened, synchronized or reopened:
    /// the announcer checks its head and announces it if the project
    /// builds pull requests. Nothing in it is trusted beyond "look at
    /// pull request N of this repository".
    PullRequest(PullRequestEvent),
    /// A forge reported a pull request closed: the node signs a close of
    /// it for each project it announces for there that builds pull
    /// requests. Nothing is fetched; the ref stays as it was.
    PullRequestClosed(PullRequestClosed),
    /// Disconnect and ban the peer with this public key.
    Ban {
        /// The peer's public key.
        peer: [u8; 32],
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Lift the ban on the peer with this public key.
    Unban {
        /// The peer's public key.
        peer: [u8; 32],
        /// Done, or why not.
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// How long `GET /api/v1/blobs/{hash}` waits for the mesh.
pub const BLOB_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The fate of one submitted entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// Its id, hex, if it decoded.
    pub id: Option<String>,
    /// `applied`, `pending`, `duplicate`, `fork`, or why it was refused.
    pub outcome: String,
}

#[derive(Clone)]
struct AppState {
    status: watch::Receiver<NodeStatus>,
    commands: mpsc::Sender<Command>,
    log: Arc<dyn LogReader>,
    /// The webhook secret; webhooks are off without one.
    hook_secret: Option<Arc<[u8]>>,
    /// What the views thread published last.
    views: watch::Receiver<Arc<views::Views>>,
    /// libp2p's metric families in the OpenMetrics text format, with or
    /// without the closing `# EOF` (`/metrics` adds its own).
    libp2p_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// The node's blob directory.
    blobs: Option<Arc<std::path::Path>>,
    /// Output of running builds.
    live: Option<live::LiveHub>,
    /// Long-lived responses (event streams, the entries stream) open now.
    streams: streams::Streams,
    /// What operator writes must show.
    operator: Arc<operator::Gate>,
    /// Webhook deliveries seen, and when they last made the node poll.
    hooks: Arc<hooks::HookGate>,
    /// Entry bytes each client address may still submit.
    submissions: per_client::Buckets,
    /// Blob fetches from peers each client address may still ask for.
    blob_fetches: per_client::Buckets,
    /// The node's wall clock ([`Backend::clock`]).
    clock: fn() -> Timestamp,
    /// [`Server::with_public_url`].
    public_url: Option<Arc<str>>,
}

pub use entries::EXPORT_BATCH_BYTES;
pub use streams::{
    EVENTS_MAX, EVENTS_PER_CLIENT_MAX, EXPORT_READS_MAX, EXPORTS_MAX, EXPORTS_PER_CLIENT_MAX,
    LIVE_MAX, LIVE_PER_CLIENT_MAX, STREAMS_MAX, STREAMS_PER_CLIENT_MAX, StreamKind,
};

impl AppState {
    /// A place for one more long-lived response of `kind` for `client`,
    /// or the 503 to answer.
    fn stream_permit(
        &self,
        client: SocketAddr,
        kind: StreamKind,
    ) -> Result<streams::StreamPermit, Box<Response>> {
        self.streams.permit(client.ip(), kind)
    }
}

/// The routes, with the default [`Limits`].
pub fn router(backend: Backend) -> Router {
    router_with(backend, &Limits::default())
}

/// The routes. Every response forbids framing (clickjacking: a page of
/// another site must not show the dashboard under a decoy). Writes (the
/// only requests with bodies) answer 408 past `limits.body`; reads are
/// not timed, so long-lived responses last as long as their client likes.
pub fn router_with(backend: Backend, limits: &Limits) -> Router {
    app(backend, limits, None)
}

/// [`router_with`], with the URL pages give people to copy.
fn app(backend: Backend, limits: &Limits, public_url: Option<Arc<str>>) -> Router {
    let timed = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.body);
    Router::new()
        .route("/api/v1/node", get(node))
        .route("/api/v1/peers", get(peers_list))
        .route("/api/v1/forks", get(forks::list))
        .route("/api/v1/authors/{key}", get(authors::chain))
        .route(
            "/api/v1/entries",
            post(submit).layer(timed).get(entries::stream),
        )
        .route("/api/v1/blobs/{hash}", get(blob))
        .route("/", get(dashboard::index))
        .route("/operator", get(operator::login))
        .route("/projects/{project}", get(dashboard::project))
        .route(
            "/projects/{project}/commits/{commit}",
            get(dashboard::commit),
        )
        .route("/projects/{project}/pulls/{number}", get(dashboard::pull))
        .route("/projects/{project}/flaky", get(flaky::page))
        .route("/projects/{project}/metrics", get(trends::page))
        .route(
            "/projects/{project}/force",
            post(dashboard::force).layer(timed),
        )
        .route("/results/{id}", get(dashboard::result))
        .route("/mesh", get(dashboard::mesh))
        .route("/audit", get(dashboard::audit))
        .route("/badges/{file}", get(dashboard::badge))
        .route("/metrics", get(metrics::serve))
        .route("/live/{project}/{commit}/{platform}", get(live::page))
        .route(
            "/api/v1/live/{project}/{commit}/{platform}",
            get(live::stream),
        )
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/projects", get(projects::list))
        .route("/api/v1/projects/{project}/matrix", get(projects::matrix))
        .route(
            "/api/v1/projects/{project}/commits/{commit}",
            get(projects::commit),
        )
        .route("/api/v1/projects/{project}/metrics", get(trends::json))
        .route("/api/v1/projects/{project}/pulls", get(projects::pulls))
        .route("/api/v1/projects/{project}/flaky", get(flaky::api))
        .route(
            "/api/v1/projects/{project}/pulls/{number}",
            get(projects::pull),
        )
        .route("/api/v1/results/{id}", get(dashboard::result_json))
        .route("/api/v1/results/{id}/attestation", get(attestation::serve))
        .route("/api/v1/entries/{id}", get(entry))
        .route(
            "/api/v1/hooks/{forge}",
            post(hooks::push)
                .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(
                    HOOK_BYTES_MAX,
                ))
                .layer(timed),
        )
        .route(
            "/api/v1/peers/{key}/ban",
            post(peers::ban).delete(peers::unban).layer(timed),
        )
        .fallback(not_found)
        .with_state(AppState {
            status: backend.status,
            commands: backend.commands,
            log: backend.log,
            hook_secret: backend.hook_secret.map(Arc::from),
            views: backend.views,
            libp2p_metrics: backend.libp2p_metrics,
            blobs: backend.blobs.map(Arc::from),
            live: backend.live,
            streams: streams::Streams::default(),
            operator: Arc::new(operator::Gate::new(backend.operator)),
            hooks: Arc::default(),
            submissions: per_client::Buckets::new(
                limits.submit_burst_bytes,
                limits.submit_bytes_per_second,
            ),
            blob_fetches: per_client::Buckets::new(
                BLOB_FETCHES_PER_CLIENT_BURST,
                BLOB_FETCHES_PER_CLIENT_PER_SECOND,
            ),
            clock: backend.clock,
            public_url,
        })
        .layer(axum::middleware::from_fn(api_errors_in_json))
        .layer(axum::middleware::from_fn(uri_bounded))
        .layer(axum::middleware::map_response(deny_framing))
}

/// A URI past [`URI_BYTES_MAX`] is a 414 with the JSON error (hyper's own
/// 414, with no body, would come only past 64 KiB, where the head is too
/// long first: a 431).
async fn uri_bounded(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if length <= URI_BYTES_MAX {
        return next.run(request).await;
    }
    error(
        StatusCode::URI_TOO_LONG,
        &format!("the path and query are {length} bytes, past the {URI_BYTES_MAX} this node reads"),
    )
}

/// Errors of the JSON API that axum makes itself (a wrong method, a path
/// that is not UTF-8, a body it would not read) come as plain text; the
/// API promises `{"error": ...}` for every error, so they are rewritten.
async fn api_errors_in_json(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    let is_error = status.is_client_error() || status.is_server_error();
    if !api || !is_error || is_json {
        return response;
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        return error(
            status,
            "the request was not done in time: send its body at once (see Limits in \
             docs/http-api.md)",
        );
    }
    let reason = status.canonical_reason().unwrap_or("error");
    error(
        status,
        &format!("{reason}: see docs/http-api.md for this endpoint's methods and limits"),
    )
}

/// Adds `Content-Security-Policy: frame-ancestors 'none'` (appended, so a
/// handler's own policy still holds) and `X-Frame-Options: DENY` (for
/// browsers without CSP).
async fn deny_framing(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.append(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    response
}

/// The published status, with the digest read from the log.
async fn node(State(state): State<AppState>) -> Response {
    match status_with_digest(&state).await {
        Ok(status) => Json(status).into_response(),
        Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    }
}

/// The published status with `digest` and `digest_entries` filled in
/// from the log: the driver publishes neither (a digest costs a scan), so
/// whatever shows them (`GET /api/v1/node`, the mesh page) reads them
/// here, or it would show an empty digest of 0 entries.
pub(crate) async fn status_with_digest(state: &AppState) -> Result<NodeStatus, String> {
    let mut status = state.status.borrow().clone();
    let log = state.log.clone();
    match tokio::task::spawn_blocking(move || log.digest()).await {
        Ok(Ok((entries, digest))) => {
            status.digest_entries = entries;
            status.digest = hex::encode(digest);
            Ok(status)
        }
        Ok(Err(why)) => Err(format!("cannot read the log: {why}")),
        Err(_) => Err("the log reader failed".to_owned()),
    }
}

/// `GET /api/v1/peers`: every peer this node is connected to or heard bid.
async fn peers_list(State(state): State<AppState>) -> Response {
    let now = (state.clock)().0;
    let mut peers = state.status.borrow().peer_details.clone();
    for peer in peers.iter_mut().filter(|p| p.connected) {
        peer.last_seen = now;
    }
    Json(serde_json::json!({ "peers": peers })).into_response()
}

/// `POST /api/v1/entries` body.
#[derive(Deserialize)]
struct SubmitBody {
    /// Wire bytes of signed entries, hex.
    entries: Vec<String>,
}

#[derive(Serialize)]
struct SubmitReply {
    results: Vec<SubmitResult>,
}

async fn submit(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(client): axum::extract::ConnectInfo<SocketAddr>,
    body: Result<Json<SubmitBody>, JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        // 413 for a body past the limit, 415 for another content type,
        // 400 (as documented) for a body that is not the JSON asked for.
        Err(rejection) => {
            let status = match rejection.status() {
                s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                _ => StatusCode::BAD_REQUEST,
            };
            return error(status, &rejection.body_text());
        }
    };
    if body.entries.len() > SUBMIT_ENTRIES_MAX {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {SUBMIT_ENTRIES_MAX} entries per request"),
        );
    }
    let mut entries = Vec::with_capacity(body.entries.len());
    for (index, text) in body.entries.iter().enumerate() {
        match hex::decode(text) {
            Ok(bytes) => entries.push(bytes),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("entries[{index}] is not hex"),
                );
            }
        }
    }
    let bytes = entries.iter().map(|e| e.len() as u64).sum();
    let now = std::time::Instant::now();
    if let Err(wait) = state.submissions.take(client.ip(), bytes, now) {
        let what = format!(
            "more than {SUBMIT_BURST_BYTES} bytes of entries at {SUBMIT_BYTES_PER_SECOND} a second"
        );
        return too_many(wait, &what);
    }
    let (reply, answer) = oneshot::channel();
    if state
        .commands
        .send(Command::Submit { entries, reply })
        .await
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    match answer.await {
        Ok(results) => Json(SubmitReply { results }).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}

/// 32 bytes from 64 hex digits (ids, keys, hashes in paths).
pub(crate) fn hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
}

/// Why an entry could not be had from the driver.
pub(crate) enum Lookup {
    /// The node is shutting down.
    Stopping,
    /// The log does not hold it.
    Missing,
}

/// Asks the driver for entry `id`.
pub(crate) async fn fetch_entry(
    state: &AppState,
    id: [u8; 32],
) -> Result<buildmesh_protocol::Entry, Lookup> {
    let (reply, answer) = oneshot::channel();
    if state
        .commands
        .send(Command::Entry { id, reply })
        .await
        .is_err()
    {
        return Err(Lookup::Stopping);
    }
    match answer.await {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(Lookup::Missing),
        Err(_) => Err(Lookup::Stopping),
    }
}

async fn entry(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(id) = hex32(&id) else {
        return error(StatusCode::BAD_REQUEST, "an entry id is 64 hex digits");
    };
    match fetch_entry(&state, id).await {
        Ok(entry) => Json(json::entry(&entry)).into_response(),
        Err(Lookup::Missing) => error(
            StatusCode::NOT_FOUND,
            "no entry with this id in this node's log",
        ),
        Err(Lookup::Stopping) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down")
        }
    }
}

/// `?view=text`: serve the blob as text (a log a browser shows).
#[derive(Debug, Default, serde::Deserialize)]
struct BlobView {
    view: Option<String>,
}

async fn blob(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(client): axum::extract::ConnectInfo<SocketAddr>,
    Path(hash): Path<String>,
    axum::extract::Query(view): axum::extract::Query<BlobView>,
) -> Response {
    let Some(hash) = hex32(&hash) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a blob hash is 64 hex digits (SHA-256)",
        );
    };
    let kind = match view.view.as_deref() {
        None => blob_file::BlobKind::Bytes,
        Some("text") => blob_file::BlobKind::Text,
        Some(_) => return error(StatusCode::BAD_REQUEST, "view is text, or not given"),
    };
    serve_blob(&state, client, hash, kind).await
}

/// Blob `hash` as `kind`: from this node's blob dir, or else fetched from
/// its peers within the per-client and node-wide budgets.
pub(crate) async fn serve_blob(
    state: &AppState,
    client: SocketAddr,
    hash: [u8; 32],
    kind: blob_file::BlobKind,
) -> Response {
    if let Some(response) = match &state.blobs {
        Some(dir) => blob_file::serve(dir, hash, kind).await,
        None => None,
    } {
        return response;
    }
    let now = std::time::Instant::now();
    if let Err(wait) = state.blob_fetches.take(client.ip(), 1, now) {
        let what = format!(
            "more than {BLOB_FETCHES_PER_CLIENT_BURST} blobs this node lacks at \
             {BLOB_FETCHES_PER_CLIENT_PER_SECOND} a second"
        );
        return too_many(wait, &what);
    }
    let (reply, answer) = oneshot::channel();
    if state
        .commands
        .send(Command::Blob { hash, reply })
        .await
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    match tokio::time::timeout(BLOB_WAIT, answer).await {
        Ok(Ok(Some(bytes))) => (
            [
                (header::CONTENT_TYPE, kind.content_type()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            "no blob with this hash here or on any connected peer",
        ),
        Ok(Err(_)) => error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "peers did not answer in time; try again",
        ),
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

/// A 429 saying when to come back (`Retry-After`, whole seconds).
fn too_many(wait: std::time::Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("this address asked for {what}; retry in {seconds} s"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(ErrorBody { error: message })).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see docs/http-api.md",
    )
}

/// The parsers of what a stranger sends this server, for the fuzz targets
/// in `fuzz/` (not an API): a forge's webhook body.
#[doc(hidden)]
pub mod fuzzing {
    use serde::de::DeserializeOwned;

    /// A pull request webhook's body: whether it was taken.
    pub fn webhook(body: &[u8]) -> bool {
        crate::hooks::fuzz_parse(body)
    }

    /// A request's query string, as every handler that takes one reads
    /// it: decoded as axum's `Query` decodes it (serde_urlencoded), then
    /// checked as the handler checks it, against a log with no project.
    /// Returns how many handlers would take it.
    pub fn query(text: &str) -> usize {
        let log = buildmesh_core::view::ProjectLog::default();
        let taken = [
            decoded::<crate::projects::MatrixQuery>(text)
                .is_some_and(|q| crate::projects::matrix_options(q).is_ok()),
            decoded::<crate::entries::EntriesQuery>(text)
                .is_some_and(|q| crate::entries::have_of(&q).is_ok()),
            decoded::<crate::flaky::FlakyQuery>(text)
                .is_some_and(|q| crate::flaky::options(&log, &q).is_ok()),
            decoded::<crate::trends::TrendsQuery>(text)
                .is_some_and(|q| crate::trends::select(&log, q).is_ok()),
            decoded::<crate::dashboard::BranchQuery>(text).is_some(),
            decoded::<crate::dashboard::BadgeQuery>(text).is_some(),
            decoded::<crate::operator::LoginQuery>(text).is_some(),
            decoded::<crate::BlobView>(text).is_some(),
        ];
        taken.into_iter().filter(|t| *t).count()
    }

    fn decoded<T: DeserializeOwned>(text: &str) -> Option<T> {
        serde_urlencoded::from_str(text).ok()
    }

    #[cfg(test)]
    mod tests {
        use super::query;

        /// What the fuzz target drives is what the handlers decide.
        #[test]
        fn each_handler_takes_its_own_query_and_refuses_a_bad_one() {
            assert_eq!(
                query(""),
                7,
                "every handler but trends (it needs a project)"
            );
            // The pages' queries and the flaky list's let unknown
            // parameters pass.
            let lenient = query("unknown=1");
            assert_eq!(lenient, 5);
            assert_eq!(
                query("rows=0"),
                lenient - 1,
                "flaky refuses rows=0, as the matrix"
            );
            assert_eq!(query("rows=50"), lenient + 1, "the matrix takes rows=50");
            let key = "ab".repeat(32);
            assert_eq!(query(&format!("have={key}:3")), lenient + 1, "the export");
            assert_eq!(query("have=zz:3"), lenient);
            assert_eq!(query("have=%zz"), lenient);
        }
    }
}
