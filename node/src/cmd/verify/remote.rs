//! Reading a live node for `buildmesh verify`: its project list, its whole
//! log, then the matrix of each project both give.
//!
//! A live node's log grows while it is read, and its views follow its
//! log a moment later (the views thread derives again within milliseconds
//! of an entry, and every 2 s for leases). So when its views differ from
//! its log, the node is read again after a pause: a difference counts
//! once the node's log stood still from before the previous read to after
//! the last one, or after [`ATTEMPTS`] reads (the report then says the
//! log kept growing).

use super::{derive, known, select};
use crate::cli::CheckArgs;
use crate::client::{Bounds, NodeApi, error_text};
use crate::clock;
use anyhow::{Context, Result, bail};
use buildmesh_audit::{
    At, Check, DerivedMatrix, Finding, Reads, Report, ServedProject, Source, Verifier,
    compare_matrix, compare_projects, holds,
};
use buildmesh_core::log::MemStore;
use buildmesh_protocol::ProjectId;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufReader, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// Most reads of a node whose views keep differing from its log.
pub const ATTEMPTS: usize = 3;

/// The pause before reading again: longer than the views thread's
/// longest rest, so views read after it are those of the entries held
/// before it.
pub const SETTLE: Duration =
    crate::views::DERIVE_AT_LEAST_EVERY.saturating_add(Duration::from_millis(500));

/// What `GET /api/v1/node` says of the log. The log only grows, so the
/// same count and the same last arrival mean that no entry came between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogState {
    entries: u64,
    last_applied_at: u64,
}

/// Checks the node behind `api`.
pub fn check(api: &NodeApi, args: &CheckArgs) -> Result<Check> {
    let mut previous: Option<LogState> = None;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let before = log_state(api)?;
        let mut check = check_once(api, args)?;
        let after = log_state(api)?;
        let settled = before.is_some() && previous == before && before == after;
        check.reads = Some(Reads { attempts, settled });
        let views_differ = check.findings.iter().any(Finding::is_about_views);
        if !views_differ || settled || attempts >= ATTEMPTS {
            return Ok(check);
        }
        eprintln!(
            "the node's views differ from its log; reading again in {} s in case entries were arriving",
            SETTLE.as_secs_f32()
        );
        previous = after;
        std::thread::sleep(SETTLE);
    }
}

/// One read: the project list, the log, the matrices; compared. The
/// whole read, not only the log's download, ends by `--timeout-secs` (a
/// hostile node could list many projects and trickle each matrix): past
/// it, no further matrix is asked for (each is bounded on its own).
fn check_once(api: &NodeApi, args: &CheckArgs) -> Result<Check> {
    let deadline = std::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    let (served, listing) = served_projects(api)?;
    let (report, store) = read_log(api, args)?;
    let now = clock::now();
    let derived = derive(&store, now);
    let only = match &args.project {
        Some(selector) => Some(select(selector, &known(&derived, &listing))?),
        None => None,
    };
    let mut check = Check::of(
        Source::Node(api.url()),
        now.0,
        &report,
        &derived,
        only.as_ref(),
    );
    let findings = &mut check.findings;
    match &served {
        Ok(served) => findings.extend(compare_projects(served, &derived, only.as_ref())),
        Err(error) => findings.push(Finding::ProjectsUnreadable {
            error: error.clone(),
        }),
    }
    let listed: BTreeSet<ProjectId> = listing
        .iter()
        .filter_map(|(id, ..)| id.parse().ok())
        .collect();
    let compared = derived
        .values()
        .filter(|d| only.as_ref().is_none_or(|only| *only == d.project))
        .filter(|d| listed.contains(&d.project));
    for matrix in compared {
        if std::time::Instant::now() > deadline {
            bail!(
                "checking {} took longer than --timeout-secs ({} s) before every project's \
                 matrix was compared; raise it for a node this large",
                api.url(),
                args.timeout_secs
            );
        }
        findings.extend(compare_served(api, matrix, &store)?);
    }
    Ok(check)
}

/// The node's project list (or why it cannot be read as one), and its
/// (id, name, owner) triples for naming a project.
#[allow(clippy::type_complexity)]
fn served_projects(
    api: &NodeApi,
) -> Result<(
    Result<Vec<ServedProject>, String>,
    Vec<(String, String, String)>,
)> {
    let (status, answer) = api.get_json("/api/v1/projects")?;
    let answer = match (status, answer) {
        (200, answer) => answer,
        (code, answer) => bail!(
            "{}{}",
            error_text(code, &answer.unwrap_or_default()),
            advice(code)
        ),
    };
    let listing = answer
        .as_ref()
        .ok()
        .and_then(|a| a["projects"].as_array())
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |key: &str| p[key].as_str().unwrap_or("").to_owned();
            (text("project"), text("name"), text("owner"))
        })
        .collect();
    Ok((answer.and_then(|a| ServedProject::list(&a)), listing))
}

