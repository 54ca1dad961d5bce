//! Lease renewals against `docs/protocol.md` §11: the layout (an
//! independent encoder written from the §11.1 table), round trips,
//! tampering, the size and field limits, the signer, and the domain
//! separation from bids and entries (§11.2). The worked example of §11.4 is
//! recomputed and compared with the doc's hex. The checks renewals share
//! with bids (one implementation, `Signed<M>`) are in `common`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use buildmesh_protocol::{
    BID_DOMAIN, CommitId, ENTRY_BYTES_MAX, ENTRY_DOMAIN, Ephemeral, InvalidBody,
    MessageDecodeError, ProjectId, PublicKey, RENEWAL_BYTES_MAX, RENEWAL_DOMAIN, RENEWAL_TOPIC,
    RESPONSE_BYTES_MAX, Renewal, Response, SYNC_LEASES_MAX, SignedBid, SignedRenewal, Timestamp,
};
use common::{key, wire_of};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;

fn renewal_by(key: &SigningKey) -> Renewal {
    let builder = PublicKey::from(key.verifying_key());
    Renewal {
        builder,
        at: Timestamp(1_764_000_000_000),
        project: ProjectId::derive(&builder, "demo"),
        lease_expires: Timestamp(1_764_000_030_000),
        commit: CommitId::from_bytes(&[0xab; 20]).unwrap(),
        platform: "linux-x86_64".into(),
    }
}

/// The fixed-size fields of a renewal, in wire order.
type Fixed<'a> = (&'a PublicKey, u64, &'a ProjectId, u64);

fn fixed(renewal: &Renewal) -> Fixed<'_> {
    (
        &renewal.builder,
        renewal.at.0,
        &renewal.project,
        renewal.lease_expires.0,
    )
}

/// §11.1 written out by hand, without bincode: the content bytes of a
/// renewal whose commit id and platform may break the limits.
fn encode_by_hand(fields: Fixed<'_>, commit: &[u8], platform: &str) -> Vec<u8> {
    let (builder, at, project, lease_expires) = fields;
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&builder.0);
    bytes.extend_from_slice(&at.to_le_bytes());
    bytes.extend_from_slice(&project.0);
    bytes.extend_from_slice(&lease_expires.to_le_bytes());
    bytes.extend_from_slice(&(commit.len() as u64).to_le_bytes());
    bytes.extend_from_slice(commit);
    bytes.extend_from_slice(&(platform.len() as u64).to_le_bytes());
    bytes.extend_from_slice(platform.as_bytes());
    bytes
}

fn renewal_content(key: &SigningKey) -> Vec<u8> {
    common::content_of(key, renewal_by(key))
}

#[test]
fn the_layout_is_the_one_section_11_1_describes() {
    let key = key();
    let renewal = renewal_by(&key);
    let signed = SignedRenewal::sign(&key, renewal.clone()).unwrap();
    let by_hand = encode_by_hand(
        fixed(&renewal),
        renewal.commit.as_bytes(),
        &renewal.platform,
    );
    assert_eq!(signed.content_bytes(), by_hand.as_slice());
    let content = signed.content_bytes();
    assert_eq!(&content[1..33], &renewal.builder.0);
    assert_eq!(&content[33..41], &renewal.at.0.to_le_bytes());
    assert_eq!(&content[41..73], &renewal.project.0);
    assert_eq!(&content[73..81], &renewal.lease_expires.0.to_le_bytes());
    assert_eq!(&content[81..89], &20u64.to_le_bytes());
}

#[test]
fn the_constants_are_the_documented_ones() {
    assert_eq!(RENEWAL_DOMAIN, b"buildmesh/renewal/v1\0");
    assert_eq!(RENEWAL_TOPIC, "buildmesh/renewals/1");
    assert_eq!(RENEWAL_BYTES_MAX, 1024);
    assert_eq!(SYNC_LEASES_MAX, 1024);
}

#[test]
fn a_signed_renewal_round_trips() {
    let key = key();
    let back = common::round_trip(&key, &renewal_by(&key));
    assert_eq!(back.into_message(), renewal_by(&key));
}

#[test]
fn every_bit_flip_is_refused() {
    let key = key();
    let wire = SignedRenewal::sign(&key, renewal_by(&key))
        .unwrap()
        .to_wire();
    common::every_bit_flip_is_refused::<Renewal>(&wire);
}

#[test]
fn a_changed_lease_needs_a_new_signature() {
    // The field a forger would want: pushing someone's lease further.
    let key = key();
    let signed = SignedRenewal::sign(&key, renewal_by(&key)).unwrap();
    let mut content = signed.content_bytes().to_vec();
    content[73..81].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut wire = signed.signature().to_vec();
    wire.extend_from_slice(&content);
    assert_eq!(
        SignedRenewal::from_wire(&wire),
        Err(MessageDecodeError::BadSignature)
    );
}

