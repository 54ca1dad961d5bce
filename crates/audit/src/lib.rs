//! The log export format and its verifier.
//!
//! An export is a stream of JSON lines: one [`Header`], then one
//! [`ExportedEntry`] per entry (`docs/protocol.md` §7). It carries the exact
//! signed bytes, so a third party can check it with any ed25519 library;
//! [`Verifier`] is our own such check.
//!
//! This crate reads and writes strings, not files: the caller owns the IO.
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

mod format;
mod report;
mod verify;

pub use format::{
    ExportedEntry, FORMAT_NAME, FORMAT_VERSION, FormatError, Header, LINE_BYTES_MAX, export_line,
};
pub use report::{Problem, Report};
pub use verify::Verifier;
