//! `GET /metrics`: the node's own figures and libp2p's, in the Prometheus
//! text format.

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;

/// The exposition: ours (from the published status and views), then
/// libp2p's.
pub(crate) async fn serve(State(state): State<AppState>) -> Response {
    let status = state.status.borrow().clone();
    let views = state.views.borrow().clone();
    let now_ms = (state.clock)().0;
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
        let _ = writeln!(text, "# HELP buildmesh_{name} {help}");
        let _ = writeln!(text, "# TYPE buildmesh_{name} {kind}");
        let _ = writeln!(text, "buildmesh_{name} {value}");
    };
    gauge(
        "entries",
        "Entries in this node's log.",
        "gauge",
        status.entries as f64,
    );
    gauge(
        "peers",
        "Connected peers.",
        "gauge",
        status.peers.len() as f64,
    );
    gauge(
        "projects",
        "Declared projects this node knows.",
        "gauge",
        views.projects.len() as f64,
    );
    gauge(
        "entries_received_total",
        "Entries taken from peers since start.",
        "counter",
        status.entries_received as f64,
    );
    gauge(
        "peers_disconnected_total",
        "Peers dropped for misbehaving since start.",
        "counter",
        status.peers_disconnected as f64,
    );
    gauge(
        "builds_running",
        "Builds running here now.",
        "gauge",
        status.builds_running as f64,
    );
    gauge(
        "sync_age_seconds",
        "Seconds since the last finished sync with a peer (-1: none yet).",
        "gauge",
        age(now_ms, status.last_sync_at),
    );
    gauge(
        "last_entry_age_seconds",
        "Seconds since this node last added an entry to its log (-1: none yet).",
        "gauge",
        age(now_ms, status.last_applied_at),
    );
    let _ = writeln!(
        text,
        "# HELP buildmesh_builds_total Builds finished here since start, by outcome."
    );
    let _ = writeln!(text, "# TYPE buildmesh_builds_total counter");
    for (outcome, count) in [
        ("passed", status.builds_passed),
        ("failed", status.builds_failed),
        ("error", status.builds_errored),
        ("cancelled", status.builds_cancelled),
    ] {
        let _ = writeln!(
            text,
            "buildmesh_builds_total{{outcome=\"{outcome}\"}} {count}"
        );
    }
    text.push_str(&(state.libp2p_metrics)());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn age(now_ms: u64, at_ms: u64) -> f64 {
    if at_ms == 0 || now_ms == 0 {
        return -1.0;
    }
    now_ms.saturating_sub(at_ms) as f64 / 1000.0
}
