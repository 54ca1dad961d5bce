//! The signed entry: envelope, signing, verification and ids.

use crate::body::Body;
use crate::canonical::{self, ENTRY_DOMAIN};
use crate::error::{DecodeError, SignError};
use crate::ids::{EntryId, PublicKey, sha256};
use crate::limits::ENTRY_BYTES_MAX;
use crate::time::Timestamp;
use crate::verify::{self, AuthorKey, Claim, KeyCache};
use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

/// Length of the signature that starts an entry's wire form.
pub const SIGNATURE_BYTES: usize = 64;

/// Everything an author signs. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryContent {
    /// Who wrote it.
    pub author: PublicKey,
    /// 1 for an author's first entry, then one more each time.
    pub seq: u64,
    /// Id of the author's entry `seq - 1`; zeros for the first.
    pub prev: EntryId,
    /// When the author wrote it.
    pub timestamp: Timestamp,
    /// What it says.
    pub body: Body,
}

impl EntryContent {
    /// An author's first entry.
    pub fn first(author: PublicKey, timestamp: Timestamp, body: Body) -> Self {
        EntryContent {
            author,
            seq: 1,
            prev: EntryId::ZERO,
            timestamp,
            body,
        }
    }

    /// The entry that follows `previous` in its author's chain.
    pub fn after(previous: &Entry, timestamp: Timestamp, body: Body) -> Self {
        EntryContent {
            author: previous.author(),
            seq: previous.seq().saturating_add(1),
            prev: previous.id(),
            timestamp,
            body,
        }
    }

    fn check_chain_link(&self) -> Result<(), DecodeError> {
        let first = self.seq == 1;
        let no_prev = self.prev == EntryId::ZERO;
        if self.seq == 0 || first != no_prev {
            return Err(DecodeError::BadChainLink { seq: self.seq });
        }
        Ok(())
    }
}

/// A verified entry: its content decoded from canonical bytes whose
/// signature checked out. Holding one means it was checked; there is no
/// other way to build one.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    content: EntryContent,
    bytes: Vec<u8>,
    signature: [u8; SIGNATURE_BYTES],
    id: EntryId,
}

impl Entry {
    /// Signs `content` with `key`, which must be the content's author.
    pub fn sign(key: &SigningKey, content: EntryContent) -> Result<Entry, SignError> {
        if PublicKey::from(key.verifying_key()) != content.author {
            return Err(SignError::WrongKey);
        }
        content.check_chain_link()?;
        content.body.validate().map_err(DecodeError::from)?;
        let bytes = canonical::encode(&content)?;
        if bytes.len() + SIGNATURE_BYTES > ENTRY_BYTES_MAX {
            return Err(DecodeError::TooLarge(bytes.len() + SIGNATURE_BYTES).into());
        }
        let signature = key.sign(&signed_message(&bytes)).to_bytes();
        let id = id_of(&bytes);
        Ok(Entry {
            content,
            bytes,
            signature,
            id,
        })
    }

    /// Decodes and verifies a wire entry: 64 signature bytes, then content.
    pub fn from_wire(wire: &[u8]) -> Result<Entry, DecodeError> {
        Self::from_wire_cached(wire, &mut KeyCache::new(1))
    }

    /// [`Entry::from_wire`], decoding the author's key through `keys`.
    pub fn from_wire_cached(wire: &[u8], keys: &mut KeyCache) -> Result<Entry, DecodeError> {
        let (signature, bytes) = split_wire(wire)?;
        Self::from_parts_cached(bytes, signature, keys)
    }

    /// Decodes and verifies content bytes and their signature.
    pub fn from_parts(
        bytes: &[u8],
        signature: [u8; SIGNATURE_BYTES],
    ) -> Result<Entry, DecodeError> {
        Self::from_parts_cached(bytes, signature, &mut KeyCache::new(1))
    }

    fn from_parts_cached(
        bytes: &[u8],
        signature: [u8; SIGNATURE_BYTES],
        keys: &mut KeyCache,
    ) -> Result<Entry, DecodeError> {
        let unverified = Unverified::decode(bytes, signature, keys)?;
        if !verify::verify_one(&unverified.claim()) {
            return Err(DecodeError::BadSignature);
        }
        Ok(unverified.accept())
    }

    /// Decodes and verifies many wire entries, checking their signatures as
    /// one batch: several times cheaper per entry than one by one, with the
    /// same verdicts. If the batch fails, each is checked alone to find the
    /// culprits.
    ///
    /// The batch's random weights come from the thread's CSPRNG (seeded by
    /// the OS) and never from the caller: weights an attacker could predict
    /// would let invalid signatures cancel out in the sum, and the batch
    /// would accept what a single check refuses. The verdicts themselves do
    /// not depend on the weights, so callers stay deterministic.
    pub fn from_wires(wires: &[&[u8]], keys: &mut KeyCache) -> Vec<Result<Entry, DecodeError>> {
        let decoded: Vec<Result<Unverified, DecodeError>> = wires
            .iter()
            .map(|wire| {
                let (signature, bytes) = split_wire(wire)?;
                Unverified::decode(bytes, signature, keys)
            })
            .collect();
        let claims: Vec<Claim<'_>> = decoded.iter().flatten().map(Unverified::claim).collect();
        let all_valid = verify::verify_all(&claims, &verify::fresh_seed());
        decoded
            .into_iter()
            .map(|item| {
                let unverified = item?;
                if all_valid || verify::verify_one(&unverified.claim()) {
                    Ok(unverified.accept())
                } else {
                    Err(DecodeError::BadSignature)
                }
            })
            .collect()
    }

