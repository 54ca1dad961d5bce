//! buildmesh's cross-crate and multi-process tests, and the helpers and
//! small binaries they share.
//!
//! The `durability-writer` binary (`src/bin/durability-writer.rs`) appends a
//! chain of signed entries to a [`SledStore`](buildmesh_store::SledStore)
//! and prints one [`Ack`](durability::Ack) line per entry the store acknowledged;
//! `tests/durability.rs` kills it with SIGKILL and checks every
//! acknowledged entry survived.

#![deny(missing_docs)]

pub mod durability;
