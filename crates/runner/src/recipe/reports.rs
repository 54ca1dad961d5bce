//! Checks a recipe's `[reports]` table.
//!
//! Paths are checked as `[artifacts] paths` are (relative, no `..`, no
//! `**`), since they are read the same way, from beneath the work dir.
//! `coverage` and `metrics` name one file each: a glob there could match
//! several, and there is no one way to add coverage files up.

use super::check::artifact;
use super::raw::RawReports;
use super::{ArtifactPattern, REPORT_PATTERNS_MAX, REPORTS_STEP, RecipeError, Reports, Step};

/// `raw` as a [`Reports`], or what is wrong with which key.
pub(super) fn check(raw: RawReports) -> Result<Reports, RecipeError> {
    let fail = |field: String, problem: String| RecipeError::Report { field, problem };
    if raw.junit.is_empty() && raw.coverage.is_none() && raw.metrics.is_none() {
        return Err(RecipeError::NoReports);
    }
    if raw.junit.len() > REPORT_PATTERNS_MAX {
        return Err(fail(
            "junit".into(),
            format!(
                "{} patterns; the limit is {REPORT_PATTERNS_MAX} (a glob such as \
                 \"reports/*.xml\" names many files)",
                raw.junit.len()
            ),
        ));
    }
    let junit = raw
        .junit
        .into_iter()
        .enumerate()
        .map(|(index, text)| artifact(text).map_err(|p| fail(format!("junit[{index}]"), p)))
        .collect::<Result<Vec<_>, _>>()?;
    let one = |field: &str, text: Option<String>| {
        text.map(|text| one_file(text).map_err(|p| fail(field.to_owned(), p)))
            .transpose()
    };
    Ok(Reports {
        junit,
        coverage: one("coverage", raw.coverage)?,
        metrics: one("metrics", raw.metrics)?,
    })
}

/// A path that names exactly one file.
fn one_file(text: String) -> Result<ArtifactPattern, String> {
    let pattern = artifact(text)?;
    if pattern.is_glob() {
        return Err(format!(
            "path {:?} holds '*' or '?'; name one file here (globs are for junit)",
            pattern.text
        ));
    }
    Ok(pattern)
}

/// A recipe with `[reports]` gets a step named [`REPORTS_STEP`] in its
/// results: none of its own may have that name, or a page could not tell
/// the two apart.
pub(super) fn name_is_free(steps: &[Step]) -> Result<(), RecipeError> {
    match steps.iter().position(|s| s.name == REPORTS_STEP) {
        None => Ok(()),
        Some(index) => Err(RecipeError::Step {
            number: index + 1,
            name: REPORTS_STEP.into(),
            problem: format!(
                "the name {REPORTS_STEP:?} is taken by the step that reads [reports]; \
                 rename this step"
            ),
        }),
    }
}
