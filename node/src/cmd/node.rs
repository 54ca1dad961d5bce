//! `buildmesh node`: the daemon.

use crate::builds::Builds;
use crate::builds::executor::{BuildDone, Executor, ExecutorConfig};
use crate::builds::poller::{self, Found, PollerConfig};
use crate::cli::NodeArgs;
use crate::config::NodeConfig;
use crate::driver::Driver;
use crate::keyfile;
use crate::log_reader::CachedDigest;
use crate::terminal::Terminal;
use crate::verifier::Verifier;
use anyhow::{Context, Result};
use buildmesh_core::claim::ClaimerConfig;
use buildmesh_core::replicator::ReplicatorConfig;
use buildmesh_core::service::{Service, ServiceConfig};
use buildmesh_http::{Backend, NodeStatus};
use buildmesh_mesh::MeshConfig;
use buildmesh_protocol::PublicKey;
use buildmesh_runner::BlobDir;
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
    run_with(NodeConfig::load(&args)?, Vec::new())
}

/// Runs a node with `config`, taking the `seed` entries first.
pub fn run_with(config: NodeConfig, seed: Vec<Vec<u8>>) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config, seed))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a node until a signal stops it. `seed` holds entries signed
/// elsewhere (`buildmesh up`'s project declaration) to take first.
async fn serve(config: NodeConfig, seed_entries: Vec<Vec<u8>>) -> Result<()> {
    let key = load_or_create_key(&config.data_dir.key_file())?;
    let isolation = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || crate::isolation::decide(&config))
            .await
            .context("the sandbox check stopped")?
    };
    let public = PublicKey::from(key.verifying_key());
    let store = SledStore::open(&config.data_dir.store())?;
    // Only now, holding the store's lock, is the data dir ours alone: no
    // other node's build can be using a work dir under it.
    crate::builds::remove_leftover_work_dirs(config.data_dir.work()).await;
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
    let log_reader = Arc::new(CachedDigest::new(store.reader(), store.read_only()));
    let (views_tx, views_rx) = watch::channel(Arc::default());
    let (work_tx, work_rx) = watch::channel(None);
    let (leases, leases_rx) = watch::channel(Arc::default());
    let work_for = crate::views::WorkFor {
        me: public,
        platforms: config.platforms.iter().cloned().collect(),
        acceptance: isolation.acceptance.clone(),
        publish: work_tx,
        leases: leases_rx,
    };
    let views = crate::views::start(store.read_only(), views_tx, work_for)
        .context("cannot start the views thread")?;
    let now = crate::clock::now();
    let service_config = ServiceConfig {
        replicator: replicator_config,
        claimer: claimer_config(&config),
        platforms: config.platforms.iter().cloned().collect(),
        schedules: config.schedules.clone(),
    };
    let attester = Arc::new(crate::attester::Attester::new(
        key.clone(),
        config.public_url.clone(),
        BlobDir::open(config.data_dir.blobs()).context("cannot open the blob directory")?,
    ));
    let mut service = Service::new(service_config, key, store, seed, now)?;
    if !seed_entries.is_empty() {
        let wires: Vec<&[u8]> = seed_entries.iter().map(Vec::as_slice).collect();
        service.submit(now, &wires)?;
        // The views thread reads the log itself at start.
        while service.poll_action().is_some() {}
    }
    let live = buildmesh_http::live::LiveHub::new();
    let (mut builds, new_commits, builds_done) = start_builds(&config, &isolation, live.clone())?;
    if !config.bootstrap.is_empty() {
        // Its log may be stale (a restart, a long partition): what its
        // peers built meanwhile comes with the first sync.
        service.wait_for_peers(now);
    }

    let (status, status_rx) = watch::channel(NodeStatus {
        public_key: public.to_string(),
        peer_id: info.peer_id.clone(),
        platforms: config.platforms.clone(),
        accepts: crate::isolation::accepts(&config.acceptance),
        sandbox: isolation.status.clone(),
        ..NodeStatus::default()
    });
    let (commands_tx, commands) = mpsc::channel(64);
    let server = buildmesh_http::bind(&config.http)
        .await?
        .with_hosts(config.http_hosts.clone())
        .with_public_url(config.public_url.clone())
        .with_limits(crate::descriptors::http_limits());
    let http_addr = server.local_addr()?;
    write_http_url(&config.data_dir, http_addr)?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let token_file = config.data_dir.operator_token();
    let token = crate::operator_token::write_fresh(&token_file)?;
    let operator_link = crate::operator_token::link(http_addr, &token);
    crate::notify::start(&config, views_rx.clone(), commands_tx.clone())
        .context("cannot start the notifiers")?;
    let backend = Backend {
        status: status_rx,
        commands: commands_tx,
        log: log_reader,
        hook_secret: config.webhook_secret.clone(),
        views: views_rx.clone(),
        libp2p_metrics: {
            let mesh = mesh.clone();
            Arc::new(move || mesh.metrics_text())
        },
        blobs: Some(config.data_dir.blobs()),
        live: Some(live),
        operator: Some(buildmesh_http::Operator { token, token_file }),
        clock: crate::clock::now,
    };
    let http = tokio::spawn(server.serve(backend, async move {
        let _ = http_stopped.await;
    }));

    let blobs = config.data_dir.blobs();
    let terminal = config.report.then(|| {
        // The links a person opens: the public URL if there is one.
        let base = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", reachable(http_addr)));
        let blobs = BlobDir::open(&blobs).map(|dir| Arc::new(Terminal::new(base, dir)));
        blobs.context("cannot open the blob directory")
    });
    let terminal = terminal.transpose()?;
    builds.terminal = terminal.clone();
    let mut driver = Driver {
        service,
        mesh,
        events,
        commands,
        status,
        blobs,
        blob_waiters: Default::default(),
        verifier: Verifier::start(VERIFY_THREADS_MAX)?,
        builds,
        attester,
        new_commits,
        builds_done,
        terminal: terminal.clone(),
        views,
        work: work_rx,
        leases,
        maintainer_key: config.maintainer_key.clone(),
    };
    driver.refresh_status()?;
    println!("http http://{http_addr}");
    println!("operator {operator_link}");
    // Not the link itself: logs travel further than the terminal.
    tracing::info!(
        token = %config.data_dir.root().join("operator.token").display(),
        "operator access: open the link printed on standard output, or send the token file's \
         content as a bearer token"
    );
    println!("node {public} ({})", info.peer_id);
    say_what_is_built(&config, &isolation);
    if let Some(terminal) = terminal {
        tokio::spawn(say_where_things_stand(terminal, views_rx.clone()));
    }
    let outcome = driver.run(stop_signal()).await;
    // Commands must not take whatever answers there next for this node.
    let _ = std::fs::remove_file(config.data_dir.http_url());
    let _ = stop_http.send(());
    let _ = http.await;
    outcome
}

