//! Long-lived responses (event streams, the entries export, live build
//! output) each hold a connection and a file descriptor for as long as the
//! client likes. They are bounded all together ([`STREAMS_MAX`]), so the
//! node keeps descriptors for its store and its peers, and per client
//! address ([`STREAMS_PER_CLIENT_MAX`]), so that one client cannot take
//! every place and shut everyone else out. Each kind is bounded as well,
//! node-wide and per client ([`StreamKind::max`],
//! [`StreamKind::per_client_max`]): the node-wide bounds add up to
//! [`STREAMS_MAX`], so exports cannot take the places of event streams and
//! live output, nor those theirs.
//!
//! Exports also take turns reading the store ([`EXPORT_READS_MAX`] at
//! once), so that they hold few blocking threads and leave the CPU to the
//! digest `GET /api/v1/node` computes.

use crate::error;
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most long-lived responses open at once.
pub const STREAMS_MAX: usize = 64;
/// Most one client address holds at once. A node on loopback sees all
/// of its machine's clients as one address: a quarter leaves room for an
/// operator's tabs.
pub const STREAMS_PER_CLIENT_MAX: usize = STREAMS_MAX / 4;
/// Most `GET /api/v1/entries` exports at once. Each holds up to
/// [`crate::EXPORT_BATCH_BYTES`] of entries: sixteen hold a few tens of
/// MiB at most.
pub const EXPORTS_MAX: usize = 16;
/// Most exports one client address holds at once.
pub const EXPORTS_PER_CLIENT_MAX: usize = 4;
/// Most `GET /api/v1/events` streams at once: the places exports and
/// live output leave.
pub const EVENTS_MAX: usize = STREAMS_MAX - EXPORTS_MAX - LIVE_MAX;
/// Most event streams one client address holds at once (scripts and
/// tabs on the node's own machine all come from loopback).
pub const EVENTS_PER_CLIENT_MAX: usize = 12;
/// Most live build output streams at once.
pub const LIVE_MAX: usize = 16;
/// Most live output streams one client address holds at once.
pub const LIVE_PER_CLIENT_MAX: usize = 8;
/// Most exports reading the store at once. Two, the cores of a small
/// machine: more would only queue on the CPU, each on a blocking thread of
/// its own, and slow the digest of `GET /api/v1/node` down.
pub const EXPORT_READS_MAX: usize = 2;

/// What a long-lived response is, for the bounds of its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `GET /api/v1/events`.
    Events,
    /// `GET /api/v1/entries`.
    Export,
    /// `GET /api/v1/live/...`.
    Live,
}

impl StreamKind {
    const ALL: [StreamKind; 3] = [StreamKind::Events, StreamKind::Export, StreamKind::Live];

    /// Most of this kind open at once.
    pub const fn max(self) -> usize {
        match self {
            StreamKind::Events => EVENTS_MAX,
            StreamKind::Export => EXPORTS_MAX,
            StreamKind::Live => LIVE_MAX,
        }
    }

    /// Most of this kind one client address holds at once.
    pub const fn per_client_max(self) -> usize {
        match self {
            StreamKind::Events => EVENTS_PER_CLIENT_MAX,
            StreamKind::Export => EXPORTS_PER_CLIENT_MAX,
            StreamKind::Live => LIVE_PER_CLIENT_MAX,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            StreamKind::Events => "event streams",
            StreamKind::Export => "entry exports",
            StreamKind::Live => "live output streams",
        }
    }
}

/// How many places are held: by kind and in all.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    all: usize,
    by_kind: [usize; StreamKind::ALL.len()],
}

impl Held {
    fn add(&mut self, kind: StreamKind) {
        self.all += 1;
        self.by_kind[kind.index()] += 1;
    }

    fn remove(&mut self, kind: StreamKind) {
        self.all = self.all.saturating_sub(1);
        let of_kind = &mut self.by_kind[kind.index()];
        *of_kind = of_kind.saturating_sub(1);
    }
}

#[derive(Debug, Default)]
struct Counts {
    node: Held,
    by_client: HashMap<IpAddr, Held>,
}

/// The places, shared by every handler.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    counts: Arc<Mutex<Counts>>,
    /// Turns at reading the store for an export.
    export_reads: Arc<Semaphore>,
}

