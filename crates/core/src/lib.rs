//! buildmesh's sans-IO core: the rules of the log and the views derived
//! from it.
//!
//! Nothing here does IO, reads a clock or spawns a task. The log's merge
//! rules ([`log::ingest`]) are written once, here, against the
//! [`log::EntryStore`] trait; `buildmesh-store` implements that trait on
//! sled and [`log::MemStore`] implements it in memory for tests and the
//! simulator. The store decides nothing: it applies the [`log::WriteBatch`]
//! the rules hand it, atomically, and makes it durable on `flush`.
//!
//! Views ([`view`]) are pure functions of the entry set and the time: the
//! same entries give the same matrix on every node.
//!
//! ```
//! use buildmesh_core::log::{self, ChainStore, EntryStore, Ingested, MemStore};
//! use buildmesh_protocol::{Body, Entry, EntryContent, ProjectId, Role, Timestamp, TrustChange};
//! use ed25519_dalek::SigningKey;
//!
//! let key = SigningKey::from_bytes(&[9; 32]);
//! let author = key.verifying_key().into();
//! let body = Body::Trust(TrustChange { project: ProjectId::derive(&author, "p"), subject: author, role: Role::Builder });
//! let entry = Entry::sign(&key, EntryContent::first(author, Timestamp(1), body)).unwrap();
//!
//! // A key without a role in any project held is refused, and nothing is
//! // stored (docs/protocol.md §6.1): a stranger cannot fill the log.
//! let mut store = MemStore::default();
//! let refused = Ingested::Rejected(log::Rejected::NoRole);
//! assert_eq!(log::insert(&mut store, entry.clone()).unwrap(), refused);
//! assert!(store.is_empty().unwrap());
//! ```

#![deny(missing_docs)]

pub mod claim;
pub mod log;
pub mod notify;
pub mod replicator;
pub mod schedule;
pub mod service;
pub mod view;
