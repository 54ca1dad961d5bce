//! The driver's lease renewals: ours, signed by the building side and
//! gossiped; peers', from gossip and from syncs; all held in one table
//! that the views thread reads and peers that sync with us receive
//! (`docs/protocol.md` §11).

use super::{Driver, tolerate};
use crate::clock;
use anyhow::Result;
use buildmesh_core::view::{LiveLeases, renews_a_claim};
use buildmesh_mesh::{Acceptance, Topic};
use buildmesh_protocol::{PublicKey, SignedRenewal};
use std::sync::Arc;
use tokio::sync::watch;

/// The live renewals, and the views thread's copy of them.
pub struct Leases {
    table: LiveLeases,
    readers: watch::Sender<Arc<LiveLeases>>,
}

impl Leases {
    /// An empty table, and the receiver the views thread reads it from.
    pub fn new() -> (Leases, watch::Receiver<Arc<LiveLeases>>) {
        let (readers, receiver) = watch::channel(Arc::default());
        let leases = Leases {
            table: LiveLeases::default(),
            readers,
        };
        (leases, receiver)
    }
}

impl Driver {
    /// Our own renewal: held (our views and peers that sync see it), then
    /// gossiped.
    pub(super) async fn renew(&mut self, signed: SignedRenewal) -> Result<()> {
        if self.leases.table.offer(clock::now(), &signed) {
            self.leases_changed();
        }
        tolerate(self.mesh.publish(Topic::Renewals, signed.to_wire()).await)
    }

    /// A renewal gossiped to us: one that does not verify, or that another
    /// key published, is rejected (it costs the forwarder); one that
    /// renews no claim we hold, or nothing new, is dropped quietly.
    pub(super) async fn on_renewal(
        &mut self,
        from: PublicKey,
        source: PublicKey,
        message: Vec<u8>,
        bytes: &[u8],
    ) -> Result<()> {
        let verdict = match SignedRenewal::from_wire(bytes) {
            Ok(signed) if signed.message().builder == source => {
                if self.take_renewal(&signed)? {
                    self.leases_changed();
                    Acceptance::Accept
                } else {
                    Acceptance::Ignore
                }
            }
            Ok(_) => {
                tracing::debug!(peer = %from, "a renewal published by another key than its builder's");
                Acceptance::Reject
            }
            Err(why) => {
                tracing::debug!(peer = %from, %why, "rejected a gossiped renewal");
                Acceptance::Reject
            }
        };
        tolerate(self.mesh.report(message, from, verdict).await)
    }

    /// The renewals a peer handed over with a sync that just completed.
    /// Its entries are in our log, so the claims they renew are too.
    pub(super) fn leases_heard(&mut self, peer: PublicKey, wires: Vec<Vec<u8>>) -> Result<()> {
        let mut changed = false;
        for wire in wires {
            match SignedRenewal::from_wire(&wire) {
                Ok(signed) => changed |= self.take_renewal(&signed)?,
                Err(why) => tracing::debug!(%peer, %why, "a synced renewal does not verify"),
            }
        }
        if changed {
            self.leases_changed();
        }
        Ok(())
    }

    /// Holds `signed` if it renews a claim in our log and extends it.
    fn take_renewal(&mut self, signed: &SignedRenewal) -> Result<bool> {
        if !renews_a_claim(self.replicator.store(), signed.message())? {
            return Ok(false);
        }
        Ok(self.leases.table.offer(clock::now(), signed))
    }

    /// The table changed: peers that sync get the live renewals, and the
    /// views derive claims' leases again.
    fn leases_changed(&mut self) {
        let now = clock::now();
        self.leases.table.prune(now);
        self.replicator.set_leases(self.leases.table.wires(now));
        self.leases
            .readers
            .send_replace(Arc::new(self.leases.table.clone()));
        self.views.bump();
    }
}
