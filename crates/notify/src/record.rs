//! What a notifier delivered, on disk: one line per message, appended and
//! synced before the next, so a restart does not send anything twice.
//! Branch and platform names are written in hex: a peer chooses them, and
//! a tab or a line break in one must not break a line.
//!
//! A crash after the server took a message and before its line was synced
//! sends that one message again after the restart: at least once, never a
//! storm (docs/notify.md says so).

use crate::Error;
use buildmesh_core::notify::{EventKey, EventKind, StatusKey, StatusState};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Lines a record holds before it is cut back to [`RECORD_LINES_KEPT`]:
/// a message older than a notifier's age bound is never sent again anyway.
pub const RECORD_LINES_MAX: usize = 20_000;

/// Lines kept when a record is cut back.
pub const RECORD_LINES_KEPT: usize = 10_000;

/// A key a record can hold as one line.
pub trait RecordKey: Sized {
    /// The line (no line breaks).
    fn to_line(&self) -> String;
    /// The key of a line, or `None` for a line of another kind or a torn
    /// last line.
    fn from_line(line: &str) -> Option<Self>;
}

/// One notifier's record.
pub struct SentRecord {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl SentRecord {
    /// Opens the record at `path` (created if missing) and reads back the
    /// keys it holds.
    pub fn open<K: RecordKey>(path: &Path) -> Result<(SentRecord, Vec<K>), Error> {
        let lines = read_lines(path)?;
        let keys = lines.iter().filter_map(|l| K::from_line(l)).collect();
        let mut record = SentRecord {
            path: path.to_owned(),
            file: append_to(path)?,
            lines: lines.len(),
        };
        if record.lines > RECORD_LINES_MAX {
            record.cut_back(&lines)?;
        }
        Ok((record, keys))
    }

    /// Appends `key`, synced to disk before it returns.
    pub fn append<K: RecordKey>(&mut self, key: &K) -> Result<(), Error> {
        let line = format!("{}\n", key.to_line());
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::Record(self.path.clone(), e))?;
        self.lines += 1;
        if self.lines > RECORD_LINES_MAX {
            let lines = read_lines(&self.path)?;
            self.cut_back(&lines)?;
        }
        Ok(())
    }

    /// Rewrites the record with its newest [`RECORD_LINES_KEPT`] lines (a
    /// new file renamed over the old, so a crash keeps one or the other).
    fn cut_back(&mut self, lines: &[String]) -> Result<(), Error> {
        let kept = &lines[lines.len().saturating_sub(RECORD_LINES_KEPT)..];
        let fresh = self.path.with_extension("new");
        let failed = |e| Error::Record(self.path.clone(), e);
        let mut out = File::create(&fresh).map_err(failed)?;
        for line in kept {
            writeln!(out, "{line}").map_err(failed)?;
        }
        out.sync_all().map_err(failed)?;
        std::fs::rename(&fresh, &self.path).map_err(failed)?;
        self.file = append_to(&self.path)?;
        self.lines = kept.len();
        Ok(())
    }
}

fn append_to(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::Record(path.to_owned(), e))
}

fn read_lines(path: &Path) -> Result<Vec<String>, Error> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Record(path.to_owned(), e)),
    };
    BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Record(path.to_owned(), e))
}

impl RecordKey for EventKey {
    fn to_line(&self) -> String {
        format!(
            "event\t{}\t{}\t{}\t{}",
            self.project,
            hex::encode(&self.branch),
            self.commit,
            self.kind.name()
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let mut fields = line.split('\t');
        if fields.next()? != "event" {
            return None;
        }
        let project = fields.next()?.parse().ok()?;
        let branch = String::from_utf8(hex::decode(fields.next()?).ok()?).ok()?;
        let commit = fields.next()?.parse().ok()?;
        let kind_text = fields.next()?;
        if fields.next().is_some() {
            return None;
        }
        let kind = EventKind::ALL.into_iter().find(|k| k.name() == kind_text)?;
        Some(EventKey {
            project,
            branch,
            commit,
            kind,
        })
    }
}

impl RecordKey for StatusKey {
    fn to_line(&self) -> String {
        let (project, commit, platform, state, results) = self;
        format!(
            "status\t{project}\t{commit}\t{}\t{}\t{results}",
            hex::encode(platform),
            state.as_str()
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let ["status", project, commit, platform, state, results] = fields[..] else {
            return None;
        };
        let state = [
            StatusState::Pending,
            StatusState::Success,
            StatusState::Failure,
            StatusState::Error,
        ]
        .into_iter()
        .find(|s| s.as_str() == state)?;
        Some((
            project.parse().ok()?,
            commit.parse().ok()?,
            String::from_utf8(hex::decode(platform).ok()?).ok()?,
            state,
            results.parse().ok()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use buildmesh_protocol::{CommitId, ProjectId};

    fn key(n: u8) -> EventKey {
        EventKey {
            project: ProjectId([n; 32]),
            branch: "release/1.x\tand\na line".into(),
            commit: CommitId::from_bytes(&[n; 20]).unwrap(),
            kind: EventKind::StillFailing,
        }
    }

    #[test]
    fn keys_come_back_after_a_reopen_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.sent");
        let (mut record, held) = SentRecord::open::<EventKey>(&path).unwrap();
        assert!(held.is_empty());
        record.append(&key(1)).unwrap();
        record.append(&key(2)).unwrap();
        let status: StatusKey = (
            ProjectId([3; 32]),
            CommitId::from_bytes(&[3; 20]).unwrap(),
            "linux".into(),
            StatusState::Failure,
            2,
        );
        record.append(&status).unwrap();
        drop(record);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"event\t0102").unwrap();
        let (_, held) = SentRecord::open::<EventKey>(&path).unwrap();
        assert_eq!(held, [key(1), key(2)]);
        let (_, held) = SentRecord::open::<StatusKey>(&path).unwrap();
        assert_eq!(held, [status]);
    }

    #[test]
    fn a_long_record_is_cut_back_to_its_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.sent");
        let body: String = (0..RECORD_LINES_MAX + 5)
            .map(|n| format!("line {n}\n"))
            .collect();
        std::fs::write(&path, body).unwrap();
        let (mut record, _) = SentRecord::open::<EventKey>(&path).unwrap();
        record.append(&key(9)).unwrap();
        let (_, held) = SentRecord::open::<EventKey>(&path).unwrap();
        assert_eq!(held, [key(9)]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), RECORD_LINES_KEPT + 1);
        assert!(text.starts_with(&format!(
            "line {}\n",
            RECORD_LINES_MAX + 5 - RECORD_LINES_KEPT
        )));
    }
}
