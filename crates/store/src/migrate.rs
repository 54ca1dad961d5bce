//! Bringing a store written by an older build up to [`STORE_FORMAT_VERSION`].
//!
//! [`STORE_FORMAT_VERSION`]: crate::STORE_FORMAT_VERSION

use crate::error::StoreError;
use crate::keys::{self, LINKED};
use crate::sled_store::decode_entry;
use buildmesh_core::log::{Usage, index_keys};
use buildmesh_protocol::PublicKey;
use std::collections::BTreeMap;

/// Format 1 had no role index keys and no quota usage (docs/protocol.md
/// §6.1): both are derived from the linked entries held, in one atomic
/// batch with the new format number, so a crash leaves format 1 whole.
pub(crate) fn from_1(tree: &sled::Tree) -> Result<(), StoreError> {
    let mut writes = sled::Batch::default();
    let mut usage: BTreeMap<PublicKey, Usage> = BTreeMap::new();
    let mut linked = 0u64;
    for item in tree.scan_prefix([keys::ENTRY]) {
        let (key, value) = item?;
        if value.first() != Some(&LINKED) {
            continue;
        }
        let stored = decode_entry(&key, &value)?;
        for index in index_keys(&stored.entry) {
            writes.insert(keys::index(&index), &[][..]);
        }
        let author = usage.entry(stored.entry.author()).or_default();
        *author = author.plus(&stored.entry);
        linked += 1;
    }
    for (author, used) in &usage {
        writes.insert(&keys::usage(author)[..], &keys::encode_usage(used)[..]);
    }
    writes.insert(
        keys::META_FORMAT,
        &crate::STORE_FORMAT_VERSION.to_be_bytes()[..],
    );
    tree.apply_batch(writes)?;
    tracing::info!(
        linked,
        authors = usage.len(),
        "upgraded the entry store to format {}: roles and quotas derived from the log",
        crate::STORE_FORMAT_VERSION
    );
    Ok(())
}
