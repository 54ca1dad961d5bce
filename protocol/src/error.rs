//! What can be wrong with bytes that claim to be an entry.

use crate::limits::ENTRY_BYTES_MAX;

/// Why a wire entry was refused. Every variant is the peer's fault, never
/// ours, so receivers count it against the sender.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// Longer than [`ENTRY_BYTES_MAX`].
    #[error("entry is {0} bytes; the limit is {ENTRY_BYTES_MAX}")]
    TooLarge(usize),
    /// Too short to hold a signature and any content (the length given is
    /// the whole input's: wire bytes, or content bytes when they came alone).
    #[error("entry is {0} bytes, too short to hold a signature and a header")]
    TooShort(usize),
    /// The content bytes do not decode.
    #[error("entry content does not decode: {0}")]
    Malformed(String),
    /// Bytes left over after the content.
    #[error("{0} bytes follow the entry content")]
    TrailingBytes(usize),
    /// Decodes, but is not the one canonical encoding of its value.
    #[error("entry content is not in canonical form")]
    NotCanonical,
    /// A format version this build does not know.
    #[error("entry format version {0} is not supported (this build knows version {known})", known = crate::FORMAT_VERSION)]
    UnsupportedVersion(u8),
    /// Sequence number and previous id disagree (`seq` 0; `seq` 1 with a
    /// previous id; a later entry without one).
    #[error("sequence number {seq} does not fit its previous-entry hash")]
    BadChainLink {
        /// The sequence number found.
        seq: u64,
    },
    /// The body breaks a limit.
    #[error("entry body is invalid: {0}")]
    InvalidBody(#[from] InvalidBody),
    /// The author field is not a usable ed25519 key.
    #[error("author is not a valid ed25519 public key")]
    BadAuthorKey,
    /// The signature does not verify under the author's key.
    #[error("signature does not verify under the author's key")]
    BadSignature,
}

/// A body limit that was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBody {
    /// A text field is too long.
    #[error("{0} is longer than {1} bytes")]
    TooLong(&'static str, usize),
    /// A list has too many items.
    #[error("{0} has more than {1} items")]
    TooMany(&'static str, usize),
    /// A field that must not be empty or zero is.
    #[error("{0} must not be empty or zero")]
    Empty(&'static str),
    /// A number that is NaN or infinite: it would not equal itself, so an
    /// entry holding it could not be compared or deduplicated by value.
    #[error("{0} must be a finite number")]
    NotFinite(&'static str),
    /// A number that must not be below zero is.
    #[error("{0} must not be negative")]
    Negative(&'static str),
    /// A commit id of the wrong length.
    #[error("commit id is {0} bytes; git ids are 20 or 32")]
    CommitId(usize),
}

/// Why an entry could not be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignError {
    /// The content would not be accepted by any receiver.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// The signing key does not belong to the author named in the content.
    #[error("the signing key is not the entry's author")]
    WrongKey,
}
