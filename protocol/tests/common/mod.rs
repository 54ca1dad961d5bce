//! The checks every signed ephemeral message kind must pass, shared by
//! `bid.rs` (§10) and `renewal.rs` (§11). Both kinds are one implementation
//! (`Signed<M: Ephemeral>`), so what that implementation promises is checked
//! once here, generic over the kind; each file keeps what its section of
//! `docs/protocol.md` alone says (its layout table, its worked example, its
//! constants) and calls these with its own messages and hand-made bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use buildmesh_protocol::{
    Body, CommitId, DecodeError, ENTRY_DOMAIN, Entry, EntryContent, Ephemeral, InvalidBody,
    MessageDecodeError, MessageSignError, ProjectId, PublicKey, Role, SIGNATURE_BYTES, Signed,
    Timestamp, TrustChange, message_to_sign,
};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;
use std::fmt::Debug;

/// The key of both worked examples (§10.4, §11.4): bytes 1 to 32.
pub fn key() -> SigningKey {
    SigningKey::from_bytes(&std::array::from_fn(|i| i as u8 + 1))
}

/// Another key, for signing in someone else's name.
pub fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// The identity point, a small-order key no signer may use.
pub fn identity_point() -> PublicKey {
    let mut bytes = [0; 32];
    bytes[0] = 1;
    PublicKey(bytes)
}

/// Signs arbitrary content bytes under `domain`, and frames them as a
/// message's wire form, so tests can send what `Signed::sign` never makes.
pub fn wire_of(key: &SigningKey, domain: &[u8], content: &[u8]) -> Vec<u8> {
    let mut message = domain.to_vec();
    message.extend_from_slice(content);
    let mut wire = key.sign(&message).to_bytes().to_vec();
    wire.extend_from_slice(content);
    wire
}

/// A valid first entry by `key`, to hold against the messages.
pub fn trust_entry(key: &SigningKey) -> Entry {
    let author = PublicKey::from(key.verifying_key());
    let body = Body::Trust(TrustChange {
        project: ProjectId::derive(&author, "demo"),
        subject: author,
        role: Role::Builder,
    });
    Entry::sign(key, EntryContent::first(author, Timestamp(5), body)).unwrap()
}

/// The content bytes `message` is signed as.
pub fn content_of<M: Ephemeral>(key: &SigningKey, message: M) -> Vec<u8> {
    Signed::sign(key, message).unwrap().content_bytes().to_vec()
}

/// Signs `message`, sends it and reads it back: the same bytes and message.
pub fn round_trip<M>(key: &SigningKey, message: &M) -> Signed<M>
where
    M: Ephemeral + Clone + Debug + PartialEq,
{
    let signed = Signed::sign(key, message.clone()).unwrap();
    let back = Signed::<M>::from_wire(&signed.to_wire()).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.message(), message);
    back
}

/// No single flipped bit of a valid wire form is accepted as an `M`.
pub fn every_bit_flip_is_refused<M: Ephemeral + Debug>(wire: &[u8]) {
    for bit in 0..wire.len() * 8 {
        let mut flipped = wire.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            Signed::<M>::from_wire(&flipped).is_err(),
            "flipping bit {bit} was accepted"
        );
    }
}

/// Neither an entry nor a message of kind `M` passes for the other.
pub fn no_entry_is_a_message_and_no_message_an_entry<M: Ephemeral>(
    key: &SigningKey,
    signed: &Signed<M>,
) {
    let entry = trust_entry(key);
    assert!(Signed::<M>::from_wire(&entry.to_wire()).is_err());
    assert!(Entry::from_wire(&signed.to_wire()).is_err());
}

/// `content`, a good `M`, makes one only under `M::DOMAIN`: under each of
/// `others` the signature is refused.
pub fn only_its_domain_makes_a_message<M: Ephemeral + Debug + PartialEq>(
    key: &SigningKey,
    content: &[u8],
    others: &[&[u8]],
) {
    for domain in others {
        assert_eq!(
            Signed::<M>::from_wire(&wire_of(key, domain, content)),
            Err(MessageDecodeError::BadSignature),
            "signed under {domain:?}"
        );
    }
    assert!(Signed::<M>::from_wire(&wire_of(key, M::DOMAIN, content)).is_ok());
}

/// An entry's content signed under `M::DOMAIN` is no entry (§10.2, §11.2).
pub fn an_entry_signed_under_its_domain_is_no_entry<M: Ephemeral>(key: &SigningKey) {
    let entry = trust_entry(key);
    assert_eq!(
        Entry::from_wire(&wire_of(key, M::DOMAIN, entry.content_bytes())),
        Err(DecodeError::BadSignature)
    );
    assert!(Entry::from_wire(&wire_of(key, ENTRY_DOMAIN, entry.content_bytes())).is_ok());
}

