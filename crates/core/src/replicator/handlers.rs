//! The replicator's reactions, one function per input.

use super::peer::PIPELINE_BATCHES;
use super::{Action, Misbehaviour, Peer, PeerId, Replicator, RequestId, Verdict};
use crate::log::{self, EntryStore, Ingested, lacks};
use buildmesh_protocol::{
    BlobHash, DecodeError, Entry, Refusal, Request, Response, SYNC_LEASES_MAX, SyncCursor,
    Timestamp,
};

/// Rate refusals (less one per request served) that count as one offence.
const REFUSALS_PER_OFFENCE: u32 = 16;

impl<S: EntryStore> Replicator<S> {
    pub(super) fn connected(&mut self, now: Timestamp, peer: PeerId) -> Result<(), S::Error> {
        self.peers
            .entry(peer)
            .or_insert_with(|| Peer::new(&self.config, now));
        if self.next_sync.is_none() {
            self.next_sync = Some(now.plus_ms(self.config.sync_interval_ms));
        }
        self.start_sync(peer, None)
    }

    /// Asks `peer` for what we lack, from `resume` on, unless a sync with it
    /// is already under way.
    pub(super) fn start_sync(
        &mut self,
        peer: PeerId,
        resume: Option<SyncCursor>,
    ) -> Result<(), S::Error> {
        let Some(state) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        if resume.is_none() {
            if state.sync_under_way() {
                return Ok(());
            }
            state.last_batch_in = false;
        }
        state.syncing = true;
        state.sync_asked_at = Some(self.now);
        let have = self.store.versions()?;
        let bytes = Request::Sync { have, resume }.encode();
        self.outbox.push_back(Action::Request { peer, bytes });
        Ok(())
    }

    pub(super) fn request_received(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        bytes: &[u8],
    ) -> Result<(), S::Error> {
        let Some(state) = self.peers.get_mut(&peer) else {
            self.respond(id, Response::Refused(Refusal::RateLimited));
            return Ok(());
        };
        if !state.requests.take(now) {
            // Refusing is cheap and an honest peer backs off; only a peer
            // that keeps asking while refused is counted, once per
            // REFUSALS_PER_OFFENCE refusals (each request served forgives
            // one, so an occasional refusal never adds up).
            state.refusals += 1;
            let flooding = state.refusals.is_multiple_of(REFUSALS_PER_OFFENCE);
            self.respond(id, Response::Refused(Refusal::RateLimited));
            if flooding {
                self.offence(peer, Misbehaviour::RateExceeded);
            }
            return Ok(());
        }
        state.refusals = state.refusals.saturating_sub(1);
        match Request::decode(bytes) {
            Err(error) => {
                self.respond(id, Response::Refused(Refusal::Malformed));
                self.offence(peer, Misbehaviour::Malformed(error));
            }
            Ok(Request::Blob(hash)) => self.outbox.push_back(Action::ServeBlob { id, hash }),
            Ok(Request::Forks { known, heads }) => {
                let answer = self.answer_forks(&known, &heads)?;
                self.respond(
                    id,
                    Response::Forks {
                        entries: answer.entries,
                    },
                );
                // Its word only: asked back within a budget.
                let may_ask = answer.asker_knows_more
                    && self
                        .peers
                        .get_mut(&peer)
                        .is_some_and(|state| state.ask_backs.take(now));
                if may_ask {
                    self.ask_forks(peer, true)?;
                }
            }
            Ok(Request::Sync { have, resume }) => {
                let batch = lacks(&self.store, &have, resume, self.config.batch)?;
                self.stats.entries_served += batch.entries.len() as u64;
                let entries = batch.entries.iter().map(Entry::to_wire).collect();
                // Live leases once per sync, with its first batch.
                let leases = match resume {
                    None => self.leases.clone(),
                    Some(_) => Vec::new(),
                };
                self.respond(
                    id,
                    Response::Sync {
                        entries,
                        resume: batch.resume,
                        leases,
                    },
                );
                // The asker holds something we lack: ask it back. This is
                // how news spreads past a peer that learnt it by sync.
                if resume.is_none() && !self.store.versions()?.covers(&have) {
                    self.start_sync(peer, None)?;
                }
            }
        }
        Ok(())
    }

