//! Checks the signatures of sync batches on threads of their own, so a
//! catch-up verifies one batch while the driver stores the previous one and
//! the peer prepares the next. Results come back in the order asked: the
//! replicator takes a peer's batches in sequence.

use anyhow::{Result, anyhow};
use buildmesh_core::replicator::PeerId;
use buildmesh_core::service::Input;
use buildmesh_protocol::{DecodeError, Entry, KeyCache};
use std::collections::VecDeque;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Verdicts = Vec<Result<Entry, DecodeError>>;

/// One batch to check, and where its verdicts go.
struct Job {
    wires: Vec<Vec<u8>>,
    done: oneshot::Sender<Verdicts>,
}

/// A few verifying threads, fed in turn, answered in order.
pub struct Verifier {
    workers: Vec<mpsc::Sender<Job>>,
    next_worker: usize,
    pending: VecDeque<(PeerId, oneshot::Receiver<Verdicts>)>,
}

impl Verifier {
    /// One thread per core, at most `threads_max`: verification is pure
    /// arithmetic and scales with cores.
    pub fn start(threads_max: usize) -> Result<Verifier> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (0..cores.clamp(1, threads_max.max(1)))
            .map(|i| {
                let (jobs, inbox) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name(format!("verify-{i}"))
                    .spawn(move || work(inbox))
                    .map(|_| jobs)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Verifier {
            workers,
            next_worker: 0,
            pending: VecDeque::new(),
        })
    }

    /// Queues `wires` from `peer`. The replicator keeps at most a couple of
    /// batches per peer out, so the queue stays short.
    pub fn submit(&mut self, peer: PeerId, wires: Vec<Vec<u8>>) -> Result<()> {
        let (done, verdicts) = oneshot::channel();
        let worker = &self.workers[self.next_worker % self.workers.len()];
        self.next_worker = self.next_worker.wrapping_add(1);
        worker
            .send(Job { wires, done })
            .map_err(|_| anyhow!("a verifying thread stopped"))?;
        self.pending.push_back((peer, verdicts));
        Ok(())
    }

    /// The oldest batch's verdicts, once ready; never resolves while none
    /// is queued. Cancel-safe: an unfinished wait leaves the batch queued.
    pub async fn next(&mut self) -> Result<Input> {
        let Some((_, verdicts)) = self.pending.front_mut() else {
            return std::future::pending().await;
        };
        let entries = verdicts
            .await
            .map_err(|_| anyhow!("a verifying thread stopped"))?;
        let peer = self
            .pending
            .pop_front()
            .map(|(peer, _)| peer)
            .ok_or_else(|| anyhow!("the verification queue lost a batch"))?;
        Ok(Input::Verified { peer, entries })
    }
}

fn work(inbox: mpsc::Receiver<Job>) {
    let mut keys = KeyCache::default();
    for job in inbox {
        let wires: Vec<&[u8]> = job.wires.iter().map(Vec::as_slice).collect();
        let _ = job.done.send(Entry::from_wires(&wires, &mut keys));
    }
}
