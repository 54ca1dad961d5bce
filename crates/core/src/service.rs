//! The service: a whole node's protocol in one sans-IO state machine.
//!
//! It owns the [replicator](crate::replicator) (the log and its sync),
//! the [claimer](crate::claim) (who builds what), the live lease renewals,
//! which bids and renewals are heeded, how the node's work (derived from
//! the log off the driver's thread) becomes the claimer's inputs, when
//! schedules fire, and each build's lifecycle from claim to result. The
//! node feeds it what the network, the clock, the poller, the executor
//! and the views thread report ([`Service::handle`]), carries out the
//! [`Action`]s it asks for, in order ([`Service::poll_action`]), and
//! sleeps until [`Service::poll_timeout`]; it decides nothing itself.
//!
//! Order is the contract: a build's claim is written, stored and
//! published (its actions come first) before the [`Action::StartBuild`]
//! that follows it; a claim that could not be written is never followed
//! by a build.

mod building;
mod gossip;
mod io;
mod schedules;
mod work;

pub use io::{Action, Input, Notice, Topic};
pub use schedules::Scheduled;

use crate::claim::{ClaimInput, Claimer, ClaimerConfig};
use crate::log::EntryStore;
use crate::replicator::{self, Replicator, ReplicatorConfig, Submitted};
use crate::view::{LiveLeases, Policy, ProjectLog, Verdict, Work};
use buildmesh_protocol::{BlobHash, ProjectId, PublicKey, Timestamp};
use ed25519_dalek::SigningKey;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Tunables.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The replicator's.
    pub replicator: ReplicatorConfig,
    /// The claimer's.
    pub claimer: ClaimerConfig,
    /// The platforms this node builds on.
    pub platforms: BTreeSet<String>,
    /// Scheduled force builds.
    pub schedules: Vec<Scheduled>,
}

/// Why a force build cannot be signed with the maintainer key at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForceRefused {
    /// The project is not declared in this node's log.
    #[error("no declared project with this id in this node's log")]
    NoProject,
    /// The key is not the project's owner's.
    #[error("the maintainer key this node holds does not own this project")]
    NotOwner,
}

/// What a peer's bids said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    /// Platforms it bid for.
    pub platforms: BTreeSet<String>,
    /// Its load at its last bid.
    pub load: u32,
    /// When its last bid came.
    pub at: Timestamp,
}

/// A whole node's protocol. See the module docs.
#[derive(Debug)]
pub struct Service<S: EntryStore> {
    replicator: Replicator<S>,
    claimer: Claimer,
    key: SigningKey,
    me: PublicKey,
    leases: LiveLeases,
    /// The latest work: whose bids and renewals count, who forked, what
    /// the poller watches.
    work: Arc<Work>,
    repositories: BTreeMap<ProjectId, String>,
    /// Projects already said not to be built here, and why.
    declined: BTreeSet<(ProjectId, Verdict)>,
    /// Trusted peers heard bidding.
    seen: BTreeMap<PublicKey, Seen>,
    /// Cells on our platforms still waiting for results.
    waiting: usize,
    /// The node holds its bids until a work read after its first sync.
    catching_up: bool,
    schedules: schedules::Schedules,
    outbox: VecDeque<Action>,
}

impl<S: EntryStore> Service<S> {
    /// The node whose key is `key`, over `store`; `seed` picks the random
    /// peers of periodic syncs. `now` starts the schedules.
    pub fn new(
        config: ServiceConfig,
        key: SigningKey,
        store: S,
        seed: u64,
        now: Timestamp,
    ) -> Result<Self, S::Error> {
        let me = PublicKey::from(key.verifying_key());
        let replicator = Replicator::new(config.replicator, key.clone(), store, seed)?;
        let claimer = Claimer::new(config.claimer, me, config.platforms);
        Ok(Service {
            replicator,
            claimer,
            key,
            me,
            leases: LiveLeases::default(),
            work: Arc::default(),
            repositories: BTreeMap::new(),
            declined: BTreeSet::new(),
            seen: BTreeMap::new(),
            waiting: 0,
            catching_up: false,
            schedules: schedules::Schedules::new(config.schedules, now),
            outbox: VecDeque::new(),
        })
    }

    /// The node started with peers it expects to reach: it bids for
    /// nothing until its work is read after its first sync, or for the
    /// claimer's `catch_up_ms`, so it does not rebuild what they built
    /// while it was away.
    pub fn wait_for_peers(&mut self, now: Timestamp) {
        self.catching_up = true;
        self.claimer.handle(now, ClaimInput::WaitingForPeers);
    }

    /// The replicator (the log, peers, counters).
    pub fn replicator(&self) -> &Replicator<S> {
        &self.replicator
    }

    /// The log, to flush it on shutdown.
    pub fn store_mut(&mut self) -> &mut S {
        self.replicator.store_mut()
    }

    /// The log, giving up the rest (a simulated crash keeps only this).
    pub fn into_store(self) -> S {
        self.replicator.into_store()
    }

    /// The claimer (load, cells built, counters).
    pub fn claimer(&self) -> &Claimer {
        &self.claimer
    }

    /// The live lease renewals.
    pub fn leases(&self) -> &LiveLeases {
        &self.leases
    }

    /// Trusted peers heard bidding.
    pub fn seen(&self) -> &BTreeMap<PublicKey, Seen> {
        &self.seen
    }

