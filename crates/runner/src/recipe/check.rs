//! Turns a [`RawRecipe`] into a [`Recipe`], or says what is wrong and where.

use super::raw::{RawMetric, RawOnFailure, RawRecipe, RawStep};
use super::{
    ARTIFACT_PATTERN_BYTES_MAX, ARTIFACT_PATTERNS_MAX, ArtifactPattern, COMMAND_BYTES_MAX,
    METRICS_MAX, MetricSource, MetricTake, NAME_BYTES_MAX, PLATFORMS_MAX, Recipe, RecipeError,
    STEP_ENV_MAX, STEPS_MAX, Step, TIMEOUT_SECS_MAX, TOOL_BYTES_MAX, TOOLS_MAX,
};
use regex::bytes::{Regex, RegexBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Compiled-regex size cap: a recipe must not make the node build a huge
/// automaton (the regex crate's own default is ten times this).
const REGEX_BYTES_MAX: usize = 1024 * 1024;

pub(crate) fn recipe(raw: RawRecipe) -> Result<Recipe, RecipeError> {
    if raw.step.is_empty() {
        return Err(RecipeError::NoSteps);
    }
    count("steps", raw.step.len(), STEPS_MAX)?;
    count("metrics", raw.metrics.len(), METRICS_MAX)?;
    count("tools", raw.environment.tools.len(), TOOLS_MAX)?;
    count(
        "artifact paths",
        raw.artifacts.paths.len(),
        ARTIFACT_PATTERNS_MAX,
    )?;
    let steps = steps(raw.step)?;
    let names: BTreeSet<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let metrics = raw
        .metrics
        .into_iter()
        .map(|(name, m)| {
            let source = metric(&name, m, &names)?;
            Ok((name, source))
        })
        .collect::<Result<BTreeMap<_, _>, RecipeError>>()?;
    let tools = raw.environment.tools;
    tools.iter().enumerate().try_for_each(|(i, t)| tool(i, t))?;
    let inherit = raw.environment.inherit;
    count("inherited variables", inherit.len(), STEP_ENV_MAX)?;
    for (index, name) in inherit.iter().enumerate() {
        if let Err(problem) = env_problem(name, "") {
            return Err(RecipeError::Inherit { index, problem });
        }
    }
    let artifacts = raw
        .artifacts
        .paths
        .into_iter()
        .enumerate()
        .map(|(index, text)| {
            artifact(text).map_err(|problem| RecipeError::Artifact { index, problem })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reports = raw.reports.map(super::reports::check).transpose()?;
    if reports.is_some() {
        super::reports::name_is_free(&steps)?;
    }
    Ok(Recipe {
        steps,
        metrics,
        tools,
        inherit,
        artifacts,
        reports,
        network: raw.network,
        platforms: raw.platforms.map(platforms).transpose()?,
    })
}

/// `platforms = [...]`: labels as projects declare them.
fn platforms(list: Vec<String>) -> Result<Vec<String>, RecipeError> {
    if list.is_empty() {
        return Err(RecipeError::Platform {
            index: 0,
            problem: "the list is empty, so no platform would build; remove `platforms` to \
                      build on every platform the project declares"
                .into(),
        });
    }
    count("platforms", list.len(), PLATFORMS_MAX)?;
    for (index, label) in list.iter().enumerate() {
        let problem = if label.trim().is_empty() {
            "is empty".to_owned()
        } else if label.len() > TOOL_BYTES_MAX {
            format!("is {} bytes; the limit is {TOOL_BYTES_MAX}", label.len())
        } else {
            continue;
        };
        return Err(RecipeError::Platform { index, problem });
    }
    Ok(list)
}

fn count(what: &'static str, count: usize, max: usize) -> Result<(), RecipeError> {
    if count > max {
        return Err(RecipeError::TooMany { what, count, max });
    }
    Ok(())
}

fn steps(raw: Vec<RawStep>) -> Result<Vec<Step>, RecipeError> {
    let mut seen = BTreeSet::new();
    let mut steps = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let fail = |problem: String| RecipeError::Step {
            number: index + 1,
            name: raw.name.clone(),
            problem,
        };
        step_problem(&raw).map_err(fail)?;
        if !seen.insert(raw.name.clone()) {
            return Err(fail(
                "another step has the same name; names must be unique".into(),
            ));
        }
        steps.push(Step {
            name: raw.name,
            command: raw.command,
            timeout: Duration::from_secs(raw.timeout_secs),
            env: raw.env,
            warn_on_failure: raw.on_failure == RawOnFailure::Warn,
        });
    }
    Ok(steps)
}

fn step_problem(raw: &RawStep) -> Result<(), String> {
    name_problem(&raw.name)?;
    if raw.command.trim().is_empty() {
        return Err("command is empty".into());
    }
    if raw.command.len() > COMMAND_BYTES_MAX {
        return Err(format!(
            "command is {} bytes; the limit is {COMMAND_BYTES_MAX} (move it into a script)",
            raw.command.len()
        ));
    }
    no_nul("command", &raw.command)?;
    if !(1..=TIMEOUT_SECS_MAX).contains(&raw.timeout_secs) {
        return Err(format!(
            "timeout_secs is {}; it must be between 1 and {TIMEOUT_SECS_MAX}",
            raw.timeout_secs
        ));
    }
    if raw.env.len() > STEP_ENV_MAX {
        return Err(format!(
            "env has {} variables; the limit is {STEP_ENV_MAX}",
            raw.env.len()
        ));
    }
    raw.env.iter().try_for_each(|(k, v)| env_problem(k, v))
}

pub(super) fn name_problem(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name is empty".into());
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(format!(
            "name is {} bytes; the limit is {NAME_BYTES_MAX}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("name contains a control character".into());
    }
    Ok(())
}

fn env_problem(key: &str, value: &str) -> Result<(), String> {
    if key.is_empty() || key.contains('=') {
        return Err(format!(
            "env variable name {key:?} is empty or contains '='"
        ));
    }
    no_nul("env variable name", key)?;
    no_nul(&format!("env variable {key}"), value)
}

fn no_nul(what: &str, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err(format!("{what} contains a NUL byte"));
    }
    Ok(())
}

fn metric(name: &str, raw: RawMetric, steps: &BTreeSet<&str>) -> Result<MetricSource, RecipeError> {
    let fail = |problem: String| RecipeError::Metric {
        name: name.to_owned(),
        problem,
    };
    name_problem(name).map_err(fail)?;
    match (raw.step, raw.regex, raw.file, raw.take) {
        (Some(step), Some(regex), None, take) => {
            let take = take_of(take.as_deref()).map_err(fail)?;
            output_metric(step, &regex, take, steps).map_err(fail)
        }
        (None, None, Some(_), Some(_)) => Err(fail(
            "take applies to { step, regex } metrics only: a file holds one number".into(),
        )),
        (None, None, Some(file), None) => file_metric(&file).map_err(fail),
        _ => Err(fail(
            "give either { step = \"...\", regex = \"...\" } or { file = \"...\" }".into(),
        )),
    }
}

/// `take` as the recipe spells it; absent is [`MetricTake::First`].
fn take_of(name: Option<&str>) -> Result<MetricTake, String> {
    let Some(name) = name else {
        return Ok(MetricTake::default());
    };
    MetricTake::from_name(name).ok_or_else(|| {
        let choices: Vec<String> = MetricTake::NAMES.iter().map(|n| format!("{n:?}")).collect();
        format!(
            "take = {:?} is not one of {}",
            crate::fit::truncate(name, 64),
            choices.join(", ")
        )
    })
}

fn output_metric(
    step: String,
    regex: &str,
    take: MetricTake,
    steps: &BTreeSet<&str>,
) -> Result<MetricSource, String> {
    if !steps.contains(step.as_str()) {
        return Err(format!("step {step:?} is not a step of this recipe"));
    }
    let regex = compile(regex)?;
    Ok(MetricSource::Output { step, regex, take })
}

fn compile(pattern: &str) -> Result<Regex, String> {
    let regex = RegexBuilder::new(pattern)
        .size_limit(REGEX_BYTES_MAX)
        .build()
        .map_err(|e| format!("regex does not compile: {e}"))?;
    // captures_len counts the implicit whole-match group as one.
    if regex.captures_len() < 2 {
        return Err(format!(
            "regex {pattern:?} has no capture group; wrap the number in ( )"
        ));
    }
    Ok(regex)
}

fn file_metric(file: &str) -> Result<MetricSource, String> {
    no_nul("file", file)?;
    let path = Path::new(file);
    let escapes = path.components().any(|c| {
        matches!(
            c,
            Component::RootDir | Component::Prefix(_) | Component::ParentDir
        )
    });
    if file.is_empty() || escapes {
        return Err(format!(
            "file {file:?} must be a path relative to the work dir, without '..'"
        ));
    }
    Ok(MetricSource::File {
        path: PathBuf::from(file),
    })
}

fn tool(index: usize, command: &str) -> Result<(), RecipeError> {
    let fail = |problem: String| RecipeError::Tool { index, problem };
    if command.trim().is_empty() {
        return Err(fail("command is empty".into()));
    }
    if command.len() > TOOL_BYTES_MAX {
        return Err(fail(format!(
            "command is {} bytes; the limit is {TOOL_BYTES_MAX}",
            command.len()
        )));
    }
    no_nul("command", command).map_err(fail)
}

pub(super) fn artifact(text: String) -> Result<ArtifactPattern, String> {
    if text.trim().is_empty() {
        return Err("path is empty".into());
    }
    no_nul("path", &text)?;
    if text.len() > ARTIFACT_PATTERN_BYTES_MAX {
        return Err(format!(
            "path is {} bytes; the limit is {ARTIFACT_PATTERN_BYTES_MAX}",
            text.len()
        ));
    }
    let mut components = Vec::new();
    for component in Path::new(&text).components() {
        match component {
            Component::Normal(name) => {
                // The text is UTF-8, so each of its components is.
                let name = name.to_string_lossy().into_owned();
                if name.contains("**") {
                    return Err(format!(
                        "path {text:?} uses '**'; '*' matches within one path component \
                         and there is no recursive match (name each directory)"
                    ));
                }
                components.push(name);
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => {
                return Err(format!(
                    "path {text:?} must be relative to the work dir, without '..'"
                ));
            }
        }
    }
    if components.is_empty() {
        return Err(format!("path {text:?} names no file"));
    }
    Ok(ArtifactPattern { text, components })
}
