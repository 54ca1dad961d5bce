//! Long-lived responses (event streams, the entries export, live build
//! output) each hold a connection and a file descriptor for as long as the
//! client likes. They are bounded twice: all together ([`STREAMS_MAX`]),
//! so the node keeps descriptors for its store and its peers, and per
//! client address ([`STREAMS_PER_CLIENT_MAX`]), so that one client cannot
//! take every place and shut everyone else out.

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

/// The places, shared by every handler.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    all: Arc<Semaphore>,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One place, given back when the stream ends (dropped).
#[derive(Debug)]
pub(crate) struct StreamPermit {
    _all: OwnedSemaphorePermit,
    client: IpAddr,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            all: Arc::new(Semaphore::new(STREAMS_MAX)),
            by_client: Arc::default(),
        }
    }
}

impl Streams {
    /// A place for `client`, or the 503 to answer.
    pub(crate) fn permit(&self, client: IpAddr) -> Result<StreamPermit, Box<Response>> {
        let refuse = |why: String| Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &why));
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        let held = by_client.get(&client).copied().unwrap_or(0);
        if held >= STREAMS_PER_CLIENT_MAX {
            return Err(refuse(format!(
                "this client holds {STREAMS_PER_CLIENT_MAX} streams already (the most one \
                 address may); close one and try again"
            )));
        }
        let all = self.all.clone().try_acquire_owned().map_err(|_| {
            refuse(format!(
                "{STREAMS_MAX} streams are open already; try again later"
            ))
        })?;
        by_client.insert(client, held + 1);
        Ok(StreamPermit {
            _all: all,
            client,
            by_client: self.by_client.clone(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut by_client = self.by_client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = by_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}
