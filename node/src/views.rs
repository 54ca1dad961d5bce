//! The views thread: derives every project's matrix from the log (through a
//! read-only store handle) and publishes it for the HTTP server, so serving
//! a matrix never waits on the driver or derives anything per request.

use crate::builds::read_work;
use buildmesh_core::log::EntryStore;
use buildmesh_core::view::Work;
use buildmesh_core::view::{
    Acceptance, LiveLeases, MatrixOptions, ProjectLog, Summary, matrix, projects,
};
use buildmesh_http::json;
use buildmesh_http::views::{MATRIX_ROWS_DEFAULT, MATRIX_ROWS_MAX, ProjectView, Views};
use buildmesh_protocol::PublicKey;
use buildmesh_store::{SledStore, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Least time between two derivations while entries keep arriving (bumps
/// meanwhile coalesce into one); after a derivation the thread rests
/// twice as long as it took, so it never takes more than a third of a
/// core. Short, because a commit waits for two derivations on its way to
/// a visible result (its work, then its result's page).
pub const DERIVE_EVERY: Duration = Duration::from_millis(2);

/// Longest time between two derivations: leases lapse with time alone.
/// (A renewal bumps the thread like an entry does.)
pub const DERIVE_AT_LEAST_EVERY: Duration = Duration::from_secs(2);

/// Tells the views thread the log changed; coalesces.
#[derive(Clone)]
pub struct ViewsBump(SyncSender<()>);

impl ViewsBump {
    /// The log changed: derive again soon.
    pub fn bump(&self) {
        let _ = self.0.try_send(());
    }
}

/// Who the node is and what it builds, and where its work goes.
pub struct WorkFor {
    /// The node's key.
    pub me: PublicKey,
    /// Its platforms.
    pub platforms: BTreeSet<String>,
    /// What its operator accepted to build.
    pub acceptance: Acceptance,
    /// Where the work read from the log is published.
    pub publish: watch::Sender<Option<Arc<Work>>>,
    /// The live lease renewals the driver holds: claims' leases now.
    pub leases: watch::Receiver<Arc<LiveLeases>>,
}

/// Starts the thread; it stops when every [`ViewsBump`] is dropped.
pub fn start(
    store: SledStore,
    publish: watch::Sender<Arc<Views>>,
    work: WorkFor,
) -> std::io::Result<ViewsBump> {
    let (bump, bumps) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("views".into())
        .spawn(move || run(&store, &publish, &work, &bumps))?;
    Ok(ViewsBump(bump))
}

fn run(
    store: &SledStore,
    publish: &watch::Sender<Arc<Views>>,
    work: &WorkFor,
    bumps: &Receiver<()>,
) {
    loop {
        let started = Instant::now();
        // The node's work first: claiming waits on it, pages do not.
        let read_at = crate::clock::now();
        let leases = work.leases.borrow().clone();
        match read_work(store, &work.me, &work.platforms, &work.acceptance, &leases) {
            Ok(mut found) => {
                found.read_at = read_at;
                work.publish.send_replace(Some(Arc::new(found)));
            }
            Err(error) => tracing::warn!(%error, "cannot read the node's work"),
        }
        match derive(store, &leases) {
            Ok(views) => {
                publish.send_replace(Arc::new(views));
            }
            Err(error) => tracing::warn!(%error, "cannot derive the views"),
        }
        let took = started.elapsed();
        std::thread::sleep(DERIVE_EVERY.max(took * 3).saturating_sub(took));
        match bumps.recv_timeout(DERIVE_AT_LEAST_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Every project's log and default matrix, now, with claims' leases as
/// their renewals set them.
fn derive(store: &SledStore, leases: &LiveLeases) -> Result<Views, StoreError> {
    let now = crate::clock::now();
    let mut views = Views {
        at: now,
        forks: store.forks()?,
        ..Views::default()
    };
    let options = MatrixOptions {
        branch: None,
        rows_max: Some(MATRIX_ROWS_DEFAULT),
    };
    for project in projects(store)? {
        let mut log = ProjectLog::load(store, &project, MATRIX_ROWS_MAX)?;
        log.apply_leases(leases);
        let Some((matrix_json, summary)) = matrix(&log, now, &options).map(|derived| {
            let bytes: Arc<[u8]> = json::matrix(&derived).to_string().into_bytes().into();
            (bytes, Summary::of(&derived))
        }) else {
            continue;
        };
        views.projects.insert(
            project,
            ProjectView {
                log: Arc::new(log),
                matrix_json,
                summary,
            },
        );
    }
    Ok(views)
}
