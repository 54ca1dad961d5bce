//! The log export format, its verifier, and checking a node's views
//! against its log.
//!
//! An export is a stream of JSON lines: one [`Header`], then one
//! [`ExportedEntry`] per entry (`docs/protocol.md` §7). It carries the exact
//! signed bytes, so a third party can check it with any ed25519 library;
//! [`Verifier`] is our own such check (`buildmesh log verify`).
//!
//! `buildmesh verify` goes further: from the entries that verified
//! ([`Verifier::finish_with_log`]) it derives every project's matrix with
//! the node's own view code ([`derive_matrices`]), compares it with what a
//! node serves ([`compare_matrix`], [`compare_projects`]), and sorts what
//! it found into findings and notes ([`classify`], [`Check`]).
//!
//! This crate reads and writes strings and JSON values, not files or
//! sockets: the caller owns the IO.
//!
//! ```
//! use buildmesh_audit::{Header, Verifier, export_line};
//! use buildmesh_core::log::ChainWriter;
//! use buildmesh_protocol::{Body, BuilderPolicy, ProjectDeclaration, Timestamp};
//! use ed25519_dalek::SigningKey;
//!
//! // A project declaration: the entry that makes its author an owner (a
//! // key without a role could write nothing else, docs/protocol.md §6.1).
//! let mut alice = ChainWriter::new(SigningKey::from_bytes(&[3; 32]));
//! let body = Body::Project(ProjectDeclaration {
//!     name: "demo".into(),
//!     repository: "https://example.org/demo.git".into(),
//!     branches: vec!["main".into()],
//!     platforms: vec!["linux-x86_64".into()],
//!     announcers: Vec::new(),
//!     builders: BuilderPolicy::Open,
//!     builds_per_cell: 1,
//! });
//! let entry = alice.write(Timestamp(1), body).unwrap();
//!
//! let mut verifier = Verifier::new();
//! verifier.line(&Header::new(Timestamp(2)).to_line());
//! verifier.line(&export_line(&entry));
//! let report = verifier.finish();
//! assert!(report.is_clean(), "{report}");
//! assert_eq!(report.entries, 1);
//! ```

#![deny(missing_docs)]

mod check;
mod compare;
mod derive;
mod finding;
mod format;
mod report;
mod text;
mod verify;

pub use check::{
    CHECK_FORMAT, CHECK_VERSION, Check, LISTED_MAX, ProjectLine, Reads, Source, classify,
};
pub use compare::{ServedProject, compare_matrix, compare_projects};
pub use derive::{
    DeriveOptions, DerivedMatrix, EVERY_LEASE_LAPSED, EVERY_LEASE_LIVE, derive_matrices,
};
pub use finding::{At, Finding, Note};
pub use format::{
    ExportedEntry, FORMAT_NAME, FORMAT_VERSION, FormatError, Header, LINE_BYTES_MAX, export_line,
};
pub use report::{LineNames, Problem, Report};
pub use text::printable;
pub use verify::Verifier;

/// Whether `store` holds an entry whose id is `id` (hex): what
/// [`compare_matrix`] asks of the log.
pub fn holds(store: &buildmesh_core::log::MemStore, id: &str) -> bool {
    use buildmesh_core::log::ChainStore;
    id.parse::<buildmesh_protocol::EntryId>()
        .is_ok_and(|id| store.contains(&id).unwrap_or(false))
}
