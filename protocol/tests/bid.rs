//! Bids against `docs/protocol.md` §10: the layout (an independent encoder
//! written from the §10 table), round trips, tampering, the size and field
//! limits, and the domain separation from entries (§10.2). The worked
//! example of §10.4 is recomputed and compared with the doc's hex. The
//! checks bids share with renewals (one implementation, `Signed<M>`) are in
//! `common`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use buildmesh_protocol::{
    BID_BYTES_MAX, BID_DOMAIN, Bid, BidDecodeError, CommitId, ENTRY_DOMAIN, Ephemeral, InvalidBody,
    ProjectId, PublicKey, SignedBid, Timestamp, bid_signed_message, message_to_sign,
};
use common::key;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

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

/// The fixed-size fields of a bid, in wire order.
type Fixed<'a> = (&'a PublicKey, u64, &'a ProjectId, u32, u32);

fn fixed(bid: &Bid) -> Fixed<'_> {
    (&bid.bidder, bid.at.0, &bid.project, bid.round, bid.load)
}

/// §10.1 written out by hand, without bincode: the content bytes of a bid
/// whose commit id and platform may break the limits.
fn encode_by_hand(fields: Fixed<'_>, commit: &[u8], platform: &str) -> Vec<u8> {
    let (bidder, at, project, round, load) = fields;
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

#[test]
fn the_layout_is_the_one_section_10_1_describes() {
    let key = key();
    let bid = bid_by(&key);
    let signed = SignedBid::sign(&key, bid.clone()).unwrap();
    let by_hand = encode_by_hand(fixed(&bid), bid.commit.as_bytes(), &bid.platform);
    assert_eq!(signed.content_bytes(), by_hand.as_slice());
    assert_eq!(&signed.content_bytes()[1..33], &bid.bidder.0);
    assert_eq!(&signed.content_bytes()[41..73], &bid.project.0);
}

#[test]
fn a_signed_bid_round_trips() {
    let key = key();
    common::round_trip(&key, &bid_by(&key));
}

#[test]
fn every_bit_flip_is_refused() {
    let key = key();
    let wire = SignedBid::sign(&key, bid_by(&key)).unwrap().to_wire();
    common::every_bit_flip_is_refused::<Bid>(&wire);
}

#[test]
fn an_entry_is_not_a_bid_and_a_bid_is_not_an_entry() {
    let key = key();
    let bid = SignedBid::sign(&key, bid_by(&key)).unwrap();
    common::no_entry_is_a_message_and_no_message_an_entry(&key, &bid);
}

#[test]
fn a_signature_under_the_entry_domain_does_not_make_a_bid() {
    // The content is a perfectly good bid; only the domain is wrong.
    let key = key();
    let content = common::content_of(&key, bid_by(&key));
    common::only_its_domain_makes_a_message::<Bid>(&key, &content, &[ENTRY_DOMAIN]);
}

#[test]
fn a_signature_under_the_bid_domain_does_not_make_an_entry() {
    common::an_entry_signed_under_its_domain_is_no_entry::<Bid>(&key());
}

#[test]
fn oversize_wire_is_refused_before_decoding() {
    assert_eq!(BID_BYTES_MAX, Bid::BYTES_MAX);
    common::oversize_and_undersize_are_refused::<Bid>();
}

#[test]
fn the_largest_valid_bid_fits_with_room() {
    let key = key();
    let mut bid = bid_by(&key);
    bid.commit = CommitId::from_bytes(&[7; 32]).unwrap();
    bid.platform = "p".repeat(256);
    common::the_largest_fits(&key, bid, 449);
}

#[test]
fn field_limits_hold_on_both_sides() {
    let key = key();
    let mut long = bid_by(&key);
    long.platform = "p".repeat(257);
    let content = encode_by_hand(fixed(&long), long.commit.as_bytes(), &long.platform);
    let too_long = InvalidBody::TooLong("platform", 256);
    common::a_limit_holds_on_both_sides(&key, long.clone(), &content, too_long);
    let content = encode_by_hand(fixed(&long), &[1; 21], "linux");
    let error = BidDecodeError::Invalid(InvalidBody::CommitId(21));
    common::refused_on_receipt::<Bid>(&key, &content, error);
}

#[test]
fn trailing_bytes_and_unknown_versions_are_refused() {
    let key = key();
    let content = common::content_of(&key, bid_by(&key));
    common::trailing_bytes_and_unknown_versions_are_refused::<Bid>(&key, &content);
}

#[test]
fn only_the_bidder_signs_and_only_with_a_usable_key() {
    let key = key();
    common::only_the_signer_signs(&key, &bid_by(&key));
    let mut bid = bid_by(&key);
    bid.bidder = common::identity_point();
    let content = encode_by_hand(fixed(&bid), bid.commit.as_bytes(), &bid.platform);
    common::refused_on_receipt::<Bid>(&key, &content, BidDecodeError::BadSignerKey);
}

proptest! {
    #[test]
    fn any_valid_bid_round_trips(
        shared in common::shared_fields(),
        round in any::<u32>(),
        load in any::<u32>(),
    ) {
        let bid = Bid {
            bidder: shared.key.verifying_key().into(),
            at: shared.at,
            project: shared.project,
            round,
            load,
            commit: shared.commit,
            platform: shared.platform,
        };
        common::round_trip(&shared.key, &bid);
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

    #[test]
    fn the_example_is_what_the_code_computes() {
        let key = key();
        let signed = SignedBid::sign(&key, bid_by(&key)).unwrap();
        assert_eq!(BID_DOMAIN, Bid::DOMAIN);
        let hexes = [DOMAIN_HEX, CONTENT_HEX, SIGNATURE_HEX];
        common::the_example_is_what_the_code_computes(&signed, hexes);
        let message = bid_signed_message(signed.content_bytes());
        assert_eq!(message, message_to_sign::<Bid>(signed.content_bytes()));
    }

    #[test]
    fn the_doc_shows_the_same_bytes() {
        common::the_doc_shows("§10.4", &[DOMAIN_HEX, CONTENT_HEX, SIGNATURE_HEX]);
    }
}