    pub(super) fn response_received(&mut self, peer: PeerId, bytes: &[u8]) -> Result<(), S::Error> {
        let response = match Response::decode(bytes) {
            Ok(response) => response,
            Err(error) => {
                self.request_failed(peer, true);
                self.offence(peer, Misbehaviour::Malformed(error));
                return Ok(());
            }
        };
        let Some(state) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        match response {
            Response::Sync {
                entries,
                resume,
                mut leases,
            } if std::mem::take(&mut state.syncing) => {
                if !leases.is_empty() {
                    leases.truncate(SYNC_LEASES_MAX);
                    state.leases = leases;
                }
                self.batch_arrived(peer, entries, resume)?;
            }
            // A late answer to a blob request written off can come while
            // another is out: anything but the blob asked for is taken as
            // that late answer, and the request out still waits.
            Response::Blob(data)
                if state.late_answers > 0
                    && state.blob_wanted.is_some_and(|wanted| {
                        data.as_ref().is_none_or(|d| BlobHash::of(d) != wanted)
                    }) =>
            {
                state.late_answers -= 1;
            }
            Response::Blob(data) if state.blob_wanted.is_some() => {
                if let Some(wanted) = state.blob_wanted.take() {
                    self.blob_received(peer, wanted, data);
                }
            }
            Response::Forks { entries } if std::mem::take(&mut state.forks_wanted) => {
                self.forks_arrived(peer, entries)?;
            }
            // An older node does not know fork requests: it says so, and
            // is not asked again on this connection (nor blamed).
            Response::Refused(Refusal::Malformed) if state.forks_wanted => {
                state.forks_wanted = false;
                state.forks_unsupported = true;
            }
            Response::Refused(_) => self.request_failed(peer, true),
            Response::Sync { .. } | Response::Blob(_) | Response::Forks { .. }
                if state.late_answers > 0 =>
            {
                state.late_answers -= 1;
            }
            Response::Sync { .. } | Response::Blob(_) | Response::Forks { .. } => {
                self.offence(peer, Misbehaviour::Unsolicited)
            }
        }
        // Each kind's stall clock runs while a request of it is out.
        if let Some(state) = self.peers.get_mut(&peer) {
            if !state.syncing {
                state.sync_asked_at = None;
            }
            if state.blob_wanted.is_none() {
                state.blob_asked_at = None;
            }
        }
        Ok(())
    }

    /// A sync batch arrived: hand it out for verification and, unless
    /// [`PIPELINE_BATCHES`] are already out, ask for the next at once, so
    /// the peer prepares it while we verify and store this one.
    fn batch_arrived(
        &mut self,
        peer: PeerId,
        wires: Vec<Vec<u8>>,
        resume: Option<SyncCursor>,
    ) -> Result<(), S::Error> {
        let Some(state) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        state.verifying += 1;
        let next = match resume {
            None => {
                state.last_batch_in = true;
                None
            }
            Some(cursor) if state.verifying < PIPELINE_BATCHES => Some(cursor),
            Some(cursor) => {
                state.deferred = Some(cursor);
                None
            }
        };
        if next.is_some() {
            self.start_sync(peer, next)?;
        }
        self.outbox.push_back(Action::Verify { peer, wires });
        Ok(())
    }

