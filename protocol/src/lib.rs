//! The buildmesh wire format: signed log entries, their bodies and their
//! canonical bytes.
//!
//! This crate is pure data. It does no IO, reads no clock and owns no
//! threads; it turns values into the exact bytes that are signed and hashed,
//! and bytes back into values, refusing anything that is not the one
//! canonical encoding of a valid entry. Everything a third party needs to
//! check an entry without this crate is written down in `docs/protocol.md`.
//!
//! The call protocol is short:
//!
//! 1. build an [`EntryContent`] (author, sequence number, previous id,
//!    timestamp, [`Body`]);
//! 2. [`Entry::sign`] it with the author's [`SigningKey`](ed25519_dalek::SigningKey);
//! 3. ship [`Entry::to_wire`]; the receiver calls [`Entry::from_wire`], which
//!    checks size, encoding, signature and semantic limits before it returns
//!    an [`Entry`].
//!
//! ```
//! use buildmesh_protocol::{Body, Entry, EntryContent, EntryId, Timestamp, TrustChange, Role, ProjectId};
//! use ed25519_dalek::SigningKey;
//!
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let author = key.verifying_key().into();
//! let body = Body::Trust(TrustChange {
//!     project: ProjectId::derive(&author, "demo"),
//!     subject: author,
//!     role: Role::Builder,
//! });
//! let content = EntryContent::first(author, Timestamp(1_700_000_000_000), body);
//! let entry = Entry::sign(&key, content).unwrap();
//! let back = Entry::from_wire(&entry.to_wire()).unwrap();
//! assert_eq!(back.id(), entry.id());
//! assert_ne!(entry.id(), EntryId::ZERO);
//! ```

#![deny(missing_docs)]

mod bid;
mod body;
mod canonical;
mod digest;
mod entry;
mod error;
mod ids;
mod limits;
mod renewal;
mod signed;
mod time;
mod verify;
mod version;
mod wire;

pub use bid::{
    BID_BYTES_MAX, BID_DOMAIN, BID_TOPIC, Bid, BidDecodeError, BidSignError, SignedBid,
    bid_signed_message,
};
pub use body::{
    Artifact, AttestedResult, Body, BodyKind, BuildResult, BuilderPolicy, BuilderRevocation, Claim,
    CommitAnnouncement, ForceBuild, ForceTarget, Outcome, ProjectDeclaration, ProjectSetting,
    PullAnnouncement, PullClosed, Role, Setting, SettingKind, StepResult, StepStatus, TestSummary,
    TestedResult, Threshold, ThresholdRule, TrustChange, Vote,
};
pub use canonical::{ENTRY_DOMAIN, FORMAT_VERSION};
pub use digest::SetDigest;
pub use entry::{Entry, EntryContent, SIGNATURE_BYTES, signed_message};
pub use error::{DecodeError, InvalidBody, SignError};
pub use ids::{BlobHash, CommitId, EntryId, ParseIdError, ProjectId, PublicKey, sha256};
pub use limits::*;
pub use renewal::{
    RENEWAL_BYTES_MAX, RENEWAL_DOMAIN, RENEWAL_TOPIC, Renewal, RenewalDecodeError, SignedRenewal,
};
pub use signed::{Ephemeral, MessageDecodeError, MessageSignError, Signed, message_to_sign};
pub use time::Timestamp;
pub use verify::KeyCache;
pub use version::VersionVector;
pub use wire::{
    FORKS_ENTRIES_MAX, FORKS_HEADS_MAX, FORKS_KNOWN_MAX, Head, REQUEST_BYTES_MAX,
    RESPONSE_BYTES_MAX, Refusal, Request, Response, SYNC_LEASES_MAX, SyncCursor,
};
