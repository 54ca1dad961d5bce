//! The build area's size, watched while a step runs: `RLIMIT_FSIZE` caps
//! one file, this caps them all, and keeps the node's disk from filling.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Shortest time between two measures.
const INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Longest: a tree slow to walk is still measured this often.
const INTERVAL_MAX: Duration = Duration::from_secs(10);
/// A measure may cost at most this share of the time between measures.
const INTERVAL_PER_WALK: u32 = 20;
/// Entries one measure visits; a tree larger than this counts as full (a
/// step that makes millions of files is what this guards against).
const ENTRIES_MAX: u64 = 2_000_000;
/// Free space the file system must keep while a step runs, bytes: below
/// it the step is stopped, whatever the cap, so that files a step deleted
/// but holds open, or anything else filling the disk, never starve the
/// node's own store.
const FREE_BYTES_MIN: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// Measures the bytes on disk under some directories, now and then.
#[derive(Debug)]
pub struct DiskWatch {
    roots: Vec<PathBuf>,
    cap_bytes: u64,
    next: Instant,
    interval: Duration,
}

/// What a measure found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// Within the cap.
    Fine,
    /// Past it, or unmeasurable, or the disk is nearly full: why, for the
    /// step's log.
    Over(String),
}

impl DiskWatch {
    /// Watches `roots` against `cap_bytes`; the first measure is due after
    /// [`INTERVAL_MIN`].
    pub fn new(roots: Vec<PathBuf>, cap_bytes: u64) -> DiskWatch {
        DiskWatch {
            roots,
            cap_bytes,
            next: Instant::now() + INTERVAL_MIN,
            interval: INTERVAL_MIN,
        }
    }

    /// Measures if a measure is due at `now`. The interval grows with the
    /// cost of a walk, so a huge tree is not walked back to back.
    pub fn check(&mut self, now: Instant) -> Usage {
        if now < self.next {
            return Usage::Fine;
        }
        let started = Instant::now();
        let usage = self.verdict();
        let spent = started.elapsed() * INTERVAL_PER_WALK;
        self.interval = spent.clamp(INTERVAL_MIN, INTERVAL_MAX);
        self.next = now + self.interval;
        usage
    }

    fn verdict(&self) -> Usage {
        if let Some(free) = self.free_bytes().filter(|free| *free < FREE_BYTES_MIN) {
            return Usage::Over(format!(
                "the disk holding the work dir has {} MiB free, under the {} MiB the node \
                 keeps for itself",
                free / MIB,
                FREE_BYTES_MIN / MIB
            ));
        }
        match self.measure() {
            None => Usage::Over(
                "the work dir, /tmp and HOME could not be measured (a directory the runner \
                 cannot read, a path too long, or too many files)"
                    .into(),
            ),
            Some(bytes) if bytes > self.cap_bytes => Usage::Over(format!(
                "the work dir, /tmp, HOME and the cache hold {} MiB, past the node's cap of \
                 {} MiB",
                bytes / MIB,
                self.cap_bytes / MIB
            )),
            Some(_) => Usage::Fine,
        }
    }

    /// Free bytes on the file system of the first root, if it can be told.
    // The counts are u64 on Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    fn free_bytes(&self) -> Option<u64> {
        let stat = nix::sys::statvfs::statvfs(self.roots.first()?).ok()?;
        Some(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
    }

    /// Bytes allocated on disk under the roots (not following symlinks);
    /// `None` if a directory cannot be read (a step may make one that the
    /// runner cannot) or past [`ENTRIES_MAX`] entries: a step must not
    /// hide what it wrote from the measure.
    pub fn measure(&self) -> Option<u64> {
        let mut pending = self.roots.clone();
        let (mut bytes, mut entries) = (0u64, 0u64);
        while let Some(dir) = pending.pop() {
            let listing = match std::fs::read_dir(&dir) {
                Ok(listing) => listing,
                // Removed since it was listed: nothing to count.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => return None,
            };
            for entry in listing {
                entries += 1;
                if entries > ENTRIES_MAX {
                    return None;
                }
                let Ok(metadata) = entry.and_then(|e| {
                    let metadata = e.metadata()?;
                    if metadata.is_dir() {
                        pending.push(e.path());
                    }
                    Ok(metadata)
                }) else {
                    continue;
                };
                bytes = bytes.saturating_add(metadata.blocks().saturating_mul(512));
            }
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_tree_past_the_cap_is_over_and_sparse_files_cost_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 256 * 1024]).unwrap();
        let sparse = std::fs::File::create(dir.path().join("sparse")).unwrap();
        sparse.set_len(1 << 40).unwrap();
        let mut watch = DiskWatch::new(vec![dir.path().to_owned()], 128 * 1024);
        let measured = watch.measure().unwrap();
        assert!(measured >= 256 * 1024);
        assert!(measured < 1 << 30, "a sparse file is not counted whole");
        assert_eq!(watch.check(Instant::now()), Usage::Fine, "not due yet");
        let later = Instant::now() + INTERVAL_MIN * 2;
        assert!(
            matches!(watch.check(later), Usage::Over(why) if why.contains("past the node's cap"))
        );
        let mut roomy = DiskWatch::new(vec![dir.path().to_owned()], 1 << 30);
        assert_eq!(roomy.check(later), Usage::Fine);
    }

    #[test]
    fn a_directory_that_cannot_be_read_counts_as_over() {
        let dir = tempfile::tempdir().unwrap();
        let watch = DiskWatch::new(vec![dir.path().join("missing")], 1 << 30);
        assert_eq!(watch.measure(), Some(0), "gone is empty");
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let watch = DiskWatch::new(vec![file], 1 << 30);
        assert_eq!(watch.measure(), None, "not a directory: cannot be listed");
    }
}
