//! buildmesh's libp2p edge: connections, gossip and the sync protocol,
//! behind a small client.
//!
//! This crate owns the libp2p [`Swarm`](libp2p::Swarm) and nothing else: it
//! decides nothing about the log. It turns libp2p's events into
//! [`MeshEvent`]s, which carry only buildmesh types (a peer is its 32-byte
//! ed25519 [`PublicKey`], messages are bytes), and carries out the
//! [`MeshClient`] calls the node makes in answer. No libp2p type appears in
//! this API, so the node's driver and the sans-IO core never depend on it.
//!
//! What runs inside: TCP (noise, yamux) and QUIC transports; identify and
//! ping; Kademlia on `/buildmesh/kad/1.0.0` in server mode, fed with the
//! bootstrap peers and every address identify reports; gossipsub on the
//! topic `buildmesh/entries/1` with signed messages, content-addressed ids
//! (SHA-256 of the data), messages of at most [`GOSSIP_BYTES_MAX`], manual
//! validation and
//! peer scoring; request-response on `/buildmesh/sync/1` (one
//! length-prefixed frame each way, at most [`REQUEST_BYTES_MAX`] /
//! [`RESPONSE_BYTES_MAX`] bytes); a block list for banned peers; mDNS only
//! if [`MeshConfig::mdns`] is set.
//!
//! # Call protocol
//!
//! 1. [`start`] with a [`MeshConfig`] inside a tokio runtime. It builds the
//!    swarm, starts listening, dials the bootstrap peers and spawns the
//!    event loop; it returns a cloneable [`MeshClient`] and the receiver of
//!    [`MeshEvent`]s.
//! 2. Read events without stalling. The channel is bounded
//!    ([`MeshConfig::events_capacity`]); when it is full the event loop
//!    holds up to [`EVENTS_HELD_MAX`] more and then stops reading from
//!    peers until there is room, so a slow reader slows the mesh down
//!    (backpressure) rather than losing events. [`MeshClient`] calls are
//!    answered all the while: awaiting one (such as [`MeshClient::publish`])
//!    between two reads of the events never deadlocks.
//! 3. Answer what needs an answer:
//!    - [`MeshEvent::Request`] with [`MeshClient::respond`] (same `id`)
//!      before the request timeout, or the requester sees a failure;
//!    - [`MeshEvent::Gossip`] with [`MeshClient::report`] (its `message`
//!      and `from`) within a few seconds: gossipsub forwards nothing before
//!      the verdict and forgets unvalidated messages after about five
//!      heartbeats (5 s).
//! 4. Send with [`MeshClient::request`] (the answer arrives later as
//!    [`MeshEvent::Response`] or [`MeshEvent::RequestFailed`]) and
//!    [`MeshClient::publish`].
//! 5. [`MeshClient::shutdown`] stops the event loop and closes every
//!    connection; so does dropping every `MeshClient`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), buildmesh_mesh::MeshError> {
//! use buildmesh_mesh::{Acceptance, MeshConfig, MeshEvent, start};
//!
//! let (mesh, mut events) = start(MeshConfig::new([7; 32])).await?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         MeshEvent::Request { id, bytes, .. } => mesh.respond(id, bytes).await?,
//!         MeshEvent::Gossip { from, message, .. } => {
//!             mesh.report(message, from, Acceptance::Accept).await?
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod behaviour;
mod codec;
mod event_loop;
mod keys;
mod tcp;

use behaviour::{BehaviourConfig, MeshBehaviour};
pub use buildmesh_protocol::PublicKey;
use buildmesh_protocol::{REQUEST_BYTES_MAX, RESPONSE_BYTES_MAX};
use event_loop::{Command, EventLoop};
use libp2p::metrics::Metrics;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, SwarmBuilder, identity};
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Default capacity of the [`MeshEvent`] channel returned by [`start`]
/// ([`MeshConfig::events_capacity`]).
pub const EVENTS_CAPACITY: usize = 1024;

/// How many events the event loop holds, beyond the channel's capacity,
/// while the node is not reading. At this many it stops polling the swarm
/// (so peers are slowed down, not dropped) until the node reads one; each
/// swarm event makes at most one [`MeshEvent`], so it never holds more.
/// Small, because the channel is the real buffer: this only lets the loop
/// finish with the swarm event in hand and keep answering commands.
pub const EVENTS_HELD_MAX: usize = 16;

