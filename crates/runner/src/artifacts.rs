//! Files a passing build keeps: `[artifacts] paths`, matched in the work
//! dir after the steps and copied into the blob dir.
//!
//! An artifact that cannot be kept for want of something (no match, too
//! large, a name too long) is not an error: it is left out of the result
//! and the reason goes into the report's warnings. One that must not be
//! kept (a symbolic link, a hard link, not a regular file: see
//! [`crate::inside`]) is: the build is then an error that names it, and
//! nothing is kept. What is listed is always exactly what is stored: a
//! file is never cut (too large means left out), and neither is its name
//! (too long means left out), since a shortened name would name another
//! file.

mod glob;

use crate::blobs::BlobDir;
use crate::cancel::Cancel;
use crate::fit::truncate;
use crate::inside::{Inside, Kind, Refusal, Refused};
use crate::recipe::{ArtifactPattern, is_glob};
use buildmesh_protocol::{Artifact, LONG_TEXT_BYTES_MAX};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Most artifacts one build lists; further matches are left out.
pub const ARTIFACTS_MAX: usize = 32;
/// Default cap on one artifact's size, bytes.
pub const ARTIFACT_BYTES_MAX_DEFAULT: u64 = 256 * 1024 * 1024;
/// Longest artifact name listed, bytes (the protocol's limit).
pub const ARTIFACT_NAME_BYTES_MAX: usize = LONG_TEXT_BYTES_MAX;
/// Most warnings about single files one build reports; past this they
/// are counted in one last warning.
const FILE_WARNINGS_MAX: usize = 32;

/// Stores the files `patterns` match under `work_dir` in `blobs` and lists
/// them, by name: at most [`ARTIFACTS_MAX`], each at most `bytes_max`
/// bytes, each opened as [`Inside::open_file`] allows. A file refused for
/// safety goes into `refused`, and then nothing is stored or listed.
pub(crate) fn capture_artifacts(
    patterns: &[ArtifactPattern],
    work_dir: &Path,
    blobs: &BlobDir,
    bytes_max: u64,
    cancel: &Cancel,
    warnings: &mut Vec<String>,
    refused: &mut Refused,
) -> Vec<Artifact> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let inside = match Inside::open(work_dir) {
        Ok(inside) => inside,
        Err(e) => {
            warnings.push(format!("artifacts not kept: work dir: {e}"));
            return Vec::new();
        }
    };
    let refused_before = refused.len();
    let mut notes = Notes::default();
    let mut found = Vec::new();
    // Whether listing a pattern's directories already said something.
    let mut explained = Vec::new();
    for pattern in patterns {
        let said = notes.count + refused.len();
        found.push(expand(pattern, &inside, &mut |trouble| match trouble {
            Trouble::Directory { dir, why } if why.is_safety() => refused.push(
                &format!("artifact path {:?}: directory", pattern.text),
                dir,
                &why,
            ),
            Trouble::Directory { dir, why } => notes.push(format!(
                "artifact path {:?}: directory {} not searched: {why}",
                pattern.text,
                shown(dir)
            )),
            Trouble::NotUtf8(name) => notes.push(format!(
                "artifact {} left out: its name is not UTF-8",
                shown(&name)
            )),
        }));
        explained.push(notes.count + refused.len() > said);
    }
    let mut matched = Matched::default();
    for (pattern, names) in patterns.iter().zip(&found) {
        for name in names {
            matched.named.entry(name.clone()).or_default().by_name |= !pattern.is_glob();
        }
    }
    matched.open_all(&inside, &mut notes, refused);
    for ((pattern, names), explained) in patterns.iter().zip(&found).zip(explained) {
        if explained {
            continue;
        }
        if let Some(what) = matched.matches_nothing(names) {
            warnings.push(format!(
                "artifact path {:?} matches no {what}",
                pattern.text
            ));
        }
    }
    if refused.len() > refused_before {
        notes.finish(warnings);
        return Vec::new();
    }
    let artifacts = matched.store(blobs, bytes_max, cancel, &mut notes, warnings);
    notes.finish(warnings);
    artifacts
}

/// What [`expand`] ran into while listing directories.
pub(crate) enum Trouble<'a> {
    /// A directory on the way could not be listed (`Missing` ones are
    /// not reported: nothing there to match).
    Directory {
        /// Relative to the work dir; `.` for the work dir itself.
        dir: &'a str,
        /// Why.
        why: Refusal,
    },
    /// A name the glob matches is not UTF-8 (lossily shown): it cannot
    /// be listed by name, so it is left out.
    NotUtf8(String),
}

/// Every name relative to the work dir that `pattern` names (without a
/// glob) or matches (listing directories), in no particular order. Names
/// without a glob are not looked at here; directories listed are reached
/// as files are, without links. What gets in the way goes to `trouble`.
pub(crate) fn expand(
    pattern: &ArtifactPattern,
    inside: &Inside,
    trouble: &mut dyn FnMut(Trouble<'_>),
) -> Vec<String> {
    let mut found = vec![String::new()];
    for component in &pattern.components {
        let mut next = Vec::new();
        for name in found {
            let join = |part: &str| {
                if name.is_empty() {
                    part.to_owned()
                } else {
                    format!("{name}/{part}")
                }
            };
            if !is_glob(component) {
                next.push(join(component));
                continue;
            }
            let dir = if name.is_empty() { "." } else { name.as_str() };
            let entries = match inside.list(Path::new(dir)) {
                Ok(entries) => entries,
                // Not a directory, or not there: nothing to match in it.
                Err(Refusal::Missing) => continue,
                Err(why) => {
                    trouble(Trouble::Directory { dir, why });
                    continue;
                }
            };
            for entry in entries {
                match entry.to_str() {
                    Some(part) if glob::matches(component, part) => next.push(join(part)),
                    Some(_) => {}
                    None => {
                        let lossy = entry.to_string_lossy();
                        if glob::matches(component, &lossy) {
                            trouble(Trouble::NotUtf8(join(&lossy)));
                        }
                    }
                }
            }
        }
        found = next;
    }
    found
}

/// Every name the patterns gave, and what opening it found.
#[derive(Default)]
struct Matched {
    named: BTreeMap<String, Candidate>,
    /// The first [`ARTIFACTS_MAX`] opened, by name, still open.
    opened: Vec<(String, File)>,
    /// How many more could have been opened.
    more: usize,
}

#[derive(Default)]
struct Candidate {
    /// Named by a pattern without a glob, not only matched by one.
    by_name: bool,
    seen: Seen,
}

/// What opening one name found.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nothing there.
    #[default]
    Missing,
    /// A directory a glob matched: silently not a file.
    Directory,
    /// A file that may be kept.
    File,
    /// Not kept, and a warning or refusal says why.
    Explained,
}

