//! Fork proofs travel (docs/protocol.md §6, "Forks travel").
//!
//! A sync by version vector never shows two nodes that hold different
//! entries at one `(author, seq)`: both vectors say `seq`. So after a sync
//! it started, a node asks the peer [`Request::Forks`], naming the authors
//! it holds proofs against (with each proof's `seq`) and every entry it
//! holds at their boundary (the *siblings*), and, for other authors, the
//! entry it holds at their head. The peer answers with the two entries of
//! each proof the asker lacks (or holds only higher), and with its own
//! entries where the asker named others. The asker takes them through the
//! ordinary merge rules, which find the forks: a proof is just two entries
//! anyone can check. Two nodes that both prove a fork at one boundary may
//! hold different siblings there (an author can sign any number): named,
//! they travel until both keep the same (at most `SIBLINGS_MAX`, the
//! lowest ids: see `log::siblings`).
//!
//! A node that learns a new or lower fork, or a new sibling, asks every
//! peer at once; a peer asked by someone who knows more than it does (a
//! proof it lacks, a head that contradicts its own, a sibling it would
//! keep) asks back. So a proof crosses the mesh in a few round trips,
//! however it was first found.
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
use crate::log::{self, EntryStore, ForkProof, SIBLINGS_MAX, StoredEntry, proof_entries};
use buildmesh_protocol::{
    Entry, EntryId, FORKS_ENTRIES_MAX, FORKS_HEADS_MAX, FORKS_KNOWN_MAX, Head, PublicKey, Request,
};
use std::collections::{BTreeMap, BTreeSet};

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
    /// [`Self::answer_forks`]). The forked authors' siblings and probes
    /// come first, from the same start.
    fn forks_request(&mut self) -> Result<Request, S::Error> {
        let proofs = self.store.forks()?;
        let start = self.next_random() as usize;
        let known: Vec<(PublicKey, u64)> = rotated(&proofs, start, FORKS_KNOWN_MAX)
            .map(|(author, proof)| (*author, proof.seq))
            .collect();
        // Forked heads start where the run of known proofs does: as
        // random, and no draw more, so that a log without forks sees the
        // same draws.
        let mut heads = self.forked_heads(&proofs, start)?;
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

    /// For the forked authors, taken in author order from the `start`-th
    /// (wrapping): every entry held at the boundary (its *siblings*, at
    /// most [`SIBLINGS_MAX`]), and, where the histories parted before the
    /// boundary, probes; until they fill half the heads or
    /// [`PROBE_READS_MAX`] store reads are spent. Authors found settled at
    /// their boundary are remembered and cost no probe reads.
    ///
    /// Siblings are named because two nodes that both prove a fork at one
    /// boundary may hold different entries there (an author can sign up to
    /// [`SIBLINGS_MAX`] and more): neither a proof nor a head shows it, so
    /// without them their logs would differ for ever.
    ///
    /// Anyone with keys can make forks that never settle (a sibling whose
    /// `prev` is garbage): taken from the lowest key, enough of them would
    /// take every slot in every request, and a real fork with a high key
    /// would never walk down; computed for every author, each request
    /// would cost reads in proportion to them all.
    fn forked_heads(
        &mut self,
        proofs: &[(PublicKey, ForkProof)],
        start: usize,
    ) -> Result<Vec<Head>, S::Error> {
        let room = FORKS_HEADS_MAX / 2;
        let mut heads = Vec::new();
        let mut reads = 0;
        for (author, proof) in rotated(proofs, start, proofs.len()) {
            if heads.len() >= room || reads >= PROBE_READS_MAX {
                break;
            }
            reads += 1;
            let held = self.store.at(author, proof.seq)?;
            let siblings = siblings(author, proof.seq, &held);
            if heads.len() + siblings.len() > room {
                // Half an author's siblings would read as "send me the
                // others": leave it whole to a later request.
                break;
            }
            heads.extend(siblings);
            if self.forks_settled.get(author) == Some(&proof.seq) {
                continue;
            }
            if self.is_settled(author, proof, &held, &mut reads)? {
                self.forks_settled.insert(*author, proof.seq);
                continue;
            }
            heads.extend(self.probes(author, proof, &mut reads)?);
        }
        heads.truncate(room);
        Ok(heads)
    }

    /// Whether every entry held at the boundary (`at`) follows the one
    /// entry held before it (or the boundary is the first entry): then
    /// the histories parted there, and there is nothing to probe.
    fn is_settled(
        &self,
        author: &PublicKey,
        proof: &ForkProof,
        at: &[StoredEntry],
        reads: &mut usize,
    ) -> Result<bool, S::Error> {
        if proof.seq <= 1 {
            return Ok(true);
        }
        *reads += 1;
        let before = self.store.at(author, proof.seq - 1)?;
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
    /// first author it names (wrapping), then, where it names heads, the
    /// entries held there that it does not name (see
    /// [`Self::answer_heads`]).
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
        let mut sent: BTreeSet<EntryId> = BTreeSet::new();
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
            for stored in entries {
                sent.insert(stored.entry.id());
                answer.entries.push(stored.entry.to_wire());
            }
        }
        self.answer_heads(heads, &ours, &mut sent, &mut answer)?;
        Ok(answer)
    }

    /// The second part of [`Self::answer_forks`]: for each `(author, seq)`
    /// the heads name, in the order first named, the entries held there
    /// that none of its heads names (nor the answer carries already).
    ///
    /// The heads at one `(author, seq)` are the set the asker holds there:
    /// one entry at an author's head, or every sibling at a forked
    /// author's boundary, so that each sibling it lacks is sent, however
    /// many there are. A named entry this node lacks and would keep means
    /// the asker knows more.
    fn answer_heads(
        &self,
        heads: &[Head],
        ours: &BTreeMap<PublicKey, ForkProof>,
        sent: &mut BTreeSet<EntryId>,
        answer: &mut ForksAnswer,
    ) -> Result<(), S::Error> {
        let heads = &heads[..heads.len().min(FORKS_HEADS_MAX)];
        let mut named: BTreeMap<(PublicKey, u64), BTreeSet<EntryId>> = BTreeMap::new();
        for head in heads {
            named
                .entry((head.author, head.seq))
                .or_default()
                .insert(head.id);
        }
        let mut done: BTreeSet<(PublicKey, u64)> = BTreeSet::new();
        for head in heads {
            let at = (head.author, head.seq);
            if !done.insert(at) {
                continue;
            }
            let held = self.store.at(&head.author, head.seq)?;
            if held.is_empty() {
                continue;
            }
            let Some(names) = named.get(&at) else {
                continue;
            };
            let ids: BTreeSet<EntryId> = held.iter().map(|s| s.entry.id()).collect();
            let at_boundary = ours
                .get(&head.author)
                .is_some_and(|proof| proof.seq == head.seq);
            let we_would_keep = |id: &EntryId| at_boundary && keeps(&ids, id);
            answer.asker_knows_more |= names
                .iter()
                .filter(|id| !ids.contains(id))
                .any(|id| !ours.contains_key(&head.author) || we_would_keep(id));
            for stored in &held {
                let id = stored.entry.id();
                if names.contains(&id) || sent.contains(&id) || !keeps(names, &id) {
                    continue;
                }
                if answer.entries.len() >= FORKS_ENTRIES_MAX {
                    return Ok(());
                }
                sent.insert(id);
                answer.entries.push(stored.entry.to_wire());
            }
        }
        Ok(())
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

    /// After entries were taken, one of which proved a fork: the log holds
    /// a proof against a new author, or a lower one, or a new sibling at a
    /// boundary. Every peer is asked at once, and each that lacks what we
    /// learnt asks back (the proof, or the sibling it does not name).
    pub(super) fn forks_may_have_changed(&mut self) -> Result<(), S::Error> {
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.ask_forks(peer, true)?;
        }
        Ok(())
    }
}

/// Every entry `held` at `(author, seq)`, linked or not, as heads.
fn siblings(author: &PublicKey, seq: u64, held: &[StoredEntry]) -> Vec<Head> {
    held.iter()
        .take(SIBLINGS_MAX)
        .map(|s| Head {
            author: *author,
            seq,
            id: s.entry.id(),
        })
        .collect()
}

/// Whether a node holding `held` at one `(author, seq)` keeps `id` there
/// too: it has room, or `id` is lower than the highest it holds (see
/// `log::siblings`). Sending what the asker would refuse wastes the room
/// in an answer.
fn keeps(held: &BTreeSet<EntryId>, id: &EntryId) -> bool {
    held.len() < SIBLINGS_MAX || held.last().is_some_and(|highest| id < highest)
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
