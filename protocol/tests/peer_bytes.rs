//! The byte examples of `docs/protocol.md` §9 (the peer protocol's
//! varints), checked against the encoder, so the document a peer in
//! another language is written from cannot drift from what nodes send.
#![allow(missing_docs, clippy::unwrap_used)]

use buildmesh_protocol::{
    BlobHash, EntryId, Head, PublicKey, Refusal, Request, Response, SyncCursor, VersionVector,
};

const DOC: &str = include_str!("../../docs/protocol.md");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `message` encodes to exactly `parts` (hex, concatenated), and each part
/// the table quotes is in §9's text.
fn encodes(encoded: Vec<u8>, parts: &[&str], quoted: &[&str]) {
    assert_eq!(hex(&encoded), parts.concat());
    let section = &DOC[DOC.find("## §9").unwrap()..DOC.find("## §10").unwrap()];
    for quote in quoted {
        assert!(section.contains(quote), "§9 quotes {quote:?}");
    }
}

#[test]
fn the_examples_of_section_9_are_the_bytes_nodes_send() {
    let ab = "ab".repeat(32);
    encodes(
        Request::Blob(BlobHash([0xab; 32])).encode(),
        &["01", &ab],
        &["`01` then `ab` × 32"],
    );

    let have: VersionVector = [(PublicKey([0x11; 32]), 300)].into_iter().collect();
    let sync = Request::Sync { have, resume: None };
    let eleven = "11".repeat(32);
    encodes(
        sync.encode(),
        &["00", "01", &eleven, "fb2c01", "00"],
        &["`fb2c01` (300)"],
    );

    let resume = Some(SyncCursor {
        author: PublicKey([0x22; 32]),
        seq: 70_000,
    });
    let sync = Request::Sync {
        have: VersionVector::new(),
        resume,
    };
    let twos = "22".repeat(32);
    encodes(
        sync.encode(),
        &["00", "00", "01", &twos, "fc70110100"],
        &["`fc70110100` (70,000)"],
    );

    let have: VersionVector = [(PublicKey([0x11; 32]), 5_000_000_000)]
        .into_iter()
        .collect();
    let big = Request::Sync { have, resume: None };
    encodes(
        big.encode(),
        &["00", "01", &eleven, "fd00f2052a01000000", "00"],
        &["`fd00f2052a01000000`"],
    );

    let one = Response::Sync {
        entries: vec![vec![1, 2, 3]],
        resume: None,
        leases: Vec::new(),
    };
    encodes(
        one.encode(),
        &["00", "01", "03", "010203", "00", "00"],
        &["`010203`"],
    );
    encodes(Response::Blob(None).encode(), &["0100"], &["`0100`"]);
    encodes(
        Response::Blob(Some(b"hi".to_vec())).encode(),
        &["0101026869"],
        &["`0101026869`"],
    );
    encodes(
        Response::Refused(Refusal::Malformed).encode(),
        &["0201"],
        &["`0201`"],
    );

    let forks = Request::Forks {
        known: vec![(PublicKey([0x22; 32]), 3)],
        heads: vec![Head {
            author: PublicKey([0x11; 32]),
            seq: 300,
            id: EntryId([0x33; 32]),
        }],
    };
    let threes = "33".repeat(32);
    encodes(
        forks.encode(),
        &["02", "01", &twos, "03", "01", &eleven, "fb2c01", &threes],
        &[
            "`02` (variant `Forks`)",
            "`03` (its seq)",
            "`33` × 32 (the id)",
        ],
    );
    let proofs = Response::Forks {
        entries: vec![vec![1, 2, 3], vec![4, 5]],
    };
    encodes(
        proofs.encode(),
        &["03", "02", "03", "010203", "02", "0405"],
        &["`0405`"],
    );
}
