//! Entries held aside until their author's role is known.
//!
//! An entry whose author has no role yet ([`super::Rejected::NoRole`]) may
//! only be early: the trust entry that names a new builder can reach a node
//! after the builder's first claim. Such entries wait here, in memory and
//! bounded, and are taken when an entry that may give a role arrives. A
//! stranger's flood costs at most [`ASIDE_PER_AUTHOR_MAX`] places per key
//! for [`ASIDE_MS`], and none of it is stored or passed on. What is dropped
//! here is not lost: sync offers it again, since our version vector still
//! lacks it.

use super::admission::has_role;
use super::ingest::{Ingested, RETRY_PASSES_MAX, Rejected, ingest_batch};
use super::store::ChainStore;
use buildmesh_protocol::{Body, Entry, EntryId, PublicKey, Timestamp};
use std::collections::{BTreeMap, VecDeque};

/// Most entries held aside at once.
pub const ASIDE_ENTRIES_MAX: usize = 1024;
/// Most wire bytes held aside at once (16 MiB).
pub const ASIDE_BYTES_MAX: usize = 16 << 20;
/// Most entries of one author held aside.
pub const ASIDE_PER_AUTHOR_MAX: usize = 64;
/// How long an entry waits for its author's role, ms.
pub const ASIDE_MS: u64 = 60_000;

/// The waiting entries, oldest first. See the module docs.
#[derive(Debug, Default)]
pub struct Aside {
    waiting: VecDeque<(Timestamp, Entry)>,
    per_author: BTreeMap<PublicKey, usize>,
    bytes: usize,
}

impl Aside {
    /// Holds `entry` until [`ASIDE_MS`] after `now`; `false` when it is
    /// full, for everyone or for this author (or holds it already).
    pub fn hold(&mut self, now: Timestamp, entry: Entry) -> bool {
        self.expire(now);
        let author = entry.author();
        let theirs = self.per_author.get(&author).copied().unwrap_or(0);
        let size = entry.wire_len();
        if self.waiting.len() >= ASIDE_ENTRIES_MAX
            || theirs >= ASIDE_PER_AUTHOR_MAX
            || self.bytes + size > ASIDE_BYTES_MAX
            || self.holds(&entry.id())
        {
            return false;
        }
        self.per_author.insert(author, theirs + 1);
        self.bytes += size;
        self.waiting.push_back((now, entry));
        true
    }

    /// Drops what waited longer than [`ASIDE_MS`].
    pub fn expire(&mut self, now: Timestamp) {
        while let Some((since, _)) = self.waiting.front() {
            if since.plus_ms(ASIDE_MS) > now {
                break;
            }
            if let Some((_, entry)) = self.waiting.pop_front() {
                self.forget(&entry);
            }
        }
    }

    /// What a node does after offering entries to `store`: holds aside
    /// those refused for want of a role, and if one that was stored may
    /// have given a role, offers everything held aside again. Returns the
    /// ids of entries that left the buffer for the log.
    pub fn settle<S: ChainStore>(
        &mut self,
        store: &mut S,
        now: Timestamp,
        offered: impl IntoIterator<Item = (Entry, Ingested)>,
    ) -> Result<Vec<EntryId>, S::Error> {
        let mut granted = false;
        for (entry, outcome) in offered {
            match outcome {
                Ingested::Rejected(Rejected::NoRole) => _ = self.hold(now, entry),
                // Entries it linked behind it may give a role too.
                Ingested::Applied { linked } => granted |= linked > 1 || may_grant(&entry),
                Ingested::Fork(_) => granted = true,
                _ => {}
            }
        }
        if granted {
            self.offer_again(store, now)
        } else {
            Ok(Vec::new())
        }
    }

    /// Offers every entry held aside to `store` again, in the order they
    /// came; keeps those still without a role.
    pub fn offer_again<S: ChainStore>(
        &mut self,
        store: &mut S,
        now: Timestamp,
    ) -> Result<Vec<EntryId>, S::Error> {
        self.expire(now);
        let mut taken = Vec::new();
        // What one round takes may give others a role (an owner's trust
        // entry held aside behind its declaration): a few more rounds.
        for _ in 0..=RETRY_PASSES_MAX {
            let round = self.offer_ready(store)?;
            if round.is_empty() {
                break;
            }
            taken.extend(round);
        }
        Ok(taken)
    }

    /// One round of [`Aside::offer_again`].
    fn offer_ready<S: ChainStore>(&mut self, store: &mut S) -> Result<Vec<EntryId>, S::Error> {
        // Only entries whose author has a role now are worth the log's
        // time: a check of one index key each, so a stranger who makes
        // this run often (by forking, say) costs little.
        let mut ready = Vec::new();
        for (since, entry) in &self.waiting {
            if has_role(store, entry)? {
                ready.push((*since, entry.clone()));
            }
        }
        if ready.is_empty() {
            return Ok(Vec::new());
        }
        let ready_ids: std::collections::BTreeSet<EntryId> =
            ready.iter().map(|(_, e)| e.id()).collect();
        let rest: Vec<(Timestamp, Entry)> = self.waiting.drain(..).collect();
        self.per_author.clear();
        self.bytes = 0;
        for (since, entry) in rest {
            if !ready_ids.contains(&entry.id()) {
                self.put_back(since, entry);
            }
        }
        let outcomes = ingest_batch(store, ready.iter().map(|(_, e)| e.clone()))?;
        let mut taken = Vec::new();
        for ((since, entry), outcome) in ready.into_iter().zip(outcomes) {
            match outcome {
                Ingested::Rejected(Rejected::NoRole) => self.put_back(since, entry),
                Ingested::Applied { .. } | Ingested::Pending { .. } | Ingested::Fork(_) => {
                    taken.push(entry.id())
                }
                Ingested::Duplicate | Ingested::Rejected(_) => {}
            }
        }
        Ok(taken)
    }

    fn put_back(&mut self, since: Timestamp, entry: Entry) {
        *self.per_author.entry(entry.author()).or_default() += 1;
        self.bytes += entry.wire_len();
        self.waiting.push_back((since, entry));
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    fn holds(&self, id: &EntryId) -> bool {
        self.waiting.iter().any(|(_, e)| e.id() == *id)
    }

    fn forget(&mut self, entry: &Entry) {
        self.bytes = self.bytes.saturating_sub(entry.wire_len());
        if let Some(count) = self.per_author.get_mut(&entry.author()) {
            *count -= 1;
            if *count == 0 {
                self.per_author.remove(&entry.author());
            }
        }
    }
}

/// Whether storing `entry` may have given some key a role, so that entries
/// held aside should be offered again.
pub fn may_grant(entry: &Entry) -> bool {
    matches!(entry.body(), Body::Project(_) | Body::Trust(_))
}
