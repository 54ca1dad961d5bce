//! `buildmesh node`: the daemon.

use crate::cli::NodeArgs;
use crate::config::NodeConfig;
use crate::driver::Driver;
use crate::keyfile;
use crate::log_reader::CachedDigest;
use crate::verifier::Verifier;
use anyhow::{Context, Result};
use buildmesh_core::replicator::{Replicator, ReplicatorConfig};
use buildmesh_http::NodeStatus;
use buildmesh_mesh::MeshConfig;
use buildmesh_protocol::PublicKey;
use buildmesh_store::SledStore;
use ed25519_dalek::SigningKey;
use rand::Rng;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// Threads checking sync batches' signatures (fewer on fewer cores).
const VERIFY_THREADS_MAX: usize = 4;

/// Loads the configuration and runs the node until a signal stops it.
pub fn run(args: NodeArgs) -> Result<ExitCode> {
    let config = NodeConfig::load(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: NodeConfig) -> Result<()> {
    let key = load_or_create_key(&config)?;
    let public = PublicKey::from(key.verifying_key());
    let store = SledStore::open(&config.data_dir.store())?;
    let mut mesh_config = MeshConfig::new(key.to_bytes());
    mesh_config.listen = config.listen.clone();
    mesh_config.bootstrap = config.bootstrap.clone();
    mesh_config.mdns = config.mdns;
    let (mesh, events) = buildmesh_mesh::start(mesh_config).await?;
    let info = mesh.info().await?;

    let replicator_config = ReplicatorConfig {
        sync_interval_ms: u64::try_from(config.sync_interval.as_millis()).unwrap_or(u64::MAX),
        ..ReplicatorConfig::default()
    };
    let seed = rand::rng().next_u64();
    let log_reader = Arc::new(CachedDigest::new(store.reader()));
    let replicator = Replicator::new(replicator_config, key, store, seed)?;

    let (status, status_rx) = watch::channel(NodeStatus {
        public_key: public.to_string(),
        peer_id: info.peer_id.clone(),
        platforms: config.platforms.clone(),
        ..NodeStatus::default()
    });
    let (commands_tx, commands) = mpsc::channel(64);
    let server = buildmesh_http::bind(&config.http).await?;
    let http_addr = server.local_addr()?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(
        server.serve(status_rx, commands_tx, log_reader, async move {
            let _ = http_stopped.await;
        }),
    );

    let blobs = config.data_dir.blobs();
    let mut driver = Driver {
        replicator,
        mesh,
        events,
        commands,
        status,
        blobs,
        blob_waiters: Default::default(),
        verifier: Verifier::start(VERIFY_THREADS_MAX)?,
    };
    driver.refresh_status()?;
    println!("http http://{http_addr}");
    println!("node {public} ({})", info.peer_id);
    let outcome = driver.run(stop_signal()).await;
    let _ = stop_http.send(());
    let _ = http.await;
    outcome
}

fn load_or_create_key(config: &NodeConfig) -> Result<SigningKey> {
    let path = config.data_dir.key_file();
    if path.exists() {
        return keyfile::read(&path);
    }
    let key = SigningKey::generate(&mut rand::rng());
    keyfile::write_new(&path, &key, false)?;
    tracing::info!(path = %path.display(), "created a node key");
    Ok(key)
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("signal received");
}