/// The node's whole log, verified line by line as it comes.
fn read_log(api: &NodeApi, args: &CheckArgs) -> Result<(Report, MemStore)> {
    let bounds = Bounds {
        bytes_max: args.max_log_mib.saturating_mul(1 << 20),
        within: Duration::from_secs(args.timeout_secs),
        too_large: format!(
            "the node's log is larger than {} MiB; if you expect one that large, raise --max-log-mib",
            args.max_log_mib
        ),
    };
    let (status, body) = api.get_body("/api/v1/entries", &bounds)?;
    if status != 200 {
        let mut text = Vec::new();
        // What the error says, if it says anything: read a little at most.
        let _ = body.take(64 * 1024).read_to_end(&mut text);
        let answer = serde_json::from_slice(&text).unwrap_or(Value::Null);
        bail!("{}{}", error_text(status, &answer), advice(status));
    }
    let mut verifier = Verifier::new();
    let input = BufReader::with_capacity(256 * 1024, Progress::new(body));
    super::super::log::feed_lines(input, &mut verifier).with_context(|| {
        format!(
            "reading the log of {} (GET /api/v1/entries); --timeout-secs allows {} s",
            api.url(),
            args.timeout_secs
        )
    })?;
    Ok(verifier.finish_with_log())
}

/// The node's matrix of `derived`'s project, compared with the log's.
fn compare_served(
    api: &NodeApi,
    derived: &DerivedMatrix,
    store: &MemStore,
) -> Result<Vec<Finding>> {
    let path = format!("/api/v1/projects/{}/matrix", derived.project);
    let (status, answer) = api.get_json(&path)?;
    let at = At::project(&derived.project.to_string(), &derived.name);
    Ok(match (status, answer) {
        (200, Ok(matrix)) => compare_matrix(&matrix, derived, &|id| holds(store, id)),
        (200, Err(error)) => vec![Finding::MatrixUnreadable { at, error }],
        (404, _) => vec![Finding::MatrixUnreadable {
            at,
            error: "the node lists the project, and its matrix answers 404".into(),
        }],
        (code, answer) => bail!(
            "{} (GET {path}){}",
            error_text(code, &answer.unwrap_or_default()),
            advice(code)
        ),
    })
}

/// What to do about an error status.
fn advice(status: u16) -> &'static str {
    match status {
        404 => {
            "; is this a buildmesh node? verify reads its GET /api/v1/entries and /api/v1/projects"
        }
        421 => {
            "; the node does not answer to this host name: use an address it serves (docs/http-api.md)"
        }
        429 | 503 => {
            "; the node is busy (it serves a few exports at a time): try again in a moment"
        }
        _ => "",
    }
}

/// The node's log state, if it says (a node that does not is still
/// checked; its reads are just never called settled).
fn log_state(api: &NodeApi) -> Result<Option<LogState>> {
    let node = match api.get_json("/api/v1/node")? {
        (200, Ok(node)) => node,
        _ => return Ok(None),
    };
    Ok(node["entries"].as_u64().map(|entries| LogState {
        entries,
        last_applied_at: node["last_applied_at"].as_u64().unwrap_or(0),
    }))
}

/// Counts what is read and, for a person at a terminal, says how far it
/// got every half second: a big log takes a while.
struct Progress {
    inner: Box<dyn Read + Send>,
    bytes: u64,
    shown: Option<Instant>,
    terminal: bool,
    ended: bool,
}

impl Progress {
    fn new(inner: Box<dyn Read + Send>) -> Self {
        Progress {
            inner,
            bytes: 0,
            shown: None,
            terminal: std::io::stderr().is_terminal(),
            ended: false,
        }
    }
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes += read as u64;
        let due = self
            .shown
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(500));
        if self.terminal && !self.ended && (due || read == 0) {
            self.shown = Some(Instant::now());
            self.ended = read == 0;
            let mib = self.bytes as f64 / f64::from(1 << 20);
            let end = if read == 0 { "\n" } else { "" };
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\rreading the node's log: {mib:.1} MiB{end}");
            let _ = err.flush();
        }
        Ok(read)
    }
}
