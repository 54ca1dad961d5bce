//! The node's building side, wired: the work the log asks for
//! (`core::view::work`), the claimer that decides who builds what
//! (`core::claim`), the poller that announces new commits, and the
//! executor that runs builds. Decisions live in core; this only carries
//! them out.

pub mod executor;
pub mod poller;

use buildmesh_core::claim::{CellKey, ClaimAction, ClaimInput, Claimer};
use buildmesh_core::log::EntryStore;
use buildmesh_core::view::{
    Acceptance, Builders, Declined, LiveLeases, Verdict, Watch, Work, work,
};
use buildmesh_protocol::{
    Bid, Body, Claim, ProjectId, PublicKey, Renewal, SignedBid, SignedRenewal, Timestamp,
};
use ed25519_dalek::SigningKey;
use executor::{CellName, Executor};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::SyncSender;
use tokio::sync::watch;

/// How many of each project's newest announced commits are considered for
/// building: older ones were built, or are not worth building any more.
pub const COMMITS_MAX: usize = 50;

/// The work the log holds for the node `me` serving `platforms`: read by
/// the views thread, beside the driver, after entries arrive.
pub fn read_work<S: EntryStore>(
    store: &S,
    me: &PublicKey,
    platforms: &BTreeSet<String>,
    acceptance: &Acceptance,
    leases: &LiveLeases,
) -> Result<Work, S::Error> {
    work(store, me, platforms, acceptance, COMMITS_MAX, leases)
}

/// What a claimer's action asks of the driver that only the driver can do
/// (it owns the log and the mesh).
#[derive(Debug)]
pub enum Errand {
    /// Gossip these bid bytes.
    PublishBid(Vec<u8>),
    /// Hold this renewal of our lease among the live ones, and gossip it.
    Renew(SignedRenewal),
    /// Write this body as the node's next entry.
    Write(Body),
    /// Start building this cell ([`Builds::start_build`]). It follows the
    /// cell's claim in the same list: carry errands out in order, and tell
    /// [`Builds::claim_not_written`] instead if that claim was not written.
    StartBuild(CellKey),
    /// Stop building this cell ([`Builds::cancel_build`]); an errand like
    /// `StartBuild`, so the two are carried out in the order decided.
    CancelBuild(CellKey),
}

/// The building side of a node.
pub struct Builds {
    key: SigningKey,
    claimer: Claimer,
    executor: Executor,
    repositories: BTreeMap<ProjectId, String>,
    builders: BTreeMap<ProjectId, Builders>,
    /// Authors proven to fork: their bids are not heeded.
    forked: BTreeSet<PublicKey>,
    watches: watch::Sender<Vec<Watch>>,
    poke: SyncSender<()>,
    /// Print each build started on the terminal (`buildmesh up`).
    pub report: bool,
    /// What peers' bids said: platforms, load, when.
    seen: BTreeMap<PublicKey, Seen>,
    /// Cells on this node's platforms still waiting for results.
    queue: usize,
    /// Projects already said (in the log) not to be built here, and why.
    declined: BTreeSet<(ProjectId, Verdict)>,
}

/// What a peer's bids said.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Platforms it bid for.
    pub platforms: BTreeSet<String>,
    /// Its load at its last bid.
    pub load: u32,
    /// When its last bid came.
    pub at: Timestamp,
}

/// Peers remembered from their bids; the longest unheard are forgotten.
pub const SEEN_MAX: usize = 1024;

impl Builds {
    /// Ready; `watches` tells the poller what to watch.
    pub fn new(
        key: SigningKey,
        claimer: Claimer,
        executor: Executor,
        watches: watch::Sender<Vec<Watch>>,
        poke: SyncSender<()>,
    ) -> Self {
        Builds {
            key,
            claimer,
            executor,
            repositories: BTreeMap::new(),
            builders: BTreeMap::new(),
            forked: BTreeSet::new(),
            watches,
            poke,
            report: false,
            seen: BTreeMap::new(),
            queue: 0,
            declined: BTreeSet::new(),
        }
    }

    /// What peers' bids said.
    pub fn seen(&self) -> &BTreeMap<PublicKey, Seen> {
        &self.seen
    }

