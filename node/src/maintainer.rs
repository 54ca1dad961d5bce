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
use buildmesh_protocol::{Body, Entry, ProjectDeclaration, PublicKey, Timestamp};
use ed25519_dalek::SigningKey;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// How many of the latest entries each command sends again: enough to
/// cover a few failed deliveries, small enough to cost nothing.
pub const RESEND_LAST: usize = 16;

/// A maintainer key with its chain record, locked for one command.
pub struct MaintainerKey {
    writer: ChainWriter,
    chain: File,
    chain_path: PathBuf,
    recent: Vec<Entry>,
}

impl MaintainerKey {
    /// Opens `key_path` and its chain record (`KEY.chain`), waiting for any
    /// other command using the key to finish.
    pub fn open(key_path: &Path) -> Result<Self> {
        let key = crate::keyfile::read(key_path)?;
        let chain_path = chain_path(key_path);
        let chain = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&chain_path)
            .with_context(|| format!("cannot open {}", chain_path.display()))?;
        chain
            .lock()
            .with_context(|| format!("cannot lock {}", chain_path.display()))?;
        let signed = read_chain(&chain, &chain_path, &key)?;
        let writer = match signed.last() {
            Some(last) => ChainWriter::after(key, last),
            None => ChainWriter::new(key),
        };
        let recent = signed[signed.len().saturating_sub(RESEND_LAST)..].to_vec();
        Ok(MaintainerKey {
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

/// Every entry recorded, checked to be the key's own and to chain.
fn read_chain(file: &File, path: &Path, key: &SigningKey) -> Result<Vec<Entry>> {
    let author = PublicKey::from(key.verifying_key());
    let mut entries: Vec<Entry> = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
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