/// Writes where this node serves HTTP into its data dir, for the commands
/// run beside it (`buildmesh force` in an `up` checkout finds its node on
/// whatever port). A wildcard address is written as loopback, which
/// reaches it from this machine.
fn write_http_url(data_dir: &crate::data_dir::DataDir, addr: std::net::SocketAddr) -> Result<()> {
    let file = data_dir.http_url();
    std::fs::write(&file, format!("http://{}\n", reachable(addr)))
        .with_context(|| format!("cannot write {}", file.display()))
}

/// `addr` as this machine reaches it: a wildcard address is no place a
/// browser or a command can connect to, loopback is.
fn reachable(mut addr: std::net::SocketAddr) -> std::net::SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Once the views thread has read the log at start: where each branch
/// stands, so a restarted `up` does not start with a blank screen.
async fn say_where_things_stand(
    terminal: Arc<Terminal>,
    mut views: watch::Receiver<Arc<buildmesh_http::views::Views>>,
) {
    let derived =
        |views: &watch::Receiver<Arc<buildmesh_http::views::Views>>| views.borrow().at.0 > 0;
    if !derived(&views) {
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), views.changed());
        if !matches!(first.await, Ok(Ok(()))) {
            return;
        }
    }
    let views = views.borrow().clone();
    terminal.standing(&views);
}

/// The claimer's tunables, as the operator set them.
fn claimer_config(config: &NodeConfig) -> ClaimerConfig {
    let lease_ms = u64::try_from(config.lease.as_millis()).unwrap_or(u64::MAX);
    ClaimerConfig {
        bid_window_ms: u64::try_from(config.bid_window.as_millis()).unwrap_or(u64::MAX),
        lease_ms,
        renew_ms: lease_ms / 3,
        builds_max: config.builds_max,
        ..ClaimerConfig::default()
    }
}

/// The building side: executor and poller, and the channels on which the
/// poller and the builds report.
fn start_builds(
    config: &NodeConfig,
    isolation: &crate::isolation::Isolation,
    live: buildmesh_http::live::LiveHub,
) -> Result<(Builds, mpsc::Receiver<Found>, mpsc::Receiver<BuildDone>)> {
    let (done_tx, done_rx) = mpsc::channel(64);
    let executor = Executor::new(
        ExecutorConfig {
            mirrors: config.data_dir.mirrors(),
            work: config.data_dir.work(),
            caches: config.data_dir.caches(),
            blobs: config.data_dir.blobs(),
            allow_local_repositories: config.allow_local_repositories,
            sandbox: isolation.sandbox.clone(),
        },
        done_tx,
        live,
    )
    .context("cannot open the blob directory")?;
    let (watches_tx, watches_rx) = watch::channel(Vec::new());
    let (found_tx, found_rx) = mpsc::channel(64);
    let (poke_tx, poke_rx) = std::sync::mpsc::sync_channel(1);
    let (pulls_tx, pulls_rx) = std::sync::mpsc::sync_channel(poller::PULL_EVENTS_MAX);
    poller::start(
        PollerConfig {
            mirrors: config.data_dir.mirrors(),
            interval: config.poll_interval,
            allow_local_repositories: config.allow_local_repositories,
        },
        watches_rx,
        poke_rx,
        pulls_rx,
        found_tx,
    )
    .context("cannot start the git poller")?;
    let builds = Builds::new(executor, watches_tx, poke_tx, pulls_tx);
    Ok((builds, found_rx, done_rx))
}

/// Tells the operator at start what this node builds, and how.
fn say_what_is_built(config: &NodeConfig, isolation: &crate::isolation::Isolation) {
    let accepts = crate::isolation::accepts(&config.acceptance);
    match accepts.hint {
        Some(_) => println!("accepts nothing yet: {}", crate::isolation::ACCEPT_HINT),
        None => {
            for project in &accepts.projects {
                println!("accepts project {project}");
            }
            for maintainer in &accepts.maintainers {
                println!("accepts every project of maintainer {maintainer}");
            }
        }
    }
    println!(
        "sandbox {}: {}",
        isolation.status.mode, isolation.status.detail
    );
}

/// The node key at `path`, created if there is none.
pub fn load_or_create_key(path: &std::path::Path) -> Result<SigningKey> {
    if path.exists() {
        return keyfile::read(path);
    }
    let key = SigningKey::generate(&mut rand::rng());
    keyfile::write_new(path, &key, false)?;
    tracing::info!(path = %path.display(), "created a key");
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
