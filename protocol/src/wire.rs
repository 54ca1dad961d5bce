//! Messages between peers, besides gossiped entries (which travel as their
//! wire bytes alone). Encoded with bincode 2.0.1 (standard configuration:
//! varints, little-endian) under a size limit enforced before allocating.

use crate::error::DecodeError;
use crate::ids::{BlobHash, EntryId, PublicKey};
use crate::version::VersionVector;
use bincode::config::{Configuration, Limit, LittleEndian, Varint};
use serde::{Deserialize, Serialize};

/// Largest request a node accepts, bytes: a version vector of about
/// 25,000 authors.
pub const REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// Largest response a node accepts, bytes: a sync batch (4 MiB of entries
/// plus slack for fork siblings) or one blob chunk.
pub const RESPONSE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Most lease renewals one sync response carries.
pub const SYNC_LEASES_MAX: usize = 1024;

/// Most authors a [`Request::Forks`] may name in `known`; a node reads
/// the first this many and ignores the rest.
pub const FORKS_KNOWN_MAX: usize = 1024;

/// Most heads a [`Request::Forks`] may name; a node reads the first this
/// many and ignores the rest.
pub const FORKS_HEADS_MAX: usize = 1024;

/// Most entries one [`Response::Forks`] carries: 16 proofs of two entries
/// each, or entries that contradict the asker's heads. At most 3 MiB, well
/// within [`RESPONSE_BYTES_MAX`].
pub const FORKS_ENTRIES_MAX: usize = 64;

/// One entry the asker of [`Request::Forks`] holds: "if you hold another
/// entry of this author at this sequence number, send it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// Its author.
    pub author: PublicKey,
    /// Its sequence number.
    pub seq: u64,
    /// Its id.
    pub id: EntryId,
}

/// Where the next batch for the same sync starts.
///
/// A cursor, not a fresh version vector, resumes a sync: entries that do not
/// link on the peer's side (fork evidence) would otherwise be sent forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// The author to continue with.
    pub author: PublicKey,
    /// The first sequence number not yet sent.
    pub seq: u64,
}

/// What one peer asks another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// "Here is what I hold; send what I lack", from `resume` on.
    Sync {
        /// The asker's version vector.
        have: VersionVector,
        /// Where the previous batch stopped, if this continues a sync.
        resume: Option<SyncCursor>,
    },
    /// "Send me the blob with this hash, if you have it."
    Blob(BlobHash),
    /// "Send me the fork proofs you hold against authors other than these
    /// (or lower than these), and the entries you hold that contradict
    /// these of mine" (docs/protocol.md §6, "Forks travel"). A version
    /// vector cannot show two nodes that each hold one of two entries at
    /// one sequence number: this does.
    Forks {
        /// Authors the asker holds a fork proof against, each with the
        /// proof's sequence number; at most [`FORKS_KNOWN_MAX`] are read.
        known: Vec<(PublicKey, u64)>,
        /// Entries the asker holds; at most [`FORKS_HEADS_MAX`] are read.
        heads: Vec<Head>,
    },
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Entries the asker lacks, as wire bytes, and where to resume.
    Sync {
        /// Wire forms of linked entries, by author then sequence number.
        entries: Vec<Vec<u8>>,
        /// `Some` when more remain.
        resume: Option<SyncCursor>,
        /// Wire forms of the lease renewals this peer holds live
        /// ([`crate::Renewal`]), in the first batch of a sync only: what a
        /// node that joins late or restarts could not have heard by gossip.
        /// At most [`SYNC_LEASES_MAX`]; a receiver ignores the rest.
        leases: Vec<Vec<u8>>,
    },
    /// The blob, or `None` if this peer does not hold it.
    Blob(Option<Vec<u8>>),
    /// The request was refused: the asker is over its rate or sent garbage.
    Refused(Refusal),
    /// The answer to [`Request::Forks`]: wire forms of entries, at most
    /// [`FORKS_ENTRIES_MAX`]; the asker takes them through its ordinary
    /// merge rules, which find the forks.
    Forks {
        /// Wire forms of entries (§4 of docs/protocol.md).
        entries: Vec<Vec<u8>>,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Too many requests; ask again later.
    RateLimited,
    /// The request did not decode.
    Malformed,
}

type Config<const N: usize> = Configuration<LittleEndian, Varint, Limit<N>>;

fn config<const N: usize>() -> Config<N> {
    bincode::config::standard().with_limit::<N>()
}

impl Request {
    /// The bytes of this request.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, config::<REQUEST_BYTES_MAX>()).unwrap_or_default()
    }

    /// Decodes a request, refusing more than [`REQUEST_BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        decode::<Request, REQUEST_BYTES_MAX>(bytes)
    }
}

impl Response {
    /// The bytes of this response.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serde::encode_to_vec(self, config::<RESPONSE_BYTES_MAX>()).unwrap_or_default()
    }

    /// Decodes a response, refusing more than [`RESPONSE_BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Response, DecodeError> {
        decode::<Response, RESPONSE_BYTES_MAX>(bytes)
    }
}

fn decode<T: serde::de::DeserializeOwned, const N: usize>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > N {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config::<N>())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let have: VersionVector = [(PublicKey([1; 32]), 7)].into_iter().collect();
        let resume = Some(SyncCursor {
            author: PublicKey([2; 32]),
            seq: 3,
        });
        let request = Request::Sync { have, resume };
        assert_eq!(Request::decode(&request.encode()), Ok(request));
        let response = Response::Sync {
            entries: vec![vec![1, 2, 3]],
            resume: None,
            leases: vec![vec![4, 5]],
        };
        assert_eq!(Response::decode(&response.encode()), Ok(response));
        let refused = Response::Refused(Refusal::RateLimited);
        assert_eq!(Response::decode(&refused.encode()), Ok(refused));
        let forks = Request::Forks {
            known: vec![(PublicKey([3; 32]), 9)],
            heads: vec![Head {
                author: PublicKey([4; 32]),
                seq: 2,
                id: EntryId([5; 32]),
            }],
        };
        assert_eq!(Request::decode(&forks.encode()), Ok(forks));
        let proofs = Response::Forks {
            entries: vec![vec![6], vec![7, 8]],
        };
        assert_eq!(Response::decode(&proofs.encode()), Ok(proofs));
    }

    #[test]
    fn garbage_and_oversize_are_errors() {
        assert!(Request::decode(&[0xff; 40]).is_err());
        assert!(Request::decode(&vec![0; REQUEST_BYTES_MAX + 1]).is_err());
        // A length prefix claiming far more than the limit allocates nothing.
        assert!(
            Response::decode(&[0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err()
        );
    }
}
