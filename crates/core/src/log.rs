//! The log: a grow-only set of signed entries, merged by set union.
//!
//! Each author's entries form a chain (`seq` 1, 2, ...; each naming its
//! predecessor's id). An entry is *linked* when its whole chain back to
//! `seq` 1 is held; only linked entries count in views and travel in sync.
//! An entry whose predecessor has not arrived is held *pending* and linked
//! when the gap fills. Two different entries at one `(author, seq)`, or an
//! entry whose `prev` is not its predecessor's id, prove the author forked:
//! both are kept as proof and the author's entries stop counting. Nothing
//! of a forked author past its lowest proven fork is kept (`freeze`).
//!
//! Linked-ness, version vectors and fork verdicts are functions of the set
//! of entries alone, so any order of arrival gives the same state.

mod admission;
mod aside;
mod evidence;
mod fork;
mod freeze;
mod index;
mod ingest;
mod mem;
mod siblings;
mod staged;
mod store;
mod sync;
mod writer;

pub use admission::{
    AUTHOR_BYTES_MAX, AUTHOR_DECLARATIONS_MAX, AUTHOR_ENTRIES_MAX, Usage, has_role,
};
pub use aside::{
    ASIDE_BYTES_MAX, ASIDE_ENTRIES_MAX, ASIDE_MS, ASIDE_PER_AUTHOR_MAX, Aside, may_grant,
};
pub use buildmesh_protocol::{SyncCursor, VersionVector};
pub use evidence::{EvidenceBatch, EvidenceLimits, proof_entries, unlinked_evidence};
pub use fork::{ForkKind, ForkProof};
pub use freeze::freeze_forked;
pub use index::{IndexKey, index_keys};
pub use ingest::{
    Ingested, PENDING_WINDOW_ENTRIES, Quota, Rejected, SIBLINGS_MAX, ingest, ingest_batch, insert,
    insert_batch,
};
pub use mem::MemStore;
pub use staged::Staged;
pub use store::{ChainStore, EntryStore, StoredEntry, WriteBatch};
pub use sync::{BatchLimits, SyncBatch, lacks};
pub use writer::ChainWriter;
