//! The task that owns the swarm: turns swarm events into [`MeshEvent`]s and
//! [`Command`]s into swarm calls.
//!
//! One `tokio::select!` over the swarm, the command channel, room in the
//! event channel and two timers (lifting expired bans, redialing bootstrap
//! peers). No branch awaits anything once it is chosen: every handler runs
//! to completion without yielding.
//!
//! Events go out without waiting (`try_reserve`); what does not fit waits
//! in `held`, oldest first, and a branch enabled only while `held` is not
//! empty sends its front when the node makes room. Once [`EVENTS_HELD_MAX`] events are held, the swarm
//! branch is disabled: the loop stops reading from peers, which is the
//! backpressure (dropping events instead would lose requests and gossip
//! silently). Commands are read and answered all the while. An earlier
//! version awaited room in the event channel inside the swarm branch, and
//! that deadlocked: the node awaited the answer to a command (`publish`)
//! before reading further events, while the loop, stuck on the full
//! channel, read no commands.

use crate::behaviour::{
    BIDS_TOPIC, ENTRIES_TOPIC, KAD_PROTOCOL, MeshBehaviour, MeshBehaviourEvent, RENEWALS_TOPIC,
};
use crate::{
    Acceptance, BAN_DURATION, EVENTS_HELD_MAX, MeshError, MeshEvent, MeshInfo, PublicKey, Topic,
    keys,
};
use futures::StreamExt;
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, identify, kad, mdns};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, trace, warn};

/// How often expired bans are lifted.
const BAN_SWEEP: Duration = Duration::from_secs(10);
/// How often bootstrap peers we are not connected to are dialed again, so
/// a node heals by itself after a network cut, a peer's restart or a ban's
/// end.
pub(crate) const BOOTSTRAP_REDIAL: Duration = Duration::from_secs(5);

