//! Bids: a node's signed offer to build one cell (`docs/protocol.md` §10).
//!
//! A bid is ephemeral: it travels on its own gossip topic and is never
//! stored in the log. It is signed all the same, so nobody can bid in
//! another node's name, and signed under its own domain string, so a bid's
//! signature can never pass for an entry's or an entry's for a bid's.

use crate::error::InvalidBody;
use crate::ids::{CommitId, ProjectId, PublicKey};
use crate::limits::SHORT_TEXT_BYTES_MAX;
use crate::signed::{Ephemeral, MessageDecodeError, MessageSignError, Signed, message_to_sign};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Prepended to a bid's content bytes before signing: not
/// [`ENTRY_DOMAIN`](crate::ENTRY_DOMAIN), so the two can never be confused.
pub const BID_DOMAIN: &[u8] = b"buildmesh/bid/v1\0";

/// Largest accepted wire form of one bid (signature plus content), bytes.
/// The largest valid bid (32-byte commit id, 256-byte platform) is 449.
pub const BID_BYTES_MAX: usize = 1024;

/// The gossipsub topic bids travel on.
pub const BID_TOPIC: &str = "buildmesh/bids/1";

/// An offer to build one cell (commit × platform). Field order is the wire
/// order: the fixed-size fields first, so they sit at fixed offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// Who offers (and signs).
    pub bidder: PublicKey,
    /// When the bidder sent it, by its clock.
    pub at: Timestamp,
    /// The project.
    pub project: ProjectId,
    /// How many times the bidder has restarted bidding on this cell (a
    /// winner never claimed, or a lease lapsed); a bidder's later bid
    /// replaces its earlier one.
    pub round: u32,
    /// Builds the bidder is running: the rule prefers idle builders.
    pub load: u32,
    /// The commit.
    pub commit: CommitId,
    /// The platform label.
    pub platform: String,
}

impl Ephemeral for Bid {
    const DOMAIN: &'static [u8] = BID_DOMAIN;
    const BYTES_MAX: usize = BID_BYTES_MAX;

    fn signer(&self) -> &PublicKey {
        &self.bidder
    }

    fn validate(&self) -> Result<(), InvalidBody> {
        validate_cell(&self.commit, &self.platform)
    }
}

/// Checks the limits a claim on the same cell has (`docs/protocol.md` §5
/// rule 7): a 20- or 32-byte commit id, a short platform label.
pub(crate) fn validate_cell(commit: &CommitId, platform: &str) -> Result<(), InvalidBody> {
    if !commit.is_valid() {
        return Err(InvalidBody::CommitId(commit.as_bytes().len()));
    }
    if platform.len() > SHORT_TEXT_BYTES_MAX {
        return Err(InvalidBody::TooLong("platform", SHORT_TEXT_BYTES_MAX));
    }
    Ok(())
}

/// A verified bid (see [`Signed`]).
pub type SignedBid = Signed<Bid>;

/// Why wire bytes were refused as a bid.
pub type BidDecodeError = MessageDecodeError;

/// Why a bid could not be signed.
pub type BidSignError = MessageSignError;

/// The message a bidder signs: [`BID_DOMAIN`], then the content bytes.
pub fn bid_signed_message(content_bytes: &[u8]) -> Vec<u8> {
    message_to_sign::<Bid>(content_bytes)
}
