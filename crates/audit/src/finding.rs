//! What checking a node (or an export) can find: findings, which mean the
//! node or the file is not what its signed entries say, and notes, which
//! are facts about authors that an honest log records too.
//!
//! Both serialize as JSON objects tagged by `kind` (`docs/operating.md`,
//! "Checking a node from outside", documents each): that shape is for
//! machines and stays stable; new kinds may be added.

use crate::report::LineNames;
use crate::text::printable;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// Where in a node's views something was found: a project, one of its
/// commits (a row), or one cell (commit × platform).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct At {
    /// The project id, hex.
    pub project: String,
    /// The project's name (as the log declares it, else as served).
    pub name: String,
    /// The commit of the row, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The platform of the cell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

impl At {
    /// A project.
    pub fn project(project: &str, name: &str) -> At {
        At {
            project: project.to_owned(),
            name: name.to_owned(),
            ..At::default()
        }
    }

    /// A row of this project.
    pub fn row(&self, commit: &str) -> At {
        At {
            commit: Some(commit.to_owned()),
            ..self.clone()
        }
    }

    /// A cell of this row.
    pub fn cell(&self, platform: &str) -> At {
        At {
            platform: Some(platform.to_owned()),
            ..self.clone()
        }
    }
}

impl fmt::Display for At {
    /// `project NAME (ID12)`, `… commit C10`, `… commit C10 × PLATFORM`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "project {} ({})",
            printable(&self.name, 64),
            printable(&self.project, 12)
        )?;
        if let Some(commit) = &self.commit {
            write!(f, " commit {}", short_commit(commit))?;
        }
        if let Some(platform) = &self.platform {
            write!(f, " × {}", printable(platform, 64))?;
        }
        Ok(())
    }
}

/// Something the node (or the file) shows that its signed entries do not
/// give. Any finding makes `buildmesh verify` exit 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The log served (or the file) is not an export: no header, or a
    /// header of another format or version.
    NotAnExport {
        /// What is wrong.
        error: String,
    },
    /// An entry line that does not check out: undecodable, not canonical,
    /// a bad key, a signature that does not verify, an id that is not the
    /// hash of the signed bytes, a `prev` or `seq` that breaks §5's rules.
    BadEntry {
        /// 1-based line number in the export.
        line: usize,
        /// What the line says it is.
        #[serde(flatten)]
        names: LineNames,
        /// What is wrong.
        error: String,
    },
    /// The same entry twice (never in an honest export, §7.3).
    DuplicateEntry {
        /// 1-based line number of the repeat.
        line: usize,
        /// The entry.
        id: String,
    },
    /// A validly signed entry no node would keep (§6.1): an honest node
    /// never holds one.
    RefusedEntry {
        /// 1-based line number.
        line: usize,
        /// The entry.
        #[serde(flatten)]
        names: LineNames,
        /// Why a node refuses it.
        reason: String,
    },
    /// An entry missing in the middle of an author's chain in a node's
    /// whole `GET /api/v1/entries`, which serves linked entries only: the
    /// node left it out.
    MissingEntry {
        /// The author, hex.
        author: String,
        /// The missing sequence number.
        missing_seq: u64,
        /// How many of the author's later entries were served anyway.
        unchained: usize,
    },
    /// The log declares this project, and the node does not list it.
    ProjectNotServed {
        /// The project.
        #[serde(flatten)]
        at: At,
    },
    /// The node lists this project, and its log declares no such project
    /// (or none whose declaration counts).
    ProjectNotInLog {
        /// The project.
        #[serde(flatten)]
        at: At,
    },
    /// The node's project list (`GET /api/v1/projects`) cannot be read as
    /// one.
    ProjectsUnreadable {
        /// What is wrong.
        error: String,
    },
    /// The node's matrix of a project cannot be read as a matrix.
    MatrixUnreadable {
        /// The project.
        #[serde(flatten)]
        at: At,
        /// What is wrong.
        error: String,
    },
    /// A field of the served matrix, row, cell or result differs from the
    /// log's (a name, a repository, a title, `broken`, an outcome, ...).
    Differs {
        /// Where.
        #[serde(flatten)]
        at: At,
        /// The field, such as `repository`, `title`, `cells`, or
        /// `results[ID].outcome`.
        field: String,
        /// What the node serves (`null` when absent).
        served: Value,
        /// What the log gives (either value when it depends on leases).
        derived: Vec<Value>,
    },
    /// The log gives this commit a row among the newest, and the node
    /// does not show it.
    RowNotServed {
        /// The row.
        #[serde(flatten)]
        at: At,
    },
    /// The node shows a row for a commit its log does not give.
    RowNotInLog {
        /// The row.
        #[serde(flatten)]
        at: At,
    },
    /// The node shows the log's commits in another order.
    RowsOutOfOrder {
        /// The project.
        #[serde(flatten)]
        at: At,
        /// The commits as served (those the log also gives).
        served: Vec<String>,
        /// The commits as the log orders them.
        derived: Vec<String>,
    },
    /// A cell whose served status is not one its entries give.
    CellStatus {
        /// The cell.
        #[serde(flatten)]
        at: At,
        /// The status served.
        served: Value,
        /// The status the log gives (two when it depends on a lease:
        /// building while the lease lasts, then the other).
        derived: Vec<Value>,
    },
    /// A result the node shows in a cell that is not in its log at all.
    ResultNotInLog {
        /// The cell.
        #[serde(flatten)]
        at: At,
        /// The result entry id served.
        id: String,
    },
    /// A result the node shows in a cell that is in its log but does not
    /// count there (an untrusted or forked builder, another cell).
    ResultNotCounted {
        /// The cell.
        #[serde(flatten)]
        at: At,
        /// The result entry id served.
        id: String,
    },
    /// A result that counts in a cell by the log, and that the node's
    /// cell leaves out.
    ResultDropped {
        /// The cell.
        #[serde(flatten)]
        at: At,
        /// The result entry id.
        id: String,
        /// Its builder, as the log's matrix gives it.
        builder: Value,
        /// Its outcome, as the log's matrix gives it.
        outcome: Value,
    },
}

