//! The driver: feeds the replicator what the mesh, the HTTP server and the
//! clock report, and carries out what it asks. Like quinn's
//! `ConnectionDriver`, it decides nothing about the protocol: every `if`
//! that matters lives in `buildmesh_core::replicator` and
//! `buildmesh_core::claim`.

mod building;
mod leases;
mod scheduled;

pub use leases::Leases;

pub use scheduled::Schedules;

use crate::builds::Builds;
use crate::builds::executor::BuildDone;
use crate::builds::poller::NewCommits;
use crate::clock;
use crate::verifier::Verifier;
use crate::views::ViewsBump;
use anyhow::{Context, Result};
use buildmesh_core::log::{ChainStore, EntryStore};
use buildmesh_core::replicator::{Action, Input, Replicator, Submitted, Verdict};
use buildmesh_core::view::Work;
use buildmesh_http::{Command, NodeStatus, PeerDetail, SubmitResult};
use buildmesh_mesh::{Acceptance, MeshClient, MeshError, MeshEvent, Topic};
use buildmesh_protocol::{
    BlobHash, EntryId, ProjectId, PublicKey, RESPONSE_BYTES_MAX, Response, Timestamp,
};
use std::sync::Arc;

use buildmesh_store::SledStore;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Everything the running node owns.
pub struct Driver {
    pub replicator: Replicator<SledStore>,
    pub mesh: MeshClient,
    pub events: mpsc::Receiver<MeshEvent>,
    pub commands: mpsc::Receiver<Command>,
    pub status: watch::Sender<NodeStatus>,
    pub blobs: PathBuf,
    /// HTTP requests waiting for a blob the mesh is fetching.
    pub blob_waiters: BTreeMap<BlobHash, Vec<oneshot::Sender<Option<Vec<u8>>>>>,
    /// Checks sync batches beside the driver.
    pub verifier: Verifier,
    /// The building side: claimer, executor, poller's channel.
    pub builds: Builds,
    /// New commits the poller found.
    pub new_commits: mpsc::Receiver<NewCommits>,
    /// Builds that ended.
    pub builds_done: mpsc::Receiver<BuildDone>,
    /// Print announcements and results on the terminal (`buildmesh up`).
    pub report: bool,
    /// Scheduled force builds.
    pub schedules: Schedules,
    /// Tells the views thread the log changed.
    pub views: ViewsBump,
    /// The node's work, as the views thread last read it from the log.
    pub work: watch::Receiver<Option<Arc<Work>>>,
    /// False until the first sync with a peer completes, for a node that
    /// holds its bids until then (see `Builds::wait_for_peers`).
    pub caught_up: bool,
    /// The live lease renewals, ours and peers'.
    pub leases: Leases,
}

