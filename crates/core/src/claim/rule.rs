//! The winner rule (`docs/protocol.md` §10.3): a pure function every node
//! applies to the bids it has seen, so nodes that saw the same bids pick
//! the same winners.

use super::io::CellKey;
use buildmesh_protocol::{PublicKey, sha256};

/// Hashed in front of every rendezvous score.
pub const RENDEZVOUS_DOMAIN: &[u8] = b"buildmesh/rendezvous/v1";

/// A bidder's rendezvous score for a cell, compared as a big-endian
/// number: lower ranks better.
pub type Score = [u8; 32];

/// One bid as the rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The bidder.
    pub bidder: PublicKey,
    /// Builds it said it was running.
    pub load: u32,
}

/// `SHA-256(domain ‖ bidder ‖ project ‖ len(commit) as u64 LE ‖ commit ‖
/// platform)`. The length prefix keeps a 20-byte commit followed by a
/// platform from hashing like a 32-byte commit and a shorter platform.
pub fn rendezvous_score(bidder: &PublicKey, cell: &CellKey) -> Score {
    let commit = cell.commit.as_bytes();
    sha256(&[
        RENDEZVOUS_DOMAIN,
        &bidder.0,
        &cell.project.0,
        &(commit.len() as u64).to_le_bytes(),
        commit,
        cell.platform.as_bytes(),
    ])
}

/// The `needed` winners among `bids` for `cell`: lowest load first, then
/// lowest rendezvous score (then key, which two distinct bidders never
/// need). A bidder listed twice counts once, with its lowest load.
pub fn pick_winners(cell: &CellKey, bids: &[Candidate], needed: usize) -> Vec<PublicKey> {
    let ranked = bids
        .iter()
        .map(|c| Rank::new(c.load, rendezvous_score(&c.bidder, cell), c.bidder))
        .collect();
    top(ranked, needed)
}

/// Where a bid stands: the sort key of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rank {
    load: u32,
    score: Score,
    bidder: PublicKey,
}

impl Rank {
    pub(crate) fn new(load: u32, score: Score, bidder: PublicKey) -> Rank {
        Rank {
            load,
            score,
            bidder,
        }
    }

    pub(crate) fn bidder(&self) -> PublicKey {
        self.bidder
    }
}

/// The first `needed` distinct bidders by rank.
pub(crate) fn top(mut ranked: Vec<Rank>, needed: usize) -> Vec<PublicKey> {
    ranked.sort_unstable();
    let mut winners: Vec<PublicKey> = Vec::with_capacity(needed);
    for rank in ranked {
        if winners.len() >= needed {
            break;
        }
        if !winners.contains(&rank.bidder) {
            winners.push(rank.bidder);
        }
    }
    winners
}

/// How long after a round opens a bidder with `score` sends its bid: its
/// score's place in `[0, 2^256)` scaled to `[0, spread_ms)`. The likely
/// winners bid first, and the rest can see they would lose and stay quiet.
pub fn bid_delay_ms(score: &Score, spread_ms: u64) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&score[..8]);
    let fraction = u128::from(u64::from_be_bytes(head));
    ((fraction * u128::from(spread_ms)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_protocol::{CommitId, ProjectId};

    fn cell(platform: &str) -> CellKey {
        CellKey {
            project: ProjectId([1; 32]),
            commit: CommitId::from_bytes(&[2; 20]).unwrap_or_else(|| unreachable!()),
            platform: platform.into(),
        }
    }

    #[test]
    fn scores_depend_on_bidder_and_cell() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        assert_ne!(
            rendezvous_score(&a, &cell("x")),
            rendezvous_score(&b, &cell("x"))
        );
        assert_ne!(
            rendezvous_score(&a, &cell("x")),
            rendezvous_score(&a, &cell("y"))
        );
    }

    #[test]
    fn delays_stay_within_the_spread() {
        assert_eq!(bid_delay_ms(&[0; 32], 75), 0);
        assert_eq!(bid_delay_ms(&[0xff; 32], 75), 74);
        assert_eq!(bid_delay_ms(&[0x80; 32], 100), 50);
    }

    #[test]
    fn a_bidder_counts_once_with_its_lowest_load() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        let bids = [
            Candidate { bidder: a, load: 3 },
            Candidate { bidder: b, load: 1 },
            Candidate { bidder: a, load: 0 },
        ];
        assert_eq!(pick_winners(&cell("x"), &bids, 2), vec![a, b]);
    }
}
