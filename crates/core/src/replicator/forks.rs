//! Fork proofs travel (docs/protocol.md §6, "Forks travel").
//!
//! A sync by version vector never shows two nodes that hold different
//! entries at one `(author, seq)`: both vectors say `seq`. So after a sync
//! it started, a node asks the peer [`Request::Forks`], naming the authors
//! it holds proofs against (with each proof's `seq`) and, for other
//! authors, the entry it holds at their head. The peer answers with the
//! two entries of each proof the asker lacks (or holds only higher), and
//! with its own entries where they contradict the asker's. The asker takes
//! them through the ordinary merge rules, which find the forks: a proof is
//! just two entries anyone can check.
//!
//! A node that learns a new or lower fork asks every peer at once; a peer
//! asked by someone who knows more than it does (a proof it lacks, a head
//! that contradicts its own) asks back. So a proof crosses the mesh in a
//! few round trips, however it was first found.
//!
//! When the siblings of a proof do not all follow the entry held before
//! them, the two histories parted earlier: the node then also names, as
//! *probes*, the entries it holds further back (1, 2, 4, ... before the
//! proof), and a peer that holds the other history answers with its own
//! there. The boundary thus walks down to where the histories parted, on
//! every node, and every node ends up holding the same entries.
//!
//! A peer too old to know the request answers `Refused(Malformed)`: it is
//! not asked again while the connection lasts, and nothing is held
//! against it.

use super::{Misbehaviour, PeerId, Replicator};
use crate::log::{self, EntryStore, ForkProof, StoredEntry, proof_entries};
use buildmesh_protocol::{
    Entry, FORKS_ENTRIES_MAX, FORKS_HEADS_MAX, FORKS_KNOWN_MAX, Head, PublicKey, Request,
};
use std::collections::BTreeMap;

/// Most probes named for one forked author per request: 1, 2, 4, ... 2^31
/// entries before its boundary reaches back past any chain's quota.
const PROBES_PER_AUTHOR_MAX: usize = 32;

/// Most store reads one request spends finding probes (each forked
/// author costs two to find settled, then one per probe tried): what
/// bounds building a request however many authors are forked.
const PROBE_READS_MAX: usize = 4 * FORKS_HEADS_MAX;

/// What a node makes of a [`Request::Forks`].
pub(super) struct ForksAnswer {
    /// Wire forms of the entries to send, at most [`FORKS_ENTRIES_MAX`].
    pub(super) entries: Vec<Vec<u8>>,
    /// The asker holds something this node lacks (a proof, or an entry
    /// that contradicts one of ours): ask it back.
    pub(super) asker_knows_more: bool,
}

impl<S: EntryStore> Replicator<S> {
    /// Asks `peer` for the fork proofs and contradicting entries it holds,
    /// unless one such request is out, the peer is too old to answer, a
    /// blob request is out (a refusal could not be told apart), or, unless
    /// `urgent`, we asked it within the sync interval.
    pub(super) fn ask_forks(&mut self, peer: PeerId, urgent: bool) -> Result<(), S::Error> {
        let interval = self.config.sync_interval_ms;
        let now = self.now;
        let Some(state) = self.peers.get(&peer) else {
            return Ok(());
        };
        let recent = state
            .forks_asked_at
            .is_some_and(|at| now < at.plus_ms(interval));
        if state.forks_wanted
            || state.forks_unsupported
            || state.blob_wanted.is_some()
            || (recent && !urgent)
        {
            return Ok(());
        }
        let request = self.forks_request()?;
        if let Some(state) = self.peers.get_mut(&peer) {
            state.forks_wanted = true;
            state.forks_asked_at = Some(now);
        }
        let bytes = request.encode();
        self.outbox
            .push_back(super::Action::Request { peer, bytes });
        Ok(())
    }

    /// What to name: the proofs held and, for the other authors, the entry
    /// at their head; each list rotated from a random start when it is too
    /// long, so that every author is named in turn. The proofs named are
    /// one run in author order: the answerer starts there (see
    /// [`Self::answer_forks`]).
    fn forks_request(&mut self) -> Result<Request, S::Error> {
        let proofs = self.store.forks()?;
        let start = self.next_random() as usize;
        let known: Vec<(PublicKey, u64)> = rotated(&proofs, start, FORKS_KNOWN_MAX)
            .map(|(author, proof)| (*author, proof.seq))
            .collect();
        // Probes start where the run of known proofs does: as random, and
        // no draw more, so that a log without forks sees the same draws.
        let mut heads = self.probes_from(&proofs, start)?;
        let forked: BTreeMap<PublicKey, ForkProof> = proofs.into_iter().collect();
        let versions: Vec<(PublicKey, u64)> = self
            .store
            .versions()?
            .iter()
            .filter(|(author, _)| !forked.contains_key(author))
            .map(|(author, seq)| (*author, seq))
            .collect();
        let room = FORKS_HEADS_MAX - heads.len();
        let start = self.next_random() as usize;
        for (author, seq) in rotated(&versions, start, room) {
            heads.extend(self.only_linked(author, *seq)?);
        }
        Ok(Request::Forks { known, heads })
    }

