//! Bids and lease renewals from gossip and syncs: which are heeded.

use super::{Action, Notice, Seen, Service, Topic};
use crate::claim::ClaimInput;
use crate::log::EntryStore;
use crate::replicator::{self, PeerId, Verdict};
use crate::view::{Policy, ProjectLog, renews_a_claim};
use buildmesh_protocol::{Bid, ProjectId, PublicKey, SignedBid, SignedRenewal, Timestamp};
use std::sync::Arc;

/// Peers remembered from their bids; the longest unheard are forgotten.
pub const SEEN_MAX: usize = 1024;

/// Platforms remembered per peer.
const SEEN_PLATFORMS_MAX: usize = 64;

impl<S: EntryStore> Service<S> {
    /// A gossiped message: entries go to the replicator; bids and renewals
    /// are judged here, and the verdict goes back to gossip.
    pub(super) fn gossiped(
        &mut self,
        now: Timestamp,
        topic: Topic,
        from: PeerId,
        source: PeerId,
        message: Vec<u8>,
        bytes: Vec<u8>,
    ) -> Result<(), S::Error> {
        let verdict = match topic {
            Topic::Entries => {
                let input = replicator::Input::Gossiped {
                    from,
                    source,
                    message,
                    bytes,
                };
                return self.replicator.handle(now, input);
            }
            Topic::Bids => self.bid_gossiped(now, source, &bytes),
            Topic::Renewals => self.renewal_gossiped(now, source, &bytes)?,
        };
        let verdict = verdict.unwrap_or_else(|why| {
            self.outbox
                .push_back(Action::Notice(Notice::BadGossip { from, why }));
            Verdict::Reject
        });
        let report = replicator::Action::ReportGossip {
            message,
            from,
            verdict,
        };
        self.outbox.push_back(Action::Net(report));
        Ok(())
    }

    /// `Err` if the bid is invalid (its forwarder is penalised); `Ignore`
    /// if it is valid but not from a builder the project trusts (anyone
    /// can mint keys); else the claimer takes it.
    fn bid_gossiped(
        &mut self,
        now: Timestamp,
        source: PublicKey,
        bytes: &[u8],
    ) -> Result<Verdict, String> {
        let signed = SignedBid::from_wire(bytes).map_err(|e| e.to_string())?;
        let bid = signed.into_message();
        if bid.bidder != source {
            return Err("a bid published by another key than its bidder's".into());
        }
        if !self.trusts(&bid.project, &bid.bidder) {
            return Ok(Verdict::Ignore);
        }
        self.remember(now, &bid);
        self.claimer.handle(now, ClaimInput::Bid(bid));
        Ok(Verdict::Accept)
    }

    /// `Err` if the renewal is invalid or published by another key;
    /// `Ignore` if it renews no claim in our log or nothing new; `Accept`
    /// (and forwarded) if it extends a lease.
    fn renewal_gossiped(
        &mut self,
        now: Timestamp,
        source: PublicKey,
        bytes: &[u8],
    ) -> Result<Result<Verdict, String>, S::Error> {
        let signed = match SignedRenewal::from_wire(bytes) {
            Ok(signed) if signed.message().builder == source => signed,
            Ok(_) => {
                return Ok(Err(
                    "a renewal published by another key than its builder's".into()
                ));
            }
            Err(why) => return Ok(Err(why.to_string())),
        };
        if !self.take_renewal(now, &signed)? {
            return Ok(Ok(Verdict::Ignore));
        }
        self.leases_changed(now);
        Ok(Ok(Verdict::Accept))
    }

    /// The renewals a peer handed over with a sync that just completed;
    /// its entries are in our log, so the claims they renew are too. One
    /// that does not verify is dropped: the peer passes on what it heard.
    pub(super) fn leases_heard(
        &mut self,
        now: Timestamp,
        wires: &[Vec<u8>],
    ) -> Result<(), S::Error> {
        let mut changed = false;
        for wire in wires {
            if let Ok(signed) = SignedRenewal::from_wire(wire) {
                changed |= self.take_renewal(now, &signed)?;
            }
        }
        if changed {
            self.leases_changed(now);
        }
        Ok(())
    }

    /// Holds `signed` if its builder is one the project trusts, it renews
    /// that builder's claim in our log, and it extends what is held. Any
    /// key with a role can write a claim on any cell (the log keeps it;
    /// the views do not count it), so the claim alone is not enough.
    pub(super) fn take_renewal(
        &mut self,
        now: Timestamp,
        signed: &SignedRenewal,
    ) -> Result<bool, S::Error> {
        let renewal = signed.message();
        if !self.trusts_in_log(&renewal.project, &renewal.builder)?
            || !renews_a_claim(self.replicator.store(), renewal)?
        {
            return Ok(false);
        }
        Ok(self.leases.offer(now, signed))
    }

    /// [`Service::trusts`], or, for a project the latest work does not
    /// know yet (a late joiner's first sync just brought its declaration),
    /// as the log says now.
    fn trusts_in_log(&self, project: &ProjectId, key: &PublicKey) -> Result<bool, S::Error> {
        if self.work.builders.contains_key(project) {
            return Ok(self.trusts(project, key));
        }
        let log = ProjectLog::load(self.replicator.store(), project, 0)?;
        Ok(log.in_good_standing(key) && Policy::of(&log).is_some_and(|p| p.trusts_builder(key)))
    }

    /// Whether `project` (as of the latest work) trusts `key` as a builder
    /// and `key` is in good standing.
    fn trusts(&self, project: &ProjectId, key: &PublicKey) -> bool {
        !self.work.forked.contains(key)
            && self
                .work
                .builders
                .get(project)
                .is_some_and(|builders| builders.contains(key))
    }

    /// The live renewals changed: peers that sync get them, and the views
    /// and the node's work read claims' leases from them.
    pub(super) fn leases_changed(&mut self, now: Timestamp) {
        self.leases.prune(now);
        self.replicator.set_leases(self.leases.wires(now));
        self.outbox
            .push_back(Action::LeasesChanged(Arc::new(self.leases.clone())));
        self.outbox.push_back(Action::DeriveWork);
    }

    /// Remembers what a trusted peer's bid says of it.
    fn remember(&mut self, now: Timestamp, bid: &Bid) {
        if !self.seen.contains_key(&bid.bidder) && self.seen.len() >= SEEN_MAX {
            let oldest = self.seen.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.seen.remove(&oldest);
            }
        }
        let seen: &mut Seen = self.seen.entry(bid.bidder).or_default();
        if seen.platforms.len() < SEEN_PLATFORMS_MAX {
            seen.platforms.insert(bid.platform.clone());
        }
        seen.load = bid.load;
        seen.at = now;
    }
}
