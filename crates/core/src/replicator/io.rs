//! What the replicator is told and what it asks for.

use buildmesh_protocol::{BlobHash, DecodeError, Entry, EntryId, PublicKey};

/// A peer, named by its node key (which is also its libp2p identity).
pub type PeerId = PublicKey;

/// The driver's handle for an inbound request, to route the response back.
pub type RequestId = u64;

/// Something that happened. Inputs are facts, in the past tense.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A connection to `peer` is up.
    PeerConnected(PeerId),
    /// The last connection to `peer` is gone.
    PeerDisconnected(PeerId),
    /// `peer` sent a request (bytes of a `protocol::Request`).
    RequestReceived {
        /// Who asked.
        peer: PeerId,
        /// The driver's handle for the answer.
        id: RequestId,
        /// The request's bytes.
        bytes: Vec<u8>,
    },
    /// `peer` answered our request (bytes of a `protocol::Response`).
    ResponseReceived {
        /// Who answered.
        peer: PeerId,
        /// The response's bytes.
        bytes: Vec<u8>,
    },
    /// Our request to `peer` got no answer (timeout, connection lost).
    RequestFailed(PeerId),
    /// Gossip delivered an entry's wire bytes.
    Gossiped {
        /// The peer that forwarded it to us.
        from: PeerId,
        /// The peer that published it (gossipsub's signed `source`).
        source: PeerId,
        /// Gossipsub's id for the message, to report a verdict on.
        message: Vec<u8>,
        /// The entry's wire bytes.
        bytes: Vec<u8>,
    },
    /// The signatures of a batch asked for with [`Action::Verify`] were
    /// checked: each wire's entry or why it failed, in the order given.
    Verified {
        /// The peer that served the batch.
        peer: PeerId,
        /// What [`Entry::from_wires`] made of each wire.
        entries: Vec<Result<Entry, DecodeError>>,
    },
    /// Time passed; see [`super::Replicator::poll_timeout`].
    Tick,
}

/// Something the driver must do. Actions are imperatives.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a request (bytes of a `protocol::Request`) to `peer`.
    Request {
        /// To whom.
        peer: PeerId,
        /// The request's bytes.
        bytes: Vec<u8>,
    },
    /// Answer the inbound request `id` (bytes of a `protocol::Response`).
    Respond {
        /// The driver's handle.
        id: RequestId,
        /// The response's bytes.
        bytes: Vec<u8>,
    },
    /// Answer the inbound request `id` with the blob `hash` from the
    /// node's blob store (blobs live at the edge, not in the log).
    ServeBlob {
        /// The driver's handle.
        id: RequestId,
        /// The blob asked for.
        hash: BlobHash,
    },
    /// Check the signatures of a sync batch with [`Entry::from_wires`],
    /// off the driver's thread if it likes, and feed back
    /// [`Input::Verified`], batches from one peer in the order asked.
    /// Verification is the costliest step of a catch-up; handing it out
    /// lets it run beside the store's writes and the next batch's transfer.
    Verify {
        /// The peer that served the batch.
        peer: PeerId,
        /// The entries' wire bytes.
        wires: Vec<Vec<u8>>,
    },
    /// A sync with `peer` completed, and its first answer carried these
    /// lease renewals (wire forms of `protocol::Renewal`, unchecked):
    /// verify them and take them in as if gossiped. The entries of that
    /// sync are in the log by now, so the claims they renew are too (see
    /// [`super::Replicator::set_leases`]).
    LeasesHeard {
        /// The peer that served them.
        peer: PeerId,
        /// At most `SYNC_LEASES_MAX` wire forms.
        wires: Vec<Vec<u8>>,
    },
    /// Publish an entry we wrote, by gossip.
    Publish {
        /// The entry's wire bytes.
        bytes: Vec<u8>,
    },
    /// Tell gossipsub whether to forward message `message`.
    ReportGossip {
        /// Gossipsub's message id.
        message: Vec<u8>,
        /// The peer it came from.
        from: PeerId,
        /// The verdict.
        verdict: Verdict,
    },
    /// Close every connection to `peer`, which misbehaved too often.
    Disconnect {
        /// Whom.
        peer: PeerId,
        /// The last offence.
        reason: Misbehaviour,
    },
    /// New entries are in the log (for views and live updates).
    Applied(Vec<EntryId>),
    /// A blob asked for with [`super::Replicator::fetch_blob`] arrived and
    /// matches its hash: store it.
    BlobFetched {
        /// Its hash.
        hash: BlobHash,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// No connected peer had the blob (or every copy was damaged).
    BlobUnavailable(BlobHash),
}

/// Gossipsub's three answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new to us: forward it.
    Accept,
    /// Harmless but not worth forwarding (a duplicate, a refused bound).
    Ignore,
    /// Invalid: drop it and penalise the sender.
    Reject,
}

/// What a peer did wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Misbehaviour {
    /// An entry that does not verify.
    BadEntry(DecodeError),
    /// Gossip published by one key carrying an entry signed by another.
    WrongAuthor {
        /// The gossip's publisher.
        source: PeerId,
        /// The entry's author.
        author: PublicKey,
    },
    /// A request or response that does not decode.
    Malformed(DecodeError),
    /// A response to nothing we asked.
    Unsolicited,
    /// More requests than the per-peer rate allows.
    RateExceeded,
    /// A blob whose bytes do not hash to what was asked for.
    WrongBlob(BlobHash),
}
