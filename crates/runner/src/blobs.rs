//! Content-addressed blobs on disk: one file per blob, named by its
//! [`BlobHash`] in hex, in the layout the node serves from `DATA_DIR/blobs`.
//!
//! A blob is written under a temporary dot-name, synced, then renamed to its
//! hash, so a crash never leaves a partial file under a valid name (readers
//! ignore dot-names). Streaming writers do not know their hash until the
//! end, so their temporary name is unique per writer rather than
//! `.{hash}.partial`.

use buildmesh_protocol::BlobHash;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Default cap on one step's stored log, bytes.
pub const LOG_BYTES_MAX_DEFAULT: u64 = 16 * 1024 * 1024;

/// Tells apart concurrent writers in one process.
static WRITERS: AtomicU64 = AtomicU64::new(0);

/// A directory of blobs.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

/// What a finished [`BlobWriter`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBlob {
    /// The blob's hash (of what was kept, including any truncation note).
    pub hash: BlobHash,
    /// Bytes stored.
    pub bytes: u64,
    /// Bytes offered, including those dropped past the cap.
    pub offered: u64,
}

impl BlobDir {
    /// Uses `root`, creating it if needed.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<BlobDir> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(BlobDir { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives (whether or not it is there).
    pub fn path(&self, hash: &BlobHash) -> PathBuf {
        self.root.join(hash.to_string())
    }

    /// Stores `bytes` whole and returns their hash.
    pub fn put(&self, bytes: &[u8]) -> io::Result<BlobHash> {
        let mut writer = self.writer(None)?;
        writer.write_all(bytes)?;
        Ok(writer.finish()?.hash)
    }

    /// Up to `bytes_max` bytes from the start of blob `hash`.
    pub fn read(&self, hash: &BlobHash, bytes_max: u64) -> io::Result<Vec<u8>> {
        let mut content = Vec::new();
        File::open(self.path(hash))?
            .take(bytes_max)
            .read_to_end(&mut content)?;
        Ok(content)
    }

    /// The last `bytes_max` bytes of a blob: where a log says what went
    /// wrong, without reading a log of many megabytes whole.
    pub fn read_end(&self, hash: &BlobHash, bytes_max: u64) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(hash))?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(bytes_max)))?;
        let mut end = Vec::new();
        file.take(bytes_max).read_to_end(&mut end)?;
        Ok(end)
    }

    /// A writer that keeps the first `cap` bytes (all of them if `None`)
    /// and notes any truncation at the end of the blob.
    pub fn writer(&self, cap: Option<u64>) -> io::Result<BlobWriter> {
        let serial = WRITERS.fetch_add(1, Ordering::Relaxed);
        let name = format!(".write-{}-{serial}.partial", std::process::id());
        let temporary = self.root.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        Ok(BlobWriter {
            dir: self.clone(),
            temporary,
            file: Some(file),
            hasher: Sha256::new(),
            cap,
            kept: 0,
            offered: 0,
        })
    }
}

/// Streams bytes into a new blob, hashing as it goes. Dropping it without
/// [`BlobWriter::finish`] removes the temporary file.
#[derive(Debug)]
pub struct BlobWriter {
    dir: BlobDir,
    temporary: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    cap: Option<u64>,
    kept: u64,
    offered: u64,
}

impl BlobWriter {
    /// Bytes offered so far, including those past the cap.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Appends the truncation note if needed, syncs, and renames the file
    /// to its hash.
    pub fn finish(mut self) -> io::Result<StoredBlob> {
        if let Some(cap) = self.cap.filter(|_| self.offered > self.kept) {
            let note = format!(
                "\n[output truncated at {cap} bytes; {} bytes in all]\n",
                self.offered
            );
            self.keep(note.as_bytes())?;
        }
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("blob already finished"))?;
        file.sync_all()?;
        drop(file);
        let hash = BlobHash(self.hasher.clone().finalize().into());
        std::fs::rename(&self.temporary, self.dir.path(&hash))?;
        Ok(StoredBlob {
            hash,
            bytes: self.kept,
            offered: self.offered,
        })
    }

    fn keep(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already finished"))?;
        file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.kept += bytes.len() as u64;
        Ok(())
    }
}

impl Write for BlobWriter {
    /// Accepts every byte; those past the cap are counted, not stored.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.offered += bytes.len() as u64;
        let room = self
            .cap
            .map_or(u64::MAX, |cap| cap.saturating_sub(self.kept));
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if take > 0 {
            self.keep(&bytes[..take])?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_blob_is_named_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let hash = blobs.put(b"hello").unwrap();
        assert_eq!(hash, BlobHash::of(b"hello"));
        assert_eq!(std::fs::read(blobs.path(&hash)).unwrap(), b"hello");
        assert_eq!(blobs.read(&hash, 3).unwrap(), b"hel");
        assert_eq!(blobs.read_end(&hash, 3).unwrap(), b"llo");
        assert_eq!(blobs.read_end(&hash, 99).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn past_the_cap_bytes_are_counted_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let mut writer = blobs.writer(Some(4)).unwrap();
        writer.write_all(b"abc").unwrap();
        writer.write_all(b"defgh").unwrap();
        let stored = writer.finish().unwrap();
        let content = std::fs::read(blobs.path(&stored.hash)).unwrap();
        assert!(content.starts_with(b"abcd\n[output truncated at 4 bytes; 8 bytes in all]"));
        assert_eq!(stored.bytes, content.len() as u64);
        assert_eq!(stored.offered, 8);
        assert_eq!(stored.hash, BlobHash::of(&content));
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path()).unwrap();
        let mut writer = blobs.writer(None).unwrap();
        writer.write_all(b"partial").unwrap();
        drop(writer);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
