//! What an audit found.

use crate::format::FormatError;
use buildmesh_core::log::{ForkKind, ForkProof, Rejected};
use buildmesh_protocol::{EntryId, PublicKey};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One thing wrong with an export.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// The input has no header line.
    MissingHeader,
    /// The header line is not a buildmesh export header.
    BadHeader(FormatError),
    /// A line does not hold a valid entry.
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        error: FormatError,
    },
    /// The same entry appears twice.
    Duplicate {
        /// 1-based line number of the repeat.
        line: usize,
        /// The entry.
        id: EntryId,
    },
    /// A well-signed entry the log would not take.
    Refused {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: Rejected,
    },
    /// An author signed two histories.
    Fork {
        /// The author.
        author: PublicKey,
        /// The two contradicting entries.
        proof: ForkProof,
    },
    /// An author's chain has a hole: later entries are present, earlier missing.
    Gap {
        /// The author.
        author: PublicKey,
        /// The first missing sequence number.
        missing_seq: u64,
        /// How many entries after the hole cannot be chained.
        unchained: usize,
    },
}

/// The outcome of verifying an export.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Lines read, the header included.
    pub lines: usize,
    /// Distinct valid entries.
    pub entries: usize,
    /// Each author's highest contiguous sequence number.
    pub heads: BTreeMap<PublicKey, u64>,
    /// Everything wrong, in the order found.
    pub problems: Vec<Problem>,
    /// What each line with a problem says it holds, by line number, so a
    /// report can name the entry and not only the line: a bad line's own
    /// `id`, `author` and `seq` fields (unchecked: they may be what was
    /// tampered with), or a refused or repeated entry's real ones.
    pub named: BTreeMap<usize, LineNames>,
    /// The header's `exported_at` (ms since the Unix epoch), if the header
    /// was read: the time the export stands for.
    pub exported_at: Option<u64>,
}

/// What a line says it holds. Each field is absent when the line does
/// not say, or says something that is no id, key or number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LineNames {
    /// The entry id, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The author's key, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The author's sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl LineNames {
    /// The names a line's JSON gives, kept only when they look like what
    /// they name (64 hex digits; a number), so a hostile line cannot put
    /// arbitrary text into a report through them.
    pub fn of_text(text: &str) -> LineNames {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
            return LineNames::default();
        };
        let hex64 = |field: &str| {
            value[field]
                .as_str()
                .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_ascii_lowercase)
        };
        LineNames {
            id: hex64("id"),
            author: hex64("author"),
            seq: value["seq"].as_u64(),
        }
    }

    /// The names of a decoded entry: exact.
    pub fn of_entry(entry: &buildmesh_protocol::Entry) -> LineNames {
        LineNames {
            id: Some(entry.id().to_string()),
            author: Some(entry.author().to_string()),
            seq: Some(entry.seq()),
        }
    }
}

impl fmt::Display for LineNames {
    /// `entry ID (author A, seq N)`, with what is known; empty if nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(author) = &self.author {
            parts.push(format!("author {author}"));
        }
        if let Some(seq) = self.seq {
            parts.push(format!("seq {seq}"));
        }
        match (&self.id, parts.is_empty()) {
            (Some(id), true) => write!(f, "entry {id}"),
            (Some(id), false) => write!(f, "entry {id} ({})", parts.join(", ")),
            (None, false) => write!(f, "entry of {}", parts.join(", ")),
            (None, true) => Ok(()),
        }
    }
}

impl Report {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingHeader => {
                write!(f, "no header line: the input is empty or not an export")
            }
            Problem::BadHeader(error) => write!(f, "line 1: bad header: {error}"),
            Problem::BadLine { line, error } => write!(f, "line {line}: {error}"),
            Problem::Duplicate { line, id } => {
                write!(f, "line {line}: entry {id} appears a second time")
            }
            Problem::Refused { line, reason } => write!(f, "line {line}: refused: {reason}"),
            Problem::Fork { author, proof } => {
                let what = match proof.kind {
                    ForkKind::Equivocation => "signed two different entries",
                    ForkKind::BrokenLink => {
                        "signed an entry that does not chain to its predecessor"
                    }
                };
                write!(
                    f,
                    "author {author} forked: {what} at seq {} (entries {} and {})",
                    proof.seq, proof.first, proof.second
                )
            }
            Problem::Gap {
                author,
                missing_seq,
                unchained,
            } => write!(
                f,
                "author {author}: entry seq {missing_seq} is missing; {unchained} later entries cannot be chained"
            ),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_clean() { "OK" } else { "FAILED" };
        writeln!(
            f,
            "{verdict}: {} entries from {} authors in {} lines; {} problems",
            self.entries,
            self.heads.len(),
            self.lines,
            self.problems.len()
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}
