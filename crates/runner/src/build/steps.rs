//! Running a recipe's steps in order until one fails.

use super::{BuildError, RunnerContext, StepEvent, tell};
use crate::recipe::{Recipe, Step};
use crate::sandbox::Jail;
use crate::step::{StepOptions, StepRun, run_step_in};
use buildmesh_protocol::{BlobHash, BuildResult, Outcome, StepResult, StepStatus};
use std::collections::BTreeMap;
use std::path::Path;

/// Where steps run.
pub(super) struct Place<'a> {
    /// The work dir.
    pub dir: &'a Path,
    /// The sandbox, if any.
    pub jail: Option<&'a Jail>,
    /// `BUILDMESH_CACHE` as the step sees it, if the project has a cache.
    pub cache: Option<&'a str>,
}

/// Runs every step of `recipe` in `dir`, appending one [`StepResult`] per
/// step to `result` and setting its outcome: `Passed` if all exited 0,
/// `Failed` from the first that did not (later steps are `Skipped`, with
/// the empty log), `Warnings` if only steps marked `on_failure = "warn"`
/// failed (the build goes on past them). Returns each run step's log, for
/// metrics.
///
/// Cancellation and an unstorable log stop the build with an error; the
/// steps not run are still listed, as skipped.
pub(super) fn run_all(
    recipe: &Recipe,
    place: &Place<'_>,
    context: &RunnerContext,
    result: &mut BuildResult,
) -> Result<BTreeMap<String, BlobHash>, BuildError> {
    let empty = empty_log(context);
    let mut logs = BTreeMap::new();
    let mut failed = false;
    let mut warned = false;
    let mut stopped = None;
    for (index, step) in recipe.steps.iter().enumerate() {
        if context.cancel.is_cancelled() && stopped.is_none() {
            stopped = Some(BuildError::Cancelled);
        }
        if failed || stopped.is_some() {
            result.steps.push(skipped(step, empty));
            continue;
        }
        let mut env = recipe.environment_of(step);
        if let Some(cache) = place.cache {
            env.entry("BUILDMESH_CACHE".into())
                .or_insert_with(|| cache.to_owned());
        }
        let prepared = Step {
            env,
            ..step.clone()
        };
        match run_one((index, recipe.steps.len()), &prepared, place, context) {
            Ok(run) => {
                let bad = run.status != StepStatus::Exited(0);
                if step.warn_on_failure {
                    warned |= bad;
                } else {
                    failed = bad;
                }
                logs.insert(step.name.clone(), run.log.hash);
                result.steps.push(step_result(step, run));
            }
            Err(source) => {
                let step_name = step.name.clone();
                stopped = Some(BuildError::Log {
                    step: step_name,
                    source,
                });
                result.steps.push(skipped(step, empty));
            }
        }
    }
    if context.cancel.is_cancelled() {
        stopped.get_or_insert(BuildError::Cancelled);
    }
    result.outcome = if failed {
        Outcome::Failed
    } else if warned {
        Outcome::Warnings
    } else {
        Outcome::Passed
    };
    stopped.map_or(Ok(logs), Err)
}

fn run_one(
    (index, count): (usize, usize),
    step: &Step,
    place: &Place<'_>,
    context: &RunnerContext,
) -> std::io::Result<StepRun> {
    let forward = |bytes: &[u8]| {
        if let Some(on_output) = &context.on_output {
            on_output(index, &step.name, bytes);
        }
    };
    let options = StepOptions {
        log_bytes_max: context.log_bytes_max,
        cancel: &context.cancel,
        on_output: context
            .on_output
            .is_some()
            .then_some(&forward as &dyn Fn(&[u8])),
    };
    let name = step.name.as_str();
    tracing::info!(step = %step.name, "step started");
    tell(context, StepEvent::Started { index, count, name });
    let run = run_step_in(step, place.dir, place.jail, &context.blobs, &options);
    let (status, duration_ms) = match &run {
        Ok(run) => (run.status, run.duration_ms),
        // Its log could not be stored: the build stops with an error.
        Err(_) => (StepStatus::FailedToStart, 0),
    };
    tracing::info!(step = %step.name, ?status, ms = duration_ms, "step ended");
    tell(
        context,
        StepEvent::Ended {
            index,
            count,
            name,
            status,
            duration_ms,
        },
    );
    run
}

fn step_result(step: &Step, run: StepRun) -> StepResult {
    StepResult {
        name: step.name.clone(),
        command: step.command.clone(),
        status: run.status,
        duration_ms: run.duration_ms,
        log: run.log.hash,
        log_bytes: run.log.bytes,
    }
}

fn skipped(step: &Step, empty: BlobHash) -> StepResult {
    StepResult {
        name: step.name.clone(),
        command: step.command.clone(),
        status: StepStatus::Skipped,
        duration_ms: 0,
        log: empty,
        log_bytes: 0,
    }
}

/// The empty blob, stored so a skipped step's log can be fetched like any
/// other; its hash is the same whether or not storing it worked.
fn empty_log(context: &RunnerContext) -> BlobHash {
    context.blobs.put(b"").unwrap_or_else(|_| BlobHash::of(b""))
}
