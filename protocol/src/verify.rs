//! Ed25519 verification as buildmesh defines it (`docs/protocol.md` §5),
//! one signature at a time or many at once with the same verdicts.
//!
//! The rule is RFC 8032's cofactored equation, `[8][s]B = [8]R + [8][k]A`,
//! with strict encodings: `s` below the group order, `R` and `A` valid
//! points of large order. Cofactored is chosen over ed25519-dalek's
//! cofactorless `verify_strict` because only with it does checking a batch
//! agree with checking each signature alone (Chalkias, Garillot, Nikolaenko,
//! "Taming the many EdDSAs", 2020): a node verifying a sync batch at once
//! and a node verifying gossip one by one must accept exactly the same
//! entries. Every signature an honest signer makes passes both equations.

use crate::ids::PublicKey;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;

/// A decoded public key: the curve point behind the 32 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthorKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

impl AuthorKey {
    /// Decodes a key, refusing bytes that are no point or a small-order one.
    pub(crate) fn decode(key: &PublicKey) -> Option<AuthorKey> {
        let point = CompressedEdwardsY(key.0).decompress()?;
        (!point.is_small_order()).then_some(AuthorKey {
            bytes: key.0,
            point,
        })
    }
}

/// Decoded author keys, so an author's key is decompressed once, not once
/// per entry. Bounded: when full it starts over.
#[derive(Debug, Clone)]
pub struct KeyCache {
    keys: BTreeMap<PublicKey, Option<AuthorKey>>,
    capacity: usize,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            keys: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn get(&mut self, key: &PublicKey) -> Option<AuthorKey> {
        if let Some(known) = self.keys.get(key) {
            return *known;
        }
        if self.keys.len() >= self.capacity {
            self.keys.clear();
        }
        let decoded = AuthorKey::decode(key);
        self.keys.insert(*key, decoded);
        decoded
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache::new(4096)
    }
}

/// One signature to check: who, over what, and the 64 signature bytes.
pub(crate) struct Claim<'a> {
    pub(crate) key: AuthorKey,
    pub(crate) message: &'a [u8],
    pub(crate) signature: &'a [u8; 64],
}

/// A signature's parts, decoded and checked for strict encoding.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

fn parts(claim: &Claim<'_>) -> Option<Parts> {
    let (r_bytes, s_bytes) = claim.signature.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().ok()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let hash: [u8; 64] = Sha512::new()
        .chain_update(r_bytes)
        .chain_update(claim.key.bytes)
        .chain_update(claim.message)
        .finalize()
        .into();
    Some(Parts {
        r,
        s,
        k: Scalar::from_bytes_mod_order_wide(&hash),
    })
}

/// Checks one signature.
pub(crate) fn verify_one(claim: &Claim<'_>) -> bool {
    let Some(Parts { r, s, k }) = parts(claim) else {
        return false;
    };
    let minus_a = -claim.key.point;
    let expected = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &minus_a, &s);
    (expected - r).mul_by_cofactor().is_identity()
}

/// Checks many signatures at once: true only if every one is valid (up to
/// a 2^-128 chance over `seed`). `seed` must be secret and fresh per call
/// ([`fresh_seed`]), or a forger could pick signatures that cancel out.
pub(crate) fn verify_all(claims: &[Claim<'_>], seed: &[u8; 32]) -> bool {
    let mut scalars = Vec::with_capacity(claims.len() + 1);
    let mut points = Vec::with_capacity(claims.len() + 1);
    // An author's entries share one key point: summing its coefficients
    // first makes the multiscalar multiplication one point per author
    // instead of one per entry.
    let mut authors: BTreeMap<[u8; 32], (Scalar, EdwardsPoint)> = BTreeMap::new();
    let mut s_total = Scalar::ZERO;
    for (index, claim) in claims.iter().enumerate() {
        let Some(Parts { r, s, k }) = parts(claim) else {
            return false;
        };
        let z = weight(seed, index, claim.signature);
        s_total += z * s;
        scalars.push(z);
        points.push(r);
        let author = authors
            .entry(claim.key.bytes)
            .or_insert((Scalar::ZERO, claim.key.point));
        author.0 += z * k;
    }
    for (scalar, point) in authors.into_values() {
        scalars.push(scalar);
        points.push(point);
    }
    scalars.push(-s_total);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
        .mul_by_cofactor()
        .is_identity()
}

/// 32 bytes from the thread's CSPRNG, which the OS seeds.
pub(crate) fn fresh_seed() -> [u8; 32] {
    use rand::Rng;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    seed
}

/// A 128-bit weight for claim `index`, unpredictable without `seed`.
fn weight(seed: &[u8; 32], index: usize, signature: &[u8; 64]) -> Scalar {
    let hash = Sha512::new()
        .chain_update(b"buildmesh/batch-weight/v1")
        .chain_update(seed)
        .chain_update((index as u64).to_le_bytes())
        .chain_update(signature)
        .finalize();
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&hash[..16]);
    Scalar::from_bytes_mod_order(bytes)
}