    /// The entry this node holds linked at `(author, seq)`, when it holds
    /// exactly one there.
    fn only_linked(&self, author: &PublicKey, seq: u64) -> Result<Option<Head>, S::Error> {
        let held: Vec<StoredEntry> = self.store.at(author, seq)?;
        Ok(match held.as_slice() {
            [one] if one.linked => Some(Head {
                author: *author,
                seq,
                id: one.entry.id(),
            }),
            _ => None,
        })
    }

    /// Probes for the forked authors whose histories parted before their
    /// boundary, taken in author order from the `start`-th (wrapping) until
    /// they fill half the heads or [`PROBE_READS_MAX`] store reads are
    /// spent; authors found settled at their boundary are remembered and
    /// skipped for free.
    ///
    /// Anyone with keys can make forks that never settle (a sibling whose
    /// `prev` is garbage): taken from the lowest key, enough of them would
    /// take every slot in every request, and a real fork with a high key
    /// would never walk down; computed for every author, each request
    /// would cost reads in proportion to them all.
    fn probes_from(
        &mut self,
        proofs: &[(PublicKey, ForkProof)],
        start: usize,
    ) -> Result<Vec<Head>, S::Error> {
        let room = FORKS_HEADS_MAX / 2;
        let mut probes = Vec::new();
        let mut reads = 0;
        for (author, proof) in rotated(proofs, start, proofs.len()) {
            if probes.len() >= room || reads >= PROBE_READS_MAX {
                break;
            }
            if self.forks_settled.get(author) == Some(&proof.seq) {
                continue;
            }
            if self.is_settled(author, proof, &mut reads)? {
                self.forks_settled.insert(*author, proof.seq);
                continue;
            }
            probes.extend(self.probes(author, proof, &mut reads)?);
        }
        probes.truncate(room);
        Ok(probes)
    }

    /// Whether every entry held at the boundary follows the one entry held
    /// before it (or the boundary is the first entry): then the histories
    /// parted there, and there is nothing to probe.
    fn is_settled(
        &self,
        author: &PublicKey,
        proof: &ForkProof,
        reads: &mut usize,
    ) -> Result<bool, S::Error> {
        if proof.seq <= 1 {
            return Ok(true);
        }
        *reads += 2;
        let before = self.store.at(author, proof.seq - 1)?;
        let at = self.store.at(author, proof.seq)?;
        Ok(match before.as_slice() {
            [parent] => at.iter().all(|s| s.entry.prev() == parent.entry.id()),
            _ => false,
        })
    }

    /// The entries to name before an unsettled boundary: those held 1, 2,
    /// 4, ... before it.
    fn probes(
        &self,
        author: &PublicKey,
        proof: &ForkProof,
        reads: &mut usize,
    ) -> Result<Vec<Head>, S::Error> {
        let mut probes = Vec::new();
        let mut back = 1u64;
        while back < proof.seq && probes.len() < PROBES_PER_AUTHOR_MAX {
            *reads += 1;
            probes.extend(self.only_linked(author, proof.seq - back)?);
            back = back.saturating_mul(2);
        }
        Ok(probes)
    }

