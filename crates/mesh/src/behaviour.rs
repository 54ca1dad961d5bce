//! The composed libp2p behaviour and its configuration.

use crate::codec::{SYNC_PROTOCOL, SyncCodec};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity, kad, mdns,
    ping, request_response,
};
use std::collections::HashSet;
use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Kademlia protocol name: buildmesh nodes form their own DHT, apart from
/// the public IPFS one.
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/buildmesh/kad/1.0.0");

/// Identify protocol version string.
const IDENTIFY_PROTOCOL: &str = "/buildmesh/1.0.0";

/// The gossipsub topic that carries signed log entries.
pub(crate) const ENTRIES_TOPIC: &str = "buildmesh/entries/1";
/// The gossipsub topic that carries signed bids for builds.
pub(crate) const BIDS_TOPIC: &str = buildmesh_protocol::BID_TOPIC;
/// The gossipsub topic that carries signed lease renewals.
pub(crate) const RENEWALS_TOPIC: &str = buildmesh_protocol::RENEWAL_TOPIC;
/// Every topic a node subscribes to.
pub(crate) const TOPICS: [&str; 3] = [ENTRIES_TOPIC, BIDS_TOPIC, RENEWALS_TOPIC];

/// gossipsub's `max_transmit_size`, bytes: the limit on a whole encoded
/// RPC frame (data plus source, sequence number, topic and signature), in
/// both directions.
pub(crate) const GOSSIP_FRAME_BYTES_MAX: usize = 65_536;

/// Everything a buildmesh node speaks.
///
/// The block list comes first so that a banned peer's connection is denied
/// before any other behaviour sees it.
#[derive(NetworkBehaviour)]
pub(crate) struct MeshBehaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
}

/// What [`MeshBehaviour::new`] needs besides the key.
pub(crate) struct BehaviourConfig {
    pub(crate) request_timeout: Duration,
    pub(crate) mdns: bool,
}

impl MeshBehaviour {
    /// Builds every sub-behaviour and subscribes to the entries topic.
    pub(crate) fn new(
        key: &identity::Keypair,
        config: &BehaviourConfig,
    ) -> Result<Self, Box<dyn Error + Send + Sync>> {
        let peer_id = key.public().to_peer_id();

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(format!("buildmesh/{}", env!("CARGO_PKG_VERSION"))),
        );

        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(KAD_PROTOCOL),
        );
        // Without a confirmed external address kad stays a client, which is
        // always the case on loopback and on most LANs.
        kad.set_mode(Some(kad::Mode::Server));

        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossipsub_config()?,
        )?;
        let topics = TOPICS.map(gossipsub::IdentTopic::new);
        let (params, thresholds) = peer_score(topics.iter().map(|t| t.hash()));
        gossipsub.with_peer_score(params, thresholds)?;
        for topic in &topics {
            gossipsub.subscribe(topic)?;
        }

        let sync = request_response::Behaviour::with_codec(
            SyncCodec,
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(config.request_timeout),
        );

        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };

        Ok(MeshBehaviour {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(connection_limits()),
            identify,
            ping: ping::Behaviour::default(),
            kad,
            gossipsub,
            sync,
            mdns: Toggle::from(mdns),
        })
    }
}

/// Most connections being set up by others at once: a handshake costs
/// a key exchange, and a stranger may start many.
pub const PENDING_INCOMING_MAX: u32 = 32;
/// Most connections others opened to this node. A node gossips and syncs
/// with a few dozen peers; thousands would cost it descriptors and memory
/// for nothing.
pub const INCOMING_MAX: u32 = 128;
/// Most connections in all (ours to bootstrap peers and those Kademlia
/// finds, and theirs).
pub const CONNECTIONS_MAX: u32 = 192;
/// Most connections to one peer: when two nodes dial each other at once,
/// over TCP and QUIC, four may be up for a moment.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 4;

/// The connection caps above, enforced by libp2p before a connection is
/// established (a refused one never reaches the other behaviours).
fn connection_limits() -> connection_limits::ConnectionLimits {
    connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(PENDING_INCOMING_MAX))
        .with_max_established_incoming(Some(INCOMING_MAX))
        .with_max_established(Some(CONNECTIONS_MAX))
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
}

/// Gossipsub with application validation: every message is held until the
/// node reports a verdict, and ids are content hashes so the same entry
/// gossiped twice is one message.
fn gossipsub_config() -> Result<gossipsub::Config, gossipsub::ConfigBuilderError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(GOSSIP_FRAME_BYTES_MAX)
        .message_id_fn(|message: &gossipsub::Message| {
            gossipsub::MessageId::from(buildmesh_protocol::sha256(&[&message.data]).to_vec())
        })
        .build()
}

/// Peer scoring tuned for a low-traffic topic.
///
/// - P1 (time in mesh) and P2 (first deliveries) reward steady peers a little.
/// - P3/P3b (mesh delivery rate) are off: entries are bursty (a few per
///   commit), so a quiet peer is not a bad one.
/// - P4 (invalid messages, from `Acceptance::Reject`) weighs −20 per
///   squared count: one invalid entry drops a fresh peer below the gossip
///   threshold (−10), two below the graylist threshold (−80). It decays to
///   nothing in about ten minutes.
/// - P6 (IP colocation) keeps libp2p's defaults but whitelists 127.0.0.1 and
///   ::1, so many nodes on one machine (tests, the simulator's real-network
///   mode) are not graylisted. The whitelist holds exact addresses, not
///   prefixes: other 127/8 addresses count as one ordinary IP.
fn peer_score(
    topics: impl Iterator<Item = gossipsub::TopicHash>,
) -> (gossipsub::PeerScoreParams, gossipsub::PeerScoreThresholds) {
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 1.0 / 30.0,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 300.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(3600)),
        first_message_deliveries_cap: 50.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: gossipsub::score_parameter_decay(Duration::from_secs(
            600,
        )),
        ..gossipsub::TopicScoreParams::default()
    };
    let params = gossipsub::PeerScoreParams {
        topics: topics.map(|topic| (topic, topic_params.clone())).collect(),
        topic_score_cap: 100.0,
        ip_colocation_factor_whitelist: HashSet::from([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]),
        ..gossipsub::PeerScoreParams::default()
    };
    (params, gossipsub::PeerScoreThresholds::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_parameters_are_valid() {
        let topics = TOPICS.map(|t| gossipsub::IdentTopic::new(t).hash());
        let (params, thresholds) = peer_score(topics.into_iter());
        assert_eq!(params.validate(), Ok(()));
        assert_eq!(thresholds.validate(), Ok(()));
    }

    #[test]
    fn gossipsub_config_builds() {
        assert!(gossipsub_config().is_ok());
    }
}