    /// Cells on this node's platforms still waiting for results, as of the
    /// latest work.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// The node's public key.
    pub fn me(&self) -> PublicKey {
        self.me
    }

    /// Whether a force build of `project` signed by `key` would count:
    /// the project is declared in this node's log and `key` owns it. (The
    /// node holds the maintainer key; the service says whether to use it.)
    pub fn may_force(
        &self,
        project: &ProjectId,
        key: &PublicKey,
    ) -> Result<Result<(), ForceRefused>, S::Error> {
        let log = ProjectLog::load(self.replicator.store(), project, 0)?;
        Ok(match Policy::of(&log) {
            None => Err(ForceRefused::NoProject),
            Some(policy) if policy.owner != *key => Err(ForceRefused::NotOwner),
            Some(_) => Ok(()),
        })
    }

    /// Takes one input. Drain [`Service::poll_action`] after each call. An
    /// `Err` is the store failing: fatal for the node.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<(), S::Error> {
        match input {
            Input::PeerConnected(peer) => {
                self.claimer.handle(now, ClaimInput::PeerBack(peer));
                self.net(now, replicator::Input::PeerConnected(peer))?;
            }
            Input::PeerDisconnected(peer) => {
                self.claimer.handle(now, ClaimInput::PeerLost(peer));
                self.net(now, replicator::Input::PeerDisconnected(peer))?;
            }
            Input::Request { peer, id, bytes } => {
                self.net(now, replicator::Input::RequestReceived { peer, id, bytes })?
            }
            Input::Response { peer, bytes } => {
                self.net(now, replicator::Input::ResponseReceived { peer, bytes })?
            }
            Input::RequestFailed(peer) => self.net(now, replicator::Input::RequestFailed(peer))?,
            Input::Verified { peer, entries } => {
                self.net(now, replicator::Input::Verified { peer, entries })?
            }
            Input::Gossiped {
                topic,
                from,
                source,
                message,
                bytes,
            } => self.gossiped(now, topic, from, source, message, bytes)?,
            Input::WorkDerived(work) => self.work_derived(now, work),
            Input::NewCommits(commits) => self.announce(now, commits)?,
            Input::NewPull(pull) => self.announce_pull(now, pull)?,
            Input::PullClosed {
                repositories,
                number,
            } => self.close_pull(now, &repositories, number)?,
            Input::BuildEnded {
                cell,
                result,
                tests,
                attestation,
            } => self.build_ended(now, cell, result, tests, attestation)?,
            Input::BuildNotStarted(cell) => {
                self.claimer.handle(now, ClaimInput::BuildAbandoned(cell));
            }
            Input::Tick => self.tick(now)?,
        }
        self.pump(now)
    }

    /// The next action to carry out, in order; drain until `None`.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.outbox.pop_front()
    }

    /// When to feed [`Input::Tick`] next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.replicator.poll_timeout(),
            self.claimer.poll_timeout(),
            self.schedules.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes entries signed elsewhere (a maintainer's, over HTTP): see
    /// [`Replicator::submit`]. Drain [`Service::poll_action`] after.
    pub fn submit(&mut self, now: Timestamp, wires: &[&[u8]]) -> Result<Vec<Submitted>, S::Error> {
        let submitted = self.replicator.submit(wires)?;
        self.pump(now)?;
        Ok(submitted)
    }

    /// Starts fetching a blob from peers: see [`Replicator::fetch_blob`].
    pub fn fetch_blob(&mut self, now: Timestamp, hash: BlobHash) -> Result<(), S::Error> {
        self.replicator.fetch_blob(now, hash);
        self.pump(now)
    }

    fn net(&mut self, now: Timestamp, input: replicator::Input) -> Result<(), S::Error> {
        self.replicator.handle(now, input)
    }

    fn tick(&mut self, now: Timestamp) -> Result<(), S::Error> {
        if self.replicator.poll_timeout().is_some_and(|at| at <= now) {
            self.replicator.handle(now, replicator::Input::Tick)?;
        }
        if self.claimer.poll_timeout().is_some_and(|at| at <= now) {
            self.claimer.handle(now, ClaimInput::Tick);
        }
        for due in self.schedules.due(now) {
            self.outbox.push_back(due);
        }
        Ok(())
    }

    /// Carries what the replicator and the claimer asked for into the
    /// outbox, in order, until neither asks for more: the claimer's
    /// actions write entries, whose replicator actions come before the
    /// claimer's next action.
    fn pump(&mut self, now: Timestamp) -> Result<(), S::Error> {
        let mut unclaimed = BTreeSet::new();
        loop {
            self.drain_replicator(now)?;
            let Some(action) = self.claimer.poll_action() else {
                return Ok(());
            };
            self.claim_action(now, action, &mut unclaimed)?;
        }
    }

    fn drain_replicator(&mut self, now: Timestamp) -> Result<(), S::Error> {
        while let Some(action) = self.replicator.poll_action() {
            match action {
                replicator::Action::LeasesHeard { peer: _, wires } => {
                    self.leases_heard(now, &wires)?
                }
                replicator::Action::Applied(ids) => {
                    self.outbox
                        .push_back(Action::Net(replicator::Action::Applied(ids)));
                    self.outbox.push_back(Action::DeriveWork);
                }
                other => self.outbox.push_back(Action::Net(other)),
            }
        }
        Ok(())
    }
}
