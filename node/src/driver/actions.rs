//! Carrying out the service's actions: the network, the views thread, the
//! executor and the poller, blobs on disk, and the operator's log.

use super::{Driver, tolerate};
use crate::builds::say_declined;
use crate::clock;
use anyhow::Result;
use buildmesh_core::replicator::{self, Submitted, Verdict};
use buildmesh_core::service::{Action, Input, Notice, Topic};
use buildmesh_http::SubmitResult;
use buildmesh_mesh::Acceptance;
use buildmesh_protocol::{BlobHash, RESPONSE_BYTES_MAX, Response};

impl Driver {
    /// Carries out every action the service asks for, in order.
    pub(super) async fn carry_out(&mut self) -> Result<()> {
        while let Some(action) = self.service.poll_action() {
            match action {
                Action::Net(action) => self.net(action).await?,
                Action::Publish { topic, bytes } => {
                    tolerate(self.mesh.publish(mesh_topic(topic), bytes).await)?
                }
                Action::DeriveWork => self.views.bump(),
                Action::LeasesChanged(leases) => {
                    self.leases.send_replace(leases);
                }
                Action::StartBuild { cell, repository } => {
                    if !self.builds.start(&cell, repository) {
                        self.service
                            .handle(clock::now(), Input::BuildNotStarted(cell))?;
                    }
                }
                Action::CancelBuild(cell) => self.builds.cancel(&cell),
                Action::Watch(watches) => self.builds.watch(watches),
                Action::ForceDue {
                    project,
                    branch,
                    reason,
                } => self.scheduled_force(&project, &branch, reason)?,
                Action::Notice(Notice::ResultWritten { id, .. }) => {
                    if let Some(terminal) = &self.terminal {
                        terminal.written(&id);
                    }
                }
                Action::Notice(notice) => say(&notice),
            }
        }
        Ok(())
    }

    /// A replicator's action: the network, blobs, or news for the views.
    async fn net(&mut self, action: replicator::Action) -> Result<()> {
        let done = match action {
            replicator::Action::Request { peer, bytes } => self.mesh.request(peer, bytes).await,
            replicator::Action::Respond { id, bytes } => self.mesh.respond(id, bytes).await,
            replicator::Action::ServeBlob { id, hash } => {
                let bytes = Response::Blob(self.read_blob(&hash)).encode();
                self.mesh.respond(id, bytes).await
            }
            replicator::Action::Verify { peer, wires } => {
                self.verifier.submit(peer, wires)?;
                Ok(())
            }
            replicator::Action::Publish { bytes } => {
                self.mesh
                    .publish(buildmesh_mesh::Topic::Entries, bytes)
                    .await
            }
            replicator::Action::ReportGossip {
                message,
                from,
                verdict,
            } => self.mesh.report(message, from, acceptance(verdict)).await,
            replicator::Action::Disconnect { peer, reason } => {
                tracing::warn!(%peer, ?reason, "disconnecting a misbehaving peer");
                self.mesh.disconnect(peer).await
            }
            replicator::Action::Applied(ids) => {
                tracing::debug!(count = ids.len(), "entries applied");
                self.views.bump();
                let at = clock::now().0;
                self.status.send_modify(|s| s.last_applied_at = at);
                Ok(())
            }
            replicator::Action::BlobFetched { hash, bytes } => {
                if let Err(error) = self.write_blob(&hash, &bytes) {
                    tracing::warn!(%hash, %error, "cannot keep a fetched blob");
                }
                self.answer_blob(hash, Some(bytes));
                Ok(())
            }
            replicator::Action::BlobUnavailable(hash) => {
                self.answer_blob(hash, None);
                Ok(())
            }
            // The service takes these in itself.
            replicator::Action::LeasesHeard { .. } => Ok(()),
        };
        tolerate(done)
    }