/// A renewal's fixed fields take as many bytes as a bid's (`lease_expires`
/// where a bid has `round` and `load`), so one's content decodes as the
/// other: only the domain keeps them apart, and the refusal is the
/// signature's.
#[test]
fn a_renewal_is_not_a_bid_and_a_bid_is_not_a_renewal() {
    let key = key();
    let renewal = SignedRenewal::sign(&key, renewal_by(&key)).unwrap();
    assert_eq!(
        SignedBid::from_wire(&renewal.to_wire()),
        Err(MessageDecodeError::BadSignature)
    );
    let as_bid = wire_of(&key, BID_DOMAIN, renewal.content_bytes());
    let bid = SignedBid::from_wire(&as_bid).expect("the same bytes make a bid under its domain");
    assert_eq!(
        SignedRenewal::from_wire(&bid.to_wire()),
        Err(MessageDecodeError::BadSignature)
    );
}

#[test]
fn a_renewal_is_not_an_entry_and_an_entry_is_not_a_renewal() {
    let key = key();
    let renewal = SignedRenewal::sign(&key, renewal_by(&key)).unwrap();
    common::no_entry_is_a_message_and_no_message_an_entry(&key, &renewal);
}

#[test]
fn a_signature_under_another_domain_does_not_make_a_renewal() {
    // The content is a perfectly good renewal; only the domain is wrong.
    let key = key();
    let others = [BID_DOMAIN, ENTRY_DOMAIN, b"".as_slice()];
    common::only_its_domain_makes_a_message::<Renewal>(&key, &renewal_content(&key), &others);
}

#[test]
fn a_signature_under_the_renewal_domain_makes_neither_bid_nor_entry() {
    let key = key();
    // Renewal bytes signed as a renewal are a valid bid's content.
    let content = renewal_content(&key);
    assert_eq!(
        SignedBid::from_wire(&wire_of(&key, RENEWAL_DOMAIN, &content)),
        Err(MessageDecodeError::BadSignature)
    );
    common::an_entry_signed_under_its_domain_is_no_entry::<Renewal>(&key);
}

#[test]
fn oversize_and_undersize_wire_are_refused_before_decoding() {
    assert_eq!(RENEWAL_BYTES_MAX, Renewal::BYTES_MAX);
    common::oversize_and_undersize_are_refused::<Renewal>();
}

#[test]
fn the_largest_valid_renewal_fits_with_room() {
    let key = key();
    let mut renewal = renewal_by(&key);
    renewal.commit = CommitId::from_bytes(&[7; 32]).unwrap();
    renewal.platform = "p".repeat(256);
    common::the_largest_fits(&key, renewal, 449);
}

#[test]
fn field_limits_hold_on_both_sides() {
    let key = key();
    let mut long = renewal_by(&key);
    long.platform = "p".repeat(257);
    let content = encode_by_hand(fixed(&long), long.commit.as_bytes(), &long.platform);
    let too_long = InvalidBody::TooLong("platform", 256);
    common::a_limit_holds_on_both_sides(&key, long.clone(), &content, too_long);
    for bad in [0, 19, 21, 31, 33] {
        let content = encode_by_hand(fixed(&long), &vec![1; bad], "linux");
        assert_eq!(
            SignedRenewal::from_wire(&wire_of(&key, RENEWAL_DOMAIN, &content)),
            Err(MessageDecodeError::Invalid(InvalidBody::CommitId(bad))),
            "a {bad}-byte commit id"
        );
    }
}

#[test]
fn trailing_bytes_unknown_versions_and_bad_text_are_refused() {
    let key = key();
    let mut content = renewal_content(&key);
    common::trailing_bytes_and_unknown_versions_are_refused::<Renewal>(&key, &content);
    // The platform's last byte made invalid UTF-8.
    *content.last_mut().unwrap() = 0xff;
    assert!(matches!(
        SignedRenewal::from_wire(&wire_of(&key, RENEWAL_DOMAIN, &content)),
        Err(MessageDecodeError::Malformed(_))
    ));
    // A platform length running past the end.
    let mut content = renewal_content(&key);
    content.truncate(content.len() - 1);
    assert!(SignedRenewal::from_wire(&wire_of(&key, RENEWAL_DOMAIN, &content)).is_err());
}