    /// The answer to a [`Request::Forks`]: the two entries of each proof
    /// the asker lacks or holds only higher, in author order from the
    /// first author it names (wrapping), then this node's entries where
    /// they contradict the asker's heads.
    ///
    /// An asker names its proofs as one run in author order from a random
    /// start, so what it lacks among the authors its run spans is known
    /// for sure (it named every proof it holds there): those are sent,
    /// and, when the run is full, nothing past it, where the asker may
    /// hold proofs it had no room to name. Had the answer walked from the
    /// lowest key, such proofs would take every slot, for ever, once both
    /// hold more than [`FORKS_KNOWN_MAX`] (anyone with keys can make that
    /// many forks): a proof against a high key would never travel, nor
    /// would any entry that contradicts a head. As the run moves, every
    /// author is spanned in turn.
    pub(super) fn answer_forks(
        &self,
        known: &[(PublicKey, u64)],
        heads: &[Head],
    ) -> Result<ForksAnswer, S::Error> {
        let named = &known[..known.len().min(FORKS_KNOWN_MAX)];
        let start = named.first().map(|(author, _)| *author);
        let span = Span::of(named);
        let known: BTreeMap<PublicKey, u64> = named.iter().copied().collect();
        let ours: BTreeMap<PublicKey, ForkProof> = self.store.forks()?.into_iter().collect();
        let mut answer = ForksAnswer {
            entries: Vec::new(),
            asker_knows_more: known
                .iter()
                .any(|(author, seq)| ours.get(author).is_none_or(|p| *seq < p.seq)),
        };
        for (author, proof) in from_author(&ours, start) {
            if !span.holds(author) {
                break;
            }
            if known.get(author).is_some_and(|seq| *seq <= proof.seq) {
                continue;
            }
            let entries = proof_entries(&self.store, proof)?;
            if answer.entries.len() + entries.len() > FORKS_ENTRIES_MAX {
                break;
            }
            answer
                .entries
                .extend(entries.iter().map(|s| s.entry.to_wire()));
        }
        for head in heads.iter().take(FORKS_HEADS_MAX) {
            let held = self.store.at(&head.author, head.seq)?;
            if held.is_empty() || held.iter().any(|s| s.entry.id() == head.id) {
                continue;
            }
            answer.asker_knows_more |= !ours.contains_key(&head.author);
            let room = FORKS_ENTRIES_MAX.saturating_sub(answer.entries.len());
            answer
                .entries
                .extend(held.iter().take(room).map(|s| s.entry.to_wire()));
        }
        Ok(answer)
    }

    /// A peer's answer: checked like a sync batch (one invalid entry
    /// condemns the peer, which only serves what its log accepted), then
    /// taken through the merge rules.
    pub(super) fn forks_arrived(
        &mut self,
        peer: PeerId,
        mut wires: Vec<Vec<u8>>,
    ) -> Result<(), S::Error> {
        wires.truncate(FORKS_ENTRIES_MAX);
        let slices: Vec<&[u8]> = wires.iter().map(Vec::as_slice).collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(slices.len());
        for checked in Entry::from_wires(&slices, &mut self.keys) {
            match checked {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    self.disconnect(peer, Misbehaviour::BadEntry(error));
                    return Ok(());
                }
            }
        }
        if self.take_batch(entries)? {
            self.store.flush()?;
        }
        Ok(())
    }

    /// After entries were taken: if the log now holds a proof against an
    /// author it held none against, or a lower one, every peer is asked at
    /// once, and each that lacks the proof asks back.
    pub(super) fn forks_may_have_changed(&mut self) -> Result<(), S::Error> {
        let now: BTreeMap<PublicKey, u64> = self
            .store
            .forks()?
            .into_iter()
            .map(|(author, proof)| (author, proof.seq))
            .collect();
        let news = now
            .iter()
            .any(|(author, seq)| self.forks_seen.get(author).is_none_or(|old| seq < old));
        self.forks_seen = now;
        if news {
            let peers: Vec<PeerId> = self.peers.keys().copied().collect();
            for peer in peers {
                self.ask_forks(peer, true)?;
            }
        }
        Ok(())
    }
}

/// At most `max` items of `items`, starting at `start` (modulo the length)
/// and wrapping around.
fn rotated<T>(items: &[T], start: usize, max: usize) -> impl Iterator<Item = &T> {
    let len = items.len();
    let start = if len == 0 { 0 } else { start % len };
    items[start..]
        .iter()
        .chain(&items[..start])
        .take(max.min(len))
}

/// The authors a [`Request::Forks`] speaks for: all, unless it named as
/// many proofs as may be named (the asker may hold more), then those from
/// the first named to the last, in author order, wrapping.
enum Span {
    All,
    From(PublicKey, PublicKey),
}

impl Span {
    fn of(named: &[(PublicKey, u64)]) -> Span {
        match (named.first(), named.last()) {
            (Some((first, _)), Some((last, _))) if named.len() >= FORKS_KNOWN_MAX => {
                Span::From(*first, *last)
            }
            _ => Span::All,
        }
    }

    fn holds(&self, author: &PublicKey) -> bool {
        match self {
            Span::All => true,
            Span::From(first, last) if first <= last => first <= author && author <= last,
            Span::From(first, last) => first <= author || author <= last,
        }
    }
}

/// Every item of `map` in key order from the first key at or after
/// `start` (from the lowest when `None`), wrapping around.
fn from_author<V>(
    map: &BTreeMap<PublicKey, V>,
    start: Option<PublicKey>,
) -> impl Iterator<Item = (&PublicKey, &V)> {
    // The lowest key there is: from it, the wrapped part is empty.
    let start = start.unwrap_or(PublicKey([0; 32]));
    map.range(start..).chain(map.range(..start))
}

/// Whether `outcome` may have given the log a new fork proof.
pub(super) fn may_prove_a_fork(outcome: &log::Ingested) -> bool {
    matches!(outcome, log::Ingested::Fork(_))
}
