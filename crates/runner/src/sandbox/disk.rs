//! The build area's size, watched while a step runs: `RLIMIT_FSIZE` caps
//! one file, this caps them all.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Shortest time between two measures.
const INTERVAL_MIN: Duration = Duration::from_secs(1);
/// A measure may cost at most this share of the time between measures.
const INTERVAL_PER_WALK: u32 = 20;
/// Entries one measure visits; a tree larger than this counts as full (a
/// step that makes millions of files is what this guards against).
const ENTRIES_MAX: u64 = 2_000_000;

/// Measures the bytes on disk under some directories, now and then.
#[derive(Debug)]
pub struct DiskWatch {
    roots: Vec<PathBuf>,
    cap_bytes: u64,
    next: Instant,
    interval: Duration,
}

/// What a measure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Within the cap.
    Fine,
    /// Past it: this many bytes (or more, if the walk was cut short).
    Over(u64),
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

    /// The cap, bytes.
    pub fn cap_bytes(&self) -> u64 {
        self.cap_bytes
    }

    /// Measures if a measure is due at `now`. The interval grows with the
    /// cost of a walk, so a huge tree is not walked back to back.
    pub fn check(&mut self, now: Instant) -> Usage {
        if now < self.next {
            return Usage::Fine;
        }
        let started = Instant::now();
        let bytes = self.measure();
        self.interval = INTERVAL_MIN.max(started.elapsed() * INTERVAL_PER_WALK);
        self.next = now + self.interval;
        if bytes > self.cap_bytes {
            Usage::Over(bytes)
        } else {
            Usage::Fine
        }
    }

    /// Bytes allocated on disk under the roots (not following symlinks);
    /// `u64::MAX` past [`ENTRIES_MAX`] entries.
    pub fn measure(&self) -> u64 {
        let mut pending = self.roots.clone();
        let (mut bytes, mut entries) = (0u64, 0u64);
        while let Some(dir) = pending.pop() {
            let Ok(listing) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in listing.flatten() {
                entries += 1;
                if entries > ENTRIES_MAX {
                    return u64::MAX;
                }
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                bytes = bytes.saturating_add(metadata.blocks().saturating_mul(512));
                if metadata.is_dir() {
                    pending.push(entry.path());
                }
            }
        }
        bytes
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
        assert!(watch.measure() >= 256 * 1024);
        assert!(
            watch.measure() < 1 << 30,
            "a sparse file is not counted whole"
        );
        assert_eq!(watch.check(Instant::now()), Usage::Fine, "not due yet");
        let later = Instant::now() + INTERVAL_MIN * 2;
        assert!(matches!(watch.check(later), Usage::Over(_)));
        let mut roomy = DiskWatch::new(vec![dir.path().to_owned()], 1 << 30);
        assert_eq!(roomy.check(later), Usage::Fine);
    }
}
