//! A maintainer's key used from the command line.
//!
//! A maintainer signs project declarations, announcements, force builds and
//! trust changes on their own machine and hands them to any node. Each
//! signed entry chains to the previous one, so the key must know its own
//! chain without asking the mesh (a node may not have synced yet, and
//! guessing wrong would sign two entries at one sequence number: a fork,
//! after which none of the key's entries count). So every entry the key
//! signs is appended to `KEY.chain` (one hex wire entry per line) before it
//! is sent anywhere; the file is locked while signing, so two commands at
//! once cannot fork the key either; and the last few entries are sent again
//! with the next command, so an entry whose delivery failed is not lost.

use anyhow::{Context, Result, bail};
use buildmesh_core::log::ChainWriter;
use buildmesh_protocol::{
    Body, Entry, ProjectDeclaration, ProjectId, PublicKey, Setting, SettingKind, Timestamp,
};
use ed25519_dalek::SigningKey;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// How many of the latest entries each command sends again: enough to
/// cover a few failed deliveries, small enough to cost nothing.
pub const RESEND_LAST: usize = 16;

/// A maintainer key with its chain record, locked for one command.
pub struct MaintainerKey {
    key: SigningKey,
    writer: ChainWriter,
    chain: File,
    chain_path: PathBuf,
    recent: Vec<Entry>,
}

impl MaintainerKey {
    /// Opens `key_path` and its chain record (`KEY.chain`), waiting for any
    /// other command using the key to finish.
    pub fn open(key_path: &Path) -> Result<Self> {
        Self::open_with(key_path, true)
    }

    /// [`MaintainerKey::open`], but failing at once if another command
    /// holds the key (a node must not stall waiting for a person).
    pub fn try_open(key_path: &Path) -> Result<Self> {
        Self::open_with(key_path, false)
    }

    fn open_with(key_path: &Path, wait: bool) -> Result<Self> {
        let key = crate::keyfile::read(key_path)?;
        let chain_path = chain_path(key_path);
        let chain = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&chain_path)
            .with_context(|| format!("cannot open {}", chain_path.display()))?;
        if wait {
            chain
                .lock()
                .with_context(|| format!("cannot lock {}", chain_path.display()))?;
        } else if chain.try_lock().is_err() {
            bail!(
                "{} is in use by another command; try again in a moment",
                chain_path.display()
            );
        }
        drop_torn_tail(&chain, &chain_path)?;
        let signed = read_chain(&chain, &chain_path, &key)?;
        let writer = match signed.last() {
            Some(last) => ChainWriter::after(key.clone(), last),
            None => ChainWriter::new(key.clone()),
        };
        let recent = signed[signed.len().saturating_sub(RESEND_LAST)..].to_vec();
        Ok(MaintainerKey {
            key,
            writer,
            chain,
            chain_path,
            recent,
        })
    }

    /// The maintainer's public key.
    pub fn public(&self) -> PublicKey {
        self.writer.author()
    }

    /// Signs `body` as the key's next entry and records it durably before
    /// returning it.
    pub fn sign(&mut self, now: Timestamp, body: Body) -> Result<Entry> {
        let mut probe = self.writer.clone();
        let entry = probe.write(now, body).context("cannot sign the entry")?;
        let line = format!("{}\n", hex::encode(entry.to_wire()));
        self.chain
            .write_all(line.as_bytes())
            .and_then(|()| self.chain.sync_data())
            .with_context(|| format!("cannot record the entry in {}", self.chain_path.display()))?;
        self.writer = probe;
        self.recent.push(entry.clone());
        Ok(entry)
    }

    /// The latest declaration of project `name` among the key's recent
    /// entries, if any.
    pub fn recent_declaration(&self, name: &str) -> Option<&ProjectDeclaration> {
        self.recent
            .iter()
            .rev()
            .find_map(|entry| match entry.body() {
                Body::Project(p) if p.name == name => Some(p),
                _ => None,
            })
    }

    /// The setting of `kind` this key last signed for `project`, if any
    /// (its whole chain read: a setting may be older than the recent
    /// entries).
    pub fn latest_setting(
        &self,
        project: &ProjectId,
        kind: SettingKind,
    ) -> Result<Option<Setting>> {
        let entries = read_chain(&self.chain, &self.chain_path, &self.writer_key())?;
        Ok(entries.iter().rev().find_map(|entry| match entry.body() {
            Body::Setting(s) if s.project == *project && s.setting.kind() == kind => {
                Some(s.setting.clone())
            }
            _ => None,
        }))
    }

    /// Every entry the key signed, oldest first: what to send a node that
    /// is missing an early one.
    pub fn all(&self) -> Result<Vec<Vec<u8>>> {
        let key_entries = read_chain(&self.chain, &self.chain_path, &self.writer_key())?;
        Ok(key_entries.iter().map(Entry::to_wire).collect())
    }

    fn writer_key(&self) -> SigningKey {
        self.key.clone()
    }

    /// The latest entries signed with this key, oldest first, the one just
    /// signed included: what to send a node.
    pub fn to_send(&self) -> Vec<Vec<u8>> {
        let from = self.recent.len().saturating_sub(RESEND_LAST);
        self.recent[from..].iter().map(Entry::to_wire).collect()
    }
}

/// `KEY.chain` beside `KEY`.
pub fn chain_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.file_name().unwrap_or_default().to_os_string();
    name.push(".chain");
    key_path.with_file_name(name)
}

/// A crash or a full disk can leave a last line half written; the entry
/// on it was never sent anywhere, so it is dropped rather than left to make
/// the whole record unreadable.
fn drop_torn_tail(file: &File, path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut reader = file;
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(());
    }
    let mut text = Vec::new();
    reader.seek(SeekFrom::Start(0))?;
    reader.read_to_end(&mut text)?;
    if text.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    tracing::warn!(path = %path.display(), "dropping a half-written last line");
    file.set_len(keep as u64)
        .with_context(|| format!("cannot repair {}", path.display()))?;
    Ok(())
}

/// Every entry recorded, checked to be the key's own and to chain.
fn read_chain(file: &File, path: &Path, key: &SigningKey) -> Result<Vec<Entry>> {
    use std::io::{Seek, SeekFrom};
    let author = PublicKey::from(key.verifying_key());
    let mut entries: Vec<Entry> = Vec::new();
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    for (index, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        let at = || format!("{} line {}", path.display(), index + 1);
        let bytes = hex::decode(line.trim()).with_context(|| format!("{}: not hex", at()))?;
        let entry = Entry::from_wire(&bytes).with_context(|| format!("{}: not an entry", at()))?;
        if entry.author() != author {
            bail!("{}: signed by another key, not {author}", at());
        }
        let expected = entries.last().map_or(1, |last| last.seq() + 1);
        if entry.seq() != expected || entries.last().is_some_and(|l| l.id() != entry.prev()) {
            bail!(
                "{}: does not follow the line before (sequence {})",
                at(),
                entry.seq()
            );
        }
        entries.push(entry);
    }
    Ok(entries)
}
