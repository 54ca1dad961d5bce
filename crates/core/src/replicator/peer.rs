//! What the replicator remembers about one connected peer.

use super::ReplicatorConfig;
use super::limiter::TokenBucket;
use buildmesh_protocol::{BlobHash, Timestamp};

/// One connected peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// A sync we started is waiting for this peer's answer.
    pub(crate) syncing: bool,
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
}

impl Peer {
    pub(crate) fn new(config: &ReplicatorConfig, now: Timestamp) -> Self {
        Peer {
            syncing: false,
            blob_wanted: None,
            news: false,
            synced_at: None,
            strikes: 0,
            requests: TokenBucket::new(config.requests_burst, config.requests_per_second, now),
            refusals: 0,
        }
    }
}