/// What a [`crate::MeshClient`] asks of the event loop.
pub(crate) enum Command {
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
    },
    Respond {
        id: u64,
        bytes: Vec<u8>,
    },
    Publish {
        topic: Topic,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), MeshError>>,
    },
    Report {
        message: Vec<u8>,
        from: PeerId,
        acceptance: Acceptance,
    },
    Unban {
        peer: PeerId,
    },
    Disconnect {
        peer: PeerId,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), MeshError>>,
    },
    Info {
        reply: oneshot::Sender<MeshInfo>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// An inbound request waiting for [`Command::Respond`].
struct Inbound {
    connection: ConnectionId,
    request: InboundRequestId,
    channel: ResponseChannel<Vec<u8>>,
}

/// Owns the swarm. See the module docs.
pub(crate) struct EventLoop {
    swarm: Swarm<MeshBehaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<MeshEvent>,
    /// Events waiting for room in `events`, oldest first; at most
    /// [`EVENTS_HELD_MAX`], because the swarm is not polled at that many.
    held: VecDeque<MeshEvent>,
    /// The receiver is gone: events are discarded.
    events_closed: bool,
    /// Connected ed25519 peers.
    peers: BTreeMap<PublicKey, PeerId>,
    /// Inbound requests by the id handed out in [`MeshEvent::Request`].
    inbound: HashMap<u64, Inbound>,
    next_inbound: u64,
    /// Banned peers and when their ban ends.
    bans: HashMap<PeerId, Instant>,
    listen: Vec<Multiaddr>,
    /// The bootstrap peers, kept to dial again.
    bootstrap: Vec<(PeerId, Multiaddr)>,
    /// libp2p's metrics.
    metrics: Metrics,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<MeshBehaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<MeshEvent>,
        metrics: Metrics,
    ) -> Self {
        EventLoop {
            swarm,
            commands,
            events,
            held: VecDeque::new(),
            events_closed: false,
            peers: BTreeMap::new(),
            inbound: HashMap::new(),
            next_inbound: 0,
            bans: HashMap::new(),
            listen: Vec::new(),
            bootstrap: Vec::new(),
            metrics,
        }
    }

    /// Seeds Kademlia with the bootstrap peers, dials them and starts a
    /// bootstrap query.
    pub(crate) fn bootstrap(&mut self, peers: Vec<(PeerId, Multiaddr)>) {
        if peers.is_empty() {
            return;
        }
        for (peer, addr) in &peers {
            let mut bare = addr.clone();
            bare.pop();
            match self.remember_and_dial(*peer, bare.clone()) {
                Ok(()) => info!(%addr, "dialing bootstrap peer"),
                Err(error) => warn!(%addr, %error, "cannot dial bootstrap peer"),
            }
            self.bootstrap.push((*peer, bare));
        }
        if let Err(error) = self.swarm.behaviour_mut().kad.bootstrap() {
            debug!(%error, "kademlia bootstrap not started");
        }
    }

    /// Runs until [`Command::Shutdown`] or until every client is dropped.
    pub(crate) async fn run(mut self) {
        info!(peer_id = %self.swarm.local_peer_id(), "mesh event loop started");
        let mut sweep = tokio::time::interval(BAN_SWEEP);
        sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut redial = tokio::time::interval(BOOTSTRAP_REDIAL);
        redial.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let done = loop {
            let swarm_open = self.held.len() < EVENTS_HELD_MAX;
            let holding = !self.held.is_empty();
            tokio::select! {
                event = self.swarm.select_next_some(), if swarm_open => self.on_swarm_event(event),
                open = send_held(&self.events, &mut self.held), if holding => {
                    if open {
                        self.deliver_held();
                    } else {
                        self.events_gone();
                    }
                }
                command = self.commands.recv() => match command {
                    None => break None,
                    Some(Command::Shutdown { done }) => break Some(done),
                    Some(command) => self.on_command(command),
                },
                _ = sweep.tick() => self.lift_expired_bans(),
                _ = redial.tick() => self.redial_bootstrap(),
            }
        };
        info!(peer_id = %self.swarm.local_peer_id(), "mesh event loop stopped");
        // Dropping the swarm closes every connection and listener.
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Queues `event` behind those held and sends what fits; never waits.
    fn emit(&mut self, event: MeshEvent) {
        if self.events_closed {
            trace!(?event, "event discarded");
            return;
        }
        self.held.push_back(event);
        self.deliver_held();
    }

    /// Sends held events, oldest first, while the channel has room.
    fn deliver_held(&mut self) {
        while !self.held.is_empty() {
            match self.events.try_reserve() {
                Ok(permit) => {
                    if let Some(event) = self.held.pop_front() {
                        permit.send(event);
                    }
                }
                Err(TrySendError::Full(())) => {
                    if self.held.len() >= EVENTS_HELD_MAX {
                        debug!(
                            held = self.held.len(),
                            "event channel full: not reading from peers until the node reads"
                        );
                    }
                    return;
                }
                Err(TrySendError::Closed(())) => break,
            }
        }
        if self.events.is_closed() {
            self.events_gone();
        }
    }

    fn events_gone(&mut self) {
        self.held.clear();
        if std::mem::replace(&mut self.events_closed, true) {
            return;
        }
        warn!("the mesh event receiver is gone; discarding events from now on");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Request { peer, bytes } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, bytes);
                debug!(%peer, %id, "sync request sent");
            }
            Command::Respond { id, bytes } => match self.inbound.remove(&id) {
                Some(inbound) => {
                    let sync = &mut self.swarm.behaviour_mut().sync;
                    if sync.send_response(inbound.channel, bytes).is_err() {
                        debug!(id, "response dropped: the request expired");
                    }
                }
                None => debug!(id, "response dropped: unknown or expired request id"),
            },
            Command::Publish {
                topic,
                bytes,
                reply,
            } => {
                let result = self.publish(topic, bytes);
                let _ = reply.send(result);
            }
            Command::Report {
                message,
                from,
                acceptance,
            } => {
                let acceptance = match acceptance {
                    Acceptance::Accept => gossipsub::MessageAcceptance::Accept,
                    Acceptance::Ignore => gossipsub::MessageAcceptance::Ignore,
                    Acceptance::Reject => gossipsub::MessageAcceptance::Reject,
                };
                let id = gossipsub::MessageId::new(&message);
                let found = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance);
                if !found {
                    debug!(message = %id, "verdict dropped: gossipsub no longer holds the message");
                }
            }
            Command::Disconnect { peer } => self.ban(peer),
            Command::Unban { peer } => self.unban(peer),
            Command::Dial { addr, reply } => {
                let _ = reply.send(self.dial(addr));
            }
            Command::Info { reply } => {
                let _ = reply.send(MeshInfo {
                    peer_id: self.swarm.local_peer_id().to_string(),
                    listen: self.listen.iter().map(ToString::to_string).collect(),
                    peers: self.peers.keys().copied().collect(),
                });
            }
            // Handled by `run`.
            Command::Shutdown { done } => {
                let _ = done.send(());
            }
        }
    }

    fn publish(&mut self, topic: Topic, bytes: Vec<u8>) -> Result<(), MeshError> {
        let topic = gossipsub::IdentTopic::new(topic_name(topic));
        match self.swarm.behaviour_mut().gossipsub.publish(topic, bytes) {
            Ok(id) => {
                debug!(message = %id, "published");
                Ok(())
            }
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                debug!("not published: no peer is subscribed to the entries topic yet");
                Ok(())
            }
            Err(gossipsub::PublishError::Duplicate) => {
                debug!("not published: these bytes were published already");
                Ok(())
            }
            Err(error) => Err(MeshError::Publish(error.to_string())),
        }
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<(), MeshError> {
        let text = addr.to_string();
        let opts = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => {
                let mut bare = addr.clone();
                bare.pop();
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, bare.clone());
                DialOpts::peer_id(peer).addresses(vec![bare]).build()
            }
            _ => DialOpts::unknown_peer_id().address(addr).build(),
        };
        self.swarm.dial(opts).map_err(|error| MeshError::Dial {
            addr: text.clone(),
            reason: error.to_string(),
        })?;
        debug!(addr = %text, "dialing");
        Ok(())
    }

    /// Closes every connection to `peer` and refuses new ones until the ban
    /// ends. The block list denies the peer's connections both ways.
    fn ban(&mut self, peer: PeerId) {
        info!(%peer, minutes = BAN_DURATION.as_secs() / 60, "disconnecting and banning peer");
        let behaviour = self.swarm.behaviour_mut();
        behaviour.blocked.block_peer(peer);
        behaviour.kad.remove_peer(&peer);
        self.bans.insert(peer, Instant::now() + BAN_DURATION);
    }

    /// Lifts a ban before its time (an operator's decision).
    fn unban(&mut self, peer: PeerId) {
        if self.bans.remove(&peer).is_some() {
            info!(%peer, "ban lifted by the operator");
        }
        self.swarm.behaviour_mut().blocked.unblock_peer(peer);
    }

    /// Dials the bootstrap peers we are not connected to (and have not
    /// banned). Dialing a peer already being dialed does nothing.
    fn redial_bootstrap(&mut self) {
        let lost: Vec<(PeerId, Multiaddr)> = self
            .bootstrap
            .iter()
            .filter(|(peer, _)| !self.swarm.is_connected(peer) && !self.bans.contains_key(peer))
            .cloned()
            .collect();
        for (peer, addr) in lost {
            if let Err(error) = self.remember_and_dial(peer, addr) {
                debug!(%peer, %error, "cannot dial bootstrap peer again");
            }
        }
    }

    fn lift_expired_bans(&mut self) {
        let now = Instant::now();
        let blocked = &mut self.swarm.behaviour_mut().blocked;
        self.bans.retain(|peer, until| {
            if *until > now {
                return true;
            }
            blocked.unblock_peer(*peer);
            debug!(%peer, "ban lifted");
            false
        });
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<MeshBehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen.push(address.clone());
                self.emit(MeshEvent::Listening(address.to_string()));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                debug!(%address, "listen address expired");
                self.listen.retain(|a| a != &address);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                warn!(?addresses, ?reason, "listener closed");
                self.listen.retain(|a| !addresses.contains(a));
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                let Some(key) = keys::public_key(&peer_id) else {
                    warn!(peer = %peer_id, "peer key is not ed25519: not a buildmesh node, disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                };
                debug!(peer = %key.short(), address = %endpoint.get_remote_address(), "connection established");
                if num_established.get() == 1 {
                    self.peers.insert(key, peer_id);
                    info!(peer = %key.short(), "peer connected");
                    self.emit(MeshEvent::PeerConnected(key));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                self.inbound
                    .retain(|_, inbound| inbound.connection != connection_id);
                debug!(peer = %peer_id, ?cause, "connection closed");
                if num_established > 0 {
                    return;
                }
                let Some(key) = keys::public_key(&peer_id) else {
                    return;
                };
                if self.peers.remove(&key).is_some() {
                    info!(peer = %key.short(), "peer disconnected");
                    self.emit(MeshEvent::PeerDisconnected(key));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => debug!(%send_back_addr, %error, "incoming connection failed"),
            other => trace!(?other, "swarm event"),
        }
    }

    fn on_behaviour_event(&mut self, event: MeshBehaviourEvent) {
        match event {
            MeshBehaviourEvent::Blocked(never) => match never {},
            MeshBehaviourEvent::Limits(never) => match never {},
            MeshBehaviourEvent::Identify(event) => {
                self.metrics.record(&event);
                self.on_identify(event);
            }
            MeshBehaviourEvent::Ping(event) => {
                self.metrics.record(&event);
                trace!(?event, "ping");
            }
            MeshBehaviourEvent::Kad(event) => {
                self.metrics.record(&event);
                on_kad(event);
            }
            MeshBehaviourEvent::Gossipsub(event) => {
                self.metrics.record(&event);
                self.on_gossipsub(event);
            }
            MeshBehaviourEvent::Sync(event) => self.on_sync(event),
            MeshBehaviourEvent::Mdns(event) => self.on_mdns(event),
        }
    }

    /// Feeds Kademlia the listen addresses of peers that speak it.
    fn on_identify(&mut self, event: identify::Event) {
        if let identify::Event::Received { peer_id, info, .. } = event {
            trace!(peer = %peer_id, agent = %info.agent_version, "identified");
            if !info.protocols.contains(&KAD_PROTOCOL) {
                return;
            }
            let kad = &mut self.swarm.behaviour_mut().kad;
            for addr in info.listen_addrs {
                kad.add_address(&peer_id, addr);
            }
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let from = keys::public_key(&propagation_source);
                let source = message.source.as_ref().and_then(keys::public_key);
                let (Some(from), Some(source)) = (from, source) else {
                    // Strict validation guarantees a signed source; only a
                    // non-ed25519 identity gets here.
                    debug!(message = %message_id, "gossip from a non-ed25519 peer, rejected");
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            gossipsub::MessageAcceptance::Reject,
                        );
                    return;
                };
                trace!(message = %message_id, from = %from.short(), source = %source.short(), "gossip received");
                let topic = topic_of(&message.topic);
                self.emit(MeshEvent::Gossip {
                    topic,
                    from,
                    source,
                    message: message_id.0,
                    bytes: message.data,
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer subscribed");
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                debug!(peer = %peer_id, %topic, "peer unsubscribed");
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => debug!(peer = %peer_id, ?failed_messages, "slow gossipsub peer"),
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => {
                let Some(key) = keys::public_key(&peer) else {
                    return;
                };
                match message {
                    request_response::Message::Request {
                        request_id,
                        request,
                        channel,
                    } => {
                        let id = self.next_inbound;
                        self.next_inbound += 1;
                        self.inbound.insert(
                            id,
                            Inbound {
                                connection: connection_id,
                                request: request_id,
                                channel,
                            },
                        );
                        debug!(peer = %key.short(), id, len = request.len(), "sync request received");
                        self.emit(MeshEvent::Request {
                            peer: key,
                            id,
                            bytes: request,
                        });
                    }
                    request_response::Message::Response { response, .. } => {
                        debug!(peer = %key.short(), len = response.len(), "sync response received");
                        self.emit(MeshEvent::Response {
                            peer: key,
                            bytes: response,
                        });
                    }
                }
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "sync request failed");
                if let Some(key) = keys::public_key(&peer) {
                    self.emit(MeshEvent::RequestFailed(key));
                }
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                debug!(%peer, %error, "inbound sync request failed");
                self.inbound
                    .retain(|_, inbound| inbound.request != request_id);
            }
            request_response::Event::ResponseSent { peer, .. } => {
                trace!(%peer, "sync response sent");
            }
        }
    }

    /// Adds `addr` for `peer` to Kademlia and dials it unless connected.
    fn remember_and_dial(&mut self, peer: PeerId, addr: Multiaddr) -> Result<(), DialError> {
        self.swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, addr.clone());
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![addr])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        self.swarm.dial(opts)
    }

    fn on_mdns(&mut self, event: mdns::Event) {
        match event {
            mdns::Event::Discovered(found) => {
                for (peer, addr) in found {
                    debug!(%peer, %addr, "found by mDNS");
                    if let Err(error) = self.remember_and_dial(peer, addr) {
                        debug!(%peer, %error, "cannot dial peer found by mDNS");
                    }
                }
            }
            mdns::Event::Expired(gone) => trace!(?gone, "mDNS records expired"),
        }
    }
}

