//! The operator token: a fresh secret at each start, in
//! `DATA_DIR/operator.token`, that the HTTP API asks for before it bans a
//! peer or forces a build (buildmesh_http's `operator` module says how).
//! Whoever can read the file is the operator: the node's own user.

use anyhow::{Context, Result};
use rand::TryRng;
use rand::rngs::SysRng;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Random bytes in a token (64 hex digits).
pub const TOKEN_BYTES: usize = 32;

/// Writes a new token to `path`, mode 600, replacing any old one, and
/// returns it.
///
/// The token goes to a fresh temporary file beside `path`, created
/// exclusively with mode 600 (never readable by others, not even for a
/// moment, and never written through a planted link), synced, then renamed
/// over `path`: a reader sees the old token or the new one, whole.
pub fn write_fresh(path: &Path) -> Result<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the operating system: {e}"))?;
    let token = hex::encode(bytes);
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    // Named by a nonce of its own: a name is seen by whoever can list the
    // directory, so it carries no part of the token.
    let nonce: u64 = rand::random();
    let temporary = parent.join(format!(
        ".operator.token.{}.{nonce:016x}.tmp",
        std::process::id()
    ));
    let written = write_private(&temporary, &token).and_then(|()| {
        fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
    });
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    Ok(token)
}

/// The link that gives a browser operator access, on a loopback address
/// (the node takes operator requests from its own machine only): from
/// `http`, where the HTTP server listens.
pub fn link(http: SocketAddr, token: &str) -> String {
    let host = match http.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}/operator?token={token}", http.port())
}

fn write_private(path: &Path, token: &str) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{token}")?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn each_token_is_new_private_and_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.token");
        let first = write_fresh(&path).unwrap();
        assert_eq!(first.len(), 2 * TOKEN_BYTES);
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), first);
        // A world-readable old file is replaced by a private new one.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let second = write_fresh(&path).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), second);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "no temporary file is left behind");
    }

    #[test]
    fn the_link_names_a_loopback_address() {
        let link = |addr: &str| super::link(addr.parse().unwrap(), "ab");
        assert_eq!(
            link("127.0.0.1:7878"),
            "http://127.0.0.1:7878/operator?token=ab"
        );
        assert_eq!(
            link("0.0.0.0:7878"),
            "http://127.0.0.1:7878/operator?token=ab"
        );
        assert_eq!(link("[::]:80"), "http://[::1]:80/operator?token=ab");
        assert_eq!(link("[::1]:80"), "http://[::1]:80/operator?token=ab");
    }

    #[test]
    fn a_link_at_the_path_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("operator.token");
        let elsewhere = dir.path().join("stolen");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let token = write_fresh(&path).unwrap();
        assert!(!elsewhere.exists(), "the token went through the link");
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), token);
    }
}
