//! Verifying an export, line by line.

use crate::format::{ExportedEntry, Header};
use crate::report::{LineNames, Problem, Report};
use buildmesh_core::log::{self, EntryStore, Ingested, MemStore};
use buildmesh_protocol::PublicKey;
use std::collections::BTreeMap;
use std::convert::Infallible;

/// Feeds export lines through the same merge rules a node uses, so the
/// verdict on chains and forks is the one the mesh would reach.
#[derive(Debug, Default)]
pub struct Verifier {
    store: MemStore,
    /// Entries whose author had no role when read, with their lines: an
    /// export comes in author order, so a builder's entries may come
    /// before the declaration that names it. Offered again at the end.
    waiting: Vec<(usize, buildmesh_protocol::Entry)>,
    header_seen: bool,
    exported_at: Option<u64>,
    lines: usize,
    problems: Vec<Problem>,
    named: BTreeMap<usize, LineNames>,
}

impl Verifier {
    /// A verifier that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next line (with or without its newline). Blank lines are
    /// skipped; the first non-blank line must be the header.
    pub fn line(&mut self, text: &str) {
        self.lines += 1;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            return;
        }
        if !self.header_seen {
            self.header_seen = true;
            match Header::parse(text) {
                Ok(header) => self.exported_at = Some(header.exported_at),
                Err(error) => self.problems.push(Problem::BadHeader(error)),
            }
            return;
        }
        let line = self.lines;
        match ExportedEntry::parse(text) {
            Err(error) => {
                self.named.insert(line, LineNames::of_text(text));
                self.problems.push(Problem::BadLine { line, error });
            }
            Ok(entry) => {
                let id = entry.id();
                match infallible(log::ingest(&mut self.store, entry.clone())) {
                    Ingested::Duplicate => {
                        self.named.insert(line, LineNames::of_entry(&entry));
                        self.problems.push(Problem::Duplicate { line, id });
                    }
                    Ingested::Rejected(log::Rejected::NoRole) => self.waiting.push((line, entry)),
                    Ingested::Rejected(reason) => {
                        self.named.insert(line, LineNames::of_entry(&entry));
                        self.problems.push(Problem::Refused { line, reason });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Counts a line the caller refused to read whole because it was longer
    /// than [`crate::LINE_BYTES_MAX`].
    pub fn line_too_long(&mut self, bytes: usize) {
        self.lines += 1;
        let error = crate::FormatError::LineTooLong(bytes);
        if self.header_seen {
            self.problems.push(Problem::BadLine {
                line: self.lines,
                error,
            });
        } else {
            self.header_seen = true;
            self.problems.push(Problem::BadHeader(error));
        }
    }

    /// The report: everything found line by line, then forks and gaps.
    pub fn finish(self) -> Report {
        self.finish_with_log().0
    }

    /// [`Verifier::finish`], and the log the export's valid entries make:
    /// what views are derived from (`crate::derive_matrices`). It holds
    /// every entry that verified, linked or not, exactly as a node's store
    /// would after taking them.
    pub fn finish_with_log(mut self) -> (Report, MemStore) {
        self.offer_waiting();
        let mut problems = self.problems;
        if !self.header_seen {
            problems.insert(0, Problem::MissingHeader);
        }
        let forks = infallible(self.store.forks());
        let versions = infallible(self.store.versions());
        let heads: BTreeMap<PublicKey, u64> = self
            .store
            .entries()
            .map(|s| s.entry.author())
            .map(|a| (a, versions.get(&a)))
            .collect();
        let mut unchained: BTreeMap<PublicKey, usize> = BTreeMap::new();
        for stored in self.store.entries().filter(|s| !s.linked) {
            *unchained.entry(stored.entry.author()).or_default() += 1;
        }
        for (author, proof) in &forks {
            unchained.remove(author);
            problems.push(Problem::Fork {
                author: *author,
                proof: *proof,
            });
        }
        for (author, count) in unchained {
            let missing_seq = versions.get(&author) + 1;
            problems.push(Problem::Gap {
                author,
                missing_seq,
                unchained: count,
            });
        }
        let report = Report {
            lines: self.lines,
            entries: self.store.entries().count(),
            heads,
            problems,
            named: self.named,
            exported_at: self.exported_at,
        };
        (report, self.store)
    }
}

impl Verifier {
    /// Offers the entries that had no role again, for as long as that
    /// takes more in; what is left is refused.
    fn offer_waiting(&mut self) {
        loop {
            let before = self.waiting.len();
            let waiting = std::mem::take(&mut self.waiting);
            for (line, entry) in waiting {
                match infallible(log::ingest(&mut self.store, entry.clone())) {
                    Ingested::Rejected(log::Rejected::NoRole) => self.waiting.push((line, entry)),
                    Ingested::Rejected(reason) => {
                        self.problems.push(Problem::Refused { line, reason })
                    }
                    _ => {}
                }
            }
            if self.waiting.len() == before {
                break;
            }
        }
        for (line, entry) in std::mem::take(&mut self.waiting) {
            let reason = log::Rejected::NoRole;
            self.named.insert(line, LineNames::of_entry(&entry));
            self.problems.push(Problem::Refused { line, reason });
        }
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