fn on_kad(event: kad::Event) {
    match event {
        kad::Event::RoutingUpdated { peer, .. } => trace!(%peer, "kademlia routing updated"),
        kad::Event::OutboundQueryProgressed {
            result: kad::QueryResult::Bootstrap(result),
            ..
        } => match result {
            Ok(ok) => debug!(
                remaining = ok.num_remaining,
                "kademlia bootstrap progressed"
            ),
            Err(error) => debug!(%error, "kademlia bootstrap failed"),
        },
        other => trace!(?other, "kademlia event"),
    }
}

/// Waits for room in `events`, then sends the oldest held event; false if
/// the receiver is gone. Cancel-safe: an event leaves `held` only once its
/// room is reserved, and then without awaiting.
async fn send_held(events: &mpsc::Sender<MeshEvent>, held: &mut VecDeque<MeshEvent>) -> bool {
    let Ok(permit) = events.reserve().await else {
        return false;
    };
    if let Some(event) = held.pop_front() {
        permit.send(event);
    }
    true
}

/// The gossipsub topic name of `topic`.
fn topic_name(topic: Topic) -> &'static str {
    match topic {
        Topic::Entries => ENTRIES_TOPIC,
        Topic::Bids => BIDS_TOPIC,
        Topic::Renewals => RENEWALS_TOPIC,
    }
}

/// The topic a message came on (only subscribed topics reach us).
fn topic_of(hash: &gossipsub::TopicHash) -> Topic {
    [Topic::Bids, Topic::Renewals]
        .into_iter()
        .find(|topic| *hash == gossipsub::IdentTopic::new(topic_name(*topic)).hash())
        .unwrap_or(Topic::Entries)
}
