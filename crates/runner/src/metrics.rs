//! Numbers a recipe asks for, captured after the steps ran.
//!
//! A metric that cannot be captured (the step printed no match, the file is
//! missing, the text is not a number) is left out of the result and
//! explained in a warning: a missing number is not a broken build.

use crate::blobs::BlobDir;
use crate::recipe::MetricSource;
use buildmesh_protocol::BlobHash;
use regex::bytes::Regex;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How much of a step's log a regex searches, bytes (from the start).
pub const METRIC_LOG_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Largest metric file read, bytes: it should hold one number.
pub const METRIC_FILE_BYTES_MAX: u64 = 4096;

/// Captures each of `metrics`; `step_logs` gives each step's log blob.
/// Files are read under `work_dir` only (symlinks out of it are refused).
pub fn capture_metrics(
    metrics: &BTreeMap<String, MetricSource>,
    step_logs: &BTreeMap<String, BlobHash>,
    work_dir: &Path,
    blobs: &BlobDir,
    warnings: &mut Vec<String>,
) -> BTreeMap<String, f64> {
    let mut captured = BTreeMap::new();
    for (name, source) in metrics {
        let value = match source {
            MetricSource::Output { step, regex } => from_log(step, regex, step_logs, blobs),
            MetricSource::File { path } => from_file(work_dir, path),
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

fn from_log(
    step: &str,
    regex: &Regex,
    step_logs: &BTreeMap<String, BlobHash>,
    blobs: &BlobDir,
) -> Result<f64, String> {
    let hash = step_logs
        .get(step)
        .ok_or_else(|| format!("step {step} did not run"))?;
    let log = blobs
        .read(hash, METRIC_LOG_BYTES_MAX)
        .map_err(|e| format!("reading the log of step {step}: {e}"))?;
    let captures = regex.captures(&log).ok_or_else(|| {
        format!(
            "no match for {:?} in the output of step {step}",
            regex.as_str()
        )
    })?;
    let text = captures.iter().skip(1).flatten().next().ok_or_else(|| {
        format!(
            "{:?} matched, but its capture group did not",
            regex.as_str()
        )
    })?;
    number(&String::from_utf8_lossy(text.as_bytes()))
}

fn from_file(work_dir: &Path, relative: &Path) -> Result<f64, String> {
    let shown = relative.display();
    let inside = work_dir
        .canonicalize()
        .map_err(|e| format!("work dir: {e}"))?;
    let path = work_dir
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("file {shown}: {e}"))?;
    if !path.starts_with(&inside) {
        return Err(format!("file {shown} leads outside the work dir"));
    }
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(METRIC_FILE_BYTES_MAX).read_to_string(&mut text))
        .map_err(|e| format!("file {shown}: {e}"))?;
    number(&text)
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
