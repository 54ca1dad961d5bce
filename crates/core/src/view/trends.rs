//! A metric over time: one platform's value of one metric on each of a
//! branch's newest commits, from the results that count in the matrix
//! (trusted builders'), oldest first, as a chart draws it. Durations are
//! metrics of every result ([`DURATION`], [`STEP_DURATION`]).

use super::matrix::{MatrixOptions, matrix};
use super::project_log::{Measures, ProjectLog};
use buildmesh_protocol::{CommitId, EntryId, Timestamp};

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
    /// The value its newest counting result states.
    pub value: f64,
    /// That result.
    pub result: EntryId,
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
            let (result, value) = cell
                .results
                .iter()
                .filter_map(|r| Some((r, value_of(log.measures.get(&r.id)?, name)?)))
                .max_by_key(|(r, _)| (r.at, r.id))?;
            Some(Point {
                commit: row.commit,
                title: row.title,
                announced_at: row.announced_at,
                value,
                result: result.id,
            })
        })
        .collect();
    points.reverse();
    points
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