    /// Decodes a wire entry that this process verified and stored itself,
    /// skipping the signature check and the canonical re-encoding (the two
    /// costly steps). Never use it on bytes from a peer, a user or an
    /// export: those go through [`Entry::from_wire`].
    pub fn from_stored(wire: &[u8]) -> Result<Entry, DecodeError> {
        let (signature, bytes) = split_wire(wire)?;
        let content = canonical::decode_trusted(bytes)?;
        let id = id_of(bytes);
        Ok(Entry {
            content,
            bytes: bytes.to_vec(),
            signature,
            id,
        })
    }

    /// The wire form: signature, then content bytes.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut wire = Vec::with_capacity(SIGNATURE_BYTES + self.bytes.len());
        wire.extend_from_slice(&self.signature);
        wire.extend_from_slice(&self.bytes);
        wire
    }

    /// Length of [`Entry::to_wire`].
    pub fn wire_len(&self) -> usize {
        SIGNATURE_BYTES + self.bytes.len()
    }

    /// SHA-256 of the signed message.
    pub fn id(&self) -> EntryId {
        self.id
    }

    /// The decoded content.
    pub fn content(&self) -> &EntryContent {
        &self.content
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.content.body
    }

    /// The author.
    pub fn author(&self) -> PublicKey {
        self.content.author
    }

    /// The author's sequence number.
    pub fn seq(&self) -> u64 {
        self.content.seq
    }

    /// The id of the author's previous entry.
    pub fn prev(&self) -> EntryId {
        self.content.prev
    }

    /// When the author wrote it.
    pub fn timestamp(&self) -> Timestamp {
        self.content.timestamp
    }

    /// The canonical content bytes (without the domain prefix).
    pub fn content_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ed25519 signature over [`ENTRY_DOMAIN`] followed by the content bytes.
    pub fn signature(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.signature
    }
}

/// The message that is signed and hashed: domain string, then content bytes.
pub fn signed_message(content_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(ENTRY_DOMAIN.len() + content_bytes.len());
    message.extend_from_slice(ENTRY_DOMAIN);
    message.extend_from_slice(content_bytes);
    message
}

fn id_of(content_bytes: &[u8]) -> EntryId {
    EntryId(sha256(&[ENTRY_DOMAIN, content_bytes]))
}

fn split_wire(wire: &[u8]) -> Result<([u8; SIGNATURE_BYTES], &[u8]), DecodeError> {
    if wire.len() > ENTRY_BYTES_MAX {
        return Err(DecodeError::TooLarge(wire.len()));
    }
    let too_short = DecodeError::TooShort(wire.len());
    let (signature, bytes) = wire
        .split_first_chunk::<SIGNATURE_BYTES>()
        .ok_or(too_short.clone())?;
    if bytes.is_empty() {
        return Err(too_short);
    }
    Ok((*signature, bytes))
}

/// An entry whose bytes decoded and passed every rule but the signature.
struct Unverified {
    content: EntryContent,
    /// The signed message: [`ENTRY_DOMAIN`], then the content bytes.
    message: Vec<u8>,
    signature: [u8; SIGNATURE_BYTES],
    key: AuthorKey,
}

impl Unverified {
    fn decode(
        bytes: &[u8],
        signature: [u8; SIGNATURE_BYTES],
        keys: &mut KeyCache,
    ) -> Result<Unverified, DecodeError> {
        if bytes.len() + SIGNATURE_BYTES > ENTRY_BYTES_MAX {
            return Err(DecodeError::TooLarge(bytes.len() + SIGNATURE_BYTES));
        }
        let content = canonical::decode(bytes)?;
        content.check_chain_link()?;
        content.body.validate()?;
        let key = keys.get(&content.author).ok_or(DecodeError::BadAuthorKey)?;
        Ok(Unverified {
            content,
            message: signed_message(bytes),
            signature,
            key,
        })
    }

    fn claim(&self) -> Claim<'_> {
        Claim {
            key: self.key,
            message: &self.message,
            signature: &self.signature,
        }
    }

    fn accept(self) -> Entry {
        let bytes = self.message[ENTRY_DOMAIN.len()..].to_vec();
        let id = EntryId(sha256(&[&self.message]));
        Entry {
            content: self.content,
            bytes,
            signature: self.signature,
            id,
        }
    }
}
