//! What an audit found.

use crate::format::FormatError;
use buildmesh_core::log::{ForkKind, ForkProof, Rejected};
use buildmesh_protocol::{EntryId, PublicKey};
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
