//! The node key file: one ed25519 key, the node's libp2p identity and the
//! key that signs its log entries.
//!
//! The file is TOML, readable by its owner only:
//!
//! ```text
//! # comments saying what it is
//! public = "<64 hex digits>"
//! secret = "<64 hex digits>"
//! ```

use anyhow::{Context, Result, bail};
use buildmesh_protocol::PublicKey;
use ed25519_dalek::SigningKey;
use rand::Rng;
use serde::Deserialize;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct KeyFile {
    public: String,
    secret: String,
}

/// Writes a new key file at `path`, mode 600, refusing to replace an
/// existing one unless `force`: a lost key is a lost identity.
///
/// The key is written to a fresh temporary file (created exclusively, so a
/// file or link planted in its place is refused, never written through),
/// synced, then put in place: by `hard_link`, which fails if `path` exists,
/// so two keygens racing cannot silently replace each other's key; or, with
/// `force`, by `rename`.
pub fn write_new(path: &Path, key: &SigningKey, force: bool) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    if path.exists() && !force {
        bail!("{}", exists_message(path));
    }
    let temporary = temporary_path(parent);
    let written =
        write_private(&temporary, &key_text(key)).and_then(|()| install(&temporary, path, force));
    let _ = fs::remove_file(&temporary);
    written?;
    File::open(parent).and_then(|dir| dir.sync_all()).ok();
    Ok(())
}

fn exists_message(path: &Path) -> String {
    format!(
        "{} already exists; it may be the only copy of a node's identity. \
         Pass --force to replace it, or --out to write elsewhere",
        path.display()
    )
}

fn key_text(key: &SigningKey) -> String {
    let public = PublicKey::from(key.verifying_key());
    format!(
        "# buildmesh node key, written by `buildmesh keygen`.\n\
         # Whoever holds this file can sign log entries as this node: keep it private.\n\
         public = \"{public}\"\n\
         secret = \"{}\"\n",
        hex::encode(key.to_bytes())
    )
}

fn temporary_path(dir: &Path) -> PathBuf {
    let mut nonce = [0u8; 8];
    rand::rng().fill_bytes(&mut nonce);
    dir.join(format!(
        ".buildmesh-key.{}.{}.tmp",
        std::process::id(),
        hex::encode(nonce)
    ))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn install(temporary: &Path, path: &Path, force: bool) -> Result<()> {
    if force {
        return fs::rename(temporary, path)
            .with_context(|| format!("cannot move key into {}", path.display()));
    }
    match fs::hard_link(temporary, path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{}", exists_message(path))
        }
        other => other.with_context(|| format!("cannot write {}", path.display())),
    }
}

/// Reads a key file, checking that its public key matches its secret.
pub fn read(path: &Path) -> Result<SigningKey> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read key file {} (create one with `buildmesh keygen`)",
            path.display()
        )
    })?;
    let parsed: KeyFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a buildmesh key file", path.display()))?;
    let secret: [u8; 32] = hex::decode(parsed.secret.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .with_context(|| format!("{}: secret must be 64 hex digits", path.display()))?;
    let key = SigningKey::from_bytes(&secret);
    let public = PublicKey::from(key.verifying_key());
    if !parsed
        .public
        .trim()
        .eq_ignore_ascii_case(&public.to_string())
    {
        bail!(
            "{}: the public key does not belong to the secret key; the file is damaged",
            path.display()
        );
    }
    warn_if_exposed(path);
    Ok(key)
}

fn warn_if_exposed(path: &Path) {
    let exposed = fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o077 != 0);
    if exposed {
        tracing::warn!(path = %path.display(), "key file is readable by others; run chmod 600 on it");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_keys_read_back_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        let key = SigningKey::from_bytes(&[4; 32]);
        write_new(&path, &key, false).unwrap();
        assert_eq!(read(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            write_new(&path, &key, false).is_err(),
            "never overwrite silently"
        );
        write_new(&path, &SigningKey::from_bytes(&[5; 32]), true).unwrap();
    }

    #[test]
    fn a_link_planted_at_the_path_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let elsewhere = dir.path().join("stolen");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(write_new(&path, &SigningKey::from_bytes(&[4; 32]), false).is_err());
        assert!(!elsewhere.exists(), "the secret went through the link");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_mismatched_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(
            &path,
            format!(
                "public = \"{}\"\nsecret = \"{}\"\n",
                "00".repeat(32),
                "01".repeat(32)
            ),
        )
        .unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("damaged"));
    }
}