    /// A blob from DATA_DIR/blobs, if held, small enough to send, and
    /// still matching its hash (a damaged file is not served).
    pub(super) fn read_blob(&self, hash: &BlobHash) -> Option<Vec<u8>> {
        let path = self.blobs.join(hash.to_string());
        let size = std::fs::metadata(&path).ok()?.len();
        if size > (RESPONSE_BYTES_MAX - 64) as u64 {
            return None;
        }
        let bytes = std::fs::read(&path).ok()?;
        (BlobHash::of(&bytes) == *hash).then_some(bytes)
    }

    fn answer_blob(&mut self, hash: BlobHash, bytes: Option<Vec<u8>>) {
        for waiter in self.blob_waiters.remove(&hash).unwrap_or_default() {
            let _ = waiter.send(bytes.clone());
        }
    }

    /// Keeps a blob under its hash; written aside and renamed, so a crash
    /// never leaves a partial blob under a valid name.
    fn write_blob(&self, hash: &BlobHash, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.blobs)?;
        let path = self.blobs.join(hash.to_string());
        let temporary = self.blobs.join(format!(".{hash}.partial"));
        std::fs::write(&temporary, bytes)?;
        std::fs::rename(&temporary, &path)
    }
}

/// Tells the operator, at the level the notice deserves.
fn say(notice: &Notice) {
    match notice {
        Notice::NotWritten { what, why } => {
            tracing::error!(%why, "this node's {what} could not be written; it is dropped")
        }
        Notice::NotSigned(why) => tracing::warn!(%why, "cannot sign a bid or lease renewal"),
        Notice::ClaimNotWritten(cell) => tracing::error!(
            commit = %cell.commit, platform = %cell.platform,
            "the claim was not written, so the cell is not built now; it is claimed again in a minute"
        ),
        Notice::NoRepository(cell) => {
            tracing::warn!(commit = %cell.commit, "no repository known for a cell")
        }
        Notice::Declined(declined) => say_declined(declined),
        Notice::BadGossip { from, why } => {
            tracing::debug!(peer = %from, %why, "rejected a gossiped message")
        }
        Notice::ResultWritten { cell, id } => {
            tracing::debug!(commit = %cell.commit, %id, "result written")
        }
    }
}

/// The mesh's name for a topic.
fn mesh_topic(topic: Topic) -> buildmesh_mesh::Topic {
    match topic {
        Topic::Entries => buildmesh_mesh::Topic::Entries,
        Topic::Bids => buildmesh_mesh::Topic::Bids,
        Topic::Renewals => buildmesh_mesh::Topic::Renewals,
    }
}

/// The service's name for a mesh topic.
pub(super) fn topic_of(topic: buildmesh_mesh::Topic) -> Topic {
    match topic {
        buildmesh_mesh::Topic::Entries => Topic::Entries,
        buildmesh_mesh::Topic::Bids => Topic::Bids,
        buildmesh_mesh::Topic::Renewals => Topic::Renewals,
    }
}

fn acceptance(verdict: Verdict) -> Acceptance {
    match verdict {
        Verdict::Accept => Acceptance::Accept,
        Verdict::Ignore => Acceptance::Ignore,
        Verdict::Reject => Acceptance::Reject,
    }
}

/// What became of one submitted entry, for the HTTP answer.
pub(super) fn describe(submitted: Submitted) -> SubmitResult {
    use buildmesh_core::log::{ASIDE_MS, Ingested, Rejected};
    match submitted {
        Submitted::Ingested(id, outcome) => SubmitResult {
            id: Some(id.to_string()),
            outcome: match outcome {
                Ingested::Applied { .. } => "applied".into(),
                Ingested::Pending { missing_seq } => {
                    format!("pending: waiting for seq {missing_seq}")
                }
                Ingested::Duplicate => "duplicate".into(),
                Ingested::Fork(_) => "fork: kept as proof against its author".into(),
                Ingested::Rejected(reason @ Rejected::NoRole) => format!(
                    "refused: {reason} (held aside for {} s in case that entry is on its way; \
                     not stored, not passed on)",
                    ASIDE_MS / 1000
                ),
                Ingested::Rejected(reason) => format!("refused: {reason}"),
            },
        },
        Submitted::Invalid(error) => SubmitResult {
            id: None,
            outcome: format!("invalid: {error}"),
        },
    }
}
