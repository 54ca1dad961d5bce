//! What the service is told and what it asks for.

use crate::claim::CellKey;
use crate::replicator::{self, PeerId, RequestId};
use crate::view::{Declined, LiveLeases, Watch, Work};
use buildmesh_protocol::{
    BlobHash, BuildResult, CommitAnnouncement, DecodeError, Entry, EntryId, PullAnnouncement,
    TestSummary,
};
use std::sync::Arc;

/// The gossip topics a node takes part in (`docs/protocol.md` §9-§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Signed log entries.
    Entries,
    /// Signed bids, never stored.
    Bids,
    /// Signed lease renewals, never stored.
    Renewals,
}

/// Something that happened. Inputs are facts, in the past tense.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection to `peer` is up.
    PeerConnected(PeerId),
    /// The last connection to `peer` is gone.
    PeerDisconnected(PeerId),
    /// `peer` sent a request (bytes of a `protocol::Request`).
    Request {
        /// Who asked.
        peer: PeerId,
        /// The node's handle for the answer.
        id: RequestId,
        /// The request's bytes.
        bytes: Vec<u8>,
    },
    /// `peer` answered our request (bytes of a `protocol::Response`).
    Response {
        /// Who answered.
        peer: PeerId,
        /// The response's bytes.
        bytes: Vec<u8>,
    },
    /// Our request to `peer` got no answer.
    RequestFailed(PeerId),
    /// A sync batch asked for with `replicator::Action::Verify` was
    /// checked.
    Verified {
        /// The peer that served it.
        peer: PeerId,
        /// What `Entry::from_wires` made of each wire.
        entries: Vec<Result<Entry, DecodeError>>,
    },
    /// Gossip delivered a message on `topic`.
    Gossiped {
        /// Its topic.
        topic: Topic,
        /// The peer that forwarded it to us.
        from: PeerId,
        /// The peer that published it (gossipsub's signed `source`).
        source: PeerId,
        /// Gossipsub's id for the message, to report a verdict on.
        message: Vec<u8>,
        /// Its data.
        bytes: Vec<u8>,
    },
    /// The node's work, derived from the log as [`Action::DeriveWork`]
    /// asked (or on the node's own schedule): what it should watch and
    /// build, and the claims and results on those cells.
    WorkDerived(Arc<Work>),
    /// The poller found new commits: sign an announcement of each, in
    /// order.
    NewCommits(Vec<CommitAnnouncement>),
    /// The announcer fetched a pull request's head and found it is the
    /// commit its forge named: sign an announcement of it, if the project
    /// builds pull requests (docs/protocol.md §6.2).
    NewPull(PullAnnouncement),
    /// A forge said pull request `number` of the repository at one of
    /// `repositories` was closed: sign a close of it for each project
    /// this node announces for there that builds pull requests and has it
    /// open (docs/protocol.md §6.2).
    PullClosed {
        /// Where the forge says the repository is.
        repositories: Vec<String>,
        /// The pull request's number.
        number: u64,
    },
    /// Our build of `cell` ended: with its result, or with none (it was
    /// cancelled, or the node could not run it: see
    /// [`Input::BuildNotStarted`]).
    BuildEnded {
        /// The cell.
        cell: CellKey,
        /// The result to sign and spread; `None` after a cancel.
        result: Option<Box<BuildResult>>,
        /// What its tests said, when the build reported tests.
        tests: Option<TestSummary>,
        /// The blob of the attestations the node signed of the result,
        /// which the result's entry names ([`buildmesh_protocol::Body::Attested`]);
        /// `None`: the node made none.
        attestation: Option<BlobHash>,
    },
    /// The build of `cell` that [`Action::StartBuild`] asked for could not
    /// be started: nothing was built, and the cell is claimed again later.
    BuildNotStarted(CellKey),
    /// Time passed; see [`super::Service::poll_timeout`].
    Tick,
}

/// Something the node must do, in the order given. Actions are
/// imperatives.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A network or storage action of the replicator (requests, answers,
    /// verification, publishing entries, gossip verdicts, blobs).
    Net(replicator::Action),
    /// Gossip these bytes on `topic` (a bid or a lease renewal of ours).
    Publish {
        /// The topic.
        topic: Topic,
        /// The message.
        bytes: Vec<u8>,
    },
    /// The log or the live leases changed: derive the node's work
    /// (`view::work`, with the leases of the latest
    /// [`Action::LeasesChanged`]) and feed [`Input::WorkDerived`]. Several
    /// may be served by one derivation.
    DeriveWork,
    /// The live lease renewals changed: views read claims' leases from
    /// these.
    LeasesChanged(Arc<LiveLeases>),
    /// Build `cell` from `repository`. Its claim is written and published:
    /// it is among the actions before this one.
    StartBuild {
        /// The cell.
        cell: CellKey,
        /// Where its commit is.
        repository: String,
    },
    /// Stop building `cell`; it writes no result.
    CancelBuild(CellKey),
    /// Watch these repositories (the whole list, when it changed).
    Watch(Vec<Watch>),
    /// A scheduled force build is due: the node signs it with the
    /// maintainer key it holds, if that key owns the project.
    ForceDue {
        /// The project's name, under the maintainer key.
        project: String,
        /// The branch whose head is built again.
        branch: String,
        /// Why, for the force's `reason`.
        reason: String,
    },
    /// Something the operator should hear of; nothing is to be done.
    Notice(Notice),
}

/// What the service tells the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// One of our entries could not be written and is dropped.
    NotWritten {
        /// What it was (`"claim"`, `"result"`, `"announcement"`).
        what: &'static str,
        /// Why.
        why: String,
    },
    /// A bid or renewal of ours could not be signed (a bug: ours always
    /// keep the limits).
    NotSigned(String),
    /// Our result for `cell` is signed and stored as entry `id` (its page
    /// is `/results/{id}`).
    ResultWritten {
        /// The cell built.
        cell: CellKey,
        /// The result entry.
        id: EntryId,
    },
    /// The claim on `cell` was not written, so it is not built now; it is
    /// claimed again after the claimer's `retry_ms`.
    ClaimNotWritten(CellKey),
    /// No repository is known for the cell's project.
    NoRepository(CellKey),
    /// A project that wants one of our platforms is not built here, and
    /// why; said once per project and reason.
    Declined(Declined),
    /// A gossiped bid or renewal was invalid; its forwarder is penalised.
    BadGossip {
        /// Who forwarded it.
        from: PeerId,
        /// Why it was refused.
        why: String,
    },
}
