//! `buildmesh verify`: checks a node, or an export, from outside.
//!
//! Wiring only: reading (HTTP or a file) is here, every decision is in
//! `buildmesh_audit` (verifying entries, deriving matrices with the
//! node's view code, comparing, sorting findings from notes).

mod remote;

use super::EXIT_PROBLEMS;
use crate::cli::CheckArgs;
use crate::clock;
use anyhow::{Context, Result};
use buildmesh_audit::{Check, DeriveOptions, DerivedMatrix, Source, Verifier, derive_matrices};
use buildmesh_core::log::MemStore;
use buildmesh_http::views::{MATRIX_ROWS_DEFAULT, MATRIX_ROWS_MAX};
use buildmesh_protocol::{ProjectId, PublicKey, Timestamp};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

/// Prints the report (or its JSON); exits 0 when nothing was found, 1 on
/// any finding. Errors (exit 2) are the caller's: they say what to do.
pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let check = match (&args.node, &args.file) {
        (Some(url), _) => remote::check(&crate::client::NodeApi::parse(url)?, &args)?,
        (None, Some(path)) => check_file(path, args.project.as_deref())?,
        (None, None) => anyhow::bail!("give --node URL or --file EXPORT (see --help)"),
    };
    if args.json {
        println!("{}", check.to_json());
    } else {
        print!("{check}");
    }
    Ok(if check.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

/// Checks an export and derives its matrices as of the moment it was
/// exported (its header's `exported_at`): leases then live show as
/// building, as the node showed them then.
fn check_file(path: &Path, project: Option<&str>) -> Result<Check> {
    let input: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut verifier = Verifier::new();
    super::log::feed_lines(input, &mut verifier)
        .with_context(|| format!("reading {}", path.display()))?;
    let (report, store) = verifier.finish_with_log();
    let at = report.exported_at.map_or_else(clock::now, Timestamp);
    let derived = derive(&store, at);
    let only = match project {
        Some(selector) => Some(select(selector, &known(&derived, &[]))?),
        None => None,
    };
    let source = Source::File(path.display().to_string());
    Ok(Check::of(source, at.0, &report, &derived, only.as_ref()))
}

/// Every project's matrix the log gives, derived as a node derives the
/// one it serves without options (its newest [`MATRIX_ROWS_DEFAULT`]
/// commits, from the newest [`MATRIX_ROWS_MAX`] announcements) and
/// rendered by the node's own JSON.
fn derive(store: &MemStore, at: Timestamp) -> BTreeMap<ProjectId, DerivedMatrix> {
    let options = DeriveOptions {
        rows_max: MATRIX_ROWS_DEFAULT,
        announcements_max: MATRIX_ROWS_MAX,
        at,
    };
    match derive_matrices(store, &options, buildmesh_http::json::matrix) {
        Ok(derived) => derived,
        Err(never) => match never {},
    }
}

/// The projects a selector may name: the log's, and `served` ones (id,
/// name, owner as a node lists them) whose fields parse.
fn known(
    derived: &BTreeMap<ProjectId, DerivedMatrix>,
    served: &[(String, String, String)],
) -> Vec<(ProjectId, String, PublicKey)> {
    let mut known: Vec<(ProjectId, String, PublicKey)> = derived
        .values()
        .map(|d| (d.project, d.name.clone(), d.owner))
        .collect();
    for (id, name, owner) in served {
        if let (Ok(id), Ok(owner)) = (id.parse(), owner.parse())
            && !derived.contains_key(&id)
        {
            known.push((id, name.clone(), owner));
        }
    }
    known
}

/// The project `selector` names (a name, an id, or a unique start of an
/// id, as `buildmesh status --project` takes it).
fn select(selector: &str, known: &[(ProjectId, String, PublicKey)]) -> Result<ProjectId> {
    let id = super::status::select(known, selector)?;
    id.parse()
        .with_context(|| format!("{id} is not a project id"))
}
