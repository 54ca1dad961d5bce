//! What the claimer is told and what it asks for.

use buildmesh_protocol::{Bid, Claim, CommitId, ProjectId, PublicKey, Timestamp};
use std::collections::BTreeSet;

/// One cell of the matrix: a commit of a project on a platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    /// The project.
    pub project: ProjectId,
    /// The commit.
    pub commit: CommitId,
    /// The platform label.
    pub platform: String,
}

impl CellKey {
    /// The cell a bid is for.
    pub fn of_bid(bid: &Bid) -> CellKey {
        CellKey {
            project: bid.project,
            commit: bid.commit.clone(),
            platform: bid.platform.clone(),
        }
    }

    /// The cell a claim is on.
    pub fn of_claim(claim: &Claim) -> CellKey {
        CellKey {
            project: claim.project,
            commit: claim.commit.clone(),
            platform: claim.platform.clone(),
        }
    }
}

/// Who besides this node may build a cell, as its project says: what
/// lets a round end before its window does, when its outcome is known.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Rivals {
    /// Any key may (an open project): only the window tells who bid.
    #[default]
    Open,
    /// Only these keys (this node not among them), because the project
    /// names its builders. None: this node is the only builder, and
    /// claims without a bid. Some: the round ends as soon as each of them
    /// has bid, since no other bid can count.
    Only(BTreeSet<PublicKey>),
}

/// Something that happened. Inputs are facts, in the past tense.
///
/// Facts about cells on platforms this node does not serve are dropped.
/// Claims, results and bids must come from builders the cell's project
/// trusts; the claimer does not know projects' policies.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimInput {
    /// The cell wants `builds` results from distinct builders; results
    /// written before `since` do not count (a force build moves `since`
    /// forward). Repeating it is harmless; a later `since` starts a new
    /// round.
    ///
    /// Feed the cell's claims and results with it, before the next
    /// [`ClaimInput::Tick`]: a cell the claimer forgot (done and idle for a
    /// while, or the node restarted) is rebuilt from them, and without them
    /// it would look open. The want is decided at that tick
    /// ([`super::Claimer::poll_timeout`] asks for one at once), never on
    /// its own.
    Wanted {
        /// The cell.
        cell: CellKey,
        /// Distinct builders' results it needs.
        builds: u8,
        /// Results written before this do not count.
        since: Timestamp,
        /// Who else may build it, as its project says.
        rivals: Rivals,
    },
    /// A trusted builder claimed the cell. Its renewals repeat this with a
    /// later expiry and `at` (feed each claim with the lease and time its
    /// latest renewal gave it). Our own claims come back this way too.
    Claimed {
        /// The cell.
        cell: CellKey,
        /// Who claimed it.
        builder: PublicKey,
        /// When the claim was written, or last renewed.
        at: Timestamp,
        /// When it lapses unless renewed.
        lease_expires: Timestamp,
    },
    /// A trusted builder wrote a result for the cell at `at`.
    Finished {
        /// The cell.
        cell: CellKey,
        /// Who built it.
        builder: PublicKey,
        /// When the result was written.
        at: Timestamp,
    },
    /// A trusted builder stopped building the cell at `at` without a
    /// verdict (a `Retry` or `Cancelled` result): its claim ends there, but
    /// it has not built the cell, so the cell still wants a build.
    Stopped {
        /// The cell.
        cell: CellKey,
        /// Who stopped.
        builder: PublicKey,
        /// When its result was written.
        at: Timestamp,
    },
    /// A verified bid from another node (or our own echoed back: ignored).
    Bid(Bid),
    /// Facts this builder gave no longer all count, as the views now
    /// judge: a fork is proven against it, or a revocation kept less of
    /// its chain, or a declaration dropped it. Every cell forgets what it
    /// had from it, so a cell its result seemed to settle, or its claim to
    /// hold, opens again; the facts that still count are fed again with
    /// the derivation. Feed it before those facts; again is harmless.
    Withdrawn {
        /// The project whose cells forget.
        project: ProjectId,
        /// Whose facts.
        builder: PublicKey,
    },
    /// Our build of the cell ended (its result is written and will also
    /// arrive as [`ClaimInput::Finished`]). Not needed after
    /// [`ClaimAction::CancelBuild`], and ignored then.
    BuildEnded(CellKey),
    /// The node started with peers it expects to reach: it sends no bid
    /// until [`ClaimInput::CaughtUp`], or for at most
    /// [`super::ClaimerConfig::catch_up_ms`], so that it does not bid for
    /// cells built while it was away from what its log says yet.
    WaitingForPeers,
    /// The node completed a sync with a peer: its log is as current as
    /// that peer's, and it bids again.
    CaughtUp,
    /// Our build of the cell never started: its claim could not be
    /// written, or it could not be run. Nothing was built; the cell may be
    /// claimed here again after [`super::ClaimerConfig::retry_ms`].
    BuildAbandoned(CellKey),
    /// The node lost its last connection to this peer. If it stays away
    /// for [`super::ClaimerConfig::orphan_ms`], its claims are treated as
    /// lapsed from now (`claim/lost.rs` argues why that is safe).
    PeerLost(PublicKey),
    /// The node is connected to this peer (again).
    PeerBack(PublicKey),
    /// Time passed; see [`super::Claimer::poll_timeout`]. Timers only fire
    /// here, never inside another input. (A bid may still close a window
    /// at once, when it makes the window's outcome certain: see
    /// `Rivals::Only`.)
    Tick,
}

/// Something the driver must do. Actions are imperatives.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAction {
    /// Sign this bid and gossip it on the bids topic.
    SendBid(Bid),
    /// Write (and publish) a claim entry on the cell: once per build.
    WriteClaim {
        /// The cell.
        cell: CellKey,
        /// The lease's end.
        lease_expires: Timestamp,
    },
    /// Sign and gossip a lease renewal of our claim on the cell
    /// (`protocol::Renewal`): never an entry, so a long build costs the
    /// log nothing more. Keep it among the live leases the node serves.
    RenewLease {
        /// The cell.
        cell: CellKey,
        /// The lease's new end.
        lease_expires: Timestamp,
    },
    /// Build the cell. Write the claim first: it is the action before.
    StartBuild(CellKey),
    /// Stop building the cell and write no result: another builder holds
    /// it by the rule, or enough results came.
    CancelBuild(CellKey),
}
