//! Node keys ↔ libp2p identities.
//!
//! An ed25519 `PeerId` is the identity multihash of the protobuf-encoded
//! public key, so the 32 key bytes come back out of it without a lookup.
//! Other key types (RSA, secp256k1, ECDSA) have hashed peer ids and are not
//! buildmesh nodes: [`public_key`] returns `None` for them.

use buildmesh_protocol::PublicKey;
use libp2p::PeerId;
use libp2p::identity;

/// The multihash code of the identity hash, which inlines the key.
const IDENTITY_MULTIHASH: u64 = 0x00;

/// The buildmesh key behind `peer`, if `peer` is an ed25519 identity.
pub(crate) fn public_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let key = key.try_into_ed25519().ok()?;
    Some(PublicKey(key.to_bytes()))
}

/// The libp2p identity of a buildmesh key, or `None` if the 32 bytes are
/// not an ed25519 public key.
pub(crate) fn peer_id(key: &PublicKey) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(identity::PublicKey::from(key).to_peer_id())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ed25519_keys_round_trip_through_peer_ids() {
        let mut secret = [9u8; 32];
        let keypair = identity::Keypair::ed25519_from_bytes(&mut secret).unwrap();
        let peer = keypair.public().to_peer_id();
        let key = public_key(&peer).unwrap();
        let expected = keypair.public().try_into_ed25519().unwrap().to_bytes();
        assert_eq!(key.0, expected);
        assert_eq!(peer_id(&key), Some(peer));
    }

    #[test]
    fn hashed_peer_ids_have_no_node_key() {
        let hashed = PeerId::random();
        assert_eq!(public_key(&hashed), None);
    }

    #[test]
    fn bytes_off_the_curve_have_no_peer_id() {
        // y = 2 is not the y coordinate of a point on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        assert_eq!(peer_id(&PublicKey(bytes)), None);
    }
}
