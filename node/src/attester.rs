//! The node's attestations of its own results: built by
//! `buildmesh_attest`, signed here with the node key, kept as a blob that
//! the result entry names (`Body::Attested`). The entry is signed after
//! them, so they are made first.

use buildmesh_attest::{Facts, bundle};
use buildmesh_protocol::{BlobHash, BuildResult, TestSummary};
use buildmesh_runner::BlobDir;
use ed25519_dalek::SigningKey;
use std::sync::Arc;

/// Signs and stores a result's attestations.
pub struct Attester {
    key: SigningKey,
    /// `public_url` from the config: the commit page the attestations
    /// link to, and where their blobs are.
    public_url: Option<String>,
    blobs: BlobDir,
}

impl std::fmt::Debug for Attester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attester")
            .field("public_url", &self.public_url)
            .field("blobs", &self.blobs)
            .finish_non_exhaustive()
    }
}

/// One build's result as it will be signed, and what else its
/// attestations say.
pub struct Attested {
    /// The repository the commit was fetched from.
    pub repository: String,
    /// The result.
    pub result: BuildResult,
    /// Its tests.
    pub tests: Option<TestSummary>,
    /// The recipe's SHA-256, when the build read it.
    pub recipe_sha256: Option<[u8; 32]>,
}

impl Attester {
    /// Signs with `key`, stores in `blobs`.
    pub fn new(key: SigningKey, public_url: Option<String>, blobs: BlobDir) -> Attester {
        Attester {
            key,
            public_url,
            blobs,
        }
    }

    /// Signs `what`'s attestations and stores them; the blob's hash, for
    /// the result entry to name. `None` if they could not be made or
    /// stored (a full disk): the result is then signed without them, as a
    /// node before attestations did, rather than lost.
    /// Blocking (it syncs the blob to disk): call it off the driver's
    /// task, as [`Attester::attest_off_task`] does.
    pub fn attest(&self, what: &Attested) -> Option<BlobHash> {
        let facts = Facts {
            repository: &what.repository,
            result: &what.result,
            tests: what.tests.as_ref(),
            recipe_sha256: what.recipe_sha256,
            public_url: self.public_url.as_deref(),
        };
        let stored = bundle(&facts, &self.key)
            .map_err(std::io::Error::other)
            .and_then(|bytes| self.blobs.put(&bytes));
        match stored {
            Ok(hash) => Some(hash),
            Err(error) => {
                tracing::error!(
                    commit = %what.result.commit, %error,
                    "cannot store the result's attestations; signing it without them"
                );
                None
            }
        }
    }

    /// [`Attester::attest`] on a blocking thread, so that the driver goes
    /// on serving its peers while the blob is written and synced.
    pub async fn attest_off_task(self: &Arc<Self>, what: Attested) -> Option<BlobHash> {
        let attester = Arc::clone(self);
        tokio::task::spawn_blocking(move || attester.attest(&what))
            .await
            .unwrap_or_else(|error| {
                tracing::error!(%error, "signing a result's attestations stopped");
                None
            })
    }
}
