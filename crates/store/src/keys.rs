//! The on-disk layout: one sled tree, one-byte key prefixes.
//!
//! | prefix | key after the prefix         | value                                  |
//! |--------|------------------------------|----------------------------------------|
//! | `e`    | entry id (32)                | linked flag (1: 0 or 1), wire bytes    |
//! | `c`    | author (32), seq BE (8), id (32) | empty                              |
//! | `v`    | author (32)                  | highest linked seq, BE (8)             |
//! | `f`    | author (32)                  | fork proof (73, see [`encode_fork`])   |
//! | `i`    | index key as core built it   | empty                                  |
//! | `u`    | author (32)                  | linked chain's bytes BE (8), declarations BE (4) |
//! | `m`    | meta name (`format`, `count`, `removed`) | format: u32 BE (4); count, removed: u64 BE (8) |
//!
//! Big-endian sequence numbers make byte order sequence order, so a prefix
//! scan of `c` ‖ author walks one chain in order, and a scan of all of `c`
//! walks every entry in (author, seq, id) order.

use crate::error::StoreError;
use buildmesh_core::log::{ForkKind, ForkProof, Usage};
use buildmesh_protocol::{EntryId, PublicKey};

/// Prefix of entry records.
pub(crate) const ENTRY: u8 = b'e';
/// Prefix of chain records.
pub(crate) const CHAIN: u8 = b'c';
/// Prefix of version records.
pub(crate) const VERSION: u8 = b'v';
/// Prefix of fork proofs.
pub(crate) const FORK: u8 = b'f';
/// Prefix of index keys.
pub(crate) const INDEX: u8 = b'i';
/// Prefix of quota usage records.
pub(crate) const USAGE: u8 = b'u';

/// Key of the on-disk format version.
pub(crate) const META_FORMAT: &[u8] = b"mformat";
/// Key of the entry count.
pub(crate) const META_COUNT: &[u8] = b"mcount";
/// Key of how many entries were ever removed (a forked author's past its
/// fork); absent means none. With the count it tells whether the set of
/// entries may have changed.
pub(crate) const META_REMOVED: &[u8] = b"mremoved";

/// Length of an encoded [`ForkProof`]: seq (8), kind (1), first (32), second (32).
pub(crate) const FORK_BYTES: usize = 73;

/// Linked flag values, the first byte of an entry record.
pub(crate) const PENDING: u8 = 0;
/// See [`PENDING`].
pub(crate) const LINKED: u8 = 1;

pub(crate) fn entry(id: &EntryId) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = ENTRY;
    key[1..].copy_from_slice(id.as_bytes());
    key
}

/// `c` ‖ author: every chain record of one author.
pub(crate) fn chain_author(author: &PublicKey) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = CHAIN;
    key[1..].copy_from_slice(author.as_bytes());
    key
}

/// `c` ‖ author ‖ seq: the chain records at one sequence number, and the
/// start of a scan from it.
pub(crate) fn chain_seq(author: &PublicKey, seq: u64) -> [u8; 41] {
    let mut key = [0; 41];
    key[..33].copy_from_slice(&chain_author(author));
    key[33..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub(crate) fn chain(author: &PublicKey, seq: u64, id: &EntryId) -> [u8; 73] {
    let mut key = [0; 73];
    key[..41].copy_from_slice(&chain_seq(author, seq));
    key[41..].copy_from_slice(id.as_bytes());
    key
}

/// The sequence number and id of a chain record's key.
pub(crate) fn parse_chain(key: &[u8]) -> Result<(PublicKey, u64, EntryId), StoreError> {
    let corrupt = || StoreError::corrupt(key, "a chain key is 73 bytes: prefix, author, seq, id");
    let key: &[u8; 73] = key.try_into().map_err(|_| corrupt())?;
    let (author, rest) = split32(&key[1..]).ok_or_else(corrupt)?;
    let (seq, id) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
    let (id, _) = split32(id).ok_or_else(corrupt)?;
    Ok((PublicKey(author), u64::from_be_bytes(*seq), EntryId(id)))
}

pub(crate) fn version(author: &PublicKey) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = VERSION;
    key[1..].copy_from_slice(author.as_bytes());
    key
}

pub(crate) fn usage(author: &PublicKey) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = USAGE;
    key[1..].copy_from_slice(author.as_bytes());
    key
}

pub(crate) fn encode_usage(usage: &Usage) -> [u8; 12] {
    let mut value = [0; 12];
    value[..8].copy_from_slice(&usage.bytes.to_be_bytes());
    value[8..].copy_from_slice(&usage.declarations.to_be_bytes());
    value
}

pub(crate) fn decode_usage(key: &[u8], value: &[u8]) -> Result<Usage, StoreError> {
    let corrupt = || StoreError::corrupt(key, format!("expected 12 bytes, found {}", value.len()));
    let (bytes, declarations) = value.split_at_checked(8).ok_or_else(corrupt)?;
    Ok(Usage {
        bytes: decode_u64(key, bytes)?,
        declarations: decode_u32(key, declarations)?,
    })
}

pub(crate) fn fork(author: &PublicKey) -> [u8; 33] {
    let mut key = [0; 33];
    key[0] = FORK;
    key[1..].copy_from_slice(author.as_bytes());
    key
}

pub(crate) fn index(core_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + core_key.len());
    key.push(INDEX);
    key.extend_from_slice(core_key);
    key
}

/// The author named by a `v` or `f` key.
pub(crate) fn parse_author(key: &[u8]) -> Result<PublicKey, StoreError> {
    match key.split_first() {
        Some((_, rest)) if rest.len() == 32 => split32(rest)
            .map(|(author, _)| PublicKey(author))
            .ok_or_else(|| StoreError::corrupt(key, "expected an author key")),
        _ => Err(StoreError::corrupt(
            key,
            "expected a prefix and a 32-byte author key",
        )),
    }
}