impl Driver {
    /// Runs until `shutdown` completes or the mesh stops, then flushes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut shutdown = pin!(shutdown);
        loop {
            let wake = self.replicator.poll_timeout().map(instant_of);
            let builds_wake = self.builds.poll_timeout().map(instant_of);
            let schedule_wake = self.schedules.poll_timeout().map(instant_of);
            // Every branch but a quiet mesh event may have changed what
            // the status shows, the node's own writes included (a lone
            // node hears no mesh event after them).
            let refresh = tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => self.on_mesh(event).await?,
                    None => break,
                },
                Some(command) = self.commands.recv() => {
                    self.on_command(command).await?;
                    true
                }
                verified = self.verifier.next() => {
                    self.handle(verified?).await?;
                    true
                }
                () = sleep_until(wake) => {
                    self.handle(Input::Tick).await?;
                    true
                }
                Some(news) = self.new_commits.recv() => {
                    self.announce(news).await?;
                    true
                }
                Some(done) = self.builds_done.recv() => {
                    self.build_done(done).await?;
                    true
                }
                () = sleep_until(builds_wake) => {
                    let errands = self.builds.tick(clock::now());
                    self.run_errands(errands).await?;
                    true
                }
                () = sleep_until(schedule_wake) => {
                    self.run_schedules().await?;
                    true
                }
                Ok(()) = self.work.changed() => {
                    let work = self.work.borrow_and_update().clone();
                    if let Some(work) = work {
                        let read_at = work.read_at;
                        self.apply_work(Work::clone(&work)).await?;
                        self.catch_up(read_at).await?;
                    }
                    true
                }
                () = &mut shutdown => break,
            };
            if refresh {
                self.refresh_status()?;
            }
        }
        self.builds.stop();
        tracing::info!("stopping: flushing the store");
        self.replicator
            .store_mut()
            .flush()
            .context("cannot flush the store")?;
        self.mesh.shutdown().await;
        Ok(())
    }

    /// Lets the claimer bid once the work it was just given was read
    /// after the first sync completed: only then does it hold what that
    /// sync brought (a node that waits for its peers, see `caught_up`).
    async fn catch_up(&mut self, read_at: buildmesh_protocol::Timestamp) -> Result<()> {
        let synced = self.replicator.stats().last_sync_at;
        if self.caught_up || synced.is_none_or(|at| read_at < at) {
            return Ok(());
        }
        self.caught_up = true;
        let errands = self.builds.caught_up(clock::now());
        self.run_errands(errands).await
    }

    /// Returns whether the status shown over HTTP may have changed.
    async fn on_mesh(&mut self, event: MeshEvent) -> Result<bool> {
        let input = match event {
            MeshEvent::Listening(addr) => {
                // Printed whole, ready to hand to others as --bootstrap.
                let peer_id = self.status.borrow().peer_id.clone();
                println!("listen {addr}/p2p/{peer_id}");
                self.status.send_modify(|s| s.listen.push(addr));
                return Ok(false);
            }
            MeshEvent::PeerConnected(peer) => {
                let errands = self.builds.peer(clock::now(), peer, true);
                self.run_errands(errands).await?;
                Input::PeerConnected(peer)
            }
            MeshEvent::PeerDisconnected(peer) => {
                let errands = self.builds.peer(clock::now(), peer, false);
                self.run_errands(errands).await?;
                Input::PeerDisconnected(peer)
            }
            MeshEvent::Request { peer, id, bytes } => Input::RequestReceived { peer, id, bytes },
            MeshEvent::Response { peer, bytes } => Input::ResponseReceived { peer, bytes },
            MeshEvent::RequestFailed(peer) => Input::RequestFailed(peer),
            MeshEvent::Gossip {
                topic: Topic::Bids,
                from,
                source,
                message,
                bytes,
            } => {
                self.on_bid(from, source, message, &bytes).await?;
                return Ok(false);
            }
            MeshEvent::Gossip {
                topic: Topic::Renewals,
                from,
                source,
                message,
                bytes,
            } => {
                self.on_renewal(from, source, message, &bytes).await?;
                return Ok(true);
            }
            MeshEvent::Gossip {
                topic: Topic::Entries,
                from,
                source,
                message,
                bytes,
            } => Input::Gossiped {
                from,
                source,
                message,
                bytes,
            },
        };
        self.handle(input).await?;
        Ok(true)
    }

    async fn on_command(&mut self, command: Command) -> Result<()> {
        match command {
            Command::Submit { entries, reply } => {
                let wires: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
                let results = self.replicator.submit(&wires)?;
                let _ = reply.send(results.into_iter().map(describe).collect());
                self.carry_out().await
            }
            Command::Ban { peer, reply } => {
                let done = self.mesh.disconnect(PublicKey(peer)).await;
                tracing::info!(peer = %PublicKey(peer), "banned by the operator");
                let _ = reply.send(done.map_err(|e| e.to_string()));
                Ok(())
            }
            Command::Unban { peer, reply } => {
                let done = self.mesh.unban(PublicKey(peer)).await;
                let _ = reply.send(done.map_err(|e| e.to_string()));
                Ok(())
            }
            Command::Force {
                project,
                target,
                platforms,
                reason,
                reply,
            } => {
                let done = self
                    .force(ProjectId(project), target, platforms, reason)
                    .await?;
                let _ = reply.send(done);
                Ok(())
            }
            Command::Poll => {
                self.builds.poll_now();
                Ok(())
            }
            Command::Entry { id, reply } => {
                let found = self.replicator.store().get(&EntryId(id))?;
                let _ = reply.send(found.map(|s| s.entry));
                Ok(())
            }
            Command::Blob { hash, reply } => {
                let hash = BlobHash(hash);
                if let Some(bytes) = self.read_blob(&hash) {
                    let _ = reply.send(Some(bytes));
                    return Ok(());
                }
                self.blob_waiters.entry(hash).or_default().push(reply);
                self.replicator.fetch_blob(clock::now(), hash);
                self.carry_out().await
            }
        }
    }

    async fn handle(&mut self, input: Input) -> Result<()> {
        self.replicator.handle(clock::now(), input)?;
        self.carry_out().await
    }

    async fn carry_out(&mut self) -> Result<()> {
        while let Some(action) = self.replicator.poll_action() {
            let done = match action {
                Action::Request { peer, bytes } => self.mesh.request(peer, bytes).await,
                Action::Respond { id, bytes } => self.mesh.respond(id, bytes).await,
                Action::ServeBlob { id, hash } => {
                    let bytes = Response::Blob(self.read_blob(&hash)).encode();
                    self.mesh.respond(id, bytes).await
                }
                Action::Verify { peer, wires } => {
                    self.verifier.submit(peer, wires)?;
                    Ok(())
                }
                Action::Publish { bytes } => self.mesh.publish(Topic::Entries, bytes).await,
                Action::LeasesHeard { peer, wires } => {
                    self.leases_heard(peer, wires)?;
                    Ok(())
                }
                Action::ReportGossip {
                    message,
                    from,
                    verdict,
                } => self.mesh.report(message, from, acceptance(verdict)).await,
                Action::Disconnect { peer, reason } => {
                    tracing::warn!(%peer, ?reason, "disconnecting a misbehaving peer");
                    self.mesh.disconnect(peer).await
                }
                Action::Applied(ids) => {
                    tracing::debug!(count = ids.len(), "entries applied");
                    self.views.bump();
                    let at = clock::now().0;
                    self.status.send_modify(|s| s.last_applied_at = at);
                    Ok(())
                }
                Action::BlobFetched { hash, bytes } => {
                    if let Err(error) = self.write_blob(&hash, &bytes) {
                        tracing::warn!(%hash, %error, "cannot keep a fetched blob");
                    }
                    self.answer_blob(hash, Some(bytes));
                    Ok(())
                }
                Action::BlobUnavailable(hash) => {
                    self.answer_blob(hash, None);
                    Ok(())
                }
            };
            tolerate(done)?;
        }
        Ok(())
    }

    /// Connected peers and those heard bid, in key order.
    fn peer_details(&self) -> Vec<PeerDetail> {
        let connected: BTreeSet<PublicKey> = self.replicator.peers().copied().collect();
        let seen = self.builds.seen();
        let keys: BTreeSet<&PublicKey> = connected.iter().chain(seen.keys()).collect();
        keys.into_iter()
            .map(|key| {
                let heard = seen.get(key);
                let is_connected = connected.contains(key);
                PeerDetail {
                    key: key.to_string(),
                    connected: is_connected,
                    platforms: heard
                        .map(|s| s.platforms.iter().cloned().collect())
                        .unwrap_or_default(),
                    load: heard.map(|s| s.load),
                    // Connected peers are seen now: the HTTP server says so
                    // when it answers, so the status does not change by
                    // itself every moment.
                    last_seen: heard.map_or(0, |s| s.at.0),
                }
            })
            .collect()
    }

    /// A blob from DATA_DIR/blobs, if held, small enough to send, and
    /// still matching its hash (a damaged file is not served).
    fn read_blob(&self, hash: &BlobHash) -> Option<Vec<u8>> {
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

    /// Publishes what `GET /api/v1/node` shows but the entry count and
    /// digest, which the HTTP server reads from the log itself. Cheap:
    /// called after every event.
    pub fn refresh_status(&mut self) -> Result<()> {
        let entries = self.replicator.store().len()?;
        let peers: Vec<String> = self.replicator.peers().map(|p| p.to_string()).collect();
        let stats = self.replicator.stats().clone();
        let details = self.peer_details();
        self.status.send_if_modified(|s| {
            let changed = (
                s.entries,
                s.entries_received,
                s.peers_disconnected,
                &s.peers,
            ) != (entries, stats.entries_received, stats.disconnects, &peers);
            let last_sync_at = stats.last_sync_at.map_or(0, |t| t.0);
            let changed = changed || s.peer_details != details;
            s.peer_details = details;
            let changed = changed || s.last_sync_at != last_sync_at;
            s.entries = entries;
            s.entries_received = stats.entries_received;
            s.peers_disconnected = stats.disconnects;
            s.peers = peers;
            s.last_sync_at = last_sync_at;
            changed
        });
        Ok(())
    }
}

