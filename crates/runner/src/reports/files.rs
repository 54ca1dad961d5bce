//! Report files, read from beneath the work dir as artifacts are
//! ([`crate::inside`]: no link followed, regular files with one link only),
//! and refused before they are read when they are too large.

use crate::artifacts::{Trouble, expand};
use crate::inside::{Inside, Kind, Refusal};
use crate::recipe::ArtifactPattern;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

/// Largest report file read, bytes: larger ones are refused from their
/// size, before a byte is read.
pub const REPORT_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Most bytes of report files one build reads, all files together.
pub const REPORT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Most JUnit files one build reads; further matches are left out.
pub const REPORT_FILES_MAX: usize = 32;

/// Why a report file gave no text.
pub(super) enum Unread {
    /// Nothing there: the step that writes it did not run, or failed first.
    Missing,
    /// A directory: for a name a glob found, nothing to say about.
    Directory,
    /// Refused: a link, too large, not UTF-8, ...
    Refused(String),
    /// Could not be read (permissions, I/O).
    Failed(String),
}

/// The work dir, opened once, and what is left of [`REPORT_BYTES_MAX`].
pub(super) struct Files {
    inside: Result<Inside, String>,
    left: u64,
}

impl Files {
    pub(super) fn open(work_dir: &Path) -> Files {
        Files {
            inside: Inside::open(work_dir).map_err(|e| format!("work dir: {e}")),
            left: REPORT_BYTES_MAX,
        }
    }

    /// The names `patterns` give, sorted, each once, at most
    /// [`REPORT_FILES_MAX`]; each with whether a glob found it (then a
    /// directory is silently not a file). What got in the way, and
    /// patterns that match nothing, go to `problem`.
    pub(super) fn matching(
        &self,
        patterns: &[ArtifactPattern],
        problem: &mut dyn FnMut(String),
    ) -> Vec<(String, bool)> {
        let Ok(inside) = &self.inside else {
            return patterns
                .iter()
                .map(|p| (p.components.join("/"), false))
                .collect();
        };
        let mut named = BTreeSet::new();
        let mut globbed = BTreeSet::new();
        for pattern in patterns {
            if !pattern.is_glob() {
                named.insert(pattern.components.join("/"));
                continue;
            }
            let mut said = false;
            let found = expand(pattern, inside, &mut |trouble| {
                said = true;
                problem(match trouble {
                    Trouble::Directory { dir, why } => {
                        format!(
                            "junit {}: directory {dir} not searched: {why}",
                            pattern.text
                        )
                    }
                    Trouble::NotUtf8(name) => {
                        format!("junit {name} not read: its name is not UTF-8")
                    }
                });
            });
            if found.is_empty() && !said {
                problem(format!("junit {}: matches no file", pattern.text));
            }
            globbed.extend(found);
        }
        let mut all: Vec<(String, bool)> = named.iter().map(|n| (n.clone(), false)).collect();
        all.extend(
            globbed
                .into_iter()
                .filter(|n| !named.contains(n))
                .map(|n| (n, true)),
        );
        all.sort();
        if all.len() > REPORT_FILES_MAX {
            problem(format!(
                "{} more JUnit files matched and were not read; at most {REPORT_FILES_MAX} are, \
                 the first by name",
                all.len() - REPORT_FILES_MAX
            ));
            all.truncate(REPORT_FILES_MAX);
        }
        all
    }

    /// The text of the file `name` (relative to the work dir), UTF-8, a
    /// leading byte order mark left out.
    pub(super) fn text(&mut self, name: &str) -> Result<String, Unread> {
        let inside = self
            .inside
            .as_ref()
            .map_err(|e| Unread::Failed(e.clone()))?;
        let file = match inside.open_file(Path::new(name)) {
            Ok(file) => file,
            Err(Refusal::Missing) => return Err(Unread::Missing),
            Err(Refusal::NotRegular(Kind::Directory)) => return Err(Unread::Directory),
            Err(why @ Refusal::Io(_)) => return Err(Unread::Failed(why.to_string())),
            Err(why) => {
                return Err(Unread::Refused(format!(
                    "{why}; only regular files inside the work dir are read"
                )));
            }
        };
        let bytes = file
            .metadata()
            .map_err(|e| Unread::Failed(e.to_string()))?
            .len();
        let cap = REPORT_FILE_BYTES_MAX.min(self.left);
        if bytes > cap {
            return Err(Unread::Refused(too_large(bytes, cap == self.left)));
        }
        let mut content = Vec::new();
        // One byte past the cap tells a file that grew since.
        file.take(cap + 1)
            .read_to_end(&mut content)
            .map_err(|e| Unread::Failed(e.to_string()))?;
        let read = u64::try_from(content.len()).unwrap_or(u64::MAX);
        if read > cap {
            return Err(Unread::Refused(too_large(read, cap == self.left)));
        }
        self.left -= read;
        let text = String::from_utf8(content)
            .map_err(|e| Unread::Refused(format!("not UTF-8: {}", e.utf8_error())))?;
        Ok(match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        })
    }
}

fn too_large(bytes: u64, total: bool) -> String {
    if total {
        format!(
            "it is {bytes} bytes, past what is left of the {} MiB all reports of a build may \
             take together",
            REPORT_BYTES_MAX >> 20
        )
    } else {
        format!(
            "it is {bytes} bytes; the limit is {REPORT_FILE_BYTES_MAX} ({} MiB) per report file",
            REPORT_FILE_BYTES_MAX >> 20
        )
    }
}