/// Default capacity of the command channel behind [`MeshClient`]
/// ([`MeshConfig::commands_capacity`]); a caller waits when the event loop
/// is this far behind.
pub const COMMANDS_CAPACITY: usize = 256;

/// Largest payload [`MeshClient::publish`] takes, bytes (63 KiB).
///
/// gossipsub's 64 KiB limit applies to the whole encoded frame, which adds
/// about 150 bytes to the data (source, sequence number, topic, signature);
/// libp2p only checks the data when publishing, so a message just under
/// 64 KiB would be accepted here and dropped by every receiver. The 1 KiB
/// margin rules that out. Anything bigger goes by request-response.
pub const GOSSIP_BYTES_MAX: usize = 63 * 1024;

// Every signed entry fits in one gossip message.
const _: () = assert!(buildmesh_protocol::ENTRY_BYTES_MAX <= GOSSIP_BYTES_MAX);

/// How long [`MeshClient::disconnect`] refuses a peer.
pub const BAN_DURATION: Duration = Duration::from_secs(10 * 60);

/// How to start the mesh.
#[derive(Clone, PartialEq, Eq)]
pub struct MeshConfig {
    /// The node's ed25519 secret key (the 32-byte seed). The same key signs
    /// the node's log entries, so a peer's libp2p identity is its log
    /// identity. The all-zero key of [`MeshConfig::default`] is refused.
    pub key: [u8; 32],
    /// Multiaddrs to listen on, such as `/ip4/127.0.0.1/tcp/0` or
    /// `/ip4/0.0.0.0/udp/4001/quic-v1`.
    pub listen: Vec<String>,
    /// Peers to join through: multiaddrs ending in `/p2p/<peer id>`. They
    /// are dialed at start and seed the Kademlia routing table.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network by multicast DNS. Off by
    /// default; never turn it on in tests (it multicasts on every
    /// interface).
    pub mdns: bool,
    /// How long a connection with no open stream stays up. Default 60 s.
    pub idle_timeout: Duration,
    /// How long an outbound sync request may take, and how long an inbound
    /// one waits for [`MeshClient::respond`]. Default 30 s.
    pub request_timeout: Duration,
    /// Capacity of the [`MeshEvent`] channel. Default [`EVENTS_CAPACITY`];
    /// 0 is taken as 1.
    pub events_capacity: usize,
    /// Capacity of the command channel behind [`MeshClient`]. Default
    /// [`COMMANDS_CAPACITY`]; 0 is taken as 1.
    pub commands_capacity: usize,
}

impl MeshConfig {
    /// The defaults with `key`: listen on 127.0.0.1, any free TCP port; no
    /// bootstrap peers; no mDNS; 60 s idle timeout; 30 s request timeout;
    /// channels of [`EVENTS_CAPACITY`] events and [`COMMANDS_CAPACITY`]
    /// commands.
    pub fn new(key: [u8; 32]) -> Self {
        MeshConfig {
            key,
            ..MeshConfig::default()
        }
    }
}

impl Default for MeshConfig {
    /// The defaults of [`MeshConfig::new`] with an all-zero key, which
    /// [`start`] refuses: set [`MeshConfig::key`] before use.
    fn default() -> Self {
        MeshConfig {
            key: [0; 32],
            listen: vec!["/ip4/127.0.0.1/tcp/0".to_owned()],
            bootstrap: Vec::new(),
            mdns: false,
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            events_capacity: EVENTS_CAPACITY,
            commands_capacity: COMMANDS_CAPACITY,
        }
    }
}

impl fmt::Debug for MeshConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshConfig")
            .field("key", &"<secret>")
            .field("listen", &self.listen)
            .field("bootstrap", &self.bootstrap)
            .field("mdns", &self.mdns)
            .field("idle_timeout", &self.idle_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("events_capacity", &self.events_capacity)
            .field("commands_capacity", &self.commands_capacity)
            .finish()
    }
}

