//! Numbers a recipe asks for, captured after the steps ran.
//!
//! A metric that cannot be captured (the step printed no match, the file is
//! missing, the text is not a number) is left out of the result and
//! explained in a warning: a missing number is not a broken build. A metric
//! file refused for safety (a link, not a regular file: see
//! [`crate::inside`]) is different: it goes into the build's refusals,
//! which make the build an error.

use crate::blobs::BlobDir;
use crate::inside::{Inside, Refusal, Refused};
use crate::recipe::{MetricSource, MetricTake};
use buildmesh_protocol::BlobHash;
use regex::bytes::{Captures, Regex};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How much of a step's log a regex searches, bytes (from the start).
pub const METRIC_LOG_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest metric file read, bytes: it should hold one number.
pub const METRIC_FILE_BYTES_MAX: u64 = 4096;

/// Captures each of `metrics`; `step_logs` gives each step's log blob.
/// Files are read beneath `work_dir` only, as [`Inside::open_file`]
/// allows; a file refused for safety goes into `refused`.
pub(crate) fn capture_metrics(
    metrics: &BTreeMap<String, MetricSource>,
    step_logs: &BTreeMap<String, BlobHash>,
    work_dir: &Path,
    blobs: &BlobDir,
    warnings: &mut Vec<String>,
    refused: &mut Refused,
) -> BTreeMap<String, f64> {
    let mut captured = BTreeMap::new();
    // The work dir is opened once, when the first file metric needs it.
    let mut inside = None;
    for (name, source) in metrics {
        let value = match source {
            // A step skipped after an earlier one failed: no number is
            // expected of it, so nothing to warn about (issue 16, item 7).
            MetricSource::Output { step, .. } if !step_logs.contains_key(step) => {
                tracing::debug!(metric = %name, %step, "metric not captured: its step did not run");
                continue;
            }
            MetricSource::Output { step, regex, take } => {
                from_log(step, regex, *take, step_logs, blobs)
            }
            MetricSource::File { path } => {
                let inside = inside.get_or_insert_with(|| Inside::open(work_dir));
                match from_file(inside.as_ref(), path) {
                    Err(FileFailure::Refused(why)) => {
                        let what = format!("metric {name} file");
                        refused.push(&what, &path.to_string_lossy(), &why);
                        continue;
                    }
                    Err(FileFailure::Other(why)) => Err(why),
                    Ok(value) => Ok(value),
                }
            }
        };
        match value {
            Ok(value) => {
                captured.insert(name.clone(), value);
            }
            Err(why) => warnings.push(format!("metric {name} not captured: {why}")),
        }
    }
    captured
}

/// The matches of `regex` in `step`'s log, made one number as `take`
/// says. Every match read must give a number: one that does not makes the
/// metric not captured, rather than a sum that quietly leaves it out.
fn from_log(
    step: &str,
    regex: &Regex,
    take: MetricTake,
    step_logs: &BTreeMap<String, BlobHash>,
    blobs: &BlobDir,
) -> Result<f64, String> {
    let hash = step_logs
        .get(step)
        .ok_or_else(|| format!("step {step} did not run"))?;
    let log = blobs
        .read(hash, METRIC_LOG_BYTES_MAX)
        .map_err(|e| format!("reading the log of step {step}: {e}"))?;
    let mut problem = None;
    let values = regex
        .captures_iter(&log)
        .map_while(|captures| match value_of(regex, &captures) {
            Ok(value) => Some(value),
            Err(why) => {
                problem = Some(why);
                None
            }
        });
    let combined = take.combine(values);
    if let Some(why) = problem {
        return Err(why);
    }
    let value = combined.ok_or_else(|| {
        format!(
            "no match for {:?} in the output of step {step}",
            regex.as_str()
        )
    })?;
    if !value.is_finite() {
        return Err(format!("the {take} of the matches is not a finite number"));
    }
    Ok(value)
}

/// The number in one match: its first capture group that took part.
fn value_of(regex: &Regex, captures: &Captures<'_>) -> Result<f64, String> {
    let text = captures.iter().skip(1).flatten().next().ok_or_else(|| {
        format!(
            "{:?} matched, but its capture group did not",
            regex.as_str()
        )
    })?;
    number(&String::from_utf8_lossy(text.as_bytes()))
}

/// Why a metric file gave no number.
enum FileFailure {
    /// Refused for safety.
    Refused(Refusal),
    /// Missing, unreadable, not a number: a warning.
    Other(String),
}

fn from_file(
    inside: Result<&Inside, &std::io::Error>,
    relative: &Path,
) -> Result<f64, FileFailure> {
    let inside = inside.map_err(|e| FileFailure::Other(format!("work dir: {e}")))?;
    let shown = relative.display();
    let file = match inside.open_file(relative) {
        Ok(file) => file,
        Err(why) if why.is_safety() => return Err(FileFailure::Refused(why)),
        Err(why) => return Err(FileFailure::Other(format!("file {shown}: {why}"))),
    };
    let mut text = String::new();
    file.take(METRIC_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|e| FileFailure::Other(format!("file {shown}: {e}")))?;
    number(&text).map_err(FileFailure::Other)
}

/// A finite number, surrounding white space ignored.
fn number(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    match trimmed.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        _ => Err(format!(
            "{:?} is not a finite number",
            crate::fit::truncate(trimmed, 64)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_trimmed_and_finite() {
        assert_eq!(number(" 42\n"), Ok(42.0));
        assert_eq!(number("-1.5e3"), Ok(-1500.0));
        assert!(number("NaN").is_err());
        assert!(number("inf").is_err());
        assert!(number("12 tests").is_err());
    }
}