impl Finding {
    /// Whether this is about the views the node serves (the matrix, the
    /// project list) rather than about its signed entries: those depend on
    /// when they were read, entries do not.
    pub fn is_about_views(&self) -> bool {
        !matches!(
            self,
            Finding::NotAnExport { .. }
                | Finding::BadEntry { .. }
                | Finding::DuplicateEntry { .. }
                | Finding::RefusedEntry { .. }
                | Finding::MissingEntry { .. }
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NotAnExport { .. }
            | Finding::BadEntry { .. }
            | Finding::DuplicateEntry { .. }
            | Finding::RefusedEntry { .. }
            | Finding::MissingEntry { .. } => self.fmt_log(f),
            Finding::CellStatus { .. }
            | Finding::ResultNotInLog { .. }
            | Finding::ResultNotCounted { .. }
            | Finding::ResultDropped { .. } => self.fmt_cell(f),
            _ => self.fmt_views(f),
        }
    }
}

impl Finding {
    /// A finding about the entries.
    fn fmt_log(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::NotAnExport { error } => {
                write!(
                    f,
                    "the log is not a buildmesh export: {}",
                    printable(error, 200)
                )
            }
            Finding::BadEntry { line, names, error } => {
                write!(f, "line {line}: {}", named(names))?;
                write!(f, "does not check out: {}", printable(error, 300))
            }
            Finding::DuplicateEntry { line, id } => {
                write!(f, "line {line}: entry {id} appears a second time")
            }
            Finding::RefusedEntry {
                line,
                names,
                reason,
            } => write!(
                f,
                "line {line}: {}is signed but no node would keep it: {}",
                named(names),
                printable(reason, 300)
            ),
            Finding::MissingEntry {
                author,
                missing_seq,
                unchained,
            } => write!(
                f,
                "author {author}: the node serves {unchained} later entries but not seq {missing_seq}, which they chain to (an entry left out)"
            ),
            _ => Ok(()),
        }
    }

    /// A finding about projects, matrices and rows.
    fn fmt_views(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ProjectNotServed { at } => {
                write!(f, "{at}: declared in the log, not listed by the node")
            }
            Finding::ProjectNotInLog { at } => write!(
                f,
                "{at}: listed by the node, and its log declares no such project"
            ),
            Finding::ProjectsUnreadable { error } => write!(
                f,
                "the project list served is unreadable: {}",
                printable(error, 200)
            ),
            Finding::MatrixUnreadable { at, error } => {
                write!(
                    f,
                    "{at}: the matrix served is unreadable: {}",
                    printable(error, 200)
                )
            }
            Finding::Differs {
                at,
                field,
                served,
                derived,
            } => write!(
                f,
                "{at}: {} served as {}; the log gives {}",
                printable(field, 100),
                shown(served),
                alternatives(derived)
            ),
            Finding::RowNotServed { at } => {
                write!(
                    f,
                    "{at}: among the newest in the log, not shown by the node"
                )
            }
            Finding::RowNotInLog { at } => {
                write!(f, "{at}: shown by the node, not announced in its log")
            }
            Finding::RowsOutOfOrder { at, .. } => {
                write!(f, "{at}: rows served in another order than the log gives")
            }
            _ => Ok(()),
        }
    }

    /// A finding about one cell.
    fn fmt_cell(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::CellStatus {
                at,
                served,
                derived,
            } => write!(
                f,
                "{at}: served as {}; its entries give {}",
                shown(served),
                alternatives(derived)
            ),
            Finding::ResultNotInLog { at, id } => write!(
                f,
                "{at}: shows result {} that is not in the node's log",
                printable(id, 64)
            ),
            Finding::ResultNotCounted { at, id } => write!(
                f,
                "{at}: shows result {} that the log holds but does not count in this cell",
                printable(id, 64)
            ),
            Finding::ResultDropped {
                at,
                id,
                builder,
                outcome,
            } => write!(
                f,
                "{at}: leaves out result {id} ({} by {}), which counts by the log",
                shown(outcome),
                shown(builder)
            ),
            _ => Ok(()),
        }
    }
}

