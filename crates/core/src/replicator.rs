//! The replicator: keeps a node's log in step with its peers'.
//!
//! A sans-IO state machine in the manner of quinn-proto: the driver feeds it
//! [`Input`]s with the time ([`Replicator::handle`]), then drains
//! [`Action`]s ([`Replicator::poll_action`]) until `None`, then sleeps until
//! [`Replicator::poll_timeout`] and feeds [`Input::Tick`]. It never reads a
//! clock, opens a socket or spawns a task; its randomness comes from a seed.
//!
//! What it does:
//! - on connect, and every `sync_interval_ms` with a random peer, it sends
//!   its version vector and takes what it lacks in bounded batches, resumed
//!   by cursor until the peer has nothing more;
//! - it answers peers' sync requests the same way, within a per-peer rate;
//! - after a sync it started, it asks the peer for the fork proofs it
//!   lacks and answers peers' such requests (`forks`): a version vector
//!   cannot show that two nodes hold different entries at one sequence
//!   number;
//! - it checks every gossiped entry and reports a verdict, so gossipsub only
//!   forwards entries the log accepts;
//! - it counts offences per peer and disconnects past a threshold; a peer
//!   that serves an invalid entry in a sync batch is disconnected at once;
//! - what this node writes, and what a client submits, is durable (flushed)
//!   before it is published or acknowledged; entries learnt from peers are
//!   flushed at the end of each sync and by the store's own background flush
//!   (sled: every 500 ms). A crash loses at most those, which the next sync
//!   fetches again; losing them forks nobody, as losing our own writes would.

mod blob_fetch;
mod forks;
mod io;
mod limiter;
mod peer;

pub use blob_fetch::{BLOB_FETCHES_BURST, BLOB_FETCHES_PER_SECOND, BLOB_MISS_MS, BLOB_MISSES_MAX};
pub use io::{Action, Input, Misbehaviour, PeerId, RequestId, Verdict};
pub use limiter::TokenBucket;

use crate::log::{self, BatchLimits, ChainWriter, EntryStore};
use buildmesh_protocol::{
    BlobHash, Body, DecodeError, Entry, EntryId, KeyCache, SYNC_LEASES_MAX, SignError, Timestamp,
};
use ed25519_dalek::SigningKey;
use peer::Peer;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Tunables, with defaults for a laptop.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicatorConfig {
    /// How often to sync with one random peer, ms.
    pub sync_interval_ms: u64,
    /// Offences before a peer is disconnected.
    pub strikes_max: u32,
    /// Inbound requests a peer may send at once.
    pub requests_burst: u32,
    /// Inbound requests a peer may send per second, on average. An honest
    /// peer has one sync outstanding at a time, so this only binds a peer
    /// that does not wait for answers; 64 batches a second is 64k entries.
    pub requests_per_second: u32,
    /// Bounds on one sync batch we send.
    pub batch: BatchLimits,
    /// How long a request to a peer may go without an answer or a failure
    /// before we give up on it ourselves, ms. The transport reports a
    /// timeout first (libp2p's, 30 s); this is the net under it, so that a
    /// lost report never stops a node syncing with a peer for good.
    pub request_stall_ms: u64,
}

