//! The outcome of `buildmesh verify`: what was checked, what was found,
//! as a report a person reads at a glance and as JSON for machines.

use crate::derive::DerivedMatrix;
use crate::finding::{Finding, Note};
use crate::report::{Problem, Report};
use crate::text::{grouped, printable};
use buildmesh_core::log::{ForkKind, Rejected};
use buildmesh_protocol::ProjectId;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// The `format` field of `buildmesh verify --json`.
pub const CHECK_FORMAT: &str = "buildmesh-verify";

/// The version of that JSON shape; bumped only when a field changes
/// meaning or goes away (new fields and new kinds may come without it).
pub const CHECK_VERSION: u32 = 1;

/// Most findings (and notes) the human report lists; `--json` has all.
pub const LISTED_MAX: usize = 200;

/// Most projects the human report lists a line for.
pub const PROJECTS_LISTED_MAX: usize = 20;

/// What was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A live node's HTTP API: its whole `GET /api/v1/entries`, which
    /// serves linked entries only, and its views.
    Node(String),
    /// An export file (`buildmesh log export`, or a saved
    /// `GET /api/v1/entries`): entries only, no served views.
    File(String),
}

impl Source {
    fn kind(&self) -> &'static str {
        match self {
            Source::Node(_) => "node",
            Source::File(_) => "file",
        }
    }

    fn target(&self) -> &str {
        match self {
            Source::Node(target) | Source::File(target) => target,
        }
    }
}

/// One project as its log gives it, at the moment shown.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectLine {
    /// Id, hex.
    pub project: String,
    /// Name.
    pub name: String,
    /// Rows (commits) derived.
    pub rows: usize,
    /// The newest commit, if any.
    pub newest: Option<String>,
    /// The newest commit's cells: (platform, status), in column order.
    pub cells: Vec<(String, String)>,
}