/// Something that happened on the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// The node listens on a new address (a multiaddr without `/p2p/`).
    Listening(String),
    /// The first connection to a peer is up.
    PeerConnected(PublicKey),
    /// The last connection to a peer is closed.
    PeerDisconnected(PublicKey),
    /// A peer sent a sync-protocol request; answer it with
    /// [`MeshClient::respond`] and the same `id`.
    Request {
        /// Who asked.
        peer: PublicKey,
        /// The handle for [`MeshClient::respond`].
        id: u64,
        /// The request's bytes (at most `REQUEST_BYTES_MAX`).
        bytes: Vec<u8>,
    },
    /// The answer to one of our [`MeshClient::request`]s.
    Response {
        /// Who answered.
        peer: PublicKey,
        /// The response's bytes (at most `RESPONSE_BYTES_MAX`).
        bytes: Vec<u8>,
    },
    /// One of our requests to this peer failed: timeout, connection closed,
    /// dial failure, protocol not supported, or an oversize frame.
    RequestFailed(PublicKey),
    /// A gossipsub message awaits a verdict; give it with
    /// [`MeshClient::report`].
    Gossip {
        /// Which topic it came on.
        topic: Topic,
        /// The peer that forwarded it to us.
        from: PublicKey,
        /// The peer that published and signed it.
        source: PublicKey,
        /// Gossipsub's message id (SHA-256 of `bytes`).
        message: Vec<u8>,
        /// The message's data.
        bytes: Vec<u8>,
    },
}

/// What a gossiped message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Signed log entries (`buildmesh/entries/1`).
    Entries,
    /// Signed bids for builds (`buildmesh/bids/1`), never stored.
    Bids,
    /// Signed lease renewals (`buildmesh/renewals/1`), never stored.
    Renewals,
}

/// The verdict on a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// Valid: forward it to our mesh peers.
    Accept,
    /// Not worth forwarding, but not the sender's fault: drop it.
    Ignore,
    /// Invalid: drop it and lower the sender's gossipsub score.
    Reject,
}

/// A snapshot of the mesh, from [`MeshClient::info`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshInfo {
    /// This node's libp2p peer id, as text (`12D3KooW...`); append it as
    /// `/p2p/<peer_id>` to a listen address to make a bootstrap address.
    pub peer_id: String,
    /// The addresses the node listens on.
    pub listen: Vec<String>,
    /// The connected peers, in key order.
    pub peers: Vec<PublicKey>,
}

/// Why a mesh call failed.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// An address did not parse, or lacked a required part.
    #[error("bad multiaddr {addr:?}: {reason}")]
    BadMultiaddr {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node key is unusable.
    #[error("invalid node key: {0}")]
    Key(String),
    /// A peer key that is not an ed25519 public key, so it names no peer.
    #[error("{0} is not an ed25519 public key, so it names no peer")]
    InvalidPeerKey(PublicKey),
    /// The transports or behaviours could not be built.
    #[error("cannot set up libp2p: {0}")]
    Transport(String),
    /// Listening on an address failed.
    #[error("cannot listen on {addr}: {reason} (is the port taken? port 0 picks a free one)")]
    Listen {
        /// The address.
        addr: String,
        /// The transport's error.
        reason: String,
    },
    /// Dialing an address failed at once (a failure later is only logged).
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: String,
        /// The swarm's error.
        reason: String,
    },
    /// Gossipsub refused to publish.
    #[error("cannot publish: {0}")]
    Publish(String),
    /// A payload over its protocol limit; send it another way or split it.
    #[error("{what} of {len} bytes is over the limit of {max} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The event loop is gone (shut down, or it panicked).
    #[error("the mesh event loop has stopped")]
    Closed,
}

/// A handle on the running mesh. Cheap to clone; every call is a command
/// to the event loop over a bounded channel.
#[derive(Debug, Clone)]
pub struct MeshClient {
    commands: mpsc::Sender<Command>,
    /// libp2p's metrics, recorded by the event loop.
    registry: Arc<Registry>,
}

impl MeshClient {
    /// libp2p's metrics (connections, bandwidth, identify, ping, Kademlia,
    /// gossipsub events), each family named `libp2p_…`, in the OpenMetrics
    /// text format without the closing `# EOF`: the caller adds its own
    /// families and then closes the exposition.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }

