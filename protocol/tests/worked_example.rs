//! The worked example of `docs/protocol.md` §8, recomputed.
//!
//! The entry is fixed (signing key bytes 1, 2, ..., 32; one timestamp; one
//! body) and ed25519 signing is deterministic, so every byte of it is a
//! constant. The same hex strings are pasted in the doc; these tests fail if
//! the code or the doc drifts from the other.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use buildmesh_protocol::{
    Body, ENTRY_DOMAIN, Entry, EntryContent, ProjectId, PublicKey, Role, Timestamp, TrustChange,
    signed_message,
};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const SECRET_SEED_HEX: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
const PUBLIC_KEY_HEX: &str = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
const PROJECT_ID_HEX: &str = "f721f863eb74ee07c89322aebe428e964e27ac5a7320a0765e60a09ac3170c6e";
const DOMAIN_HEX: &str = "6275696c646d6573682f656e7472792f763100";
const CONTENT_HEX: &str = "0179b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\
0100000000000000\
0000000000000000000000000000000000000000000000000000000000000000\
00e897b69a010000\
05000000\
f721f863eb74ee07c89322aebe428e964e27ac5a7320a0765e60a09ac3170c6e\
79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664\
00000000";
const SIGNATURE_HEX: &str = "ece9311cfa10e1dc1fb13307819b5ed8ec572e4fb5d8302ec88b5e2701d9ca91\
c75a883c0e044530daa66d062dfe6458e2c6cd6f8d159bfe802150ff350ac30e";
const ID_HEX: &str = "89c0a2d712a23d0679b21be69fb4328288516a09d28abc67cbf8f7b8786a31d7";

/// The fields of the content bytes as the §8 table lists them:
/// (offset, length, meaning).
const FIELDS: &[(usize, usize, &str)] = &[
    (0, 1, "version"),
    (1, 32, "author"),
    (33, 8, "seq"),
    (41, 32, "prev"),
    (73, 8, "timestamp"),
    (81, 4, "body variant"),
    (85, 32, "project"),
    (117, 32, "subject"),
    (149, 4, "role"),
];

fn example() -> Entry {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let key = SigningKey::from_bytes(&seed);
    let author = PublicKey::from(key.verifying_key());
    let body = Body::Trust(TrustChange {
        project: ProjectId::derive(&author, "demo"),
        subject: author,
        role: Role::Builder,
    });
    let content = EntryContent::first(author, Timestamp(1_764_000_000_000), body);
    Entry::sign(&key, content).unwrap()
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md is readable")
}

#[test]
fn the_constants_are_what_the_code_computes() {
    let entry = example();
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    assert_eq!(hex::encode(seed), SECRET_SEED_HEX);
    assert_eq!(entry.author().to_string(), PUBLIC_KEY_HEX);
    let Body::Trust(change) = entry.body() else {
        panic!("not a trust body")
    };
    assert_eq!(change.project.to_string(), PROJECT_ID_HEX);
    assert_eq!(hex::encode(ENTRY_DOMAIN), DOMAIN_HEX);
    assert_eq!(hex::encode(entry.content_bytes()), CONTENT_HEX);
    assert_eq!(hex::encode(entry.signature()), SIGNATURE_HEX);
    assert_eq!(entry.id().to_string(), ID_HEX);
    let message = format!("{DOMAIN_HEX}{CONTENT_HEX}");
    assert_eq!(hex::encode(signed_message(entry.content_bytes())), message);
    assert_eq!(
        hex::encode(entry.to_wire()),
        format!("{SIGNATURE_HEX}{CONTENT_HEX}")
    );
}

/// §8 checked the way a third party would: plain ed25519 and SHA-256 over
/// the hex constants, no buildmesh code involved.
#[test]
fn the_constants_verify_without_buildmesh() {
    let key: [u8; 32] = hex::decode(PUBLIC_KEY_HEX).unwrap().try_into().unwrap();
    let signature: [u8; 64] = hex::decode(SIGNATURE_HEX).unwrap().try_into().unwrap();
    let message = hex::decode(format!("{DOMAIN_HEX}{CONTENT_HEX}")).unwrap();
    let key = VerifyingKey::from_bytes(&key).unwrap();
    key.verify_strict(&message, &Signature::from_bytes(&signature))
        .unwrap();
    assert_eq!(hex::encode(Sha256::digest(&message)), ID_HEX);
    let project = Sha256::new()
        .chain_update(b"buildmesh/project/v1")
        .chain_update(key.as_bytes())
        .chain_update(b"demo")
        .finalize();
    assert_eq!(hex::encode(project), PROJECT_ID_HEX);
}

#[test]
fn the_wire_hex_decodes_to_the_example() {
    let wire = hex::decode(format!("{SIGNATURE_HEX}{CONTENT_HEX}")).unwrap();
    assert_eq!(Entry::from_wire(&wire).unwrap(), example());
}

#[test]
fn the_doc_shows_these_constants() {
    let doc = doc();
    for (name, value) in [
        ("secret seed", SECRET_SEED_HEX),
        ("public key", PUBLIC_KEY_HEX),
        ("project id", PROJECT_ID_HEX),
        ("domain", DOMAIN_HEX),
        ("content", CONTENT_HEX),
        ("signature", SIGNATURE_HEX),
        ("id", ID_HEX),
    ] {
        assert!(
            doc.contains(value),
            "docs/protocol.md lacks the {name} hex {value}"
        );
    }
}

/// Each row of the §8 field table reads `| offset | length | `hex` | ...`
/// with the hex of exactly those content bytes.
#[test]
fn the_doc_breaks_the_content_down_correctly() {
    let doc = doc();
    let content = hex::decode(CONTENT_HEX).unwrap();
    let mut end = 0;
    for &(offset, length, meaning) in FIELDS {
        assert_eq!(offset, end, "{meaning} does not follow the previous field");
        end = offset + length;
        let row = format!(
            "| {offset} | {length} | `{}` |",
            hex::encode(&content[offset..end])
        );
        assert!(
            doc.contains(&row),
            "docs/protocol.md lacks the {meaning} row {row}"
        );
    }
    assert_eq!(end, content.len(), "the table covers every content byte");
}
