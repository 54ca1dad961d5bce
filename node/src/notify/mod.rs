//! The notifications task: watches the views, feeds each configured
//! notifier (`buildmesh_core::notify::Notifier`) what it finds, and
//! carries out what they ask: deliveries by mail, webhook, IRC or forge
//! API (`buildmesh_notify`), and records of what was delivered. It decides
//! nothing itself; it only derives, carries and records.

mod channels;
mod notice;

use crate::config::{Carrier, NodeConfig};
use anyhow::{Context, Result};
use buildmesh_http::Command;
use buildmesh_http::views::Views;
use channels::{Channels, Report};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Least time between two derivations: views change every few
/// milliseconds while a mesh is busy, and a message a moment late is as
/// good as one on time.
const DERIVE_PAUSE: Duration = Duration::from_millis(300);

/// Starts the task if the operator configured any notifier or forge.
/// Records live in the data dir's `notify/`.
pub fn start(
    config: &NodeConfig,
    views: watch::Receiver<Arc<Views>>,
    commands: mpsc::Sender<Command>,
) -> Result<()> {
    if config.notify.is_empty() && config.statuses.is_empty() {
        return Ok(());
    }
    say_who_is_told(config);
    let records = config.data_dir.root().join("notify");
    std::fs::create_dir_all(&records)
        .with_context(|| format!("cannot create {}", records.display()))?;
    let (reports, reported) = mpsc::channel(256);
    let channels = Channels::open(config, &records, commands, reports)?;
    tokio::spawn(run(channels, views, reported));
    Ok(())
}

/// One line per notifier and forge at start, so an operator sees what
/// the config does (never its URLs or addresses: some are secrets).
fn say_who_is_told(config: &NodeConfig) {
    let projects = |selected: &[String]| match selected {
        [] if config.acceptance.is_empty() => {
            "no project (this node accepts none: name projects by full id)".to_owned()
        }
        [] => "every accepted project".to_owned(),
        named => named.join(", "),
    };
    for spec in &config.notify {
        let kind = match spec.carrier {
            Carrier::Mail(_) => "mail",
            Carrier::Webhook { .. } => "webhook",
            Carrier::Irc(_) => "irc",
        };
        let kinds: Vec<&str> = spec.kinds.iter().map(|k| k.name()).collect();
        println!(
            "notify {} ({kind}): {} of {}",
            spec.name,
            kinds.join(", "),
            projects(&spec.projects)
        );
    }
    for spec in &config.statuses {
        println!("status {}: commit statuses to its forge", spec.project);
    }
}

async fn run(
    mut channels: Channels,
    mut views: watch::Receiver<Arc<Views>>,
    mut reported: mpsc::Receiver<Report>,
) {
    let mut derive = true;
    loop {
        if derive {
            let latest = views.borrow_and_update().clone();
            channels.derive(&latest, crate::clock::now());
            derive = false;
        }
        channels.carry_out(&views.borrow().clone());
        let wake = channels.next_wake(crate::clock::now());
        tokio::select! {
            changed = views.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(DERIVE_PAUSE).await;
                derive = true;
            }
            Some(report) = reported.recv() => channels.reported(report, crate::clock::now()),
            () = tokio::time::sleep(wake) => channels.tick(crate::clock::now()),
        }
    }
}
