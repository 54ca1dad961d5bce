//! buildmesh's durable entry store: [`SledStore`], an
//! [`EntryStore`](buildmesh_core::log::EntryStore) on sled 0.34.
//!
//! **What it is.** The disk under a node's log. It keeps the signed entries
//! with their linked flags, each author's chain, the version vector, the
//! fork proofs and the index keys in one sled tree, applies each
//! [`WriteBatch`](buildmesh_core::log::WriteBatch) atomically, and makes
//! applied batches durable on `flush`.
//!
//! **What it is not.** It makes no decision: whether an entry links, forks,
//! waits or is refused is decided by the rules in
//! [`buildmesh_core::log`], which read through the trait and hand the store
//! a batch to write. It does not verify signatures either: entries arrive
//! verified ([`Entry`](buildmesh_protocol::Entry) cannot be built
//! otherwise) and are read back with the fast
//! [`Entry::from_stored`](buildmesh_protocol::Entry::from_stored).
//! It knows nothing of peers, the network or tokio.
//!
//! **Call protocol.**
//!
//! 1. [`SledStore::open`] the data directory (one process at a time);
//! 2. feed entries through [`buildmesh_core::log::insert`] (one entry, then a
//!    flush) or [`buildmesh_core::log::insert_batch`] (many, one flush), or
//!    [`buildmesh_core::log::ingest`] followed by your own
//!    [`flush`](buildmesh_core::log::EntryStore::flush);
//! 3. only after the flush returns, tell anyone the entries are stored.
//!
//! ```
//! use buildmesh_core::log::{self, ChainStore, EntryStore, Ingested};
//! use buildmesh_protocol::{Body, BuilderPolicy, Entry, EntryContent, ProjectDeclaration, Timestamp};
//! use buildmesh_store::SledStore;
//! use ed25519_dalek::SigningKey;
//!
//! let dir = tempfile::tempdir()?;
//! let key = SigningKey::from_bytes(&[9; 32]);
//! let author = key.verifying_key().into();
//! // A project declaration: what a new key may write first (docs/protocol.md §6.1).
//! let body = Body::Project(ProjectDeclaration {
//!     name: "p".into(),
//!     repository: "https://example.org/p.git".into(),
//!     branches: vec!["main".into()],
//!     platforms: vec!["linux-x86_64".into()],
//!     announcers: Vec::new(),
//!     builders: BuilderPolicy::Open,
//!     builds_per_cell: 1,
//! });
//! let entry = Entry::sign(&key, EntryContent::first(author, Timestamp(1), body))?;
//!
//! let mut store = SledStore::open(dir.path())?;
//! assert_eq!(log::insert(&mut store, entry)?, Ingested::Applied { linked: 1 });
//! drop(store);
//! assert_eq!(SledStore::open(dir.path())?.version(&author)?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod error;
mod keys;
mod migrate;
mod sled_store;

pub use error::StoreError;
pub use sled_store::{LOCK_WAIT, LOG_TREE, STORE_FORMAT_VERSION, SledReader, SledStore};