    /// A batch came back verified: stored as one atomic write, then the
    /// sync goes on. One invalid entry condemns the peer and the batch: an
    /// honest node only serves entries its own log accepted.
    pub(super) fn verified(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        results: Vec<Result<Entry, DecodeError>>,
    ) -> Result<(), S::Error> {
        if let Some(state) = self.peers.get_mut(&peer) {
            state.verifying = state.verifying.saturating_sub(1);
        }
        let mut entries = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    self.disconnect(peer, Misbehaviour::BadEntry(error));
                    return Ok(());
                }
            }
        }
        let news = self.take_batch(entries)?;
        let Some(state) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        state.news |= news;
        if let Some(cursor) = state.deferred.take() {
            return self.start_sync(peer, Some(cursor));
        }
        if !state.last_batch_in || state.sync_under_way() {
            return Ok(());
        }
        state.last_batch_in = false;
        state.synced_at = Some(now);
        let leases = std::mem::take(&mut state.leases);
        self.stats.last_sync_at = Some(now);
        self.store.flush()?;
        if !leases.is_empty() {
            self.outbox.push_back(Action::LeasesHeard {
                peer,
                wires: leases,
            });
        }
        if std::mem::take(&mut state.news) {
            // Our vector grew: a sync request to every other peer shows it,
            // and each that lacks what we learnt will ask us back.
            let others: Vec<PeerId> = self.peers.keys().filter(|p| **p != peer).copied().collect();
            for other in others {
                self.start_sync(other, None)?;
            }
        }
        // What a vector cannot show: entries that contradict ours.
        self.ask_forks(peer, false)
    }

    /// Stores verified entries as one atomic write; returns whether any
    /// was new.
    pub(super) fn take_batch(&mut self, entries: Vec<Entry>) -> Result<bool, S::Error> {
        let ids: Vec<_> = entries.iter().map(Entry::id).collect();
        let outcomes = log::ingest_batch(&mut self.store, entries.iter().cloned())?;
        let applied = ids
            .into_iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| is_new(outcome))
            .map(|(id, _)| id)
            .collect::<Vec<_>>();
        self.settle(entries.into_iter().zip(outcomes))?;
        self.stats.entries_received += applied.len() as u64;
        let news = !applied.is_empty();
        if news {
            self.outbox.push_back(Action::Applied(applied));
        }
        Ok(news)
    }

    pub(super) fn gossiped(
        &mut self,
        from: PeerId,
        source: PeerId,
        message: Vec<u8>,
        bytes: &[u8],
    ) -> Result<(), S::Error> {
        let entry = match Entry::from_wire_cached(bytes, &mut self.keys) {
            Ok(entry) if entry.author() == source => entry,
            Ok(entry) => {
                let reason = Misbehaviour::WrongAuthor {
                    source,
                    author: entry.author(),
                };
                self.reject_gossip(from, message, reason);
                return Ok(());
            }
            Err(error) => {
                self.reject_gossip(from, message, Misbehaviour::BadEntry(error));
                return Ok(());
            }
        };
        let id = entry.id();
        let outcome = log::ingest(&mut self.store, entry.clone())?;
        self.settle([(entry, outcome.clone())])?;
        let verdict = if is_new(&outcome) {
            Verdict::Accept
        } else {
            Verdict::Ignore
        };
        self.outbox.push_back(Action::ReportGossip {
            message,
            from,
            verdict,
        });
        if is_new(&outcome) {
            self.stats.entries_received += 1;
            self.outbox.push_back(Action::Applied(vec![id]));
        }
        if matches!(
            outcome,
            Ingested::Pending { .. }
                | Ingested::Rejected(
                    log::Rejected::NearQuota { .. } | log::Rejected::TooFarAhead { .. }
                )
        ) {
            // We are missing the author's history: the forwarder has it.
            self.start_sync(from, None)?;
        }
        Ok(())
    }

    pub(super) fn tick(&mut self, now: Timestamp) -> Result<(), S::Error> {
        let Some(due) = self.next_sync else {
            return Ok(());
        };
        if now < due {
            return Ok(());
        }
        self.next_sync =
            (!self.peers.is_empty()).then(|| now.plus_ms(self.config.sync_interval_ms));
        self.give_up_stalled_requests(now);
        let idle: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| !s.sync_under_way())
            .map(|(p, _)| *p)
            .collect();
        if idle.is_empty() {
            return Ok(());
        }
        let pick = idle[(self.next_random() % idle.len() as u64) as usize];
        self.start_sync(pick, None)
    }

    /// Treats a request that has had neither an answer nor a failure for
    /// [`ReplicatorConfig::request_stall_ms`] as failed.
    fn give_up_stalled_requests(&mut self, now: Timestamp) {
        let stall = self.config.request_stall_ms;
        let stalled = |at: Option<Timestamp>| at.is_some_and(|at| at.plus_ms(stall) <= now);
        let mut blobs = Vec::new();
        for state in self.peers.values_mut() {
            if state.forks_wanted && stalled(state.forks_asked_at) {
                state.forks_wanted = false;
                state.expect_late(1);
            }
            if state.syncing && stalled(state.sync_asked_at) {
                state.syncing = false;
                state.sync_asked_at = None;
                state.expect_late(1);
            }
            if stalled(state.blob_asked_at)
                && let Some(hash) = state.blob_wanted.take()
            {
                state.blob_asked_at = None;
                state.expect_late(1);
                blobs.push(hash);
            }
        }
        for hash in blobs {
            self.ask_next_for_blob(hash);
        }
    }

    fn respond(&mut self, id: RequestId, response: Response) {
        self.outbox.push_back(Action::Respond {
            id,
            bytes: response.encode(),
        });
    }

    fn reject_gossip(&mut self, from: PeerId, message: Vec<u8>, reason: Misbehaviour) {
        self.outbox.push_back(Action::ReportGossip {
            message,
            from,
            verdict: Verdict::Reject,
        });
        self.offence(from, reason);
    }

    /// Counts an offence; past the limit, disconnects.
    fn offence(&mut self, peer: PeerId, reason: Misbehaviour) {
        self.stats.offences += 1;
        let strikes = self.peers.get_mut(&peer).map(|state| {
            state.strikes += 1;
            state.strikes
        });
        if strikes.is_some_and(|s| s >= self.config.strikes_max) {
            self.disconnect(peer, reason);
        }
    }

    pub(super) fn disconnect(&mut self, peer: PeerId, reason: Misbehaviour) {
        if self.peers.remove(&peer).is_some() {
            self.stats.disconnects += 1;
            self.outbox.push_back(Action::Disconnect { peer, reason });
        }
    }

    /// xorshift64: periodic sync targets need no cryptographic randomness,
    /// only a spread that the seed reproduces.
    pub(super) fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// Whether ingesting added something worth forwarding and showing.
