//! Bids against `docs/protocol.md` §10: the layout (an independent encoder
//! written from the §10 table), round trips, tampering, the size and field
//! limits, and the domain separation from entries (§10.2). The worked
//! example of §10.4 is recomputed and compared with the doc's hex.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_protocol::{
    BID_BYTES_MAX, BID_DOMAIN, Bid, BidDecodeError, BidSignError, Body, CommitId, ENTRY_DOMAIN,
    Entry, EntryContent, InvalidBody, ProjectId, PublicKey, Role, SIGNATURE_BYTES, SignedBid,
    Timestamp, TrustChange, bid_signed_message,
};
use ed25519_dalek::{Signer, SigningKey};
use proptest::prelude::*;

fn key() -> SigningKey {
    SigningKey::from_bytes(&std::array::from_fn(|i| i as u8 + 1))
}

fn bid_by(key: &SigningKey) -> Bid {
    let bidder = PublicKey::from(key.verifying_key());
    Bid {
        bidder,
        at: Timestamp(1_764_000_000_000),
        project: ProjectId::derive(&bidder, "demo"),
        round: 0,
        load: 1,
        commit: CommitId::from_bytes(&[0xab; 20]).unwrap(),
        platform: "linux-x86_64".into(),
    }
}

/// §10.1 written out by hand, without bincode: the content bytes of a bid
/// whose commit id and platform may break the limits.
fn encode_by_hand(
    bid_fields: (&PublicKey, u64, &ProjectId, u32, u32),
    commit: &[u8],
    platform: &str,
) -> Vec<u8> {
    let (bidder, at, project, round, load) = bid_fields;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&bidder.0);
    bytes.extend_from_slice(&at.to_le_bytes());
    bytes.extend_from_slice(&project.0);
    bytes.extend_from_slice(&round.to_le_bytes());
    bytes.extend_from_slice(&load.to_le_bytes());
    bytes.extend_from_slice(&(commit.len() as u64).to_le_bytes());
    bytes.extend_from_slice(commit);
    bytes.extend_from_slice(&(platform.len() as u64).to_le_bytes());
    bytes.extend_from_slice(platform.as_bytes());
    bytes
}

/// Signs arbitrary content bytes as a bid would be signed, and frames them.
fn wire_of(key: &SigningKey, domain: &[u8], content: &[u8]) -> Vec<u8> {
    let mut message = domain.to_vec();
    message.extend_from_slice(content);
    let mut wire = key.sign(&message).to_bytes().to_vec();
    wire.extend_from_slice(content);
    wire
}

#[test]
fn the_layout_is_the_one_section_10_1_describes() {
    let key = key();
    let bid = bid_by(&key);
    let signed = SignedBid::sign(&key, bid.clone()).unwrap();
    let by_hand = encode_by_hand(
        (&bid.bidder, bid.at.0, &bid.project, bid.round, bid.load),
        bid.commit.as_bytes(),
        &bid.platform,
    );
    assert_eq!(signed.content_bytes(), by_hand.as_slice());
    assert_eq!(&signed.content_bytes()[1..33], &bid.bidder.0);
    assert_eq!(&signed.content_bytes()[41..73], &bid.project.0);
}

#[test]
fn a_signed_bid_round_trips() {
    let key = key();
    let signed = SignedBid::sign(&key, bid_by(&key)).unwrap();
    let back = SignedBid::from_wire(&signed.to_wire()).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.message(), &bid_by(&key));
}

#[test]
fn every_bit_flip_is_refused() {
    let key = key();
    let wire = SignedBid::sign(&key, bid_by(&key)).unwrap().to_wire();
    for bit in 0..wire.len() * 8 {
        let mut flipped = wire.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(
            SignedBid::from_wire(&flipped).is_err(),
            "flipping bit {bit} was accepted"
        );
    }
}

#[test]
fn an_entry_is_not_a_bid_and_a_bid_is_not_an_entry() {
    let key = key();
    let author = PublicKey::from(key.verifying_key());
    let body = Body::Trust(TrustChange {
        project: ProjectId::derive(&author, "demo"),
        subject: author,
        role: Role::Builder,
    });
    let entry = Entry::sign(&key, EntryContent::first(author, Timestamp(5), body)).unwrap();
    let bid = SignedBid::sign(&key, bid_by(&key)).unwrap();
    assert!(SignedBid::from_wire(&entry.to_wire()).is_err());
    assert!(Entry::from_wire(&bid.to_wire()).is_err());
}

#[test]
fn a_signature_under_the_entry_domain_does_not_make_a_bid() {
    // The content is a perfectly good bid; only the domain is wrong.
    let key = key();
    let content = SignedBid::sign(&key, bid_by(&key))
        .unwrap()
        .content_bytes()
        .to_vec();
    let wire = wire_of(&key, ENTRY_DOMAIN, &content);
    assert_eq!(
        SignedBid::from_wire(&wire),
        Err(BidDecodeError::BadSignature)
    );
    assert!(SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)).is_ok());
}

#[test]
fn a_signature_under_the_bid_domain_does_not_make_an_entry() {
    let key = key();
    let author = PublicKey::from(key.verifying_key());
    let body = Body::Trust(TrustChange {
        project: ProjectId::derive(&author, "demo"),
        subject: author,
        role: Role::Builder,
    });
    let entry = Entry::sign(&key, EntryContent::first(author, Timestamp(5), body)).unwrap();
    let wire = wire_of(&key, BID_DOMAIN, entry.content_bytes());
    assert_eq!(
        Entry::from_wire(&wire),
        Err(buildmesh_protocol::DecodeError::BadSignature)
    );
}

