//! What the replicator remembers about one connected peer.

use super::ReplicatorConfig;
use super::limiter::TokenBucket;
use buildmesh_protocol::{BlobHash, SyncCursor, Timestamp};

/// Sync batches from one peer that may be out for verification while the
/// next is in flight: two keep the peer, the verifier and the store busy at
/// once; more would only queue.
pub(crate) const PIPELINE_BATCHES: u32 = 2;

/// Fork requests a peer's claims (a proof it holds, a head of its) may
/// make us send it at once, then per second.
pub(crate) const ASK_BACKS_BURST: u32 = 8;
/// See [`ASK_BACKS_BURST`].
pub(crate) const ASK_BACKS_PER_SECOND: u32 = 1;

/// One connected peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// A sync we started is waiting for this peer's answer.
    pub(crate) syncing: bool,
    /// Sync batches from this peer out for verification.
    pub(crate) verifying: u32,
    /// Where to resume once a verification returns: the next request waits
    /// while [`PIPELINE_BATCHES`] batches are out.
    pub(crate) deferred: Option<SyncCursor>,
    /// The peer's last batch of this sync has arrived.
    pub(crate) last_batch_in: bool,
    /// A blob we asked this peer for.
    pub(crate) blob_wanted: Option<BlobHash>,
    /// The sync under way has brought entries we lacked.
    pub(crate) news: bool,
    /// When our last sync with this peer finished.
    pub(crate) synced_at: Option<Timestamp>,
    /// Offences so far; at [`ReplicatorConfig::strikes_max`] we disconnect.
    pub(crate) strikes: u32,
    /// Inbound requests allowed.
    pub(crate) requests: TokenBucket,
    /// Requests refused for rate, less one per request served.
    pub(crate) refusals: u32,
    /// When we sent the sync request still awaiting its answer.
    pub(crate) sync_asked_at: Option<Timestamp>,
    /// When we sent the blob request still awaiting its answer: a clock
    /// of its own, so answers to one kind never hide a stall of the other.
    pub(crate) blob_asked_at: Option<Timestamp>,
    /// Lease renewals the sync under way brought, handed on when it
    /// completes: by then the claims they renew are in the log.
    pub(crate) leases: Vec<Vec<u8>>,
    /// A fork request to this peer awaits its answer.
    pub(crate) forks_wanted: bool,
    /// When we last asked it for fork proofs.
    pub(crate) forks_asked_at: Option<Timestamp>,
    /// It refused a fork request as malformed: a node older than fork
    /// requests, not asked again while this connection lasts.
    pub(crate) forks_unsupported: bool,
    /// Fork requests we may send it because its own said it knows more:
    /// its word only, so a peer cannot make us ask it more than this.
    pub(crate) ask_backs: TokenBucket,
    /// Answers still due to requests we wrote off: a refusal or failure
    /// does not say which of the requests out it ends, so all are written
    /// off, and an answer to one of the others, arriving late, is dropped
    /// rather than held against an honest peer. At most
    /// [`REQUEST_KINDS`], one per kind of request out at a time.
    pub(crate) late_answers: u8,
}

/// Kinds of request one peer may have out at a time: a sync, a blob and
/// a fork request, one of each.
pub(crate) const REQUEST_KINDS: u8 = 3;

impl Peer {
    pub(crate) fn new(config: &ReplicatorConfig, now: Timestamp) -> Self {
        Peer {
            syncing: false,
            verifying: 0,
            deferred: None,
            last_batch_in: false,
            blob_wanted: None,
            news: false,
            synced_at: None,
            strikes: 0,
            requests: TokenBucket::new(config.requests_burst, config.requests_per_second, now),
            refusals: 0,
            sync_asked_at: None,
            blob_asked_at: None,
            leases: Vec::new(),
            forks_wanted: false,
            forks_asked_at: None,
            forks_unsupported: false,
            ask_backs: TokenBucket::new(ASK_BACKS_BURST, ASK_BACKS_PER_SECOND, now),
            late_answers: 0,
        }
    }

    /// A sync with this peer is under way: a request out, or batches being
    /// verified.
    pub(crate) fn sync_under_way(&self) -> bool {
        self.syncing || self.verifying > 0
    }

    /// Requests out to this peer, of any kind.
    pub(crate) fn requests_out(&self) -> u8 {
        u8::from(self.syncing) + u8::from(self.blob_wanted.is_some()) + u8::from(self.forks_wanted)
    }

    /// Writes off `count` requests whose answers may still come.
    pub(crate) fn expect_late(&mut self, count: u8) {
        self.late_answers = self.late_answers.saturating_add(count).min(REQUEST_KINDS);
    }
}
