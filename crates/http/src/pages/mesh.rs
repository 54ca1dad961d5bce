//! This node and its peers.

use super::html::{escape, key_text, time};
use super::{Site, layout};
use crate::NodeStatus;
use buildmesh_protocol::Timestamp;

/// The mesh page: what this node is (key, peer id, addresses, platforms),
/// what it holds (entries, digest) and whom it talks to.
pub fn mesh(site: Site<'_>, node: &NodeStatus) -> String {
    let last_applied = if node.last_applied_at == 0 {
        "not since it started".to_owned()
    } else {
        time(Timestamp(node.last_applied_at))
    };
    // The digest is read from the log apart from the count above it, and
    // may be a moment older while the log grows: say what it covers.
    let digest_note = if node.digest_entries == node.entries {
        format!(
            " <span class=\"note\">over all {} entries</span>",
            node.digest_entries
        )
    } else {
        format!(
            " <span class=\"note\">over {} entries: the log grew while it was read; \
             reload for a current one</span>",
            node.digest_entries
        )
    };
    let body = format!(
        "<h1>This node</h1>\n<table>\n\
         <tr><th>Public key</th><td><code>{}</code></td></tr>\n\
         <tr><th>Peer id</th><td><code>{}</code></td></tr>\n\
         <tr><th>Listening on</th><td>{}</td></tr>\n\
         <tr><th>Builds for</th><td>{}</td></tr>\n\
         <tr><th>Accepts</th><td>{}</td></tr>\n\
         <tr><th>Sandbox</th><td>{}</td></tr>\n\
         <tr><th>Entries</th><td>{}</td></tr>\n\
         <tr><th>Received from peers</th><td>{}</td></tr>\n\
         <tr><th>Last entry added</th><td>{last_applied}</td></tr>\n\
         <tr><th>Log digest</th><td><code>{}</code>{digest_note}</td></tr>\n\
         <tr><th>Peers dropped for misbehaving</th><td>{}</td></tr>\n</table>\n\
         <p class=\"note\">Two nodes with the same digest hold the same log.</p>\n{}",
        escape(&node.public_key),
        escape(&node.peer_id),
        code_list(&node.listen),
        code_list(&node.platforms),
        accepts(node),
        sandbox(node),
        node.entries,
        node.entries_received,
        escape(&node.digest),
        node.peers_disconnected,
        peers(&node.peers),
    );
    layout::page(site, "Mesh", &body, None)
}

/// What the operator accepted, or how to accept something.
fn accepts(node: &NodeStatus) -> String {
    let accepts = &node.accepts;
    let mut parts = Vec::new();
    if !accepts.projects.is_empty() {
        parts.push(format!("projects {}", code_list(&accepts.projects)));
    }
    if !accepts.maintainers.is_empty() {
        parts.push(format!(
            "every project of maintainers {}",
            code_list(&accepts.maintainers)
        ));
    }
    if let Some(hint) = &accepts.hint {
        parts.push(format!("<span class=\"note\">{}</span>", escape(hint)));
    }
    parts.join("<br>\n")
}

/// How steps run, in words.
fn sandbox(node: &NodeStatus) -> String {
    let sandbox = &node.sandbox;
    let network = if sandbox.network {
        "steps may use the network"
    } else {
        "no step may use the network"
    };
    format!(
        "<strong>{}</strong>: {} ({network})",
        escape(&sandbox.mode),
        escape(&sandbox.detail)
    )
}

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "—".to_owned();
    }
    let items: Vec<String> = items
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect();
    items.join("<br>\n")
}

fn peers(peers: &[String]) -> String {
    if peers.is_empty() {
        return "<h2>Peers</h2>\n<p>No peers connected. Start the node with <code>--bootstrap</code> \
                or <code>--mdns</code> to find some.</p>\n"
            .to_owned();
    }
    let rows: String = peers
        .iter()
        .map(|key| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td></tr>\n",
                key_text(key),
                escape(key)
            )
        })
        .collect();
    format!(
        "<h2>Peers ({})</h2>\n<table>\n<tr><th>Key</th><th>Full key</th></tr>\n{rows}</table>\n",
        peers.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_node_and_its_peers() {
        let node = NodeStatus {
            public_key: "ab".repeat(32),
            peer_id: "12D3KooWtest".to_owned(),
            listen: vec!["/ip4/127.0.0.1/tcp/7070".to_owned()],
            platforms: vec!["<script>alert(1)</script>".to_owned()],
            peers: vec!["cd".repeat(32)],
            entries: 1000,
            entries_received: 10,
            peers_disconnected: 0,
            digest: "9f86".to_owned(),
            digest_entries: 990,
            last_applied_at: 1_764_000_000_000,
            ..NodeStatus::default()
        };
        let html = mesh(
            Site {
                node_key: &node.public_key,
            },
            &node,
        );
        assert!(html.contains(&format!("<code>{}</code>", "ab".repeat(32))));
        assert!(html.contains("12D3KooWtest"));
        assert!(html.contains("/ip4/127.0.0.1/tcp/7070"));
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("Peers (1)"));
        assert!(html.contains("cdcdcdcdcdcd"));
        assert!(html.contains("<td>1000</td>"));
        assert!(html.contains("over 990 entries: the log grew"));
        assert!(html.contains("2025-11-24 16:00:00 UTC"));
    }

    #[test]
    fn a_lonely_node_says_how_to_find_peers() {
        let html = mesh(Site::default(), &NodeStatus::default());
        assert!(html.contains("No peers connected"));
        assert!(html.contains("not since it started"));
    }

    #[test]
    fn a_current_digest_says_it_covers_every_entry() {
        let node = NodeStatus {
            entries: 23,
            digest: "9f86".to_owned(),
            digest_entries: 23,
            ..NodeStatus::default()
        };
        let html = mesh(Site::default(), &node);
        assert!(html.contains("<td>23</td>"));
        assert!(html.contains("<code>9f86</code> <span class=\"note\">over all 23 entries</span>"));
        assert!(!html.contains("grew"));
    }
}