impl Matched {
    /// Opens every name, in name order, keeping the first
    /// [`ARTIFACTS_MAX`] files open. Every name is opened (not only the
    /// first ones) so that whatever a pattern matched is judged.
    fn open_all(&mut self, inside: &Inside, notes: &mut Notes, refused: &mut Refused) {
        for (name, candidate) in &mut self.named {
            candidate.seen = if name.len() > ARTIFACT_NAME_BYTES_MAX {
                let why = format!(
                    "its name is {} bytes; the limit is {ARTIFACT_NAME_BYTES_MAX}",
                    name.len()
                );
                notes.push(format!("artifact {} left out: {why}", shown(name)));
                Seen::Explained
            } else {
                match inside.open_file(Path::new(name)) {
                    Ok(file) if self.opened.len() < ARTIFACTS_MAX => {
                        self.opened.push((name.clone(), file));
                        Seen::File
                    }
                    Ok(_) => {
                        self.more += 1;
                        Seen::File
                    }
                    Err(Refusal::Missing) => Seen::Missing,
                    Err(Refusal::NotRegular(Kind::Directory)) if !candidate.by_name => {
                        Seen::Directory
                    }
                    Err(why) if why.is_safety() => {
                        refused.push("artifact", name, &why);
                        Seen::Explained
                    }
                    Err(why) => {
                        notes.push(format!("artifact {} left out: {why}", shown(name)));
                        Seen::Explained
                    }
                }
            };
        }
    }

    /// What a pattern that gave `names` matches no one of, if it kept or
    /// explained none: "file" if nothing was there, else "regular file".
    fn matches_nothing(&self, names: &[String]) -> Option<&'static str> {
        let seen: Vec<Seen> = names
            .iter()
            .filter_map(|name| self.named.get(name).map(|c| c.seen))
            .collect();
        if seen
            .iter()
            .any(|s| matches!(s, Seen::File | Seen::Explained))
        {
            return None;
        }
        Some(if seen.iter().all(|s| *s == Seen::Missing) {
            "file"
        } else {
            "regular file"
        })
    }

    /// Stores the files kept open, in name order.
    fn store(
        self,
        blobs: &BlobDir,
        bytes_max: u64,
        cancel: &Cancel,
        notes: &mut Notes,
        warnings: &mut Vec<String>,
    ) -> Vec<Artifact> {
        let mut artifacts = Vec::new();
        for (name, file) in self.opened {
            if cancel.is_cancelled() {
                return artifacts;
            }
            match store(file, blobs, bytes_max) {
                Ok((hash, bytes)) => artifacts.push(Artifact { name, hash, bytes }),
                Err(why) => notes.push(format!("artifact {} left out: {why}", shown(&name))),
            }
        }
        if self.more > 0 {
            warnings.push(format!(
                "{} more artifacts matched and were left out; at most {ARTIFACTS_MAX} \
                 are kept, the first by name",
                self.more
            ));
        }
        artifacts
    }
}

/// Copies `file` (opened by [`Inside::open_file`]) into a blob, whole or
/// not at all.
fn store(
    file: File,
    blobs: &BlobDir,
    bytes_max: u64,
) -> Result<(buildmesh_protocol::BlobHash, u64), String> {
    let too_large =
        |bytes: u64| format!("it is {bytes} bytes; the limit is {bytes_max} (artifact_bytes_max)");
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if metadata.len() > bytes_max {
        return Err(too_large(metadata.len()));
    }
    let mut writer = blobs.writer(None).map_err(|e| format!("storing it: {e}"))?;
    // One byte past the cap tells a file that grew meanwhile.
    let mut limited: io::Take<File> = file.take(bytes_max.saturating_add(1));
    io::copy(&mut limited, &mut writer).map_err(|e| format!("copying it: {e}"))?;
    if writer.offered() > bytes_max {
        return Err(too_large(writer.offered()));
    }
    let stored = writer.finish().map_err(|e| format!("storing it: {e}"))?;
    Ok((stored.hash, stored.bytes))
}

/// A name as warnings show it: a name too long to list is cut here.
fn shown(name: &str) -> String {
    truncate(name, 200)
}

/// Warnings about single files, at most [`FILE_WARNINGS_MAX`] of them.
#[derive(Default)]
struct Notes {
    kept: Vec<String>,
    count: usize,
}

impl Notes {
    fn push(&mut self, warning: String) {
        self.count += 1;
        if self.kept.len() < FILE_WARNINGS_MAX {
            self.kept.push(warning);
        }
    }

    fn finish(self, warnings: &mut Vec<String>) {
        let more = self.count - self.kept.len();
        warnings.extend(self.kept);
        if more > 0 {
            warnings.push(format!("{more} more artifact warnings not shown"));
        }
    }
}
