//! A metric over time: one platform's value of one metric on each of a
//! branch's newest commits, from the results that count in the matrix
//! (trusted builders'), oldest first, as a chart draws it. Durations are
//! metrics of every result ([`DURATION`], [`STEP_DURATION`]).

use super::matrix::{Matrix, MatrixOptions, matrix};
use super::project_log::{Measures, ProjectLog};
use buildmesh_protocol::{CommitId, EntryId, Timestamp};
use std::collections::BTreeMap;

pub use super::project_log::{DURATION, STEP_DURATION};

/// Which series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesOptions {
    /// Only commits announced on this branch (`None`: all).
    pub branch: Option<String>,
    /// The platform label.
    pub platform: String,
    /// The metric's name.
    pub metric: String,
    /// At most this many newest commits.
    pub rows_max: usize,
}

/// One commit's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    /// The commit.
    pub commit: &'a CommitId,
    /// Its title.
    pub title: &'a str,
    /// When it was first announced.
    pub announced_at: Timestamp,
    /// The value its cell's newest counting result states (a commit whose
    /// newest result does not state the metric has no point).
    pub value: f64,
    /// That result.
    pub result: EntryId,
    /// When that result was written.
    pub written_at: Timestamp,
}

/// The points of one series, oldest commit first; commits with no
/// counting result stating the metric are left out.
pub fn series<'a>(log: &'a ProjectLog, now: Timestamp, options: &SeriesOptions) -> Vec<Point<'a>> {
    let matrix_options = MatrixOptions {
        branch: options.branch.clone(),
        rows_max: Some(options.rows_max),
    };
    let (Some(matrix), Some(name)) = (
        matrix(log, now, &matrix_options),
        log.metric_names.number(&options.metric),
    ) else {
        return Vec::new();
    };
    let Some(column) = matrix.platforms.iter().position(|p| *p == options.platform) else {
        return Vec::new();
    };
    let mut points: Vec<Point<'a>> = matrix
        .rows
        .iter()
        .filter_map(|row| {
            let cell = row.cells.get(column)?;
            let result = cell
                .results
                .iter()
                .filter(|r| measured(r) && log.measures.contains_key(&r.id))
                .max_by_key(|r| (r.at, r.id))?;
            let value = value_of(log.measures.get(&result.id)?, name)?;
            Some(Point {
                commit: row.commit,
                title: row.title,
                announced_at: row.announced_at,
                value,
                result: result.id,
                written_at: result.at,
            })
        })
        .collect();
    points.reverse();
    points
}

/// Every series of a branch at once, by (metric, platform), as a metrics
/// page shows them: one matrix derivation for all, where [`series`]
/// derives one per series. Each commit's value comes from the newest
/// counting result of its cell, as in [`series`].
pub fn series_table<'a>(
    log: &'a ProjectLog,
    now: Timestamp,
    branch: Option<String>,
    rows_max: usize,
) -> BTreeMap<(&'a str, &'a str), Vec<Point<'a>>> {
    let options = MatrixOptions {
        branch,
        rows_max: Some(rows_max),
    };
    matrix(log, now, &options)
        .map(|m| table_of(log, &m))
        .unwrap_or_default()
}

/// [`series_table`] of a matrix already derived.
pub fn table_of<'a>(
    log: &'a ProjectLog,
    matrix: &Matrix<'a>,
) -> BTreeMap<(&'a str, &'a str), Vec<Point<'a>>> {
    let mut table: BTreeMap<(&'a str, &'a str), Vec<Point<'a>>> = BTreeMap::new();
    for row in matrix.rows.iter().rev() {
        for (platform, cell) in matrix.platforms.iter().zip(&row.cells) {
            let newest = cell
                .results
                .iter()
                .filter(|r| measured(r) && log.measures.contains_key(&r.id))
                .max_by_key(|r| (r.at, r.id));
            let Some((result, measures)) = newest.and_then(|r| Some((r, log.measures.get(&r.id)?)))
            else {
                continue;
            };
            for (name, value) in measures {
                let Some(metric) = log.metric_names.label(*name) else {
                    continue;
                };
                table.entry((metric, platform)).or_default().push(Point {
                    commit: row.commit,
                    title: row.title,
                    announced_at: row.announced_at,
                    value: *value,
                    result: result.id,
                    written_at: result.at,
                });
            }
        }
    }
    table
}

/// The metrics any result of `log` states, by name.
pub fn metric_names(log: &ProjectLog) -> Vec<&str> {
    let mut names: Vec<&str> = log
        .measures
        .values()
        .flatten()
        .filter_map(|(number, _)| log.metric_names.label(*number))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn value_of(measures: &Measures, name: u32) -> Option<f64> {
    measures
        .binary_search_by_key(&name, |(n, _)| *n)
        .ok()
        .map(|at| measures[at].1)
}

/// Whether a result's numbers describe the commit: not a build that
/// stopped short (retry, cancelled) nor one that ran nothing (skipped),
/// whose duration would be a point of its own.
fn measured(result: &super::CellResult) -> bool {
    result.outcome.settles() && result.outcome != buildmesh_protocol::Outcome::Skipped
}
