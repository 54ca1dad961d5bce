//! The signature rule of docs/protocol.md §5 rule 9: cofactored, strict
//! encodings, and batch verification that agrees with one-by-one.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use buildmesh_protocol::{
    Body, DecodeError, Entry, EntryContent, KeyCache, ProjectId, PublicKey, Role, SIGNATURE_BYTES,
    Timestamp, TrustChange, signed_message,
};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use proptest::prelude::*;
use sha2::{Digest, Sha512};

fn entry(seed: u8, n: u8) -> Entry {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let author: PublicKey = key.verifying_key().into();
    let body = Body::Trust(TrustChange {
        project: ProjectId([n; 32]),
        subject: author,
        role: Role::Builder,
    });
    Entry::sign(
        &key,
        EntryContent::first(author, Timestamp(u64::from(n)), body),
    )
    .unwrap()
}

fn batch(wires: &[Vec<u8>]) -> Vec<Result<Entry, DecodeError>> {
    let refs: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
    Entry::from_wires(&refs, &mut KeyCache::default())
}

/// Signs `entry`'s content again with a nonce point `R = rB + T`, `T` of
/// order 8: valid under the cofactored equation, not the cofactorless one.
fn torsion_signature(seed: u8, entry: &Entry, torsion: usize) -> [u8; SIGNATURE_BYTES] {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let a = key.to_scalar();
    let r = Scalar::from_bytes_mod_order([9; 32]);
    let big_r = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[torsion]).compress();
    let message = signed_message(entry.content_bytes());
    let hash: [u8; 64] = Sha512::new()
        .chain_update(big_r.as_bytes())
        .chain_update(key.verifying_key().as_bytes())
        .chain_update(&message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&hash);
    let s = r + k * a;
    let mut signature = [0u8; SIGNATURE_BYTES];
    signature[..32].copy_from_slice(big_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    signature
}

#[test]
fn honest_signatures_pass_alone_and_in_batches() {
    let wires: Vec<Vec<u8>> = (0..50).map(|n| entry(n % 5 + 1, n).to_wire()).collect();
    for (wire, result) in wires.iter().zip(batch(&wires)) {
        assert_eq!(result.unwrap(), Entry::from_wire(wire).unwrap());
    }
}

#[test]
fn a_bad_signature_in_a_batch_fails_alone() {
    let mut wires: Vec<Vec<u8>> = (0..20).map(|n| entry(1, n).to_wire()).collect();
    wires[7][40] ^= 1; // inside the signature's s half
    let results = batch(&wires);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i != 7, "entry {i}: {result:?}");
    }
    assert!(matches!(results[7], Err(DecodeError::BadSignature)));
}

#[test]
fn torsion_in_r_is_accepted_by_both_paths_alike() {
    // The cofactored rule accepts R = rB + T; ed25519-dalek's cofactorless
    // verify_strict would not. What matters is that single and batch agree.
    let honest = entry(3, 1);
    for torsion in 1..8 {
        let signature = torsion_signature(3, &honest, torsion);
        let single = Entry::from_parts(honest.content_bytes(), signature);
        let mut wire = signature.to_vec();
        wire.extend_from_slice(honest.content_bytes());
        let batched = batch(&[entry(4, 2).to_wire(), wire]);
        assert_eq!(single.is_ok(), batched[1].is_ok(), "torsion {torsion}");
        assert!(single.is_ok(), "torsion {torsion}: {single:?}");
        let strict = VerifyingKey::from_bytes(&honest.author().0)
            .unwrap()
            .verify_strict(
                &signed_message(honest.content_bytes()),
                &Signature::from_bytes(&signature),
            );
        assert!(strict.is_err(), "cofactorless verification refuses it");
        assert_eq!(single.unwrap().id(), honest.id(), "same content, same id");
    }
}

#[test]
fn a_small_order_nonce_is_refused() {
    let honest = entry(3, 1);
    let mut signature = *honest.signature();
    signature[..32].copy_from_slice(EIGHT_TORSION[1].compress().as_bytes());
    assert_eq!(
        Entry::from_parts(honest.content_bytes(), signature),
        Err(DecodeError::BadSignature)
    );
    let mut wire = signature.to_vec();
    wire.extend_from_slice(honest.content_bytes());
    assert_eq!(batch(&[wire])[0], Err(DecodeError::BadSignature));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever is tampered, a batch gives each entry the verdict it gets alone.
    #[test]
    fn batch_verdicts_equal_single_verdicts(
        count in 1usize..24,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..200, 1u8..=255), 0..4),
    ) {
        let mut wires: Vec<Vec<u8>> = (0..count).map(|n| entry(n as u8 % 3 + 1, n as u8).to_wire()).collect();
        for (which, at, mask) in flips {
            let wire = &mut wires[which.index(count)];
            let at = at % wire.len();
            wire[at] ^= mask;
        }
        let alone: Vec<Result<Entry, DecodeError>> = wires.iter().map(|w| Entry::from_wire(w)).collect();
        prop_assert_eq!(batch(&wires), alone);
    }
}