    fn remember(&mut self, now: Timestamp, bid: &Bid) {
        if !self.seen.contains_key(&bid.bidder) && self.seen.len() >= SEEN_MAX {
            let oldest = self.seen.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.seen.remove(&oldest);
            }
        }
        let seen = self.seen.entry(bid.bidder).or_default();
        if seen.platforms.len() < 64 {
            seen.platforms.insert(bid.platform.clone());
        }
        seen.load = bid.load;
        seen.at = now;
    }

    /// Cells on this node's platforms still waiting for results.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// Builds running here now.
    pub fn load(&self) -> u32 {
        self.claimer.load()
    }

    /// When the claimer wants a tick.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.claimer.poll_timeout()
    }

    /// Tells the claimer and the poller the work the log holds now (read
    /// by the views thread: [`read_work`]).
    pub fn apply_work(&mut self, now: Timestamp, work: Work) -> Vec<Errand> {
        self.queue = work.waiting();
        tracing::debug!(
            wanted = work.wanted.len(),
            events = work.events.len(),
            waiting = self.queue,
            "work applied"
        );
        let Work {
            watches,
            wanted,
            events,
            builders,
            forked,
            declined,
            read_at: _,
        } = work;
        for project in declined {
            self.say_declined(project);
        }
        self.builders = builders;
        self.forked = forked;
        self.watches.send_if_modified(|current| {
            let changed = *current != watches;
            *current = watches;
            changed
        });
        for cell in wanted {
            self.repositories
                .insert(cell.project, cell.repository.clone());
            let key = CellKey {
                project: cell.project,
                commit: cell.commit,
                platform: cell.platform,
            };
            let me = PublicKey::from(self.key.verifying_key());
            let rivals = self
                .builders
                .get(&cell.project)
                .map(|builders| builders.rivals_of(&me))
                .unwrap_or_default();
            let input = ClaimInput::Wanted {
                cell: key,
                builds: cell.builds,
                since: cell.since,
                rivals,
            };
            self.claimer.handle(now, input);
        }
        for event in events {
            let cell = CellKey {
                project: event.project,
                commit: event.commit,
                platform: event.platform,
            };
            let input = match event.lease_expires {
                Some(lease_expires) => ClaimInput::Claimed {
                    cell,
                    builder: event.builder,
                    at: event.at,
                    lease_expires,
                },
                None => ClaimInput::Finished {
                    cell,
                    builder: event.builder,
                    at: event.at,
                },
            };
            self.claimer.handle(now, input);
        }
        self.drain()
    }

    /// Says once at `info` (per project and reason) why a project that
    /// wants this node's platform is not built here.
    fn say_declined(&mut self, declined: Declined) {
        if !self.declined.insert((declined.project, declined.verdict)) {
            return;
        }
        let Declined {
            project,
            name,
            owner,
            verdict,
        } = declined;
        match verdict {
            Verdict::NotAccepted => tracing::info!(
                %project, %name, maintainer = %owner,
                "project {name:?} wants this node's platform but is not accepted here; to build \
                 it, restart with --accept-project {project} (or --accept-maintainer {owner})"
            ),
            Verdict::NeedsSandbox => tracing::info!(
                %project, %name, maintainer = %owner,
                "project {name:?} is accepted but not built: no sandbox runs on this machine \
                 and its maintainer is not this node's own (install bubblewrap, or pass \
                 --unsandboxed)"
            ),
            Verdict::NotABuilder => tracing::info!(
                %project, %name, maintainer = %owner,
                "project {name:?} is accepted but not built: it takes results only from \
                 builders it names, and this node is not one; its maintainer can add it with \
                 `buildmesh project trust {name} KEY --role builder` (KEY: this node's public \
                 key, printed at start)"
            ),
            Verdict::Accepted => {}
        }
    }

    /// Makes the poller poll now (a forge said something was pushed). A
    /// poll already asked for covers this one too.
    pub fn poll_now(&self) {
        tracing::debug!("a push was reported: polling now");
        let _ = self.poke.try_send(());
    }

    /// The node started with peers to reach: no bids until its first
    /// sync, or for at most the claimer's `catch_up_ms`.
    pub fn wait_for_peers(&mut self, now: Timestamp) {
        self.claimer.handle(now, ClaimInput::WaitingForPeers);
    }

    /// The node's first sync with a peer completed.
    pub fn caught_up(&mut self, now: Timestamp) -> Vec<Errand> {
        self.claimer.handle(now, ClaimInput::CaughtUp);
        self.drain()
    }

    /// Starts the build of `cell`, whose claim is written.
    pub fn start_build(&mut self, now: Timestamp, cell: CellKey) -> Vec<Errand> {
        let Some(repository) = self.repositories.get(&cell.project).cloned() else {
            tracing::warn!(commit = %cell.commit, "no repository known for a cell");
            // Let the claimer know, or it would renew a claim on a build
            // that never runs.
            return self.not_building(now, cell);
        };
        if self.report {
            println!("building {} for {}", cell.commit.short(), cell.platform);
        }
        let name = (cell.project, cell.commit.clone(), cell.platform.clone());
        if let Err(error) = self.executor.start(name, repository) {
            tracing::error!(%error, "cannot start a build");
            return self.not_building(now, cell);
        }
        Vec::new()
    }

    /// Stops the build of `cell`; it writes no result.
    pub fn cancel_build(&mut self, cell: CellKey) {
        self.executor
            .cancel(&(cell.project, cell.commit, cell.platform));
    }

    /// The claim on `cell` could not be written: it is not built now (a
    /// build without its claim would be a build nobody else knows of), and
    /// is claimed again after the claimer's `retry_ms`.
    pub fn claim_not_written(&mut self, now: Timestamp, cell: CellKey) -> Vec<Errand> {
        tracing::error!(commit = %cell.commit, platform = %cell.platform,
            "the claim was not written, so the cell is not built now; it is claimed again in a minute");
        self.not_building(now, cell)
    }

    /// Tells the claimer that `cell` is not being built here after all:
    /// it may be claimed again after a while (here or elsewhere).
    fn not_building(&mut self, now: Timestamp, cell: CellKey) -> Vec<Errand> {
        self.claimer.handle(now, ClaimInput::BuildAbandoned(cell));
        self.drain()
    }

    /// The connection to `peer` went down (`up` false) or came up: a
    /// builder lost for long enough loses its cells (see the claimer's
    /// `PeerLost`).
    pub fn peer(&mut self, now: Timestamp, peer: PublicKey, up: bool) -> Vec<Errand> {
        let input = if up {
            ClaimInput::PeerBack(peer)
        } else {
            ClaimInput::PeerLost(peer)
        };
        self.claimer.handle(now, input);
        self.drain()
    }

    /// Time passed.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Errand> {
        self.claimer.handle(now, ClaimInput::Tick);
        self.drain()
    }

    /// A bid gossiped by `source`: `Err` if it is invalid (the sender is
    /// to be penalised), `Ok(None)` if it is valid but not from a builder
    /// the project trusts (nobody heeds it), else what the claimer asks.
    pub fn bid_received(
        &mut self,
        now: Timestamp,
        source: PublicKey,
        bytes: &[u8],
    ) -> Result<Option<Vec<Errand>>, String> {
        let signed = SignedBid::from_wire(bytes).map_err(|e| e.to_string())?;
        let bid = signed.message();
        if bid.bidder != source {
            return Err("a bid published by another key than its bidder's".into());
        }
        let trusted = !self.forked.contains(&bid.bidder)
            && self
                .builders
                .get(&bid.project)
                .is_some_and(|builders| builders.contains(&bid.bidder));
        if !trusted {
            return Ok(None);
        }
        // Only trusted bidders are remembered: anyone can mint keys.
        self.remember(now, bid);
        self.claimer.handle(now, ClaimInput::Bid(bid.clone()));
        Ok(Some(self.drain()))
    }

    /// Our build of `cell` ended.
    pub fn build_ended(&mut self, now: Timestamp, cell: &CellName, generation: u64) -> Vec<Errand> {
        match self.executor.ended(cell, generation) {
            Ok(false) => return Vec::new(),
            Ok(true) => {}
            Err(error) => tracing::error!(%error, "cannot start a build again"),
        }
        let key = CellKey {
            project: cell.0,
            commit: cell.1.clone(),
            platform: cell.2.clone(),
        };
        self.claimer.handle(now, ClaimInput::BuildEnded(key));
        self.drain()
    }

    /// Stops every build (the node is stopping).
    pub fn stop(&mut self) {
        self.executor.cancel_all();
    }

    /// Carries out what the claimer asked; returns what needs the driver.
    fn drain(&mut self) -> Vec<Errand> {
        let mut errands = Vec::new();
        while let Some(action) = self.claimer.poll_action() {
            match action {
                ClaimAction::SendBid(bid) => match self.sign_bid(bid) {
                    Ok(bytes) => errands.push(Errand::PublishBid(bytes)),
                    Err(error) => tracing::warn!(%error, "cannot sign a bid"),
                },
                ClaimAction::WriteClaim {
                    cell,
                    lease_expires,
                } => {
                    tracing::debug!(commit = %cell.commit, "claiming");
                    errands.push(Errand::Write(Body::Claim(Claim {
                        project: cell.project,
                        commit: cell.commit,
                        platform: cell.platform,
                        lease_expires,
                    })));
                }
                ClaimAction::RenewLease {
                    cell,
                    lease_expires,
                } => match self.sign_renewal(cell, lease_expires) {
                    Ok(signed) => errands.push(Errand::Renew(signed)),
                    // Peers then see the lease lapse; the build goes on,
                    // and its result still counts.
                    Err(error) => tracing::warn!(%error, "cannot sign a lease renewal"),
                },
                ClaimAction::StartBuild(cell) => errands.push(Errand::StartBuild(cell)),
                ClaimAction::CancelBuild(cell) => errands.push(Errand::CancelBuild(cell)),
            }
        }
        errands
    }

    fn sign_renewal(
        &self,
        cell: CellKey,
        lease_expires: Timestamp,
    ) -> Result<SignedRenewal, String> {
        let renewal = Renewal {
            builder: PublicKey::from(self.key.verifying_key()),
            at: crate::clock::now(),
            project: cell.project,
            lease_expires,
            commit: cell.commit,
            platform: cell.platform,
        };
        SignedRenewal::sign(&self.key, renewal).map_err(|e| e.to_string())
    }

    fn sign_bid(&self, bid: Bid) -> Result<Vec<u8>, String> {
        SignedBid::sign(&self.key, bid)
            .map(|signed| signed.to_wire())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use buildmesh_core::claim::ClaimerConfig;
    use buildmesh_core::view::WantedCell;
    use buildmesh_protocol::CommitId;
    use executor::ExecutorConfig;
    use tokio::sync::{broadcast, mpsc};

    /// The builds of a node that is its project's only builder, with an
    /// executor that runs nothing unless started.
    fn builds(dir: &std::path::Path) -> (Builds, PublicKey) {
        let key = SigningKey::from_bytes(&[9; 32]);
        let me = PublicKey::from(key.verifying_key());
        let platforms = BTreeSet::from(["linux".to_string()]);
        let claimer = Claimer::new(ClaimerConfig::default(), me, platforms);
        let config = ExecutorConfig {
            mirrors: dir.join("mirrors"),
            work: dir.join("work"),
            caches: dir.join("caches"),
            blobs: dir.join("blobs"),
            allow_local_repositories: true,
            sandbox: None,
        };
        let (done, _) = mpsc::channel(1);
        let (live, _) = broadcast::channel(1);
        let executor = Executor::new(config, done, live).unwrap();
        let (watches, _) = watch::channel(Vec::new());
        let (poke, _) = std::sync::mpsc::sync_channel(1);
        (Builds::new(key, claimer, executor, watches, poke), me)
    }

    /// Issue 14: the claim is written before the build starts. The build
    /// is an errand after the claim's, not something `apply_work` starts
    /// on its own (this test has no runtime, so a build started there
    /// would also panic).
    #[test]
    fn a_build_starts_only_after_its_claim_as_the_next_errand() {
        let dir = tempfile::tempdir().unwrap();
        let (mut builds, me) = builds(dir.path());
        let project = ProjectId([1; 32]);
        let cell = WantedCell {
            project,
            repository: "/nowhere".into(),
            commit: CommitId::from_bytes(&[2; 20]).unwrap(),
            platform: "linux".into(),
            builds: 1,
            since: Timestamp(0),
        };
        let work = Work {
            wanted: vec![cell.clone()],
            builders: BTreeMap::from([(project, Builders::Only(BTreeSet::from([me])))]),
            ..Work::default()
        };
        let errands = builds.apply_work(Timestamp(1_000), work);
        assert!(errands.is_empty(), "decided at the next tick: {errands:?}");
        let errands = builds.tick(Timestamp(1_000));
        let key = CellKey {
            project,
            commit: cell.commit.clone(),
            platform: "linux".into(),
        };
        match errands.as_slice() {
            [
                Errand::Write(Body::Claim(claim)),
                Errand::StartBuild(started),
            ] => {
                assert_eq!((claim.commit.clone(), started), (cell.commit, &key));
            }
            other => panic!("expected the claim, then the build: {other:?}"),
        }
        assert_eq!(builds.load(), 1, "the slot is taken by the claim");

        // The claim could not be written: the slot is free, and the cell
        // is claimed again a minute later, not at once.
        let errands = builds.claim_not_written(Timestamp(1_001), key);
        assert!(errands.is_empty(), "{errands:?}");
        assert_eq!(builds.load(), 0);
        assert!(builds.tick(Timestamp(30_000)).is_empty());
        let again = builds.tick(Timestamp(61_001));
        assert!(
            matches!(
                again.as_slice(),
                [Errand::Write(Body::Claim(_)), Errand::StartBuild(_)]
            ),
            "{again:?}"
        );
    }
}