    async fn send(&self, command: Command) -> Result<(), MeshError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| MeshError::Closed)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MeshError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply)).await?;
        answer.await.map_err(|_| MeshError::Closed)
    }

    /// Sends a sync-protocol request to `peer`, dialing it if needed. The
    /// answer arrives as [`MeshEvent::Response`], or
    /// [`MeshEvent::RequestFailed`] after at most the request timeout.
    pub async fn request(&self, peer: PublicKey, bytes: Vec<u8>) -> Result<(), MeshError> {
        check_size("request", bytes.len(), REQUEST_BYTES_MAX)?;
        let peer_id = peer_id(&peer)?;
        self.send(Command::Request {
            peer: peer_id,
            bytes,
        })
        .await
    }

    /// Answers the inbound request `id` of a [`MeshEvent::Request`]. An id
    /// that is unknown or expired (timed out, connection closed) is not an
    /// error: the answer is dropped and logged.
    pub async fn respond(&self, id: u64, bytes: Vec<u8>) -> Result<(), MeshError> {
        check_size("response", bytes.len(), RESPONSE_BYTES_MAX)?;
        self.send(Command::Respond { id, bytes }).await
    }

    /// Publishes `bytes` (at most [`GOSSIP_BYTES_MAX`]) on the entries
    /// topic. Having no subscribed peer yet, or having published the same
    /// bytes already (ids are content hashes), is not an error: the call
    /// succeeds and logs it. Other refusals, such as every peer's send
    /// queue being full, are [`MeshError::Publish`]; the message was sent
    /// to no one.
    pub async fn publish(&self, topic: Topic, bytes: Vec<u8>) -> Result<(), MeshError> {
        check_size("gossip message", bytes.len(), GOSSIP_BYTES_MAX)?;
        self.ask(|reply| Command::Publish {
            topic,
            bytes,
            reply,
        })
        .await?
    }

    /// Gives the verdict on the gossiped `message` (its id) received from
    /// `from`. `Accept` forwards it; `Reject` also penalises `from`. A
    /// message gossipsub no longer holds is logged, not an error.
    pub async fn report(
        &self,
        message: Vec<u8>,
        from: PublicKey,
        acceptance: Acceptance,
    ) -> Result<(), MeshError> {
        let from = peer_id(&from)?;
        self.send(Command::Report {
            message,
            from,
            acceptance,
        })
        .await
    }

    /// Closes every connection to `peer` and refuses it, both ways, for
    /// [`BAN_DURATION`]. Works on a peer that is not connected yet.
    pub async fn disconnect(&self, peer: PublicKey) -> Result<(), MeshError> {
        let peer_id = peer_id(&peer)?;
        self.send(Command::Disconnect { peer: peer_id }).await
    }

    /// Lifts a ban on `peer` before its time; a bootstrap peer is dialed
    /// again within a few seconds.
    pub async fn unban(&self, peer: PublicKey) -> Result<(), MeshError> {
        let peer_id = peer_id(&peer)?;
        self.send(Command::Unban { peer: peer_id }).await
    }

    /// Dials `addr`. With a `/p2p/<peer id>` suffix the address is also
    /// added to Kademlia. The connection comes up later as
    /// [`MeshEvent::PeerConnected`]; a failure after the dial started is
    /// only logged.
    pub async fn dial(&self, addr: String) -> Result<(), MeshError> {
        let parsed = parse_multiaddr(&addr)?;
        self.ask(|reply| Command::Dial {
            addr: parsed,
            reply,
        })
        .await?
    }

    /// The node's peer id, listen addresses and connected peers.
    pub async fn info(&self) -> Result<MeshInfo, MeshError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    /// Stops the event loop and closes every connection; returns when it
    /// has stopped. Calling it again, or on a stopped mesh, does nothing.
    pub async fn shutdown(&self) {
        let _ = self.ask(|done| Command::Shutdown { done }).await;
    }
}

