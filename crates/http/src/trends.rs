//! A project's metrics over time: `GET /api/v1/projects/{project}/metrics`
//! (JSON) and the page `/projects/{project}/metrics` (inline SVG charts),
//! both from one matrix derivation for every series of the request
//! ([`series_table`]), on a blocking thread, from the published log.
//!
//! Not the node's own `/metrics` (Prometheus, `metrics.rs`): these are the
//! numbers build results state, commit by commit.

use crate::dashboard::{not_found, page_view, problem};
use crate::pages::{self, Chart, ChartPoint, Site, TrendsView};
use crate::projects::project_view;
use crate::{AppState, error};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use buildmesh_core::view::{Point, Policy, ProjectLog, crossings, metric_names, series_table};
use buildmesh_protocol::{Body, Timestamp};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeSet;
use std::fmt::Display;

/// Newest commits charted when the request does not say (`?rows=N`).
pub const ROWS_DEFAULT: usize = 50;

/// Most commits one request may chart: a page of every metric on every
/// platform at this many points is already a few megabytes.
pub const ROWS_MAX: usize = 500;

/// Most points one answer holds (the default, every series of 50 commits,
/// is some 10,000 for a project of 10 platforms and 20 metrics).
pub const POINTS_MAX: usize = 25_000;

/// Longest branch, platform or metric name a request may give.
const NAME_BYTES_MAX: usize = 256;

/// Most names an answer lists when it says what exists.
const LISTED_MAX: usize = 20;

/// `?branch=NAME&platform=LABEL&metric=NAME&rows=N`, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrendsQuery {
    branch: Option<String>,
    platform: Option<String>,
    metric: Option<String>,
    rows: Option<String>,
}

/// A request checked against the project it names.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection<'a> {
    name: &'a str,
    branches: &'a [String],
    platforms: &'a [String],
    branch: Option<String>,
    platform: Option<String>,
    metric: Option<String>,
    rows: usize,
}

/// Why a request is not answered: its status and what to do instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn bad(message: String) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }

    fn unknown(message: String) -> Refusal {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message,
        }
    }
}

/// The request's rows: [`ROWS_DEFAULT`] when not given.
fn rows_of(text: Option<&str>) -> Result<usize, Refusal> {
    let Some(text) = text else {
        return Ok(ROWS_DEFAULT);
    };
    text.parse::<usize>()
        .ok()
        .filter(|rows| (1..=ROWS_MAX).contains(rows))
        .ok_or_else(|| {
            Refusal::bad(format!(
                "rows must be a whole number from 1 to {ROWS_MAX} (the newest commits to chart; \
                 default {ROWS_DEFAULT})"
            ))
        })
}

/// A name given in the query: 1 to [`NAME_BYTES_MAX`] bytes.
fn name_of(what: &str, text: Option<String>) -> Result<Option<String>, Refusal> {
    match text {
        Some(text) if text.is_empty() || text.len() > NAME_BYTES_MAX => Err(Refusal::bad(format!(
            "{what} must be 1 to {NAME_BYTES_MAX} bytes"
        ))),
        text => Ok(text),
    }
}

/// `names` for a message: the first [`LISTED_MAX`], quoted, or `none`.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "none".to_owned();
    }
    let mut each: Vec<String> = names
        .iter()
        .take(LISTED_MAX)
        .map(|n| format!("{n:?}"))
        .collect();
    if names.len() > LISTED_MAX {
        each.push(format!("and {} more", names.len() - LISTED_MAX));
    }
    each.join(", ")
}

/// Checks `query` against `log`'s project: malformed values are a 400, a
/// branch, platform or metric the project does not have a 404 naming what
/// it has. The branch defaults to the first the project declares.
pub(crate) fn select(log: &ProjectLog, query: TrendsQuery) -> Result<Selection<'_>, Refusal> {
    let rows = rows_of(query.rows.as_deref())?;
    let branch = name_of("branch", query.branch)?;
    let platform = name_of("platform", query.platform)?;
    let metric = name_of("metric", query.metric)?;
    let policy = Policy::of(log).ok_or_else(|| {
        Refusal::unknown("no declared project with this id in this node's log".to_owned())
    })?;
    let declaration = policy.declaration;
    let name = declaration.name.as_str();
    let branch = match branch {
        Some(branch) => {
            let known = branches_known(log, &declaration.branches);
            if !known.contains(branch.as_str()) {
                return Err(Refusal::unknown(format!(
                    "project {name:?} has no branch {branch:?}; it has {}",
                    listed(known.into_iter())
                )));
            }
            Some(branch)
        }
        None => declaration.branches.first().cloned(),
    };
    if let Some(platform) = &platform
        && !declaration.platforms.contains(platform)
    {
        return Err(Refusal::unknown(format!(
            "project {name:?} has no platform {platform:?}; it declares {}",
            listed(declaration.platforms.iter().map(String::as_str))
        )));
    }
    if let Some(metric) = &metric
        && log.metric_names.number(metric).is_none()
    {
        return Err(Refusal::unknown(format!(
            "no result of project {name:?} states a metric {metric:?}; its results state {} \
             (a recipe's [metrics] adds more)",
            listed(metric_names(log).into_iter())
        )));
    }
    Ok(Selection {
        name,
        branches: &declaration.branches,
        platforms: &declaration.platforms,
        branch,
        platform,
        metric,
        rows,
    })
}

