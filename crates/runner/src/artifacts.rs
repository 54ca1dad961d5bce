//! Files a passing build keeps: `[artifacts] paths`, matched in the work
//! dir after the steps and copied into the blob dir.
//!
//! Like metrics, an artifact that cannot be kept is not an error: it is
//! left out of the result and the reason goes into the report's warnings.
//! What is listed is always exactly what is stored: a file is never cut
//! (too large means left out), and neither is its name (too long means
//! left out), since a shortened name would name another file.

mod glob;

use crate::blobs::BlobDir;
use crate::cancel::Cancel;
use crate::fit::truncate;
use crate::recipe::{ArtifactPattern, is_glob};
use buildmesh_protocol::{Artifact, LONG_TEXT_BYTES_MAX};
use nix::fcntl::OFlag;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
/// them, by name: regular files only, at most [`ARTIFACTS_MAX`], each at
/// most `bytes_max` bytes, none whose real path leaves the work dir.
pub(crate) fn capture_artifacts(
    patterns: &[ArtifactPattern],
    work_dir: &Path,
    blobs: &BlobDir,
    bytes_max: u64,
    cancel: &Cancel,
    warnings: &mut Vec<String>,
) -> Vec<Artifact> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let inside = match work_dir.canonicalize() {
        Ok(inside) => inside,
        Err(e) => {
            warnings.push(format!("artifacts not kept: work dir: {e}"));
            return Vec::new();
        }
    };
    let mut notes = Notes::default();
    let mut files = BTreeMap::new();
    for pattern in patterns {
        let before = notes.count;
        let found = expand(pattern, work_dir, &inside, &mut notes);
        let mut kept = 0;
        for (name, path) in &found {
            match resolve(name, path, &inside) {
                Ok(real) => {
                    files.insert(name.clone(), real);
                    kept += 1;
                }
                Err(Refusal::NotAFile) if pattern.is_glob() => {}
                Err(refusal) => notes.push(format!("artifact {} left out: {refusal}", shown(name))),
            }
        }
        if kept == 0 && notes.count == before {
            let what = if found.is_empty() {
                "file"
            } else {
                "regular file"
            };
            warnings.push(format!(
                "artifact path {:?} matches no {what}",
                pattern.text
            ));
        }
    }
    let mut artifacts = Vec::new();
    let total = files.len();
    for (index, (name, path)) in files.into_iter().enumerate() {
        if cancel.is_cancelled() {
            break;
        }
        if artifacts.len() == ARTIFACTS_MAX {
            warnings.push(format!(
                "{} more artifacts matched and were left out; at most {ARTIFACTS_MAX} \
                 are kept, the first by name",
                total - index
            ));
            break;
        }
        match store(&path, blobs, bytes_max) {
            Ok((hash, bytes)) => artifacts.push(Artifact { name, hash, bytes }),
            Err(why) => notes.push(format!("artifact {} left out: {why}", shown(&name))),
        }
    }
    notes.finish(warnings);
    artifacts
}

/// Every path that `pattern` names and that exists (as a link or not),
/// with its name relative to the work dir, in no particular order.
fn expand(
    pattern: &ArtifactPattern,
    work_dir: &Path,
    inside: &Path,
    notes: &mut Notes,
) -> Vec<(String, PathBuf)> {
    let mut found = vec![(String::new(), work_dir.to_owned())];
    for component in &pattern.components {
        let mut next = Vec::new();
        for (name, path) in found {
            let join = |part: &str| {
                let name = if name.is_empty() {
                    part.to_owned()
                } else {
                    format!("{name}/{part}")
                };
                (name, path.join(part))
            };
            if !is_glob(component) {
                let (name, path) = join(component);
                if path.symlink_metadata().is_ok() {
                    next.push((name, path));
                }
                continue;
            }
            // Listing a directory needs it to be one, inside the work dir.
            if !path.is_dir() {
                continue;
            }
            if !path
                .canonicalize()
                .is_ok_and(|real| real.starts_with(inside))
            {
                let dir = if name.is_empty() { "." } else { name.as_str() };
                notes.push(format!(
                    "artifact path {:?}: directory {} leads outside the work dir; \
                     not searched",
                    pattern.text,
                    shown(dir)
                ));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(&path) else {
                continue;
            };
            for entry in entries.flatten() {
                let file_name = entry.file_name();
                match file_name.to_str() {
                    Some(part) if glob::matches(component, part) => next.push(join(part)),
                    Some(_) => {}
                    None => {
                        let lossy = file_name.to_string_lossy();
                        if glob::matches(component, &lossy) {
                            notes.push(format!(
                                "artifact {} left out: its name is not UTF-8",
                                shown(&join(&lossy).0)
                            ));
                        }
                    }
                }
            }
        }
        found = next;
    }
    found
}

/// Why a matched path is not kept.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it leads outside the work dir")]
    Outside,
    #[error("its name is {0} bytes; the limit is {ARTIFACT_NAME_BYTES_MAX}")]
    NameTooLong(usize),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The real path of the file `name`, if it may be kept.
fn resolve(name: &str, path: &Path, inside: &Path) -> Result<PathBuf, Refusal> {
    let real = path.canonicalize()?;
    if !real.starts_with(inside) {
        return Err(Refusal::Outside);
    }
    if !real.metadata()?.is_file() {
        return Err(Refusal::NotAFile);
    }
    if name.len() > ARTIFACT_NAME_BYTES_MAX {
        return Err(Refusal::NameTooLong(name.len()));
    }
    Ok(real)
}

/// Copies the file at `real` (a path without links) into a blob, whole
/// or not at all.
fn store(
    real: &Path,
    blobs: &BlobDir,
    bytes_max: u64,
) -> Result<(buildmesh_protocol::BlobHash, u64), String> {
    let too_large =
        |bytes: u64| format!("it is {bytes} bytes; the limit is {bytes_max} (artifact_bytes_max)");
    // No following a link swapped in since the path was resolved, and no
    // waiting on a FIFO swapped in for the file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(real)
        .map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(Refusal::NotAFile.to_string());
    }
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