impl Default for ReplicatorConfig {
    fn default() -> Self {
        ReplicatorConfig {
            sync_interval_ms: 30_000,
            strikes_max: 5,
            requests_burst: 64,
            requests_per_second: 64,
            batch: BatchLimits::default(),
            request_stall_ms: 45_000,
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicatorStats {
    /// Entries added to the log from peers.
    pub entries_received: u64,
    /// Entries sent to peers in sync batches.
    pub entries_served: u64,
    /// Offences counted against peers.
    pub offences: u64,
    /// Peers disconnected for misbehaving.
    pub disconnects: u64,
    /// When a sync with a peer last finished.
    pub last_sync_at: Option<Timestamp>,
}

/// Keeps one node's log in step with its peers. See the module docs.
#[derive(Debug)]
pub struct Replicator<S: EntryStore> {
    config: ReplicatorConfig,
    store: S,
    writer: ChainWriter,
    keys: KeyCache,
    peers: BTreeMap<PeerId, Peer>,
    outbox: VecDeque<Action>,
    next_sync: Option<Timestamp>,
    /// Blobs being fetched, with the peers already asked.
    blobs: BTreeMap<BlobHash, BTreeSet<PeerId>>,
    /// How many fetches may start, and what no peer had lately.
    blob_fetches: blob_fetch::BlobFetches,
    /// Entries whose author's role is not known yet.
    aside: log::Aside,
    /// The time of the latest input, for what happens without one.
    now: Timestamp,
    rng: u64,
    stats: ReplicatorStats,
    /// Live lease renewals, served with the first batch of every sync.
    leases: Vec<Vec<u8>>,
    /// Forked authors found settled (nothing to probe) at this boundary;
    /// forgotten when an entry of theirs is taken (see `forks`).
    forks_settled: BTreeMap<buildmesh_protocol::PublicKey, u64>,
}

impl<S: EntryStore> Replicator<S> {
    /// A replicator for the node whose key is `key`, over `store`. `seed`
    /// picks the random peers of periodic syncs.
    pub fn new(
        config: ReplicatorConfig,
        key: SigningKey,
        store: S,
        seed: u64,
    ) -> Result<Self, S::Error> {
        let mut store = store;
        // A store written before forks froze their authors may hold
        // entries past a fork: forget them (docs/protocol.md §6).
        if log::freeze_forked(&mut store)? > 0 {
            store.flush()?;
        }
        let writer = ChainWriter::resume(key, &store)?;
        Ok(Replicator {
            config,
            store,
            writer,
            keys: KeyCache::default(),
            peers: BTreeMap::new(),
            outbox: VecDeque::new(),
            next_sync: None,
            blobs: BTreeMap::new(),
            blob_fetches: blob_fetch::BlobFetches::new(Timestamp(0)),
            aside: log::Aside::default(),
            now: Timestamp(0),
            rng: seed | 1,
            stats: ReplicatorStats::default(),
            leases: Vec::new(),
            forks_settled: BTreeMap::new(),
        })
    }

    /// The log.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The log, to flush it on shutdown.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The log, giving up the rest (a simulated crash keeps only this).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The lease renewals to hand peers that sync with this node: the
    /// live ones it holds (wire forms, at most `SYNC_LEASES_MAX`). A node
    /// that joins late or restarts learns from them who builds what now,
    /// which it could not have heard by gossip; they are not log entries.
    pub fn set_leases(&mut self, mut wires: Vec<Vec<u8>>) {
        wires.truncate(SYNC_LEASES_MAX);
        self.leases = wires;
    }

    /// The counters.
    pub fn stats(&self) -> &ReplicatorStats {
        &self.stats
    }

    /// Connected peers, in key order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// The next action to carry out; drain until `None` after every call
    /// to [`Replicator::handle`] or [`Replicator::write`].
    pub fn poll_action(&mut self) -> Option<Action> {
        self.outbox.pop_front()
    }

    /// When to feed [`Input::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_sync
    }

    /// Signs `body` as this node's next entry, stores it durably and
    /// publishes it.
    pub fn write(&mut self, now: Timestamp, body: Body) -> Result<Entry, WriteError<S::Error>> {
        let entry = self.writer.write(now, body).map_err(WriteError::Sign)?;
        let outcome = log::insert(&mut self.store, entry.clone()).map_err(WriteError::Store)?;
        if let log::Ingested::Rejected(refused) = outcome {
            // Not stored: the next entry must not chain to it.
            self.writer = ChainWriter::resume(self.writer.key().clone(), &self.store)
                .map_err(WriteError::Store)?;
            return Err(WriteError::Refused(refused));
        }
        self.settle([(entry.clone(), outcome)])
            .map_err(WriteError::Store)?;
        self.outbox.push_back(Action::Applied(vec![entry.id()]));
        self.outbox.push_back(Action::Publish {
            bytes: entry.to_wire(),
        });
        // Gossip reaches only peers whose subscription it has seen; a sync
        // request shows every direct peer that we hold more, and each that
        // lacks it asks us back (most find nothing new: gossip was first).
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.start_sync(peer, None).map_err(WriteError::Store)?;
        }
        Ok(entry)
    }

    /// Takes entries signed elsewhere (a maintainer's announcement sent to
    /// this node over HTTP, an import): verifies them as a batch, stores
    /// them durably, and lets every peer know our log grew so each pulls
    /// what it lacks (gossip carries only entries a node publishes itself).
    /// Returns each entry's fate, in order.
    pub fn submit(&mut self, wires: &[&[u8]]) -> Result<Vec<Submitted>, S::Error> {
        let checked = Entry::from_wires(wires, &mut self.keys);
        let valid: Vec<Entry> = checked
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let stored = log::insert_batch(&mut self.store, valid.iter().cloned())?;
        self.settle(valid.iter().cloned().zip(stored.iter().cloned()))?;
        let mut outcomes = stored.into_iter();
        let results: Vec<Submitted> = checked
            .into_iter()
            .map(|checked| match checked {
                Ok(entry) => Submitted::Ingested(
                    entry.id(),
                    outcomes.next().unwrap_or(log::Ingested::Duplicate),
                ),
                Err(error) => Submitted::Invalid(error),
            })
            .collect();
        let applied: Vec<EntryId> = results
            .iter()
            .filter_map(|r| match r {
                Submitted::Ingested(id, outcome) if handlers::is_new(outcome) => Some(*id),
                _ => None,
            })
            .collect();
        if !applied.is_empty() {
            self.outbox.push_back(Action::Applied(applied));
            let peers: Vec<PeerId> = self.peers.keys().copied().collect();
            for peer in peers {
                self.start_sync(peer, None)?;
            }
        }
        Ok(results)
    }

    /// Starts fetching blob `hash` from connected peers, one at a time,
    /// until one has it; ends in [`Action::BlobFetched`] or
    /// [`Action::BlobUnavailable`].
    pub fn fetch_blob(&mut self, now: Timestamp, hash: BlobHash) {
        self.now = self.now.max(now);
        if self.blobs.contains_key(&hash) {
            return; // already under way; its outcome answers this too
        }
        if !self.blob_fetches.may_start(now, &hash) {
            self.outbox.push_back(Action::BlobUnavailable(hash));
            return;
        }
        self.blobs.insert(hash, BTreeSet::new());
        self.ask_next_for_blob(hash);
    }

    /// Takes one input. An `Err` is the store failing: fatal for the node.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<(), S::Error> {
        self.now = self.now.max(now);
        match input {
            Input::PeerConnected(peer) => {
                self.blob_fetches.peer_connected();
                self.connected(now, peer)
            }
            Input::PeerDisconnected(peer) => {
                self.request_failed(peer, false);
                self.peers.remove(&peer);
                Ok(())
            }
            Input::RequestReceived { peer, id, bytes } => {
                self.request_received(now, peer, id, &bytes)
            }
            Input::ResponseReceived { peer, bytes } => self.response_received(peer, &bytes),
            Input::RequestFailed(peer) => {
                self.request_failed(peer, true);
                Ok(())
            }
            Input::Gossiped {
                from,
                source,
                message,
                bytes,
            } => self.gossiped(from, source, message, &bytes),
            Input::Verified { peer, entries } => self.verified(now, peer, entries),
            Input::Tick => self.tick(now),
        }
    }
}

