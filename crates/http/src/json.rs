//! The JSON shapes of the API: ids and keys as lower-case hex, statuses
//! and outcomes as lower-case words (docs/http-api.md).

use buildmesh_core::view::{ArtifactCheck, Cell, CellStatus, Matrix, Pull, Pulls, Row, Summary};
use buildmesh_protocol::{BuildResult, Entry, Outcome, StepStatus};
use serde_json::{Value, json};

/// A project's matrix.
pub fn matrix(matrix: &Matrix<'_>) -> Value {
    json!({
        "project": matrix.project.to_string(),
        "name": matrix.name,
        "owner": matrix.owner.to_string(),
        "repository": matrix.repository,
        "platforms": matrix.platforms,
        "branches": matrix.branches,
        "rows": matrix.rows.iter().map(row).collect::<Vec<_>>(),
        "broken": buildmesh_core::view::blame(matrix).map(|blame| json!({
            "first_failing": blame.first_failing.to_string(),
            "blamelist": blame.blamelist.iter().map(|r| json!({
                "commit": r.commit.to_string(),
                "author": r.author,
                "title": r.title,
            })).collect::<Vec<_>>(),
        })),
    })
}

/// A project as `GET /api/v1/projects` lists it: what it is, and how its
/// newest commit stands.
pub fn summary(summary: &Summary) -> Value {
    let newest = summary.newest.as_ref().map(|newest| {
        json!({
            "commit": newest.commit.to_string(),
            "title": newest.title,
            "branches": newest.branches,
            "announced_at": newest.announced_at.0,
            "status": status(newest.overall()),
            "statuses": newest.statuses.iter().map(|s| status(*s)).collect::<Vec<_>>(),
        })
    });
    json!({
        "project": summary.project.to_string(),
        "name": summary.name,
        "owner": summary.owner.to_string(),
        "repository": summary.repository,
        "platforms": summary.platforms,
        "newest": newest,
    })
}

/// One commit of a matrix, with its platforms named, and each cell's
/// artifacts compared across its builders (`artifacts`, one list per
/// cell, in column order).
pub fn commit(
    matrix: &Matrix<'_>,
    commit_row: &Row<'_>,
    artifacts: &[Vec<ArtifactCheck>],
) -> Value {
    let mut value = row(commit_row);
    value["project"] = json!(matrix.project.to_string());
    value["platforms"] = json!(matrix.platforms);
    if let Some(cells) = value["cells"].as_array_mut() {
        for (cell, checks) in cells.iter_mut().zip(artifacts) {
            cell["artifacts"] = checks.iter().map(artifact_check).collect();
        }
    }
    value
}

