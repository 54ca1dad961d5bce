//! Signed ephemeral messages: bids (`docs/protocol.md` §10) and lease
//! renewals (§11). Both travel by gossip and are never stored in the log;
//! both are signed, so nobody speaks in another node's name, and each kind
//! under its own domain string, so a signature of one kind never passes
//! for another kind's or for an entry's.

use crate::canonical;
use crate::entry::SIGNATURE_BYTES;
use crate::error::{DecodeError, InvalidBody};
use crate::ids::PublicKey;
use crate::verify::{self, AuthorKey};
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A kind of signed ephemeral message: its domain, its size bound, who
/// signs it, and the limits its fields must keep.
pub trait Ephemeral: Serialize + DeserializeOwned {
    /// Prepended to the content bytes before signing; unique per kind.
    const DOMAIN: &'static [u8];
    /// Largest accepted wire form (signature plus content), bytes.
    const BYTES_MAX: usize;
    /// The key that signs it (and the only one that may publish it).
    fn signer(&self) -> &PublicKey;
    /// Checks the field limits (`docs/protocol.md` §10.2, §11.2).
    fn validate(&self) -> Result<(), InvalidBody>;
}

/// A verified message: decoded from canonical bytes whose signature checked
/// out under its signer's key. There is no other way to build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<M> {
    message: M,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_BYTES],
}

impl<M: Ephemeral> Signed<M> {
    /// Signs `message` with `key`, which must be its signer's.
    pub fn sign(key: &SigningKey, message: M) -> Result<Self, MessageSignError> {
        if PublicKey::from(key.verifying_key()) != *message.signer() {
            return Err(MessageSignError::WrongKey);
        }
        message.validate()?;
        let bytes = canonical::encode_value(&message).map_err(|e| {
            // Only a value serde cannot encode fails here; these have none.
            MessageSignError::Encoding(e.to_string())
        })?;
        let signature = key.sign(&message_to_sign::<M>(&bytes)).to_bytes();
        Ok(Signed {
            message,
            bytes,
            signature,
        })
    }

    /// Decodes and verifies a wire form: 64 signature bytes, then content.
    /// The size is checked before anything is decoded.
    pub fn from_wire(wire: &[u8]) -> Result<Self, MessageDecodeError> {
        if wire.len() > M::BYTES_MAX {
            return Err(MessageDecodeError::TooLarge(wire.len(), M::BYTES_MAX));
        }
        let (signature, bytes) = wire
            .split_first_chunk::<SIGNATURE_BYTES>()
            .filter(|(_, bytes)| !bytes.is_empty())
            .ok_or(MessageDecodeError::TooShort(wire.len()))?;
        let message: M = canonical::decode_value(bytes).map_err(MessageDecodeError::from)?;
        message.validate()?;
        let key = AuthorKey::decode(message.signer()).ok_or(MessageDecodeError::BadSignerKey)?;
        let signed = message_to_sign::<M>(bytes);
        let claim = verify::Claim {
            key,
            message: &signed,
            signature,
        };
        if !verify::verify_one(&claim) {
            return Err(MessageDecodeError::BadSignature);
        }
        Ok(Signed {
            message,
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

    /// The message.
    pub fn message(&self) -> &M {
        &self.message
    }

    /// The message, giving up the bytes.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The canonical content bytes (without the domain prefix).
    pub fn content_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ed25519 signature over `M::DOMAIN` followed by the content.
    pub fn signature(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.signature
    }
}

/// The message a signer signs: `M::DOMAIN`, then the content bytes.
pub fn message_to_sign<M: Ephemeral>(content_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(M::DOMAIN.len() + content_bytes.len());
    message.extend_from_slice(M::DOMAIN);
    message.extend_from_slice(content_bytes);
    message
}

/// Why wire bytes were refused as a message. Every variant is the sender's
/// fault, so receivers count it against the peer that forwarded them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageDecodeError {
    /// Longer than the kind's bound (the second number).
    #[error("message is {0} bytes; the limit is {1}")]
    TooLarge(usize, usize),
    /// Too short to hold a signature and any content.
    #[error("message is {0} bytes, too short to hold a signature and content")]
    TooShort(usize),
    /// The content bytes do not decode as this kind of message.
    #[error("message content does not decode: {0}")]
    Malformed(String),
    /// Bytes left over after the content.
    #[error("{0} bytes follow the message content")]
    TrailingBytes(usize),
    /// Decodes, but is not the one canonical encoding of its value.
    #[error("message content is not in canonical form")]
    NotCanonical,
    /// A format version this build does not know.
    #[error("message format version {0} is not supported (this build knows version {known})", known = crate::FORMAT_VERSION)]
    UnsupportedVersion(u8),
    /// A field breaks a limit.
    #[error("message is invalid: {0}")]
    Invalid(#[from] InvalidBody),
    /// The signer field is not a usable ed25519 key.
    #[error("the signer is not a valid ed25519 public key")]
    BadSignerKey,
    /// The signature does not verify under the signer's key.
    #[error("signature does not verify under the signer's key")]
    BadSignature,
}

impl From<DecodeError> for MessageDecodeError {
    /// The canonical decoder's refusals, renamed for messages.
    fn from(error: DecodeError) -> Self {
        match error {
            DecodeError::TooShort(n) => MessageDecodeError::TooShort(n),
            DecodeError::TrailingBytes(n) => MessageDecodeError::TrailingBytes(n),
            DecodeError::NotCanonical => MessageDecodeError::NotCanonical,
            DecodeError::UnsupportedVersion(v) => MessageDecodeError::UnsupportedVersion(v),
            DecodeError::InvalidBody(invalid) => MessageDecodeError::Invalid(invalid),
            DecodeError::Malformed(why) => MessageDecodeError::Malformed(why),
            other => MessageDecodeError::Malformed(other.to_string()),
        }
    }
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageSignError {
    /// The signing key is not the signer's.
    #[error("the signing key is not the message's signer's")]
    WrongKey,
    /// A field breaks a limit no receiver would accept.
    #[error("message is invalid: {0}")]
    Invalid(#[from] InvalidBody),
    /// The encoder failed (a bug: every value of these types encodes).
    #[error("message does not encode: {0}")]
    Encoding(String),
}
