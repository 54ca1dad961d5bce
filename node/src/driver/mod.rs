//! The driver: feeds the service what the mesh, the HTTP server, the
//! clock, the poller, the executor and the views thread report, and
//! carries out what it asks, in order. Like quinn's `ConnectionDriver`, it
//! decides nothing about the protocol: every `if` that matters lives in
//! `buildmesh_core::service`.

mod actions;
mod building;
mod scheduled;
mod stopping;

pub use scheduled::MaintainerKeyPath;

use crate::attester::Attester;
use crate::builds::Builds;
use crate::builds::executor::BuildDone;
use crate::builds::poller::Found;
use crate::clock;
use crate::terminal::Terminal;
use crate::verifier::Verifier;
use crate::views::ViewsBump;
use anyhow::{Context, Result};
use buildmesh_core::log::{ChainStore, EntryStore};
use buildmesh_core::service::{Input, Service};
use buildmesh_core::view::{LiveLeases, Work};
use buildmesh_http::{Command, NodeStatus, PeerDetail};
use buildmesh_mesh::{MeshClient, MeshError, MeshEvent};
use buildmesh_protocol::{BlobHash, EntryId, ProjectId, PublicKey, Timestamp};
use buildmesh_store::SledStore;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// Everything the running node owns.
pub struct Driver {
    /// The node's protocol.
    pub service: Service<SledStore>,
    pub mesh: MeshClient,
    pub events: mpsc::Receiver<MeshEvent>,
    pub commands: mpsc::Receiver<Command>,
    pub status: watch::Sender<NodeStatus>,
    pub blobs: PathBuf,
    /// HTTP requests waiting for a blob the mesh is fetching.
    pub blob_waiters: BTreeMap<BlobHash, Vec<oneshot::Sender<Option<Vec<u8>>>>>,
    /// Checks sync batches beside the driver.
    pub verifier: Verifier,
    /// The executor and the poller.
    pub builds: Builds,
    /// Signs the attestations of the node's results.
    pub attester: Arc<Attester>,
    /// New commits and pull request heads the poller found.
    pub new_commits: mpsc::Receiver<Found>,
    /// Builds that ended.
    pub builds_done: mpsc::Receiver<BuildDone>,
    /// Print announcements and results on the terminal (`buildmesh up`).
    pub terminal: Option<Arc<Terminal>>,
    /// The maintainer key this node holds, for forces and schedules.
    pub maintainer_key: MaintainerKeyPath,
    /// Tells the views thread the log changed.
    pub views: ViewsBump,
    /// The node's work, as the views thread last read it from the log.
    pub work: watch::Receiver<Option<Arc<Work>>>,
    /// The live lease renewals, for the views thread.
    pub leases: watch::Sender<Arc<LiveLeases>>,
}

impl Driver {
    /// Runs until `shutdown` completes or the mesh stops, then stops the
    /// builds and flushes.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let served = self.serve(shutdown).await;
        // Also after an error: a build thread dies with the process, and
        // would leave its work dir behind. Before the flush: a build that
        // ended just before the stop has its result signed meanwhile.
        self.stop_builds().await;
        served?;
        tracing::info!("stopping: flushing the store");
        self.service
            .store_mut()
            .flush()
            .context("cannot flush the store")?;
        self.mesh.shutdown().await;
        Ok(())
    }

    /// The event loop: until `shutdown` completes or the mesh stops.
    async fn serve(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut shutdown = pin!(shutdown);
        loop {
            let wake = self.service.poll_timeout().map(instant_of);
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
                Some(found) = self.new_commits.recv() => {
                    match found {
                        Found::Commits(news) => self.announce(news).await?,
                        Found::Pull(pull) => self.announce_pull(pull).await?,
                    }
                    true
                }
                Some(done) = self.builds_done.recv() => {
                    self.build_done(done).await?;
                    true
                }
                Ok(()) = self.work.changed() => {
                    let work = self.work.borrow_and_update().clone();
                    if let Some(work) = work {
                        self.handle(Input::WorkDerived(work)).await?;
                    }
                    true
                }
                () = &mut shutdown => break,
            };
            if refresh {
                self.refresh_status()?;
            }
        }
        Ok(())
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
            MeshEvent::PeerConnected(peer) => Input::PeerConnected(peer),
            MeshEvent::PeerDisconnected(peer) => Input::PeerDisconnected(peer),
            MeshEvent::Request { peer, id, bytes } => Input::Request { peer, id, bytes },
            MeshEvent::Response { peer, bytes } => Input::Response { peer, bytes },
            MeshEvent::RequestFailed(peer) => Input::RequestFailed(peer),
            MeshEvent::Gossip {
                topic,
                from,
                source,
                message,
                bytes,
            } => Input::Gossiped {
                topic: actions::topic_of(topic),
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
                let results = self.service.submit(clock::now(), &wires)?;
                let _ = reply.send(results.into_iter().map(actions::describe).collect());
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
            Command::PullRequest(event) => {
                self.builds.check_pull(event);
                Ok(())
            }
            Command::PullRequestClosed(closed) => {
                if self.terminal.is_some() {
                    println!("pull request {} closed", closed.number);
                }
                let input = Input::PullClosed {
                    repositories: closed.repositories,
                    number: closed.number,
                };
                self.handle(input).await
            }
            Command::Entry { id, reply } => {
                let found = self.service.replicator().store().get(&EntryId(id))?;
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
                self.service.fetch_blob(clock::now(), hash)?;
                self.carry_out().await
            }
        }
    }

    async fn handle(&mut self, input: Input) -> Result<()> {
        self.service.handle(clock::now(), input)?;
        self.carry_out().await
    }

    /// Connected peers and those heard bid, in key order.
    fn peer_details(&self) -> Vec<PeerDetail> {
        let connected: BTreeSet<PublicKey> = self.service.replicator().peers().copied().collect();
        let seen = self.service.seen();
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

    /// Publishes what `GET /api/v1/node` shows but the entry count and
    /// digest, which the HTTP server reads from the log itself. Cheap:
    /// called after every event.
    pub fn refresh_status(&mut self) -> Result<()> {
        let replicator = self.service.replicator();
        let entries = replicator.store().len()?;
        let peers: Vec<String> = replicator.peers().map(|p| p.to_string()).collect();
        let stats = replicator.stats().clone();
        let details = self.peer_details();
        let running = u64::from(self.service.claimer().load());
        let waiting = self.service.waiting() as u64;
        self.status.send_if_modified(|s| {
            let changed = (
                s.entries,
                s.entries_received,
                s.peers_disconnected,
                &s.peers,
            ) != (entries, stats.entries_received, stats.disconnects, &peers);
            let last_sync_at = stats.last_sync_at.map_or(0, |t| t.0);
            let changed = changed
                || s.peer_details != details
                || s.last_sync_at != last_sync_at
                || (s.builds_running, s.cells_waiting) != (running, waiting);
            s.peer_details = details;
            s.entries = entries;
            s.entries_received = stats.entries_received;
            s.peers_disconnected = stats.disconnects;
            s.peers = peers;
            s.last_sync_at = last_sync_at;
            s.builds_running = running;
            s.cells_waiting = waiting;
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
