//! What can go wrong with the store on disk.

use std::path::PathBuf;

/// Why a [`crate::SledStore`] call failed.
///
/// Normal log outcomes (duplicate, pending, fork) are never errors; they are
/// [`buildmesh_core::log::Ingested`] values. These are failures of the disk
/// or of the bytes on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another handle in this one) has the directory open.
    #[error(
        "the data directory {} is in use by another buildmesh process; stop it or pick another --data-dir",
        dir.display()
    )]
    InUse {
        /// The directory that could not be locked.
        dir: PathBuf,
    },
    /// sled could not open the directory for another reason.
    #[error("could not open the entry store in {}: {source}", dir.display())]
    Open {
        /// The directory.
        dir: PathBuf,
        /// What sled said.
        #[source]
        source: sled::Error,
    },
    /// A write through a handle made by `SledStore::read_only`.
    #[error("this handle on the entry store is read-only")]
    ReadOnly,
    /// A read, write or flush failed.
    #[error("entry store IO failed: {0}")]
    Sled(#[from] sled::Error),
    /// A record on disk does not decode as what its key says it is.
    #[error(
        "corrupt record at key {key}: {reason}; the data directory is damaged: restore it from a backup, or move it away and let the node re-sync from its peers"
    )]
    Corrupt {
        /// The key, as its prefix letter then hex.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory was written by a build with another on-disk format.
    #[error(
        "the data directory holds on-disk format version {found}, but this build reads version {expected}; run a buildmesh that matches it, or move the directory away and re-sync"
    )]
    UnsupportedFormat {
        /// The version found on disk.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
}

impl StoreError {
    pub(crate) fn corrupt(key: &[u8], reason: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            key: crate::keys::describe(key),
            reason: reason.into(),
        }
    }

    /// Sorts an error from `sled::open` into [`StoreError::InUse`] or
    /// [`StoreError::Open`]. sled reports a held lock only as an IO error
    /// whose text says "could not acquire lock".
    pub(crate) fn opening(dir: PathBuf, source: sled::Error) -> StoreError {
        if is_lock_contention(&source) {
            StoreError::InUse { dir }
        } else {
            StoreError::Open { dir, source }
        }
    }
}

/// Whether `sled::open` failed because another handle holds the directory's
/// lock. sled says so only in the text of an IO error.
pub(crate) fn is_lock_contention(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}