/// The branches a project declares and those its commits were announced
/// on (a branch it no longer declares still has its history).
fn branches_known<'a>(log: &'a ProjectLog, declared: &'a [String]) -> BTreeSet<&'a str> {
    let announced = log
        .announcements
        .iter()
        .filter_map(|entry| match entry.body() {
            Body::Announce(a) => Some(a.branch.as_str()),
            _ => None,
        });
    declared
        .iter()
        .map(String::as_str)
        .chain(announced)
        .collect()
}

/// One series: metric, platform and points, oldest commit first.
type Series<'a> = (&'a str, &'a str, Vec<Point<'a>>);

/// The selected series, each metric's together: the project's own
/// metrics first, then the durations every build has; platforms in the
/// order the project declares them.
///
/// Refused past [`POINTS_MAX`] points: an answer's size is what the
/// asker chooses, and a page of every series at the most rows would be
/// hundreds of megabytes.
fn derive<'a>(
    log: &'a ProjectLog,
    at: Timestamp,
    selection: &Selection<'_>,
) -> Result<Vec<Series<'a>>, Refusal> {
    let table = series_table(log, at, selection.branch.clone(), selection.rows);
    let wanted = |wanted: &Option<String>, have: &str| wanted.as_deref().is_none_or(|w| w == have);
    let mut series: Vec<Series<'a>> = table
        .into_iter()
        .filter(|((metric, platform), _)| {
            wanted(&selection.metric, metric) && wanted(&selection.platform, platform)
        })
        .map(|((metric, platform), points)| (metric, platform, points))
        .collect();
    let column = |platform: &str| selection.platforms.iter().position(|p| p == platform);
    series.sort_by_cached_key(|(metric, platform, _)| {
        (pages::is_metric_builtin(metric), *metric, column(platform))
    });
    let points: usize = series.iter().map(|(_, _, p)| p.len()).sum();
    within_points(points, series.len(), selection.rows)?;
    Ok(series)
}

fn within_points(points: usize, series: usize, rows: usize) -> Result<(), Refusal> {
    if points <= POINTS_MAX {
        return Ok(());
    }
    Err(Refusal::bad(format!(
        "this asks for {points} points ({series} series over up to {rows} commits); at most \
         {POINTS_MAX}: narrow it with metric=NAME, platform=LABEL or fewer rows"
    )))
}

fn as_text<T: Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// An id's bytes as hex: [`pages::push_hex`], not `Display` (which goes
/// through `hex::encode`): a default answer holds some 20,000 ids.
fn as_hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    let mut text = String::with_capacity(bytes.len() * 2);
    pages::push_hex(&mut text, bytes);
    serializer.serialize_str(&text)
}

/// The answer of `GET /api/v1/projects/{project}/metrics`.
#[derive(Serialize)]
struct TrendsJson<'a> {
    #[serde(serialize_with = "as_text")]
    project: buildmesh_protocol::ProjectId,
    name: &'a str,
    branch: Option<&'a str>,
    rows: usize,
    series: Vec<SeriesJson<'a>>,
}

#[derive(Serialize)]
struct SeriesJson<'a> {
    metric: &'a str,
    platform: &'a str,
    points: Vec<PointJson<'a>>,
    last: f64,
    min: f64,
    max: f64,
}

#[derive(Serialize)]
struct PointJson<'a> {
    #[serde(serialize_with = "as_hex")]
    commit: &'a [u8],
    title: &'a str,
    announced_at: u64,
    value: f64,
    #[serde(serialize_with = "as_hex")]
    result: [u8; 32],
}

fn series_json<'a>((metric, platform, points): &'a Series<'a>) -> Option<SeriesJson<'a>> {
    let last = points.last()?.value;
    let (min, max) = points.iter().fold((last, last), |(min, max), p| {
        (min.min(p.value), max.max(p.value))
    });
    Some(SeriesJson {
        metric,
        platform,
        points: points
            .iter()
            .map(|p| PointJson {
                commit: p.commit.as_bytes(),
                title: p.title,
                announced_at: p.announced_at.0,
                value: p.value,
                result: p.result.0,
            })
            .collect(),
        last,
        min,
        max,
    })
}

