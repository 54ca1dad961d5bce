//! Bids: a node's signed offer to build one cell (`docs/protocol.md` §10).
//!
//! A bid is ephemeral: it travels on its own gossip topic and is never
//! stored in the log. It is signed all the same, so nobody can bid in
//! another node's name, and signed under its own domain string, so a bid's
//! signature can never pass for an entry's or an entry's for a bid's.

use crate::canonical;
use crate::entry::SIGNATURE_BYTES;
use crate::error::{DecodeError, InvalidBody};
use crate::ids::{CommitId, ProjectId, PublicKey};
use crate::limits::SHORT_TEXT_BYTES_MAX;
use crate::time::Timestamp;
use crate::verify::{self, AuthorKey};
use ed25519_dalek::{Signer, SigningKey};
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

impl Bid {
    /// Checks the limits a claim on the same cell has (`docs/protocol.md`
    /// §5 rule 7): a 20- or 32-byte commit id, a short platform label.
    pub fn validate(&self) -> Result<(), InvalidBody> {
        if !self.commit.is_valid() {
            return Err(InvalidBody::CommitId(self.commit.as_bytes().len()));
        }
        if self.platform.len() > SHORT_TEXT_BYTES_MAX {
            return Err(InvalidBody::TooLong("platform", SHORT_TEXT_BYTES_MAX));
        }
        Ok(())
    }
}

/// A verified bid: decoded from canonical bytes whose signature checked out
/// under the bidder's key. There is no other way to build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBid {
    bid: Bid,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_BYTES],
}

impl SignedBid {
    /// Signs `bid` with `key`, which must be the bidder's.
    pub fn sign(key: &SigningKey, bid: Bid) -> Result<SignedBid, BidSignError> {
        if PublicKey::from(key.verifying_key()) != bid.bidder {
            return Err(BidSignError::WrongKey);
        }
        bid.validate()?;
        let bytes = canonical::encode_value(&bid).map_err(|e| {
            // Only a value serde cannot encode fails here; a `Bid` has none.
            BidSignError::Encoding(e.to_string())
        })?;
        let signature = key.sign(&bid_signed_message(&bytes)).to_bytes();
        Ok(SignedBid {
            bid,
            bytes,
            signature,
        })
    }

    /// Decodes and verifies a wire bid: 64 signature bytes, then content.
    /// The size is checked before anything is decoded.
    pub fn from_wire(wire: &[u8]) -> Result<SignedBid, BidDecodeError> {
        if wire.len() > BID_BYTES_MAX {
            return Err(BidDecodeError::TooLarge(wire.len()));
        }
        let (signature, bytes) = wire
            .split_first_chunk::<SIGNATURE_BYTES>()
            .filter(|(_, bytes)| !bytes.is_empty())
            .ok_or(BidDecodeError::TooShort(wire.len()))?;
        let bid: Bid = canonical::decode_value(bytes).map_err(BidDecodeError::from)?;
        bid.validate()?;
        let key = AuthorKey::decode(&bid.bidder).ok_or(BidDecodeError::BadBidderKey)?;
        let message = bid_signed_message(bytes);
        let claim = verify::Claim {
            key,
            message: &message,
            signature,
        };
        if !verify::verify_one(&claim) {
            return Err(BidDecodeError::BadSignature);
        }
        Ok(SignedBid {
            bid,
            bytes: bytes.to_vec(),
            signature: *signature,
        })
    }

    /// The wire form: signature, then content bytes.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(SIGNATURE_BYTES + self.bytes.len());
        wire.extend_from_slice(&self.signature);
        wire.extend_from_slice(&self.bytes);
        wire
    }

    /// The bid.
    pub fn bid(&self) -> &Bid {
        &self.bid
    }

    /// The bid, giving up the bytes.
    pub fn into_bid(self) -> Bid {
        self.bid
    }

    /// The canonical content bytes (without the domain prefix).
    pub fn content_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ed25519 signature over [`BID_DOMAIN`] followed by the content.
    pub fn signature(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.signature
    }
}

/// The message a bidder signs: [`BID_DOMAIN`], then the content bytes.
pub fn bid_signed_message(content_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(BID_DOMAIN.len() + content_bytes.len());
    message.extend_from_slice(BID_DOMAIN);
    message.extend_from_slice(content_bytes);
    message
}

/// Why wire bytes were refused as a bid. Every variant is the sender's
/// fault, so receivers count it against the peer that forwarded them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BidDecodeError {
    /// Longer than [`BID_BYTES_MAX`].
    #[error("bid is {0} bytes; the limit is {BID_BYTES_MAX}")]
    TooLarge(usize),
    /// Too short to hold a signature and any content.
    #[error("bid is {0} bytes, too short to hold a signature and content")]
    TooShort(usize),
    /// The content bytes do not decode as a bid.
    #[error("bid content does not decode: {0}")]
    Malformed(String),
    /// Bytes left over after the content.
    #[error("{0} bytes follow the bid content")]
    TrailingBytes(usize),
    /// Decodes, but is not the one canonical encoding of its value.
    #[error("bid content is not in canonical form")]
    NotCanonical,
    /// A format version this build does not know.
    #[error("bid format version {0} is not supported (this build knows version {known})", known = crate::FORMAT_VERSION)]
    UnsupportedVersion(u8),
    /// A field breaks a limit.
    #[error("bid is invalid: {0}")]
    Invalid(#[from] InvalidBody),
    /// The bidder field is not a usable ed25519 key.
    #[error("bidder is not a valid ed25519 public key")]
    BadBidderKey,
    /// The signature does not verify under the bidder's key.
    #[error("signature does not verify under the bidder's key")]
    BadSignature,
}

impl From<DecodeError> for BidDecodeError {
    /// The canonical decoder's refusals, renamed for bids.
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::TooShort(n) => BidDecodeError::TooShort(n),
            DecodeError::TrailingBytes(n) => BidDecodeError::TrailingBytes(n),
            DecodeError::NotCanonical => BidDecodeError::NotCanonical,
            DecodeError::UnsupportedVersion(v) => BidDecodeError::UnsupportedVersion(v),
            DecodeError::InvalidBody(invalid) => BidDecodeError::Invalid(invalid),
            DecodeError::Malformed(why) => BidDecodeError::Malformed(why),
            other => BidDecodeError::Malformed(other.to_string()),
        }
    }
}

/// Why a bid could not be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BidSignError {
    /// The signing key is not the bidder's.
    #[error("the signing key is not the bidder's")]
    WrongKey,
    /// A field breaks a limit no receiver would accept.
    #[error("bid is invalid: {0}")]
    Invalid(#[from] InvalidBody),
    /// The encoder failed (a bug: every `Bid` value encodes).
    #[error("bid does not encode: {0}")]
    Encoding(String),
}