/// What became of one submitted entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    /// It verified; here is what the log did with it.
    Ingested(EntryId, log::Ingested),
    /// It did not verify.
    Invalid(DecodeError),
}

/// Why [`Replicator::write`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<E: std::error::Error + 'static> {
    /// The body breaks a protocol limit.
    #[error("cannot sign the entry: {0}")]
    Sign(SignError),
    /// The store failed.
    #[error("cannot store the entry: {0}")]
    Store(E),
    /// The log's rules refused it (this node's key has no role, or is past
    /// its quota: docs/protocol.md §6.1).
    #[error("the log refused the entry: {0}")]
    Refused(log::Rejected),
}

mod handlers;

/// Entries held aside until their author has a role (docs/protocol.md §6.1).
impl<S: EntryStore> Replicator<S> {
    /// Entries waiting for their author's role now.
    pub fn held_aside(&self) -> usize {
        self.aside.len()
    }

    /// After entries were offered to the log: holds aside those refused
    /// for want of a role, and offers the held ones again if a new entry
    /// may have given one.
    pub(crate) fn settle(
        &mut self,
        offered: impl IntoIterator<Item = (Entry, log::Ingested)>,
    ) -> Result<(), S::Error> {
        let offered: Vec<(Entry, log::Ingested)> = offered.into_iter().collect();
        let fork = offered
            .iter()
            .any(|(_, outcome)| forks::may_prove_a_fork(outcome));
        for (entry, outcome) in &offered {
            if handlers::is_new(outcome) {
                self.forks_settled.remove(&entry.author());
            }
        }
        let taken = self.aside.settle(&mut self.store, self.now, offered)?;
        if !taken.is_empty() {
            // Whose entries these are is not told: forget them all.
            self.forks_settled.clear();
        }
        self.took_from_aside(taken);
        if fork {
            self.forks_may_have_changed()?;
        }
        Ok(())
    }

    fn took_from_aside(&mut self, taken: Vec<EntryId>) {
        if !taken.is_empty() {
            self.stats.entries_received += taken.len() as u64;
            self.outbox.push_back(Action::Applied(taken));
        }
    }
}