/// The JSON bytes of the selected series.
fn answer_json(log: &ProjectLog, at: Timestamp, query: TrendsQuery) -> Result<Vec<u8>, Refusal> {
    let selection = select(log, query)?;
    let series = derive(log, at, &selection)?;
    let body = TrendsJson {
        project: log.project,
        name: selection.name,
        branch: selection.branch.as_deref(),
        rows: selection.rows,
        series: series.iter().filter_map(series_json).collect(),
    };
    let points: usize = body.series.iter().map(|s| s.points.len()).sum();
    let mut bytes = Vec::with_capacity(256 + body.series.len() * 128 + points * 260);
    serde_json::to_writer(&mut bytes, &body).map_err(|e| Refusal {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: format!("cannot write the answer: {e}"),
    })?;
    Ok(bytes)
}

/// `GET /api/v1/projects/{project}/metrics`: the series of every metric
/// on every platform (or the one asked for) over a branch's newest
/// commits, oldest first.
pub(crate) async fn json(
    State(state): State<AppState>,
    Path(project): Path<String>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let view = match project_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let at = state.views.borrow().at;
    match tokio::task::spawn_blocking(move || answer_json(&view.log, at, query)).await {
        Ok(Ok(bytes)) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Ok(Err(refusal)) => error(refusal.status, &refusal.message),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "deriving the metrics failed",
        ),
    }
}

/// The page's HTML for the selected series.
fn answer_page(
    log: &ProjectLog,
    at: Timestamp,
    query: TrendsQuery,
    site: Site<'_>,
) -> Result<String, Refusal> {
    let selection = select(log, query)?;
    let series = derive(log, at, &selection)?;
    let thresholds = Policy::of(log).map(|p| p.thresholds()).unwrap_or_default();
    let charts = series
        .iter()
        .map(|(metric, platform, points)| {
            let mut crossed = vec![false; points.len()];
            for threshold in thresholds.iter().filter(|t| t.metric == *metric) {
                let these = crossings(points, threshold.rule);
                crossed.iter_mut().zip(these).for_each(|(c, t)| *c |= t);
            }
            Chart {
                metric,
                platform,
                points: points
                    .iter()
                    .zip(crossed)
                    .map(|(point, crossing)| ChartPoint {
                        crossing,
                        ..ChartPoint::from(point)
                    })
                    .collect(),
            }
        })
        .collect();
    let view = TrendsView {
        project: &log.project,
        name: selection.name,
        branch: selection.branch.as_deref(),
        branches: selection.branches,
        platform: selection.platform.as_deref(),
        metric: selection.metric.as_deref(),
        rows: selection.rows,
        charts,
    };
    Ok(pages::trends(site, &view))
}

/// `/projects/{project}/metrics`: the same series as charts.
pub(crate) async fn page(
    State(state): State<AppState>,
    Path(project): Path<String>,
    query: Result<Query<TrendsQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(rejection) => {
            return problem(&state, StatusCode::BAD_REQUEST, &rejection.body_text());
        }
    };
    let view = match page_view(&state, &project) {
        Ok(view) => view,
        Err(response) => return *response,
    };
    let at = state.views.borrow().at;
    let key = state.status.borrow().public_key.clone();
    let html = tokio::task::spawn_blocking(move || {
        answer_page(&view.log, at, query, Site { node_key: &key })
    })
    .await;
    match html {
        Ok(Ok(html)) => (StatusCode::OK, Html(html)).into_response(),
        Ok(Err(refusal)) if refusal.status == StatusCode::NOT_FOUND => {
            not_found(&state, &refusal.message)
        }
        Ok(Err(refusal)) => problem(&state, refusal.status, &refusal.message),
        Err(_) => problem(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "rendering failed",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_holds_at_most_so_many_points() {
        assert!(within_points(POINTS_MAX, 50, 500).is_ok());
        let Err(refusal) = within_points(POINTS_MAX + 1, 210, 500) else {
            panic!("past the limit is refused");
        };
        assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
        assert!(
            refusal
                .message
                .contains("210 series over up to 500 commits"),
            "{}",
            refusal.message
        );
        assert!(
            refusal.message.contains("metric=NAME"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn rows_are_one_to_the_limit() {
        assert_eq!(rows_of(None), Ok(ROWS_DEFAULT));
        assert_eq!(rows_of(Some("1")), Ok(1));
        assert_eq!(rows_of(Some("500")), Ok(ROWS_MAX));
        for bad in ["0", "501", "-1", "x", "", "99999999999999999999999"] {
            match rows_of(Some(bad)) {
                Err(refusal) => {
                    assert_eq!(refusal.status, StatusCode::BAD_REQUEST);
                    assert!(refusal.message.contains("1 to 500"), "{}", refusal.message);
                }
                Ok(rows) => panic!("{bad:?} gave {rows} rows"),
            }
        }
    }

    #[test]
    fn lists_are_bounded() {
        let many: Vec<String> = (0..25).map(|n| format!("m{n}")).collect();
        let text = listed(many.iter().map(String::as_str));
        assert!(text.starts_with("\"m0\", \"m1\""));
        assert!(text.ends_with("\"m19\", and 5 more"), "{text}");
        assert_eq!(listed(std::iter::empty()), "none");
    }
}