pub(super) fn is_new(outcome: &Ingested) -> bool {
    matches!(
        outcome,
        Ingested::Applied { .. } | Ingested::Pending { .. } | Ingested::Fork(_)
    )
}

/// Blob fetching: one peer at a time, each copy checked against its hash.
impl<S: EntryStore> Replicator<S> {
    pub(super) fn ask_next_for_blob(&mut self, hash: BlobHash) {
        let Some(asked) = self.blobs.get_mut(&hash) else {
            return;
        };
        let next = self
            .peers
            .iter_mut()
            .find(|(peer, state)| !asked.contains(*peer) && state.blob_wanted.is_none());
        match next {
            Some((peer, state)) => {
                asked.insert(*peer);
                state.blob_wanted = Some(hash);
                state.blob_asked_at = Some(self.now);
                let bytes = Request::Blob(hash).encode();
                self.outbox
                    .push_back(Action::Request { peer: *peer, bytes });
            }
            None => {
                self.blobs.remove(&hash);
                self.blob_fetches.missed(self.now, hash);
                self.outbox.push_back(Action::BlobUnavailable(hash));
            }
        }
    }

    pub(super) fn blob_received(&mut self, peer: PeerId, wanted: BlobHash, bytes: Option<Vec<u8>>) {
        match bytes {
            Some(bytes) if BlobHash::of(&bytes) == wanted => {
                self.blobs.remove(&wanted);
                self.outbox.push_back(Action::BlobFetched {
                    hash: wanted,
                    bytes,
                });
            }
            Some(_) => {
                self.offence(peer, Misbehaviour::WrongBlob(wanted));
                self.ask_next_for_blob(wanted);
            }
            None => self.ask_next_for_blob(wanted),
        }
    }

    /// Our request to `peer` failed: whatever we awaited from it, try
    /// elsewhere. `answered`: the failure is one request's answer (a
    /// refusal, an error); the others' answers may still come late.
    pub(super) fn request_failed(&mut self, peer: PeerId, answered: bool) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let out = state.requests_out();
        state.expect_late(if answered { out.saturating_sub(1) } else { out });
        state.syncing = false;
        state.sync_asked_at = None;
        state.blob_asked_at = None;
        state.forks_wanted = false;
        if let Some(hash) = state.blob_wanted.take() {
            self.ask_next_for_blob(hash);
        }
    }
}
