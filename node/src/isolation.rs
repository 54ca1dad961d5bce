//! How this node keeps a donor's machine safe: whether a sandbox runs
//! here, and what that means for which accepted projects may build.

use crate::config::NodeConfig;
use crate::keyfile;
use buildmesh_core::view::Acceptance;
use buildmesh_http::{Accepts, SandboxStatus};
use buildmesh_protocol::PublicKey;
use buildmesh_runner::Sandbox;
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the node found at start.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The sandbox every step runs in; `None`: steps run as this node's
    /// user (no sandbox can run, or the operator said `--unsandboxed`).
    pub sandbox: Option<Arc<Sandbox>>,
    /// The operator's acceptance, confined to this node's own
    /// maintainers' projects when no sandbox can run.
    pub acceptance: Acceptance,
    /// For `GET /api/v1/node` and the mesh page.
    pub status: SandboxStatus,
}

/// Tries the sandbox (unless the operator turned it off) and decides.
/// Blocking: it starts a trial sandbox.
pub fn decide(config: &NodeConfig) -> Isolation {
    let mut acceptance = config.acceptance.clone();
    let network = config.sandbox.network;
    if config.unsandboxed {
        tracing::warn!(
            "--unsandboxed: build steps run as this node's user and can read its key; \
             accept only projects you trust"
        );
        let status = SandboxStatus {
            mode: "off".into(),
            detail: "the operator runs steps without a sandbox (--unsandboxed)".into(),
            network: true,
        };
        return Isolation {
            sandbox: None,
            acceptance,
            status,
        };
    }
    match Sandbox::probe(config.sandbox.clone()) {
        Ok(sandbox) => {
            warn_of_a_desktop_session(&sandbox);
            Isolation {
                sandbox: Some(Arc::new(sandbox)),
                acceptance,
                status: SandboxStatus {
                    mode: "bubblewrap".into(),
                    detail: "every step runs in a bubblewrap sandbox that sees only its work dir"
                        .into(),
                    network,
                },
            }
        }
        Err(error) => {
            let own = own_maintainers(config);
            tracing::warn!(
                "no sandbox: {error}. Until one runs, this node builds only projects of \
                 its own maintainer keys ({} found in its data dir); pass --unsandboxed to \
                 build every accepted project without one",
                own.len()
            );
            acceptance.unsandboxed_only = Some(own);
            Isolation {
                sandbox: None,
                acceptance,
                status: SandboxStatus {
                    mode: "unavailable".into(),
                    detail: format!(
                        "{error}; only projects of this node's own maintainer keys are built"
                    ),
                    network: true,
                },
            }
        }
    }
}

/// A step with the network shares the host's network namespace, where a
/// desktop session's abstract sockets (X11's, an old D-Bus bus) live and
/// accept the same user: a node run as a desktop user would hand its
/// keyboard to builds (a root node's steps are `nobody`, whom the session
/// does not admit).
fn warn_of_a_desktop_session(sandbox: &Sandbox) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if sandbox.network_allowed() && desktop && sandbox.steps_are_the_node_user() {
        tracing::warn!(
            "this node runs in a desktop session and build steps may use the network: they \
             can reach the session's abstract sockets (X11). Run the node as a dedicated user \
             (docs/operating.md, Donating a machine) or pass --no-build-network"
        );
    }
}

/// The public halves of the maintainer keys this node holds: its data
/// dir's `maintainer.key` and the configured `maintainer_key`.
fn own_maintainers(config: &NodeConfig) -> BTreeSet<PublicKey> {
    let paths =
        std::iter::once(config.data_dir.maintainer_key()).chain(config.maintainer_key.clone());
    paths
        .filter(|path| path.exists())
        .filter_map(|path| keyfile::read(&path).ok())
        .map(|key| PublicKey::from(key.verifying_key()))
        .collect()
}

/// How to accept something, for a node that accepts nothing.
pub const ACCEPT_HINT: &str = "accept a project with --accept-project ID or every project of a \
     maintainer with --accept-maintainer KEY (or the config's [accept] table), then restart";

/// What the operator accepted, for the status, with a hint when nothing.
pub fn accepts(acceptance: &Acceptance) -> Accepts {
    Accepts {
        projects: acceptance.projects.iter().map(|p| p.to_string()).collect(),
        maintainers: acceptance
            .maintainers
            .iter()
            .map(|k| k.to_string())
            .collect(),
        hint: acceptance
            .is_empty()
            .then(|| format!("nothing is built here yet: {ACCEPT_HINT}")),
    }
}