/// Too large (garbage, so only the size check can name it) and too short
/// to hold a signature and content: refused before anything is decoded.
pub fn oversize_and_undersize_are_refused<M: Ephemeral + Debug + PartialEq>() {
    let wire = vec![0xff; M::BYTES_MAX + 1];
    assert_eq!(
        Signed::<M>::from_wire(&wire),
        Err(MessageDecodeError::TooLarge(M::BYTES_MAX + 1, M::BYTES_MAX))
    );
    assert_eq!(
        Signed::<M>::from_wire(&[0; SIGNATURE_BYTES]),
        Err(MessageDecodeError::TooShort(SIGNATURE_BYTES))
    );
    assert_eq!(
        Signed::<M>::from_wire(&[]),
        Err(MessageDecodeError::TooShort(0))
    );
}

/// The largest valid `M` signs to `wire_len` bytes, within its bound.
pub fn the_largest_fits<M: Ephemeral>(key: &SigningKey, largest: M, wire_len: usize) {
    let signed = Signed::sign(key, largest).unwrap();
    assert_eq!(signed.content_bytes().len(), wire_len - SIGNATURE_BYTES);
    assert_eq!(signed.to_wire().len(), wire_len);
    assert!(wire_len < M::BYTES_MAX);
}

/// `content`, signed under `M::DOMAIN`, is refused on receipt as `error`.
pub fn refused_on_receipt<M: Ephemeral + Debug + PartialEq>(
    key: &SigningKey,
    content: &[u8],
    error: MessageDecodeError,
) {
    assert_eq!(
        Signed::<M>::from_wire(&wire_of(key, M::DOMAIN, content)),
        Err(error)
    );
}

/// A field limit holds on both sides: `message` is not signed, and its
/// `content` (made by hand) is not accepted.
pub fn a_limit_holds_on_both_sides<M: Ephemeral + Debug + PartialEq>(
    key: &SigningKey,
    message: M,
    content: &[u8],
    why: InvalidBody,
) {
    assert_eq!(
        Signed::sign(key, message),
        Err(MessageSignError::Invalid(why.clone()))
    );
    refused_on_receipt::<M>(key, content, MessageDecodeError::Invalid(why));
}

/// A good `M`'s content with a byte after it, then with version 2.
pub fn trailing_bytes_and_unknown_versions_are_refused<M: Ephemeral + Debug + PartialEq>(
    key: &SigningKey,
    content: &[u8],
) {
    let mut content = content.to_vec();
    content.push(0);
    refused_on_receipt::<M>(key, &content, MessageDecodeError::TrailingBytes(1));
    content.pop();
    content[0] = 2;
    refused_on_receipt::<M>(key, &content, MessageDecodeError::UnsupportedVersion(2));
}

/// Only the signer's key signs `message`: another key may not sign it, and
/// its content signed by another key fails the signature.
pub fn only_the_signer_signs<M: Ephemeral + Clone + Debug + PartialEq>(
    key: &SigningKey,
    message: &M,
) {
    let other = other_key();
    assert_eq!(
        Signed::sign(&other, message.clone()),
        Err(MessageSignError::WrongKey)
    );
    let content = content_of(key, message.clone());
    assert_eq!(
        Signed::<M>::from_wire(&wire_of(&other, M::DOMAIN, &content)),
        Err(MessageDecodeError::BadSignature)
    );
}

/// A worked example (§10.4, §11.4): the domain, content and signature the
/// doc gives in hex are what the code computes, and so are the signed
/// message (domain, content) and the wire form (signature, content).
pub fn the_example_is_what_the_code_computes<M: Ephemeral>(
    signed: &Signed<M>,
    [domain, content, signature]: [&str; 3],
) {
    assert_eq!(hex::encode(M::DOMAIN), domain);
    assert_eq!(hex::encode(signed.content_bytes()), content);
    assert_eq!(hex::encode(signed.signature()), signature);
    let message = message_to_sign::<M>(signed.content_bytes());
    assert_eq!(hex::encode(message), format!("{domain}{content}"));
    assert_eq!(
        hex::encode(signed.to_wire()),
        format!("{signature}{content}")
    );
}

/// The fields both kinds share, drawn at random for the round-trip
/// properties: the signer's key, `at`, the project, a valid commit id (20 or
/// 32 bytes) and a platform.
#[derive(Debug, Clone)]
pub struct SharedFields {
    pub key: SigningKey,
    pub at: Timestamp,
    pub project: ProjectId,
    pub commit: CommitId,
    pub platform: String,
}

pub fn shared_fields() -> impl Strategy<Value = SharedFields> {
    let commit = (any::<bool>(), any::<u8>())
        .prop_map(|(long, byte)| vec![byte; if long { 32 } else { 20 }]);
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        commit,
        "\\PC{0,40}",
    )
        .prop_map(|(seed, at, project, commit, platform)| SharedFields {
            key: SigningKey::from_bytes(&seed),
            at: Timestamp(at),
            project: ProjectId(project),
            commit: CommitId::from_bytes(&commit).unwrap(),
            platform,
        })
}

/// `docs/protocol.md` contains each of `needles` (`section` names where).
pub fn the_doc_shows(section: &str, needles: &[&str]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md is readable");
    for needle in needles {
        assert!(
            doc.contains(needle),
            "docs/protocol.md {section} lacks {needle}"
        );
    }
}
