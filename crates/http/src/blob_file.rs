//! Blobs held on this node's disk, streamed as they are read: a build log
//! (up to 16 MiB) or an artifact (up to 256 MiB) is served whatever its
//! size, without holding it in memory or passing it through the driver.

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncReadExt;

/// Bytes read from the file per chunk of the response.
const CHUNK_BYTES: usize = 64 * 1024;

/// The blob `hash` from `dir`, if this node holds it. Its hash is checked
/// as it streams: a damaged file ends the response with an error, so the
/// client sees a cut transfer, never a complete wrong blob.
pub(crate) async fn serve(dir: &Path, hash: [u8; 32], kind: BlobKind) -> Option<Response> {
    let path = dir.join(hex::encode(hash));
    let file = tokio::fs::File::open(&path).await.ok()?;
    let metadata = file.metadata().await.ok()?;
    if !metadata.is_file() {
        return None;
    }
    let start = Reading {
        file,
        sha: Sha256::new(),
        held: None,
    };
    let chunks = futures::stream::try_unfold(start, move |reading| {
        let path = path.clone();
        async move { reading.next(&path, &hash).await }
    });
    let headers = [
        (header::CONTENT_TYPE, kind.content_type().to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CONTENT_LENGTH, metadata.len().to_string()),
    ];
    Some((headers, Body::from_stream(chunks)).into_response())
}

/// How a blob is served: bytes to download, or text a browser shows (a
/// step's log, opened from its result page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobKind {
    /// `application/octet-stream`.
    Bytes,
    /// `text/plain; charset=utf-8` (`?view=text`).
    Text,
    /// A result's attestations: an in-toto bundle (JSON Lines of DSSE
    /// envelopes), `application/vnd.in-toto.bundle`.
    Attestation,
}

impl BlobKind {
    /// Its `Content-Type`. Either way with `X-Content-Type-Options:
    /// nosniff`: a build's output must never be read as a page.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            BlobKind::Bytes => "application/octet-stream",
            BlobKind::Text => "text/plain; charset=utf-8",
            BlobKind::Attestation => buildmesh_attest::BUNDLE_MEDIA_TYPE,
        }
    }
}

/// A blob being read: the last chunk read is held back until the next
/// read, so that the end of the file, where the hash is checked, comes
/// before the last bytes leave. A damaged blob never arrives whole.
struct Reading {
    file: tokio::fs::File,
    sha: Sha256,
    held: Option<Bytes>,
}

impl Reading {
    async fn next(
        mut self,
        path: &Path,
        hash: &[u8; 32],
    ) -> std::io::Result<Option<(Bytes, Reading)>> {
        loop {
            let mut buffer = vec![0; CHUNK_BYTES];
            let read = self.file.read(&mut buffer).await?;
            if read == 0 {
                if self.sha.clone().finalize().as_slice() != hash {
                    tracing::warn!(path = %path.display(), "a stored blob does not match its hash");
                    return Err(std::io::Error::other(
                        "the stored blob does not match its hash",
                    ));
                }
                return Ok(self.held.take().map(|last| (last, self)));
            }
            buffer.truncate(read);
            self.sha.update(&buffer);
            if let Some(ready) = self.held.replace(Bytes::from(buffer)) {
                return Ok(Some((ready, self)));
            }
        }
    }
}
