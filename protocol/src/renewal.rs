//! Lease renewals: a builder's signed word that it still builds one cell
//! (`docs/protocol.md` §11).
//!
//! A builder writes one claim entry when it takes a cell; while the build
//! runs it renews the claim's lease with these, by gossip. A renewal is
//! ephemeral like a bid: never stored in the log, so a long build costs
//! the log two entries (claim and result) whatever its length. Nodes keep
//! the live ones in memory and hand them to peers that sync with them.

use crate::bid::validate_cell;
use crate::error::InvalidBody;
use crate::ids::{CommitId, ProjectId, PublicKey};
use crate::signed::{Ephemeral, MessageDecodeError, Signed};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Prepended to a renewal's content bytes before signing: neither
/// [`ENTRY_DOMAIN`](crate::ENTRY_DOMAIN) nor [`BID_DOMAIN`](crate::BID_DOMAIN).
pub const RENEWAL_DOMAIN: &[u8] = b"buildmesh/renewal/v1\0";

/// Largest accepted wire form of one renewal, bytes. The largest valid
/// renewal (32-byte commit id, 256-byte platform) is 449.
pub const RENEWAL_BYTES_MAX: usize = 1024;

/// The gossipsub topic renewals travel on.
pub const RENEWAL_TOPIC: &str = "buildmesh/renewals/1";

/// "I still build this cell; hold it for me until `lease_expires`." Field
/// order is the wire order: the fixed-size fields first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renewal {
    /// Who builds (and signs): the author of the claim it renews.
    pub builder: PublicKey,
    /// When the builder sent it, by its clock.
    pub at: Timestamp,
    /// The project.
    pub project: ProjectId,
    /// The lease's new end.
    pub lease_expires: Timestamp,
    /// The commit.
    pub commit: CommitId,
    /// The platform label.
    pub platform: String,
}

impl Ephemeral for Renewal {
    const DOMAIN: &'static [u8] = RENEWAL_DOMAIN;
    const BYTES_MAX: usize = RENEWAL_BYTES_MAX;

    fn signer(&self) -> &PublicKey {
        &self.builder
    }

    fn validate(&self) -> Result<(), InvalidBody> {
        validate_cell(&self.commit, &self.platform)
    }
}

/// A verified renewal (see [`Signed`]).
pub type SignedRenewal = Signed<Renewal>;

/// Why wire bytes were refused as a renewal.
pub type RenewalDecodeError = MessageDecodeError;