impl ProjectLine {
    /// The line of a derived matrix, read from its rendering at the moment
    /// shown ([`DerivedMatrix::at`]).
    pub fn of(derived: &DerivedMatrix) -> ProjectLine {
        let matrix = &derived.at;
        let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
        let rows = matrix["rows"].as_array().map_or(0, Vec::len);
        let newest = &matrix["rows"][0];
        let platforms = matrix["platforms"].as_array().cloned().unwrap_or_default();
        let cells = newest["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&platforms)
            .map(|(cell, platform)| (text(platform), text(&cell["status"])))
            .collect();
        ProjectLine {
            project: derived.project.to_string(),
            name: derived.name.clone(),
            rows,
            newest: newest["commit"].as_str().map(str::to_owned),
            cells,
        }
    }
}

impl fmt::Display for ProjectLine {
    /// `project hello (5f1c2a3b4c5d): 3 commits; newest 8d3e1f2a9b: linux passed, mac failed`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "project {} ({}): {} commit{}",
            printable(&self.name, 64),
            printable(&self.project, 12),
            grouped(self.rows),
            if self.rows == 1 { "" } else { "s" }
        )?;
        if let Some(newest) = &self.newest {
            let cells: Vec<String> = self
                .cells
                .iter()
                .map(|(p, s)| format!("{} {}", printable(p, 64), printable(s, 32)))
                .collect();
            write!(
                f,
                "; newest {}: {}",
                crate::finding::short_commit(newest),
                cells.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Everything `buildmesh verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was checked.
    pub source: Source,
    /// When (ms since the Unix epoch): the moment the projects are shown at.
    pub checked_at: u64,
    /// Lines read, the header included.
    pub lines: usize,
    /// Distinct valid entries.
    pub entries: usize,
    /// Authors with a valid entry.
    pub authors: usize,
    /// What the node or file shows that its entries do not give.
    pub findings: Vec<Finding>,
    /// Facts about authors an honest log records too.
    pub notes: Vec<Note>,
    /// The projects the log gives, as derived.
    pub projects: Vec<ProjectLine>,
    /// For a node: how many times its log and views were read, and whether
    /// its log stood still over the last read (views compared then are
    /// those of the entries read). `None` for a file.
    pub reads: Option<Reads>,
}

/// How a live node was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// Reads of the log and views (a difference in views is read again
    /// after a pause, in case it was entries arriving meanwhile).
    pub attempts: usize,
    /// Whether the node's log stood still from before the previous read
    /// to after the last one.
    pub settled: bool,
}

impl Check {
    /// The check of a verified log read from `source`, shown at `at` (ms):
    /// the verifier's problems sorted into findings and notes
    /// ([`classify`]), and the line of each derived project, or of `only`.
    /// A node's caller adds what comparing its served views found.
    pub fn of(
        source: Source,
        at: u64,
        report: &Report,
        derived: &BTreeMap<ProjectId, DerivedMatrix>,
        only: Option<&ProjectId>,
    ) -> Check {
        let (findings, notes) = classify(report, &source);
        Check {
            source,
            checked_at: at,
            lines: report.lines,
            entries: report.entries,
            authors: report.heads.len(),
            findings,
            notes,
            projects: derived
                .values()
                .filter(|d| only.is_none_or(|only| *only == d.project))
                .map(ProjectLine::of)
                .collect(),
            reads: None,
        }
    }

    /// Whether nothing was found (notes are not findings).
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The JSON of `buildmesh verify --json` (docs/operating.md,
    /// "Checking a node from outside"): each finding and note is its
    /// object with `kind`, plus `text`, the line the report prints.
    pub fn to_json(&self) -> Value {
        let with_text = |value: Value, text: String| match value {
            Value::Object(mut fields) => {
                fields.insert("text".into(), Value::String(text));
                Value::Object(fields)
            }
            other => other,
        };
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| with_text(serde_json::to_value(f).unwrap_or_default(), f.to_string()))
            .collect();
        let notes: Vec<Value> = self
            .notes
            .iter()
            .map(|n| with_text(serde_json::to_value(n).unwrap_or_default(), n.to_string()))
            .collect();
        let projects: Vec<Value> = self
            .projects
            .iter()
            .map(|p| {
                json!({
                    "project": p.project,
                    "name": p.name,
                    "rows": p.rows,
                    "newest": p.newest.as_ref().map(|commit| json!({
                        "commit": commit,
                        "cells": p.cells.iter().map(|(platform, status)| json!({
                            "platform": platform, "status": status,
                        })).collect::<Vec<_>>(),
                    })),
                })
            })
            .collect();
        json!({
            "format": CHECK_FORMAT,
            "version": CHECK_VERSION,
            "source": self.source.kind(),
            "target": self.source.target(),
            "checked_at": self.checked_at,
            "clean": self.is_clean(),
            "lines": self.lines,
            "entries": self.entries,
            "authors": self.authors,
            "attempts": self.reads.map(|r| r.attempts),
            "settled": self.reads.map(|r| r.settled),
            "findings": findings,
            "notes": notes,
            "projects": projects,
        })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |n: usize, one: &str, many: &str| {
            format!("{} {}", grouped(n), if n == 1 { one } else { many })
        };
        write!(
            f,
            "{} {} : {}, {}, {}",
            self.source.kind(),
            printable(self.source.target(), 200),
            count(self.entries, "entry", "entries"),
            count(self.projects.len(), "project", "projects"),
            count(self.findings.len(), "finding", "findings"),
        )?;
        if !self.notes.is_empty() {
            write!(f, " ({})", count(self.notes.len(), "note", "notes"))?;
        }
        writeln!(f)?;
        list(f, "finding", &self.findings)?;
        list(f, "note", &self.notes)?;
        for project in self.projects.iter().take(PROJECTS_LISTED_MAX) {
            writeln!(f, "  {project}")?;
        }
        if self.projects.len() > PROJECTS_LISTED_MAX {
            let more = self.projects.len() - PROJECTS_LISTED_MAX;
            writeln!(
                f,
                "  and {} more projects (--json lists all)",
                grouped(more)
            )?;
        }
        self.advice(f)
    }
}

impl Check {
    /// What to make of it, in a line or two.
    fn advice(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reads) = self.reads.filter(|r| !r.settled)
            && self.findings.iter().any(Finding::is_about_views)
        {
            writeln!(
                f,
                "the node's log grew during each of {} reads: a difference in its views may be entries that arrived meanwhile; run verify again",
                reads.attempts
            )?;
        }
        if !self.is_clean() {
            writeln!(
                f,
                "what each finding means, and what a node can and cannot fake: docs/trust.md and docs/operating.md (verify)"
            )?;
        }
        Ok(())
    }
}

fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, what: &str, items: &[T]) -> fmt::Result {
    for item in items.iter().take(LISTED_MAX) {
        writeln!(f, "  {what}: {item}")?;
    }
    if items.len() > LISTED_MAX {
        let more = grouped(items.len() - LISTED_MAX);
        writeln!(f, "  and {more} more {what}s (--json lists all)")?;
    }
    Ok(())
}

/// Sorts what the export verifier found into findings and notes, as
/// docs/protocol.md §7.3 says an honest export reads: forks are notes
/// always; a gap is a note in an export of a node's store (pending entries)
/// and a finding in a node's whole `GET /api/v1/entries`, which serves
/// linked entries only; an entry past a fork is a note (an older node
/// keeps such entries; they count nowhere); everything else is a finding.
pub fn classify(report: &Report, source: &Source) -> (Vec<Finding>, Vec<Note>) {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let names = |line: &usize| report.named.get(line).cloned().unwrap_or_default();
    for problem in &report.problems {
        match problem {
            Problem::MissingHeader => findings.push(Finding::NotAnExport {
                error: problem.to_string(),
            }),
            Problem::BadHeader(error) => findings.push(Finding::NotAnExport {
                error: error.to_string(),
            }),
            Problem::BadLine { line, error } => findings.push(Finding::BadEntry {
                line: *line,
                names: names(line),
                error: error.to_string(),
            }),
            Problem::Duplicate { line, id } => findings.push(Finding::DuplicateEntry {
                line: *line,
                id: id.to_string(),
            }),
            Problem::Refused {
                line,
                reason: Rejected::Frozen { seq, fork_seq },
            } => notes.push(Note::PastFork {
                line: *line,
                seq: *seq,
                fork_seq: *fork_seq,
            }),
            Problem::Refused { line, reason } => findings.push(Finding::RefusedEntry {
                line: *line,
                names: names(line),
                reason: reason.to_string(),
            }),
            Problem::Fork { author, proof } => notes.push(Note::Fork {
                author: author.to_string(),
                seq: proof.seq,
                fork: match proof.kind {
                    ForkKind::Equivocation => "equivocation",
                    ForkKind::BrokenLink => "broken_link",
                },
                entries: [proof.first.to_string(), proof.second.to_string()],
            }),
            Problem::Gap {
                author,
                missing_seq,
                unchained,
            } => match source {
                Source::Node(_) => findings.push(Finding::MissingEntry {
                    author: author.to_string(),
                    missing_seq: *missing_seq,
                    unchained: *unchained,
                }),
                Source::File(_) => notes.push(Note::Gap {
                    author: author.to_string(),
                    missing_seq: *missing_seq,
                    unchained: *unchained,
                }),
            },
        }
    }
    (findings, notes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::format::FormatError;
    use buildmesh_core::log::ForkProof;
    use buildmesh_protocol::{EntryId, PublicKey};

    fn report(problems: Vec<Problem>) -> Report {
        Report {
            problems,
            ..Report::default()
        }
    }

    #[test]
    fn forks_are_notes_and_gaps_depend_on_what_was_read() {
        let author = PublicKey([1; 32]);
        let proof = ForkProof::equivocation(3, EntryId([1; 32]), EntryId([2; 32]));
        let gap = Problem::Gap {
            author,
            missing_seq: 4,
            unchained: 2,
        };
        let report = report(vec![Problem::Fork { author, proof }, gap]);
        let (findings, notes) = classify(&report, &Source::File("x".into()));
        assert!(findings.is_empty());
        assert!(matches!(&notes[..], [Note::Fork { .. }, Note::Gap { .. }]));
        let (findings, notes) = classify(&report, &Source::Node("http://n".into()));
        assert!(matches!(
            &findings[..],
            [Finding::MissingEntry { missing_seq: 4, .. }]
        ));
        assert!(matches!(&notes[..], [Note::Fork { seq: 3, .. }]));
    }

    /// An older node keeps what its forked authors signed past the fork;
    /// a verifier's log refuses it. That is a fact about the author (it
    /// counts nowhere either way), not about the node.
    #[test]
    fn entries_past_a_fork_are_notes_other_refusals_findings() {
        let frozen = Problem::Refused {
            line: 9,
            reason: Rejected::Frozen {
                seq: 5,
                fork_seq: 3,
            },
        };
        let no_role = Problem::Refused {
            line: 10,
            reason: Rejected::NoRole,
        };
        let (findings, notes) = classify(
            &report(vec![frozen, no_role]),
            &Source::Node("http://n".into()),
        );
        assert!(matches!(
            &findings[..],
            [Finding::RefusedEntry { line: 10, .. }]
        ));
        assert_eq!(
            notes,
            [Note::PastFork {
                line: 9,
                seq: 5,
                fork_seq: 3
            }]
        );
        assert!(
            notes[0]
                .to_string()
                .contains("past the fork proven at seq 3")
        );
    }

    #[test]
    fn a_bad_line_is_a_finding_that_names_its_entry() {
        let mut report = report(vec![Problem::BadLine {
            line: 7,
            error: FormatError::Hex("signature"),
        }]);
        report.named.insert(
            7,
            crate::LineNames {
                id: Some("ab".repeat(32)),
                author: None,
                seq: Some(2),
            },
        );
        let (findings, _) = classify(&report, &Source::Node("http://n".into()));
        let text = findings[0].to_string();
        assert_eq!(
            text,
            format!(
                "line 7: entry {} (seq 2) does not check out: field signature is not valid hex of the right length",
                "ab".repeat(32)
            )
        );
    }

    fn check(findings: Vec<Finding>) -> Check {
        Check {
            source: Source::Node("http://127.0.0.1:7878".into()),
            checked_at: 5,
            lines: 1_235,
            entries: 1_234,
            authors: 3,
            findings,
            notes: Vec::new(),
            projects: vec![ProjectLine {
                project: "5f1c".repeat(16),
                name: "hello".into(),
                rows: 3,
                newest: Some("8d3e".repeat(10)),
                cells: vec![("linux".into(), "passed".into())],
            }],
            reads: Some(Reads {
                attempts: 1,
                settled: true,
            }),
        }
    }

    #[test]
    fn the_report_starts_with_a_summary_line() {
        let clean = check(Vec::new());
        let text = clean.to_string();
        assert_eq!(
            text,
            "node http://127.0.0.1:7878 : 1,234 entries, 1 project, 0 findings\n  \
             project hello (5f1c5f1c5f1c): 3 commits; newest 8d3e8d3e8d: linux passed\n"
        );
        let json = clean.to_json();
        assert_eq!(json["format"], "buildmesh-verify");
        assert_eq!(
            (json["clean"].clone(), json["entries"].clone()),
            (true.into(), 1234.into())
        );
        assert_eq!(
            json["projects"][0]["newest"]["cells"][0]["status"],
            "passed"
        );
    }

    #[test]
    fn each_finding_is_a_line_and_a_tagged_object() {
        let finding = Finding::DuplicateEntry {
            line: 9,
            id: "cd".repeat(32),
        };
        let found = check(vec![finding]);
        let text = found.to_string();
        assert!(
            text.starts_with("node http://127.0.0.1:7878 : 1,234 entries, 1 project, 1 finding\n")
        );
        assert!(text.contains(&format!(
            "  finding: line 9: entry {} appears a second time\n",
            "cd".repeat(32)
        )));
        let json = found.to_json();
        assert_eq!(json["clean"], false);
        assert_eq!(json["findings"][0]["kind"], "duplicate_entry");
        assert_eq!(json["findings"][0]["line"], 9);
        assert!(
            json["findings"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("line 9")
        );
    }
}