/// `entry ID (author A, seq N) ` or nothing.
fn named(names: &LineNames) -> String {
    let text = names.to_string();
    if text.is_empty() { text } else { text + " " }
}

/// A JSON value from a node, short and printable: strings bare, `null`
/// as `none`, anything cut short ending in `…`.
fn shown(value: &Value) -> String {
    let (text, max) = match value {
        Value::String(text) => (text.clone(), 100),
        Value::Null => return "none".into(),
        other => (other.to_string(), 160),
    };
    let mut shown = printable(&text, max);
    if text.chars().count() > max {
        shown.push('…');
    }
    shown
}

/// A commit as `git log --oneline` and `buildmesh status` show it, or at
/// most 12 characters of what was served if that is no commit id.
pub(crate) fn short_commit(commit: &str) -> String {
    commit
        .parse::<buildmesh_protocol::CommitId>()
        .map_or_else(|_| printable(commit, 12), |c| c.short())
}

fn alternatives(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().map(shown).collect();
    match shown.len() {
        0 => "none".into(),
        _ => shown.join(" or "),
    }
}

/// A fact about an author that an honest log records too: reported, never
/// counted as a finding (docs/protocol.md §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// The author signed two histories; both entries are kept as proof,
    /// and nodes holding both stop counting the author's entries.
    Fork {
        /// The author, hex.
        author: String,
        /// The sequence number of the later of the two.
        seq: u64,
        /// `equivocation` (two entries at one seq) or `broken_link` (an
        /// entry that does not chain to its predecessor).
        fork: &'static str,
        /// The two entries.
        entries: [String; 2],
    },
    /// An entry signed past a fork proven against its author: nodes no
    /// longer keep such entries (docs/protocol.md §6, "Freezing"), but a
    /// node older than that rule, or its export, still holds them. They
    /// count nowhere either way.
    PastFork {
        /// 1-based line number.
        line: usize,
        /// The entry's sequence number.
        seq: u64,
        /// The fork's: the last sequence number nodes keep.
        fork_seq: u64,
    },
    /// In an export of a node's store (`buildmesh log export`): entries
    /// waiting for a predecessor the node has not received yet.
    Gap {
        /// The author, hex.
        author: String,
        /// The first missing sequence number.
        missing_seq: u64,
        /// How many later entries wait for it.
        unchained: usize,
    },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Fork {
                author,
                seq,
                fork,
                entries,
            } => {
                let what = if *fork == "equivocation" {
                    "signed two different entries"
                } else {
                    "signed an entry that does not chain to its predecessor"
                };
                write!(
                    f,
                    "author {author} forked: {what} at seq {seq} (entries {} and {}); both are kept as proof against the author, and its entries count nowhere",
                    entries[0], entries[1]
                )
            }
            Note::PastFork {
                line,
                seq,
                fork_seq,
            } => write!(
                f,
                "line {line}: seq {seq} is past the fork proven at seq {fork_seq}; nodes no longer keep such entries (an older node may)"
            ),
            Note::Gap {
                author,
                missing_seq,
                unchained,
            } => write!(
                f,
                "author {author}: seq {missing_seq} not received yet; {unchained} later entries wait for it"
            ),
        }
    }
}
