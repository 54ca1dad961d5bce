//! The JSON Lines export format (`docs/protocol.md` §7).

use buildmesh_protocol::{DecodeError, Entry, SIGNATURE_BYTES, Timestamp};
use serde::{Deserialize, Serialize};

/// The `format` field of every export header.
pub const FORMAT_NAME: &str = "buildmesh-log-export";

/// The export format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// When the export was written, ms since the Unix epoch.
    pub exported_at: u64,
}

impl Header {
    /// The header of an export written at `now`.
    pub fn new(now: Timestamp) -> Header {
        Header {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            exported_at: now.0,
        }
    }

    /// The header as one line of JSON (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and checks a header line.
    pub fn parse(line: &str) -> Result<Header, FormatError> {
        let header: Header =
            serde_json::from_str(line).map_err(|e| FormatError::Json(e.to_string()))?;
        if header.format != FORMAT_NAME {
            return Err(FormatError::NotAnExport(header.format));
        }
        if header.version != FORMAT_VERSION {
            return Err(FormatError::Version(header.version));
        }
        Ok(header)
    }
}

/// One entry line. `content` and `signature` are authoritative; `id`,
/// `author` and `seq` repeat what they imply, for people and tools that
/// only want to sort or grep, and are checked against them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedEntry {
    /// SHA-256 of the signed message, hex.
    pub id: String,
    /// The author's public key, hex.
    pub author: String,
    /// The author's sequence number.
    pub seq: u64,
    /// The 64-byte ed25519 signature, hex.
    pub signature: String,
    /// The canonical content bytes, hex.
    pub content: String,
}

/// What is wrong with a line of an export.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    /// Not JSON of the expected shape.
    #[error("not a JSON object of the expected shape: {0}")]
    Json(String),
    /// The header names another format.
    #[error("header says format {0:?}, expected {FORMAT_NAME:?}: is this a buildmesh log export?")]
    NotAnExport(String),
    /// The header names a version this build cannot read.
    #[error(
        "export format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    Version(u32),
    /// The line is longer than any valid entry line can be.
    #[error("line is {0} bytes or more, longer than any entry line can be")]
    LineTooLong(usize),
    /// A hex field is not hex of the right length.
    #[error("field {0} is not valid hex of the right length")]
    Hex(&'static str),
    /// The entry itself is invalid.
    #[error("{0}")]
    Entry(#[from] DecodeError),
    /// A convenience field disagrees with the signed content.
    #[error("field {field} says {claimed} but the signed content says {actual}")]
    Mismatch {
        /// Which field.
        field: &'static str,
        /// What the line claims.
        claimed: String,
        /// What the content implies.
        actual: String,
    },
}

/// Longest line a valid export can hold: an entry of the largest size,
/// hex-encoded, with its JSON fields around it.
pub const LINE_BYTES_MAX: usize = 2 * buildmesh_protocol::ENTRY_BYTES_MAX + 1024;

/// The export line of `entry` (without the newline).
pub fn export_line(entry: &Entry) -> String {
    let line = ExportedEntry {
        id: entry.id().to_string(),
        author: entry.author().to_string(),
        seq: entry.seq(),
        signature: hex::encode(entry.signature()),
        content: hex::encode(entry.content_bytes()),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

impl ExportedEntry {
    /// Parses an entry line and verifies the entry it carries.
    pub fn parse(line: &str) -> Result<Entry, FormatError> {
        let exported: ExportedEntry =
            serde_json::from_str(line).map_err(|e| FormatError::Json(e.to_string()))?;
        exported.verify()
    }

    /// Verifies the signed bytes and checks the convenience fields.
    pub fn verify(&self) -> Result<Entry, FormatError> {
        let signature: [u8; SIGNATURE_BYTES] = hex::decode(&self.signature)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(FormatError::Hex("signature"))?;
        let content = hex::decode(&self.content).map_err(|_| FormatError::Hex("content"))?;
        let entry = Entry::from_parts(&content, signature)?;
        check("id", &self.id, entry.id().to_string())?;
        check("author", &self.author, entry.author().to_string())?;
        check("seq", &self.seq.to_string(), entry.seq().to_string())?;
        Ok(entry)
    }
}

fn check(field: &'static str, claimed: &str, actual: String) -> Result<(), FormatError> {
    if claimed.eq_ignore_ascii_case(&actual) {
        Ok(())
    } else {
        Err(FormatError::Mismatch {
            field,
            claimed: claimed.chars().take(80).collect(),
            actual,
        })
    }
}