/// One artifact name of a cell: whether its builders agree, and each
/// builder's hash.
fn artifact_check(check: &ArtifactCheck) -> Value {
    json!({
        "name": check.name,
        "agreement": check.agreement.name(),
        "builds": check.builds.iter().map(|b| json!({
            "builder": b.builder.to_string(),
            "hash": b.hash.to_string(),
            "result": b.result.to_string(),
        })).collect::<Vec<_>>(),
        "missing": check.missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

/// A project's recent pull requests, each with its latest head's cells.
pub fn pulls(pulls: &Pulls<'_>) -> Value {
    json!({
        "project": pulls.project.to_string(),
        "name": pulls.name,
        "platforms": pulls.platforms,
        "enabled": pulls.enabled,
        "pulls": pulls.pulls.iter().map(|p| json!({
            "number": p.number,
            "base": p.base,
            "author": p.author,
            "title": p.title,
            "head": p.head.to_string(),
            "open": p.open,
            "updated_at": p.updated_at.0,
            "status": status(p.status),
            "cells": p.cells.iter().map(cell).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// One pull request: its heads, newest first, each with its cells.
pub fn pull(pull: &Pull<'_>) -> Value {
    json!({
        "project": pull.project.to_string(),
        "name": pull.name,
        "platforms": pull.platforms,
        "enabled": pull.enabled,
        "number": pull.number,
        "base": pull.base,
        "author": pull.author,
        "open": pull.open,
        "heads": pull.heads.iter().map(|h| json!({
            "commit": h.commit.to_string(),
            "title": h.title,
            "announced_at": h.announced_at.0,
            "status": status(h.status),
            "cells": h.cells.iter().map(cell).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// A build result: the entry's facts, the node's verdicts on it, and the
/// result's content with statuses as words.
pub fn result(entry: &Entry, result: &BuildResult, trusted: bool) -> Value {
    json!({
        "id": entry.id().to_string(),
        "builder": entry.author().to_string(),
        "written_at": entry.timestamp().0,
        "signature": "verified",
        "trusted": trusted,
        "project": result.project.to_string(),
        "commit": result.commit.to_string(),
        "platform": result.platform,
        "outcome": outcome(result.outcome),
        "error": result.error,
        "steps": result.steps.iter().map(|s| {
            let (status, code) = step_status(s.status);
            json!({
                "name": s.name,
                "command": s.command,
                "status": status,
                "code": code,
                "duration_ms": s.duration_ms,
                "log": s.log.to_string(),
                "log_bytes": s.log_bytes,
            })
        }).collect::<Vec<_>>(),
        "artifacts": result.artifacts.iter().map(|a| json!({
            "name": a.name,
            "hash": a.hash.to_string(),
            "bytes": a.bytes,
        })).collect::<Vec<_>>(),
        "metrics": result.metrics,
        "tests": entry.body().tests().map(|t| json!({
            "passed": t.passed,
            "failed": t.failed,
            "skipped": t.skipped,
            "errored": t.errored,
            "failing": t.failing,
            "source": t.source,
            "details": t.details.map(|h| h.to_string()),
        })),
        "attestation": entry.body().attestation().map(|h| h.to_string()),
        "environment": result.environment,
    })
}

/// A step's status as a word, with the exit code or signal number.
fn step_status(status: StepStatus) -> (&'static str, Option<i32>) {
    match status {
        StepStatus::Exited(code) => ("exited", Some(code)),
        StepStatus::Signalled(signal) => ("signalled", Some(signal)),
        StepStatus::TimedOut => ("timed_out", None),
        StepStatus::Skipped => ("skipped", None),
        StepStatus::FailedToStart => ("failed_to_start", None),
    }
}

fn row(row: &Row<'_>) -> Value {
    json!({
        "commit": row.commit.to_string(),
        "branches": row.branches,
        "title": row.title,
        "author": row.author,
        "announced_at": row.announced_at.0,
        "cells": row.cells.iter().map(cell).collect::<Vec<_>>(),
    })
}

fn cell(cell: &Cell) -> Value {
    json!({
        "status": status(cell.status),
        "results": cell.results.iter().map(|r| json!({
            "id": r.id.to_string(),
            "builder": r.builder.to_string(),
            "outcome": outcome(r.outcome),
        })).collect::<Vec<_>>(),
        "claimed_by": cell.claimed_by.map(|(key, until)| json!({
            "builder": key.to_string(),
            "lease_expires": until.0,
        })),
    })
}

/// One entry: its header in hex and numbers, its body as serde renders it.
pub fn entry(entry: &Entry) -> Value {
    json!({
        "id": entry.id().to_string(),
        "author": entry.author().to_string(),
        "seq": entry.seq(),
        "timestamp": entry.timestamp().0,
        "kind": format!("{:?}", entry.body().kind()).to_lowercase(),
        "body": serde_json::to_value(entry.body()).unwrap_or(Value::Null),
    })
}

/// A cell status as the API names it.
pub fn status(status: CellStatus) -> &'static str {
    status.name()
}

/// An outcome as the API names it.
pub fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::Error => "error",
        Outcome::Warnings => "warnings",
        Outcome::Skipped => "skipped",
        Outcome::Retry => "retry",
        Outcome::Cancelled => "cancelled",
    }
}