#[test]
fn only_the_builder_signs_and_only_with_a_usable_key() {
    let key = key();
    // Signed by another key but naming this builder: the signature fails.
    common::only_the_signer_signs(&key, &renewal_by(&key));
    // The identity point (a small-order key) as builder.
    let mut renewal = renewal_by(&key);
    renewal.builder = common::identity_point();
    let content = encode_by_hand(
        fixed(&renewal),
        renewal.commit.as_bytes(),
        &renewal.platform,
    );
    let error = MessageDecodeError::BadSignerKey;
    common::refused_on_receipt::<Renewal>(&key, &content, error);
}

/// §9: the leases of the largest sync answer fit beside a full batch of
/// entries, and travel as the bytes they were signed as.
#[test]
fn a_full_sync_answer_has_room_for_every_lease() {
    let key = key();
    let mut renewal = renewal_by(&key);
    renewal.commit = CommitId::from_bytes(&[7; 32]).unwrap();
    renewal.platform = "p".repeat(256);
    let lease = SignedRenewal::sign(&key, renewal).unwrap().to_wire();
    // A batch stops after the entry that passes 4 MiB, so it is under
    // 4 MiB plus one entry.
    let entries = vec![vec![0u8; ENTRY_BYTES_MAX]; 4 * 1024 * 1024 / ENTRY_BYTES_MAX + 1];
    let response = Response::Sync {
        entries,
        resume: None,
        leases: vec![lease.clone(); SYNC_LEASES_MAX],
    };
    let bytes = response.encode();
    assert!(!bytes.is_empty() && bytes.len() < RESPONSE_BYTES_MAX);
    let Ok(Response::Sync { leases, .. }) = Response::decode(&bytes) else {
        panic!("the answer does not decode");
    };
    assert_eq!(leases.len(), SYNC_LEASES_MAX);
    let back = SignedRenewal::from_wire(&leases[0]).unwrap();
    assert_eq!(back.to_wire(), lease);
}

proptest! {
    #[test]
    fn any_valid_renewal_round_trips(
        shared in common::shared_fields(),
        lease_expires in any::<u64>(),
    ) {
        let key = shared.key;
        let renewal = Renewal {
            builder: key.verifying_key().into(),
            at: shared.at,
            project: shared.project,
            lease_expires: Timestamp(lease_expires),
            commit: shared.commit,
            platform: shared.platform,
        };
        let signed = common::round_trip(&key, &renewal);
        let by_hand = encode_by_hand(fixed(&renewal), renewal.commit.as_bytes(), &renewal.platform);
        prop_assert_eq!(signed.content_bytes(), by_hand.as_slice());
        prop_assert_eq!(
            SignedBid::from_wire(&signed.to_wire()),
            Err(MessageDecodeError::BadSignature)
        );
        // The same content is a valid bid's under the bid domain (§11.1).
        prop_assert!(SignedBid::from_wire(&wire_of(&key, BID_DOMAIN, &by_hand)).is_ok());
    }

    #[test]
    fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedRenewal::from_wire(&wire);
    }
}

/// §11.4: the worked example, byte for byte.
mod worked_example {
    use super::*;

    const DOMAIN_HEX: &str = "6275696c646d6573682f72656e6577616c2f763100";
    const CONTENT_HEX: &str = "01\
79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\
00e897b69a010000\
f721f863eb74ee07c89322aebe428e964e27ac5a7320a0765e60a09ac3170c6e\
305d98b69a010000\
1400000000000000abababababababababababababababababababab\
0c000000000000006c696e75782d7838365f3634";
    const SIGNATURE_HEX: &str = "59f3c049b20e7a7620b89d69896fb42afa4e874913d00e9b5cfa7812bdfcfe5f\
fe4c917d62d3c6eac2eeb3fef7e57105c6cb3df9c905cf97551c8da4d8c95e0f";

    #[test]
    fn the_example_is_what_the_code_computes() {
        let key = key();
        let signed = SignedRenewal::sign(&key, renewal_by(&key)).unwrap();
        assert_eq!(RENEWAL_DOMAIN, Renewal::DOMAIN);
        let hexes = [DOMAIN_HEX, CONTENT_HEX, SIGNATURE_HEX];
        common::the_example_is_what_the_code_computes(&signed, hexes);
    }

    #[test]
    fn the_doc_shows_the_same_bytes() {
        let wire = format!("{SIGNATURE_HEX}{CONTENT_HEX}");
        let hexes = [DOMAIN_HEX, CONTENT_HEX, SIGNATURE_HEX, wire.as_str()];
        common::the_doc_shows("§11.4", &hexes);
        common::the_doc_shows("§11", &[RENEWAL_TOPIC, "## §11 Lease renewals"]);
    }
}