/// One network action failing (a peer gone, a full send queue) is not the
/// node failing: the periodic sync repairs what was lost. Only a stopped
/// mesh is fatal.
fn tolerate(result: Result<(), MeshError>) -> Result<()> {
    match result {
        Err(MeshError::Closed) => Err(MeshError::Closed.into()),
        Err(error) => {
            tracing::warn!(%error, "network action failed; the next sync will make up for it");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn describe(submitted: Submitted) -> SubmitResult {
    match submitted {
        Submitted::Ingested(id, outcome) => SubmitResult {
            id: Some(id.to_string()),
            outcome: match outcome {
                buildmesh_core::log::Ingested::Applied { .. } => "applied".into(),
                buildmesh_core::log::Ingested::Pending { missing_seq } => {
                    format!("pending: waiting for seq {missing_seq}")
                }
                buildmesh_core::log::Ingested::Duplicate => "duplicate".into(),
                buildmesh_core::log::Ingested::Fork(_) => {
                    "fork: kept as proof against its author".into()
                }
                buildmesh_core::log::Ingested::Rejected(
                    reason @ buildmesh_core::log::Rejected::NoRole,
                ) => format!(
                    "refused: {reason} (held aside for {} s in case that entry is on its way; \
                     not stored, not passed on)",
                    buildmesh_core::log::ASIDE_MS / 1000
                ),
                buildmesh_core::log::Ingested::Rejected(reason) => format!("refused: {reason}"),
            },
        },
        Submitted::Invalid(error) => SubmitResult {
            id: None,
            outcome: format!("invalid: {error}"),
        },
    }
}

fn acceptance(verdict: Verdict) -> Acceptance {
    match verdict {
        Verdict::Accept => Acceptance::Accept,
        Verdict::Ignore => Acceptance::Ignore,
        Verdict::Reject => Acceptance::Reject,
    }
}

/// The instant at which wall-clock time `at` arrives.
fn instant_of(at: Timestamp) -> Instant {
    Instant::now() + Duration::from_millis(at.ms_since(clock::now()))
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