/// One place, given back when the stream ends (dropped).
#[derive(Debug)]
pub(crate) struct StreamPermit {
    kind: StreamKind,
    client: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            counts: Arc::default(),
            export_reads: Arc::new(Semaphore::new(EXPORT_READS_MAX)),
        }
    }
}

impl Streams {
    /// A place of `kind` for `client`, or the 503 to answer.
    pub(crate) fn permit(
        &self,
        client: IpAddr,
        kind: StreamKind,
    ) -> Result<StreamPermit, Box<Response>> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mine = counts.by_client.get(&client).copied().unwrap_or_default();
        let node = counts.node;
        let name = kind.name();
        let refusal = if mine.all >= STREAMS_PER_CLIENT_MAX {
            Some(format!(
                "this client holds {STREAMS_PER_CLIENT_MAX} streams already (the most one \
                 address may); close one and try again"
            ))
        } else if mine.by_kind[kind.index()] >= kind.per_client_max() {
            Some(format!(
                "this client holds {} {name} already (the most one address may); close one \
                 and try again",
                kind.per_client_max()
            ))
        } else if node.all >= STREAMS_MAX {
            Some(format!(
                "{STREAMS_MAX} streams are open already; try again later"
            ))
        } else if node.by_kind[kind.index()] >= kind.max() {
            Some(format!(
                "{} {name} are open already; try again later",
                kind.max()
            ))
        } else {
            None
        };
        if let Some(why) = refusal {
            return Err(Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &why)));
        }
        counts.node.add(kind);
        counts.by_client.entry(client).or_default().add(kind);
        Ok(StreamPermit {
            kind,
            client,
            counts: self.counts.clone(),
        })
    }

    /// A turn at reading the store for an export, waited for.
    pub(crate) async fn export_read(&self) -> Option<OwnedSemaphorePermit> {
        self.export_reads.clone().acquire_owned().await.ok()
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.node.remove(self.kind);
        if let Some(held) = counts.by_client.get_mut(&self.client) {
            held.remove(self.kind);
            if held.all == 0 {
                counts.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn client(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    /// Takes places of `kind` for `from` until one is refused.
    fn fill(streams: &Streams, from: IpAddr, kind: StreamKind, held: &mut Vec<StreamPermit>) {
        while let Ok(permit) = streams.permit(from, kind) {
            held.push(permit);
        }
    }

    #[test]
    fn node_wide_bounds_of_the_kinds_add_up_to_the_total() {
        let sum: usize = StreamKind::ALL.iter().map(|k| k.max()).sum();
        assert_eq!(sum, STREAMS_MAX);
        for kind in StreamKind::ALL {
            assert!(kind.per_client_max() <= STREAMS_PER_CLIENT_MAX);
        }
    }

    #[test]
    fn each_kind_is_bounded_per_client_and_node_wide() {
        let streams = Streams::default();
        let mut held = Vec::new();
        fill(&streams, client(1), StreamKind::Export, &mut held);
        assert_eq!(held.len(), EXPORTS_PER_CLIENT_MAX);
        // The same client still gets places of other kinds.
        assert!(streams.permit(client(1), StreamKind::Events).is_ok());
        for n in 2..=20 {
            fill(&streams, client(n), StreamKind::Export, &mut held);
        }
        assert_eq!(held.len(), EXPORTS_MAX, "exports node-wide");
        // Exports take no place from the other kinds.
        let mut others = Vec::new();
        for n in 2..=20 {
            fill(&streams, client(n), StreamKind::Events, &mut others);
        }
        assert_eq!(others.len(), EVENTS_MAX);
        for n in 2..=20 {
            fill(&streams, client(n), StreamKind::Live, &mut others);
        }
        assert_eq!(others.len(), EVENTS_MAX + LIVE_MAX);
        // An export ended frees its place, for exports only.
        held.pop();
        assert!(streams.permit(client(30), StreamKind::Events).is_err());
        assert!(streams.permit(client(30), StreamKind::Export).is_ok());
    }

    #[test]
    fn one_client_holds_at_most_its_share_in_all() {
        let streams = Streams::default();
        let mut held = Vec::new();
        for kind in StreamKind::ALL {
            fill(&streams, client(1), kind, &mut held);
        }
        assert_eq!(held.len(), STREAMS_PER_CLIENT_MAX);
        drop(held);
        assert!(streams.permit(client(1), StreamKind::Export).is_ok());
    }
}
