//! `GET /metrics`: the node's own figures and libp2p's, in OpenMetrics to
//! a scraper that accepts it (Prometheus asks for it first), otherwise in
//! the Prometheus text format 0.0.4.
//!
//! The exposition is written once, in OpenMetrics: libp2p's metrics come
//! from prometheus-client, which encodes nothing else. The 0.0.4 body is
//! converted from it ([`to_text_format`]); the two differ, for what
//! prometheus-client writes, only in the metadata lines.

use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The content type of an OpenMetrics 1.0 body.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of a Prometheus text format 0.0.4 body.
pub(crate) const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The exposition in the format the `Accept` header prefers; `Vary`
/// tells caches that it depends on it.
pub(crate) async fn serve(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let body = openmetrics(&state);
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let (content_type, body) = if prefers_openmetrics(&accept) {
        (OPENMETRICS, body)
    } else {
        (TEXT_FORMAT, to_text_format(&body))
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::VARY, "Accept"),
        ],
        body,
    )
        .into_response()
}

/// Our families (from the published status and views), then libp2p's,
/// then `# EOF`.
fn openmetrics(state: &AppState) -> String {
    let status = state.status.borrow().clone();
    let views = state.views.borrow().clone();
    let now_ms = (state.clock)().0;
    let mut out = Exposition::default();
    out.gauge("entries", "Entries in this node's log.", status.entries);
    out.gauge("peers", "Connected peers.", status.peers.len());
    out.gauge(
        "projects",
        "Declared projects this node knows.",
        views.projects.len(),
    );
    out.counter(
        "entries_received",
        "Entries taken from peers since start.",
        &[("", status.entries_received)],
    );
    out.counter(
        "peers_disconnected",
        "Peers dropped for misbehaving since start.",
        &[("", status.peers_disconnected)],
    );
    out.gauge(
        "builds_running",
        "Builds running here now.",
        status.builds_running,
    );
    out.gauge(
        "cells_waiting",
        "Cells on this node's platforms still waiting for results: the queue.",
        status.cells_waiting,
    );
    out.seconds(
        "sync_age_seconds",
        "Seconds since the last finished sync with a peer (-1: none yet).",
        age(now_ms, status.last_sync_at),
    );
    out.seconds(
        "last_entry_age_seconds",
        "Seconds since this node last added an entry to its log (-1: none yet).",
        age(now_ms, status.last_applied_at),
    );
    out.counter(
        "builds",
        "Builds finished here since start, by outcome.",
        &[
            ("{outcome=\"passed\"}", status.builds_passed),
            ("{outcome=\"failed\"}", status.builds_failed),
            ("{outcome=\"error\"}", status.builds_errored),
            ("{outcome=\"cancelled\"}", status.builds_cancelled),
        ],
    );
    let mut text = out.0;
    // libp2p's families, whether or not its encoder closed them already.
    for line in (state.libp2p_metrics)().lines() {
        if line != "# EOF" {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Our families in OpenMetrics, named `buildmesh_…`.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP buildmesh_{name} {help}");
        let _ = writeln!(self.0, "# TYPE buildmesh_{name} {kind}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl TryInto<u64>) {
        self.family(name, "gauge", help);
        let value = value.try_into().unwrap_or(u64::MAX);
        let _ = writeln!(self.0, "buildmesh_{name} {value}");
    }

    /// A gauge in seconds, which OpenMetrics says with a `UNIT` line.
    fn seconds(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help);
        let _ = writeln!(self.0, "# UNIT buildmesh_{name} seconds");
        let _ = writeln!(self.0, "buildmesh_{name} {value}");
    }

    /// A counter family `name`, whose samples are `name_total`, one per
    /// label set (`""`: none).
    fn counter(&mut self, name: &str, help: &str, samples: &[(&str, u64)]) {
        self.family(name, "counter", help);
        for (labels, value) in samples {
            let _ = writeln!(self.0, "buildmesh_{name}_total{labels} {value}");
        }
    }
}

fn age(now_ms: u64, at_ms: u64) -> f64 {
    if at_ms == 0 || now_ms == 0 {
        return -1.0;
    }
    now_ms.saturating_sub(at_ms) as f64 / 1000.0
}

/// Whether an `Accept` header asks for OpenMetrics 1.0 (or its draft
/// 0.0.1, which Prometheus parses alike) at least as much as for plain
/// text. No header, or `*/*` alone, gets the text format: curl's and old
/// scrapers' default.
fn prefers_openmetrics(accept: &str) -> bool {
    let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut quality, mut version) = (1.0_f64, None);
        for (key, value) in parts.filter_map(|p| p.split_once('=')) {
            let value = value.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => quality = value.parse().unwrap_or(0.0),
                "version" => version = Some(value),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text"
                if version.is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
            {
                openmetrics = openmetrics.max(quality);
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(quality),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// The OpenMetrics text `openmetrics` (as prometheus-client and
/// [`Exposition`] write it) in the Prometheus text format 0.0.4: a
/// counter's family takes its samples' name (`x_total`, not `x`), an info
/// family becomes a gauge `x_info`, `unknown` becomes `untyped`; `UNIT`
/// and `EOF` lines go; of a sample, only name, labels and value stay (an
/// OpenMetrics timestamp is in seconds, a 0.0.4 one in milliseconds; 0.0.4
/// has no exemplars). A family of another type loses its `TYPE` line, so
/// its samples read as untyped: less said, nothing wrong.
pub(crate) fn to_text_format(openmetrics: &str) -> String {
    // Family name to the suffix its samples carry, for the families
    // 0.0.4 names after their samples.
    let suffixes: BTreeMap<&str, &str> = openmetrics
        .lines()
        .filter_map(type_line)
        .filter_map(|(name, kind)| match kind {
            "counter" => Some((name, "_total")),
            "info" => Some((name, "_info")),
            _ => None,
        })
        .collect();
    let new_name = |name: &str| format!("{name}{}", suffixes.get(name).copied().unwrap_or(""));
    let mut text = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some((name, kind)) = type_line(line) {
            let kind = match kind {
                "counter" => "counter",
                "gauge" | "info" => "gauge",
                "histogram" => "histogram",
                "summary" => "summary",
                "unknown" => "untyped",
                _ => continue,
            };
            let _ = writeln!(text, "# TYPE {} {kind}", new_name(name));
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = writeln!(text, "# HELP {} {help}", new_name(name));
        } else if line.starts_with('#') || line.trim().is_empty() {
            // UNIT, EOF, or a comment 0.0.4 need not see.
        } else {
            text.push_str(&sample_without_extras(line));
            text.push('\n');
        }
    }
    text
}

/// `(family, type)` of a `# TYPE family type` line.
fn type_line(line: &str) -> Option<(&str, &str)> {
    line.strip_prefix("# TYPE ")?.split_once(' ')
}

/// `name{labels} value` of a sample line, without a timestamp or an
/// exemplar after it. Label values may hold spaces, braces and `#`, so
/// the labels' end is found outside quotes.
fn sample_without_extras(line: &str) -> String {
    let (mut in_labels, mut in_quotes, mut escaped) = (false, false, false);
    let mut name_end = line.len();
    for (at, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' if in_labels => in_quotes = !in_quotes,
            '{' if !in_quotes => in_labels = true,
            '}' if !in_quotes => in_labels = false,
            ' ' if !in_labels => {
                name_end = at;
                break;
            }
            _ => {}
        }
    }
    let (name, rest) = line.split_at(name_end);
    let value = rest.split_whitespace().next().unwrap_or_default();
    format!("{name} {value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_curl_the_text_format() {
        // Prometheus 2's scrape Accept header.
        let prometheus = "application/openmetrics-text;version=1.0.0,\
            application/openmetrics-text;version=0.0.1;q=0.75,\
            text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(prefers_openmetrics(prometheus));
        assert!(prefers_openmetrics("application/openmetrics-text"));
        assert!(prefers_openmetrics(
            "Application/OpenMetrics-Text; version=\"0.0.1\""
        ));
        assert!(!prefers_openmetrics(""));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics("text/plain;version=0.0.4"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;q=0.5, text/plain"
        ));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;version=2.0.0"
        ));
    }

    #[test]
    fn counters_info_units_and_eof_become_the_text_format() {
        let openmetrics = "\
# HELP libp2p_swarm_connections Connections.
# TYPE libp2p_swarm_connections counter
libp2p_swarm_connections_total{protocols=\"/ip4 # {x}\"} 3 1700000000.5 # {id=\"1\"} 1.0
# HELP libp2p_identify_agent Agent.
# TYPE libp2p_identify_agent info
libp2p_identify_agent_info{agent=\"a b\"} 1
# TYPE buildmesh_sync_age_seconds gauge
# HELP buildmesh_sync_age_seconds Seconds.
# UNIT buildmesh_sync_age_seconds seconds
buildmesh_sync_age_seconds 1.5
# TYPE odd unknown
odd 1
# TYPE states stateset
states{states=\"a\"} 1
# EOF
";
        assert_eq!(
            to_text_format(openmetrics),
            "\
# HELP libp2p_swarm_connections_total Connections.
# TYPE libp2p_swarm_connections_total counter
libp2p_swarm_connections_total{protocols=\"/ip4 # {x}\"} 3
# HELP libp2p_identify_agent_info Agent.
# TYPE libp2p_identify_agent_info gauge
libp2p_identify_agent_info{agent=\"a b\"} 1
# TYPE buildmesh_sync_age_seconds gauge
# HELP buildmesh_sync_age_seconds Seconds.
buildmesh_sync_age_seconds 1.5
# TYPE odd untyped
odd 1
states{states=\"a\"} 1
"
        );
    }
}