/// Starts the mesh: builds the swarm, listens on `config.listen`, spawns
/// the event loop on the current tokio runtime and dials the bootstrap
/// peers. Must be called from inside a tokio runtime.
pub async fn start(
    config: MeshConfig,
) -> Result<(MeshClient, mpsc::Receiver<MeshEvent>), MeshError> {
    if config.key == [0; 32] {
        return Err(MeshError::Key(
            "the all-zero key is a placeholder; set MeshConfig::key to the node's secret key"
                .to_owned(),
        ));
    }
    let listen = config
        .listen
        .iter()
        .map(|addr| parse_multiaddr(addr))
        .collect::<Result<Vec<_>, _>>()?;
    let bootstrap = config
        .bootstrap
        .iter()
        .map(|addr| parse_bootstrap(addr))
        .collect::<Result<Vec<_>, _>>()?;

    let mut secret = config.key;
    let keypair = identity::Keypair::ed25519_from_bytes(&mut secret)
        .map_err(|e| MeshError::Key(e.to_string()))?;
    let behaviour_config = BehaviourConfig {
        request_timeout: config.request_timeout,
        mdns: config.mdns,
    };
    let idle_timeout = config.idle_timeout;
    // Not `with_prefix("libp2p")`: libp2p-metrics registers each of its
    // families under a "libp2p" sub-registry already (that gave
    // `libp2p_libp2p_…`).
    let mut registry = Registry::default();
    let mut swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_quic()
        .with_other_transport(tcp::transport)
        .map_err(|e| MeshError::Transport(e.to_string()))?
        .with_bandwidth_metrics(&mut registry)
        .with_behaviour(|key| MeshBehaviour::new(key, &behaviour_config))
        .map_err(|e| MeshError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build();

    for (text, addr) in config.listen.iter().zip(listen) {
        swarm.listen_on(addr).map_err(|e| MeshError::Listen {
            addr: text.clone(),
            reason: e.to_string(),
        })?;
    }

    // tokio's channels panic on a capacity of 0.
    let (commands, command_rx) = mpsc::channel(config.commands_capacity.max(1));
    let (event_tx, events) = mpsc::channel(config.events_capacity.max(1));
    let metrics = Metrics::new(&mut registry);
    let mut event_loop = EventLoop::new(swarm, command_rx, event_tx, metrics);
    event_loop.bootstrap(bootstrap);
    tokio::spawn(event_loop.run());
    let client = MeshClient {
        commands,
        registry: Arc::new(registry),
    };
    Ok((client, events))
}

fn check_size(what: &'static str, len: usize, max: usize) -> Result<(), MeshError> {
    if len > max {
        return Err(MeshError::TooLarge { what, len, max });
    }
    Ok(())
}

fn peer_id(key: &PublicKey) -> Result<PeerId, MeshError> {
    keys::peer_id(key).ok_or(MeshError::InvalidPeerKey(*key))
}

fn parse_multiaddr(addr: &str) -> Result<Multiaddr, MeshError> {
    addr.parse()
        .map_err(|e: libp2p::multiaddr::Error| MeshError::BadMultiaddr {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })
}

/// A bootstrap address: the peer it names and the full address to dial.
fn parse_bootstrap(addr: &str) -> Result<(PeerId, Multiaddr), MeshError> {
    let parsed = parse_multiaddr(addr)?;
    match parsed.iter().last() {
        Some(Protocol::P2p(peer)) => Ok((peer, parsed)),
        _ => Err(MeshError::BadMultiaddr {
            addr: addr.to_owned(),
            reason: "a bootstrap address must end in /p2p/<peer id>".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bad_addresses_say_which() {
        let error = parse_multiaddr("/ip4/nonsense/tcp/1").unwrap_err();
        assert!(error.to_string().contains("/ip4/nonsense/tcp/1"), "{error}");
        let error = parse_bootstrap("/ip4/127.0.0.1/tcp/1").unwrap_err();
        assert!(error.to_string().contains("/p2p/"), "{error}");
    }

    #[tokio::test]
    async fn zero_key_and_bad_listen_addresses_are_refused() {
        let error = start(MeshConfig::default()).await.unwrap_err();
        assert!(matches!(error, MeshError::Key(_)), "{error}");
        let mut config = MeshConfig::new([1; 32]);
        config.listen = vec!["/dns4/example.invalid/tcp/0".to_owned()];
        let error = start(config).await.unwrap_err();
        assert!(matches!(error, MeshError::Listen { .. }), "{error}");
    }

    #[test]
    fn debug_hides_the_key() {
        let text = format!("{:?}", MeshConfig::new([0xab; 32]));
        assert!(!text.contains("171"), "{text}");
        assert!(text.contains("<secret>"));
    }
}