pub(crate) fn encode_u64(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

pub(crate) fn decode_u64(key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| {
        StoreError::corrupt(key, format!("expected 8 bytes, found {}", value.len()))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

pub(crate) fn decode_u32(key: &[u8], value: &[u8]) -> Result<u32, StoreError> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| {
        StoreError::corrupt(key, format!("expected 4 bytes, found {}", value.len()))
    })?;
    Ok(u32::from_be_bytes(bytes))
}

/// seq BE (8), kind (1: 0 equivocation, 1 broken link), first (32), second (32).
pub(crate) fn encode_fork(proof: &ForkProof) -> [u8; FORK_BYTES] {
    let mut value = [0; FORK_BYTES];
    value[..8].copy_from_slice(&proof.seq.to_be_bytes());
    value[8] = match proof.kind {
        ForkKind::Equivocation => 0,
        ForkKind::BrokenLink => 1,
    };
    value[9..41].copy_from_slice(proof.first.as_bytes());
    value[41..].copy_from_slice(proof.second.as_bytes());
    value
}

pub(crate) fn decode_fork(key: &[u8], value: &[u8]) -> Result<ForkProof, StoreError> {
    let value: &[u8; FORK_BYTES] = value.try_into().map_err(|_| {
        StoreError::corrupt(
            key,
            format!("a fork proof is {FORK_BYTES} bytes, found {}", value.len()),
        )
    })?;
    let corrupt = |what: &str| StoreError::corrupt(key, what.to_owned());
    let (seq, rest) = value
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("short fork proof"))?;
    let (kind, rest) = rest
        .split_first()
        .ok_or_else(|| corrupt("short fork proof"))?;
    let kind = match kind {
        0 => ForkKind::Equivocation,
        1 => ForkKind::BrokenLink,
        other => return Err(corrupt(&format!("unknown fork kind {other}"))),
    };
    let (first, rest) = split32(rest).ok_or_else(|| corrupt("short fork proof"))?;
    let (second, _) = split32(rest).ok_or_else(|| corrupt("short fork proof"))?;
    Ok(ForkProof {
        seq: u64::from_be_bytes(*seq),
        kind,
        first: EntryId(first),
        second: EntryId(second),
    })
}

fn split32(bytes: &[u8]) -> Option<([u8; 32], &[u8])> {
    bytes
        .split_first_chunk::<32>()
        .map(|(head, rest)| (*head, rest))
}

/// A key as people read it in an error: the prefix letter, then hex.
pub(crate) fn describe(key: &[u8]) -> String {
    match key.split_first() {
        Some((prefix, rest)) if prefix.is_ascii_lowercase() => {
            format!("{}/{}", char::from(*prefix), hex::encode(rest))
        }
        _ => hex::encode(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_keys_sort_by_author_then_seq_then_id() {
        let (a, b) = (PublicKey([1; 32]), PublicKey([2; 32]));
        let keys = [
            chain(&a, 2, &EntryId([9; 32])),
            chain(&a, 256, &EntryId([0; 32])),
            chain(&a, 1, &EntryId([0xff; 32])),
            chain(&b, 1, &EntryId([0; 32])),
            chain(&a, 2, &EntryId([3; 32])),
        ];
        let mut sorted = keys.to_vec();
        sorted.sort();
        let parsed: Vec<_> = sorted
            .iter()
            .map(|k| parse_chain(k))
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(
            parsed,
            vec![
                (a, 1, EntryId([0xff; 32])),
                (a, 2, EntryId([3; 32])),
                (a, 2, EntryId([9; 32])),
                (a, 256, EntryId([0; 32])),
                (b, 1, EntryId([0; 32])),
            ]
        );
        assert!(chain(&a, 2, &EntryId([9; 32])).starts_with(&chain_seq(&a, 2)));
        assert!(chain(&a, 2, &EntryId([9; 32])).starts_with(&chain_author(&a)));
    }

    #[test]
    fn fork_proofs_round_trip_in_73_bytes() {
        for proof in [
            ForkProof::equivocation(7, EntryId([2; 32]), EntryId([1; 32])),
            ForkProof::broken_link(u64::MAX, EntryId([5; 32]), EntryId([6; 32])),
        ] {
            let bytes = encode_fork(&proof);
            assert_eq!(bytes.len(), FORK_BYTES);
            assert_eq!(decode_fork(b"f", &bytes).ok(), Some(proof));
        }
    }

    #[test]
    fn bad_records_are_corrupt_not_panics() {
        assert!(decode_fork(b"f", &[0; 72]).is_err());
        let mut bad_kind = encode_fork(&ForkProof::equivocation(1, EntryId::ZERO, EntryId::ZERO));
        bad_kind[8] = 9;
        assert!(decode_fork(b"f", &bad_kind).is_err());
        assert!(decode_u64(b"v", &[1, 2, 3]).is_err());
        assert!(decode_u32(b"m", &[1; 8]).is_err());
        assert!(parse_chain(&[CHAIN; 40]).is_err());
        assert!(parse_author(&[VERSION; 10]).is_err());
        assert_eq!(
            parse_author(&version(&PublicKey([4; 32]))).ok(),
            Some(PublicKey([4; 32]))
        );
    }

    #[test]
    fn keys_are_described_by_prefix_and_hex() {
        assert_eq!(describe(&[b'v', 0xab, 0x01]), "v/ab01");
        assert_eq!(describe(&[0xff]), "ff");
        assert_eq!(describe(&[]), "");
    }
}