#[test]
fn oversize_wire_is_refused_before_decoding() {
    // Garbage, so only the size check can name it.
    let wire = vec![0xff; BID_BYTES_MAX + 1];
    assert_eq!(
        SignedBid::from_wire(&wire),
        Err(BidDecodeError::TooLarge(BID_BYTES_MAX + 1, BID_BYTES_MAX))
    );
    assert_eq!(
        SignedBid::from_wire(&[0; SIGNATURE_BYTES]),
        Err(BidDecodeError::TooShort(SIGNATURE_BYTES))
    );
}

#[test]
fn the_largest_valid_bid_fits_with_room() {
    let key = key();
    let mut bid = bid_by(&key);
    bid.commit = CommitId::from_bytes(&[7; 32]).unwrap();
    bid.platform = "p".repeat(256);
    let wire = SignedBid::sign(&key, bid).unwrap().to_wire();
    assert_eq!(wire.len(), 449);
    assert!(wire.len() < BID_BYTES_MAX);
}

#[test]
fn field_limits_hold_on_both_sides() {
    let key = key();
    let mut long = bid_by(&key);
    long.platform = "p".repeat(257);
    assert_eq!(
        SignedBid::sign(&key, long.clone()),
        Err(BidSignError::Invalid(InvalidBody::TooLong("platform", 256)))
    );
    let fields = (
        &long.bidder,
        long.at.0,
        &long.project,
        long.round,
        long.load,
    );
    let content = encode_by_hand(fields, long.commit.as_bytes(), &long.platform);
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)),
        Err(BidDecodeError::Invalid(InvalidBody::TooLong(
            "platform", 256
        )))
    );
    let content = encode_by_hand(fields, &[1; 21], "linux");
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)),
        Err(BidDecodeError::Invalid(InvalidBody::CommitId(21)))
    );
}

#[test]
fn trailing_bytes_and_unknown_versions_are_refused() {
    let key = key();
    let mut content = SignedBid::sign(&key, bid_by(&key))
        .unwrap()
        .content_bytes()
        .to_vec();
    content.push(0);
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)),
        Err(BidDecodeError::TrailingBytes(1))
    );
    content.pop();
    content[0] = 2;
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)),
        Err(BidDecodeError::UnsupportedVersion(2))
    );
}

#[test]
fn only_the_bidder_signs_and_only_with_a_usable_key() {
    let key = key();
    let other = SigningKey::from_bytes(&[9; 32]);
    assert_eq!(
        SignedBid::sign(&other, bid_by(&key)),
        Err(BidSignError::WrongKey)
    );
    // The identity point (a small-order key) as bidder.
    let mut bid = bid_by(&key);
    bid.bidder = PublicKey({
        let mut bytes = [0; 32];
        bytes[0] = 1;
        bytes
    });
    let fields = (&bid.bidder, bid.at.0, &bid.project, bid.round, bid.load);
    let content = encode_by_hand(fields, bid.commit.as_bytes(), &bid.platform);
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &content)),
        Err(BidDecodeError::BadSignerKey)
    );
}

proptest! {
    #[test]
    fn any_valid_bid_round_trips(
        seed in any::<[u8; 32]>(),
        at in any::<u64>(),
        project in any::<[u8; 32]>(),
        round in any::<u32>(),
        load in any::<u32>(),
        long_commit in any::<bool>(),
        commit_byte in any::<u8>(),
        platform in "\\PC{0,40}",
    ) {
        let key = SigningKey::from_bytes(&seed);
        let commit = vec![commit_byte; if long_commit { 32 } else { 20 }];
        let bid = Bid {
            bidder: key.verifying_key().into(),
            at: Timestamp(at),
            project: ProjectId(project),
            round,
            load,
            commit: CommitId::from_bytes(&commit).unwrap(),
            platform,
        };
        let signed = SignedBid::sign(&key, bid.clone()).unwrap();
        let back = SignedBid::from_wire(&signed.to_wire()).unwrap();
        prop_assert_eq!(back.message(), &bid);
    }
}

/// §10.4: the worked example, byte for byte.
mod worked_example {
    use super::*;

    const DOMAIN_HEX: &str = "6275696c646d6573682f6269642f763100";
    const CONTENT_HEX: &str = "0179b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\
00e897b69a010000\
f721f863eb74ee07c89322aebe428e964e27ac5a7320a0765e60a09ac3170c6e\
00000000\
01000000\
1400000000000000abababababababababababababababababababab\
0c000000000000006c696e75782d7838365f3634";
    const SIGNATURE_HEX: &str = "eec67e8248d347bab6fc550b1ad78e22b246d2111c2bb8dde7966e32f3302202\
e307bdfcdab0425270d57c85d6345ff9c8bda4573b34f7658ee759d985063f01";

    fn doc() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
        std::fs::read_to_string(path).expect("docs/protocol.md is readable")
    }

    #[test]
    fn the_example_is_what_the_code_computes() {
        let key = key();
        let signed = SignedBid::sign(&key, bid_by(&key)).unwrap();
        assert_eq!(hex::encode(BID_DOMAIN), DOMAIN_HEX);
        assert_eq!(hex::encode(signed.content_bytes()), CONTENT_HEX);
        assert_eq!(hex::encode(signed.signature()), SIGNATURE_HEX);
        let message = bid_signed_message(signed.content_bytes());
        assert_eq!(hex::encode(message), format!("{DOMAIN_HEX}{}", CONTENT_HEX));
    }

    #[test]
    fn the_doc_shows_the_same_bytes() {
        let doc = doc();
        for hex in [DOMAIN_HEX, CONTENT_HEX, SIGNATURE_HEX] {
            assert!(doc.contains(hex), "docs/protocol.md §10.4 lacks {hex}");
        }
    }
}
