//! A project's metrics over time: one chart per metric and platform, drawn
//! on the server as inline SVG, so it reads without JavaScript and a test
//! can read every value back from the DOM.

use super::html::{escape, escape_into, id, link, push_hex, query_value};
use super::{Site, layout};
use buildmesh_core::view::{DURATION, Point, STEP_DURATION};
use buildmesh_protocol::{CommitId, EntryId, ProjectId};
use std::fmt::Write;

/// One commit's value as a chart draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPoint<'a> {
    /// The commit.
    pub commit: &'a CommitId,
    /// Its title.
    pub title: &'a str,
    /// The value (a value that is not finite is left out of the chart).
    pub value: f64,
    /// The result that states it: the point links there.
    pub result: EntryId,
    /// Whether the value crossed one of the project's thresholds
    /// (`buildmesh project thresholds`): the point is drawn in red and
    /// says so.
    pub crossing: bool,
}

impl<'a> From<&Point<'a>> for ChartPoint<'a> {
    fn from(point: &Point<'a>) -> Self {
        ChartPoint {
            commit: point.commit,
            title: point.title,
            value: point.value,
            result: point.result,
            crossing: false,
        }
    }
}

/// One metric on one platform, oldest commit first.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart<'a> {
    /// The metric's name.
    pub metric: &'a str,
    /// The platform label.
    pub platform: &'a str,
    /// The points, oldest commit first.
    pub points: Vec<ChartPoint<'a>>,
}

/// What the metrics page shows and how it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendsView<'a> {
    /// The project.
    pub project: &'a ProjectId,
    /// Its name.
    pub name: &'a str,
    /// The branch the commits are from (`None`: every branch, for a
    /// project that declares none).
    pub branch: Option<&'a str>,
    /// The branches it declares, to switch to.
    pub branches: &'a [String],
    /// Only this platform, if asked.
    pub platform: Option<&'a str>,
    /// Only this metric, if asked.
    pub metric: Option<&'a str>,
    /// How many newest commits were looked at.
    pub rows: usize,
    /// The charts, grouped by metric (all of a metric's charts together).
    pub charts: Vec<Chart<'a>>,
}

/// The page `/projects/{project}/metrics`: a header saying what is shown
/// (branch, how many commits, links to the matrix, other branches and the
/// JSON), then each metric under its name with one chart per platform
/// ([`chart_svg`]), or in words why there is nothing to chart and how to get
/// numbers (the recipe's `[metrics]`).
pub fn trends(site: Site<'_>, view: &TrendsView<'_>) -> String {
    let points: usize = view.charts.iter().map(|c| c.points.len()).sum();
    let bytes = 4_000 + view.charts.len() * 1_200 + points * 340;
    let title = format!("{}: metrics", view.name);
    layout::page_with(site, &title, None, bytes, |body| {
        body.push_str(&header(view));
        if view.charts.is_empty() {
            body.push_str(&nothing_yet(view));
        }
        let mut rest = view.charts.as_slice();
        while let Some(first) = rest.first() {
            let count = rest.iter().take_while(|c| c.metric == first.metric).count();
            let (group, after) = rest.split_at(count);
            metric_section(body, group);
            rest = after;
        }
        if !view.charts.is_empty() && view.charts.iter().all(|c| is_builtin(c.metric)) {
            body.push_str(&recipe_hint());
        }
    })
}

/// Whether every result has this metric, without a recipe asking.
pub(crate) fn is_builtin(metric: &str) -> bool {
    metric == DURATION || metric.starts_with(STEP_DURATION)
}

/// The query string (with its `?`, or empty) of a selection: `rows` only
/// when not the default.
fn query(
    branch: Option<&str>,
    platform: Option<&str>,
    metric: Option<&str>,
    rows: usize,
) -> String {
    let rows_text = rows.to_string();
    let rows = (rows != crate::trends::ROWS_DEFAULT).then_some(rows_text.as_str());
    let fields = [
        ("branch", branch),
        ("platform", platform),
        ("metric", metric),
        ("rows", rows),
    ];
    let pairs: Vec<String> = fields
        .iter()
        .filter_map(|(key, value)| value.map(|v| format!("{key}={}", query_value(v))))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

fn header(view: &TrendsView<'_>) -> String {
    let project = view.project;
    let matrix = match view.branch {
        Some(branch) => format!("/projects/{project}?branch={}", query_value(branch)),
        None => format!("/projects/{project}"),
    };
    let scope = match view.branch {
        Some(branch) => format!("branch <code>{}</code>", escape(branch)),
        None => "every branch".to_owned(),
    };
    let others: Vec<String> = view
        .branches
        .iter()
        .filter(|b| Some(b.as_str()) != view.branch)
        .map(|b| {
            let query = query(Some(b), view.platform, view.metric, view.rows);
            let href = format!("/projects/{project}/metrics{query}");
            link(&href, b)
        })
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" · other branches: {}", others.join(" "))
    };
    let mut filters = String::new();
    for (what, value) in [("metric", view.metric), ("platform", view.platform)] {
        if let Some(value) = value {
            let _ = write!(filters, " · only {what} <code>{}</code>", escape(value));
        }
    }
    if !filters.is_empty() {
        let all = query(view.branch, None, None, view.rows);
        let href = format!("/projects/{project}/metrics{all}");
        let _ = write!(filters, " ({})", link(&href, "show all"));
    }
    let same = query(view.branch, view.platform, view.metric, view.rows);
    let json = format!("/api/v1/projects/{project}/metrics{same}");
    format!(
        "<p>{}</p>\n<h1>{}: metrics over time</h1>\n\
         <p>The newest commits (up to {}) on {scope}{filters}, oldest on the left{others} · {} · {}</p>\n\
         <p class=\"note\">Each point is one commit's value, from its newest result that \
         counts (a trusted builder's). Point at it for the commit and the value; click it for \
         the result.</p>\n",
        link(&matrix, &format!("← {}", view.name)),
        escape(view.name),
        view.rows,
        id(&project.short(), &project.to_string()),
        link(&json, "JSON"),
    )
}

/// One metric's heading and its charts, one per platform.
fn metric_section(out: &mut String, group: &[Chart<'_>]) {
    let Some(first) = group.first() else {
        return;
    };
    let what = if is_builtin(first.metric) {
        " <span class=\"note\">(recorded by every build)</span>"
    } else {
        ""
    };
    let _ = write!(
        out,
        "<section class=\"metric\">\n<h2><code>{}</code>{what}</h2>\n<div class=\"charts\">\n",
        escape(first.metric)
    );
    for chart in group {
        figure(out, chart);
    }
    out.push_str("</div>\n</section>\n");
}

/// A chart with its caption: the platform, the last value written large,
/// the lowest and highest.
fn figure(out: &mut String, chart: &Chart<'_>) {
    let unit = unit(chart.metric);
    let finite = || chart.points.iter().filter(|p| p.value.is_finite());
    let Some(range) = Range::of(finite().map(|p| p.value)) else {
        return;
    };
    let last = finite().next_back().map_or(f64::NAN, |p| p.value);
    let count = finite().count();
    let crossings = finite().filter(|p| p.crossing).count();
    let _ = write!(
        out,
        "<figure class=\"chart\">\n<figcaption><span class=\"platform\">{}</span> \
         <span class=\"last\" title=\"the newest commit's value\">{}{unit}</span>\
         <span class=\"note\">last · min {}{unit} · max {}{unit} · {count} commit{}</span>",
        escape(chart.platform),
        number(last),
        number(range.min),
        number(range.max),
        if count == 1 { "" } else { "s" },
    );
    if crossings > 0 {
        let _ = write!(
            out,
            "<span class=\"crossing-note\">{crossings} in red crossed the threshold</span>"
        );
    }
    out.push_str("</figcaption>\n");
    chart_into(out, chart);
    out.push_str("</figure>\n");
}

/// The unit a metric's values are in, as shown after them.
fn unit(metric: &str) -> &'static str {
    if is_builtin(metric) { " s" } else { "" }
}

/// The chart's drawing area, in SVG user units.
const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 24.0;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;

/// The lowest and highest value of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Range {
    min: f64,
    max: f64,
}

impl Range {
    /// Over the finite `values`; `None` if there is none.
    fn of(values: impl Iterator<Item = f64>) -> Option<Range> {
        values
            .filter(|v| v.is_finite())
            .fold(None, |range: Option<Range>, v| match range {
                None => Some(Range { min: v, max: v }),
                Some(r) => Some(Range {
                    min: r.min.min(v),
                    max: r.max.max(v),
                }),
            })
    }

    /// Where `value` sits from `min` (0) to `max` (1): the middle when all
    /// values are equal, and never NaN, even for a span past `f64::MAX`.
    fn fraction(&self, value: f64) -> f64 {
        let span = self.max - self.min;
        let fraction = if span.is_finite() {
            (value - self.min) / span
        } else {
            (value / 2.0 - self.min / 2.0) / (self.max / 2.0 - self.min / 2.0)
        };
        if span == 0.0 || !fraction.is_finite() {
            0.5
        } else {
            fraction.clamp(0.0, 1.0)
        }
    }
}

/// The x of the `index`th of `count` points: oldest at the left edge,
/// newest at the right, a lone point in the middle.
fn x_of(index: usize, count: usize) -> f64 {
    if count <= 1 {
        LEFT + PLOT_WIDTH / 2.0
    } else {
        LEFT + PLOT_WIDTH * index as f64 / (count - 1) as f64
    }
}

/// The y of a fraction of the range: the highest value at the top.
fn y_of(fraction: f64) -> f64 {
    TOP + PLOT_HEIGHT * (1.0 - fraction)
}

/// One chart as inline SVG: the y axis labelled with the lowest and
/// highest value, the x axis with the oldest and newest commit, a line
/// through the points, and each point a circle (carrying `data-value` and
/// `data-commit`, and a `<title>` with the commit, its title and the
/// value) linking to its result. Points whose value is not finite are
/// left out; coordinates are always finite. Empty if no point is left.
pub fn chart_svg(chart: &Chart<'_>) -> String {
    let mut svg = String::new();
    chart_into(&mut svg, chart);
    svg
}

/// [`chart_svg`], appended to `out`. A default page draws some 10,000
/// points, so this writes in place: no string per point, coordinates as
/// whole tenths, ids by [`push_hex`], titles by [`escape_into`].
fn chart_into(out: &mut String, chart: &Chart<'_>) {
    let points: Vec<&ChartPoint<'_>> = chart
        .points
        .iter()
        .filter(|p| p.value.is_finite())
        .collect();
    let (Some(range), Some(first), Some(last)) = (
        Range::of(points.iter().map(|p| p.value)),
        points.first(),
        points.last(),
    ) else {
        return;
    };
    let unit = unit(chart.metric);
    out.reserve(800 + points.len() * 340);
    let _ = writeln!(
        out,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{} on {}: {} commits, \
         last {}{unit}, min {}{unit}, max {}{unit}\">",
        escape(chart.metric),
        escape(chart.platform),
        points.len(),
        number(last.value),
        number(range.min),
        number(range.max),
    );
    axes(out, range, unit, first.commit, last.commit, points.len());
    let at: Vec<(f64, f64)> = (0..points.len())
        .zip(&points)
        .map(|(index, p)| (x_of(index, points.len()), y_of(range.fraction(p.value))))
        .collect();
    out.push_str("<polyline class=\"line\" points=\"");
    for (index, (x, y)) in at.iter().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        push_tenths(out, *x);
        out.push(',');
        push_tenths(out, *y);
    }
    out.push_str("\"/>\n");
    for (point, (x, y)) in points.iter().zip(&at) {
        circle(out, point, *x, *y, unit);
    }
    out.push_str("</svg>\n");
}

/// A coordinate to one decimal, such as `64.0`: written from whole tenths,
/// since formatting floats to a precision was the page's costliest part.
/// Coordinates lie in the chart, so the clamp changes none.
fn push_tenths(out: &mut String, value: f64) {
    let tenths = (value.clamp(0.0, 99_999.0) * 10.0).round() as u32;
    let mut digits = [b'0'; 7];
    let mut rest = tenths / 10;
    let mut start = digits.len() - 2;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits[5] = b'.';
    digits[6] = b'0' + (tenths % 10) as u8;
    out.extend(digits[start..].iter().map(|d| char::from(*d)));
}

/// The axes and their labels.
fn axes(
    svg: &mut String,
    range: Range,
    unit: &str,
    oldest: &CommitId,
    newest: &CommitId,
    count: usize,
) {
    let (bottom, right) = (TOP + PLOT_HEIGHT, WIDTH - RIGHT);
    let label_x = LEFT - 6.0;
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\"/>\n\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\"/>\n"
    );
    if range.min == range.max {
        let middle = y_of(0.5) + 4.0;
        let _ = writeln!(
            svg,
            "<text class=\"tick\" x=\"{label_x}\" y=\"{middle}\" text-anchor=\"end\">{}{unit}</text>",
            number(range.max)
        );
    } else {
        let (top, low) = (TOP + 4.0, bottom + 4.0);
        let _ = write!(
            svg,
            "<text class=\"tick max\" x=\"{label_x}\" y=\"{top}\" text-anchor=\"end\">{}{unit}</text>\n\
             <text class=\"tick min\" x=\"{label_x}\" y=\"{low}\" text-anchor=\"end\">{}{unit}</text>\n",
            number(range.max),
            number(range.min),
        );
    }
    let below = HEIGHT - 6.0;
    if count <= 1 {
        let middle = x_of(0, 1);
        let _ = writeln!(
            svg,
            "<text class=\"tick\" x=\"{middle}\" y=\"{below}\" text-anchor=\"middle\">{}</text>",
            oldest.short()
        );
    } else {
        let _ = write!(
            svg,
            "<text class=\"tick\" x=\"{LEFT}\" y=\"{below}\">{} (oldest)</text>\n\
             <text class=\"tick\" x=\"{right}\" y=\"{below}\" text-anchor=\"end\">{} (newest)</text>\n",
            oldest.short(),
            newest.short(),
        );
    }
}

/// One point: a circle linking to its result, with its value and commit
/// as data attributes and a tooltip.
fn circle(out: &mut String, point: &ChartPoint<'_>, x: f64, y: f64, unit: &str) {
    let (class, radius, note) = if point.crossing {
        (" class=\"crossing\"", "5", " (crossed the threshold)")
    } else {
        ("", "3.5", "")
    };
    out.push_str("<a href=\"/results/");
    push_hex(out, point.result.as_bytes());
    let _ = write!(out, "\"><circle{class} cx=\"");
    push_tenths(out, x);
    out.push_str("\" cy=\"");
    push_tenths(out, y);
    let _ = write!(
        out,
        "\" r=\"{radius}\" data-value=\"{}\" data-commit=\"",
        point.value
    );
    let commit = point.commit.as_bytes();
    push_hex(out, commit);
    out.push_str("\"><title>");
    push_hex(out, &commit[..commit.len().min(5)]);
    out.push(' ');
    escape_into(out, point.title);
    let _ = writeln!(
        out,
        ": {}{unit}{note}</title></circle></a>",
        number(point.value)
    );
}

/// A value for people: whole numbers as they are, others to about four
/// significant digits, very large or small ones in exponent form.
pub(crate) fn number(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if value == value.trunc() && magnitude < 1e15 {
        return (value as i64).to_string();
    }
    if !(1e-3..1e6).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    // The shortest form that reads back (fast) when it is short enough,
    // else rounded to four significant digits (slow: exact formatting).
    let shortest = value.to_string();
    let significant = shortest
        .bytes()
        .filter(u8::is_ascii_digit)
        .skip_while(|d| *d == b'0')
        .count();
    if significant <= 4 {
        return shortest;
    }
    let digits = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Why there is no chart, in words, and what would make some.
fn nothing_yet(view: &TrendsView<'_>) -> String {
    let filtered = view.metric.is_some() || view.platform.is_some();
    let what = if filtered {
        "None of the newest commits here has a value of what you asked for: a result \
         that counts (a trusted builder's) on that platform, stating that metric."
    } else {
        "No result that counts (a trusted builder's) on the newest commits here states a \
         number yet. Every build result records its duration (<code>duration_seconds</code>) \
         and each step's (<code>step_seconds.STEP</code>), so charts appear with the first \
         result; until then there is nothing to draw."
    };
    format!(
        "<section class=\"problem\"><strong>Nothing to chart yet.</strong> {what}</section>\n{}",
        recipe_hint()
    )
}

/// How a project gets its own numbers charted.
fn recipe_hint() -> String {
    "<h2>Chart your own numbers</h2>\n<p>Add a <code>[metrics]</code> table to the recipe, \
     <code>.buildmesh.toml</code> at the root of the repository: each key is a metric, read \
     from a step's output or from a file the build writes. Every result from then on states \
     them, and each gets its charts here.</p>\n<pre><code>[metrics]\n\
     tests_passed = { step = \"test\", regex = 'test result: \\w+\\. (\\d+) passed', take = \"sum\" }\n\
     coverage = { file = \"coverage.txt\" }</code></pre>\n\
     <p class=\"note\">See docs/recipe.md, <code>[metrics]</code>.</p>\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_core::view::testing::commits;

    const HOSTILE: &str = "<script>alert(1)</script>";
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

    fn points<'a>(ids: &'a [CommitId], values: &[f64]) -> Vec<ChartPoint<'a>> {
        ids.iter()
            .zip(values)
            .enumerate()
            .map(|(n, (commit, value))| ChartPoint {
                commit,
                title: "a change",
                value: *value,
                result: EntryId([n as u8; 32]),
                crossing: false,
            })
            .collect()
    }

    fn chart<'a>(ids: &'a [CommitId], values: &[f64]) -> Chart<'a> {
        Chart {
            metric: "coverage",
            platform: "linux",
            points: points(ids, values),
        }
    }

    /// Each attribute `name="…"` of `svg`'s circles, in order.
    fn attributes(svg: &str, name: &str) -> Vec<String> {
        let marker = format!("{name}=\"");
        svg.split("<circle")
            .skip(1)
            .filter_map(|c| {
                let start = c.find(&marker)? + marker.len();
                Some(c[start..start + c[start..].find('"')?].to_owned())
            })
            .collect()
    }

    fn numbers(svg: &str, name: &str) -> Vec<f64> {
        attributes(svg, name)
            .iter()
            .map(|v| v.parse().unwrap_or(f64::NAN))
            .collect()
    }

    /// Every number in the SVG's attributes and text that is not a value
    /// a point states: none may be NaN or infinite.
    fn assert_no_bad_numbers(svg: &str) {
        for bad in ["NaN", "inf", "Infinity"] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
    }

    #[test]
    fn values_scale_to_the_plot_highest_on_top() {
        let ids = commits(3);
        let svg = chart_svg(&chart(&ids, &[10.0, 20.0, 15.0]));
        assert_eq!(numbers(&svg, "data-value"), [10.0, 20.0, 15.0]);
        assert_eq!(
            numbers(&svg, "cx"),
            [LEFT, LEFT + PLOT_WIDTH / 2.0, WIDTH - RIGHT]
        );
        assert_eq!(
            numbers(&svg, "cy"),
            [TOP + PLOT_HEIGHT, TOP, TOP + PLOT_HEIGHT / 2.0]
        );
        let commits_back: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(attributes(&svg, "data-commit"), commits_back);
        assert!(svg.contains(&format!("<a href=\"/results/{}\">", EntryId([1; 32]))));
        assert!(svg.contains(">20</text>") && svg.contains(">10</text>"));
        assert!(svg.contains(&format!("{} (oldest)", ids[0].short())));
        assert!(svg.contains(&format!("{} (newest)", ids[2].short())));
        assert!(svg.contains(&format!("<title>{} a change: 15</title>", ids[2].short())));
        assert!(
            svg.contains("points=\"64.0,126.0 207.0,10.0 350.0,68.0\""),
            "{svg}"
        );
        assert_no_bad_numbers(&svg);
    }

    #[test]
    fn one_point_sits_in_the_middle() {
        let ids = commits(1);
        let svg = chart_svg(&chart(&ids, &[0.25]));
        assert_eq!(numbers(&svg, "cx"), [LEFT + PLOT_WIDTH / 2.0]);
        assert_eq!(numbers(&svg, "cy"), [TOP + PLOT_HEIGHT / 2.0]);
        assert_eq!(
            svg.matches("<text").count(),
            2,
            "one value, one commit: {svg}"
        );
        assert_no_bad_numbers(&svg);
    }

    #[test]
    fn equal_values_draw_a_flat_line_in_the_middle() {
        let ids = commits(4);
        let svg = chart_svg(&chart(&ids, &[7.5; 4]));
        assert_eq!(numbers(&svg, "cy"), [TOP + PLOT_HEIGHT / 2.0; 4]);
        assert_eq!(numbers(&svg, "data-value"), [7.5; 4]);
        assert_no_bad_numbers(&svg);
    }

    #[test]
    fn values_that_are_not_finite_are_left_out_and_extremes_stay_finite() {
        let ids = commits(5);
        let values = [
            f64::NAN,
            -f64::MAX,
            f64::INFINITY,
            f64::MAX,
            f64::NEG_INFINITY,
        ];
        let svg = chart_svg(&chart(&ids, &values));
        assert_eq!(numbers(&svg, "data-value"), [-f64::MAX, f64::MAX]);
        assert_eq!(numbers(&svg, "cy"), [TOP + PLOT_HEIGHT, TOP]);
        assert_eq!(
            attributes(&svg, "data-commit"),
            [ids[1].to_string(), ids[3].to_string()]
        );
        assert_no_bad_numbers(&svg);
        let none = chart_svg(&chart(&ids, &[f64::NAN, f64::INFINITY]));
        assert!(none.is_empty());
        for value in [f64::MIN_POSITIVE, 1e300, -1e-300] {
            assert_no_bad_numbers(&chart_svg(&chart(&ids[..2], &[value, 0.0])));
        }
    }

    #[test]
    fn titles_and_labels_are_escaped() {
        let ids = commits(2);
        let mut hostile = chart(&ids, &[1.0, 2.0]);
        hostile.metric = HOSTILE;
        hostile.platform = HOSTILE;
        hostile.points[0].title = HOSTILE;
        let project = ProjectId([5; 32]);
        let branches = vec![HOSTILE.to_owned()];
        let view = TrendsView {
            project: &project,
            name: HOSTILE,
            branch: Some(HOSTILE),
            branches: &branches,
            platform: Some(HOSTILE),
            metric: Some(HOSTILE),
            rows: 50,
            charts: vec![hostile],
        };
        let html = trends(Site::default(), &view);
        assert!(!html.contains(HOSTILE), "{html}");
        assert!(html.contains(&format!("{} {ESCAPED}: 1</title>", ids[0].short())));
        assert!(html.contains("?branch=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_page_groups_charts_by_metric_and_links_around() {
        let ids = commits(3);
        let mut charts = Vec::new();
        for metric in ["coverage", "tests"] {
            for platform in ["linux", "mac"] {
                charts.push(Chart {
                    metric,
                    platform,
                    points: points(&ids, &[1.0, 3.0, 2.0]),
                });
            }
        }
        charts[3].points[2].crossing = true;
        let project = ProjectId([5; 32]);
        let branches = vec!["main".to_owned(), "next".to_owned()];
        let view = TrendsView {
            project: &project,
            name: "hello",
            branch: Some("main"),
            branches: &branches,
            platform: None,
            metric: None,
            rows: 50,
            charts,
        };
        let html = trends(Site::default(), &view);
        assert_eq!(html.matches("<section class=\"metric\">").count(), 2);
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 4);
        assert!(html.find("<code>coverage</code>") < html.find("<code>tests</code>"));
        assert!(html.contains("<span class=\"last\" title=\"the newest commit's value\">2</span>"));
        assert!(html.contains("min 1 · max 3 · 3 commits"));
        assert!(html.contains(&format!("href=\"/projects/{project}?branch=main\"")));
        assert!(html.contains(&format!(
            "href=\"/projects/{project}/metrics?branch=next\">next</a>"
        )));
        assert!(html.contains(&format!(
            "href=\"/api/v1/projects/{project}/metrics?branch=main\">JSON</a>"
        )));
        assert_eq!(html.matches("class=\"crossing\"").count(), 1);
        assert!(html.contains("1 in red crossed the threshold"));
        assert!(!html.contains("Chart your own numbers"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn an_empty_page_says_what_to_add_to_the_recipe() {
        let project = ProjectId([5; 32]);
        let mut view = TrendsView {
            project: &project,
            name: "hello",
            branch: Some("main"),
            branches: &[],
            platform: None,
            metric: None,
            rows: 20,
            charts: Vec::new(),
        };
        let html = trends(Site::default(), &view);
        assert!(html.contains("Nothing to chart yet"));
        assert!(html.contains("duration_seconds"));
        assert!(html.contains("<code>[metrics]</code>"));
        assert!(html.contains("The newest commits (up to 20) on branch <code>main</code>"));
        assert!(
            html.contains("metrics?branch=main&amp;rows=20\">JSON"),
            "{html}"
        );
        view.metric = Some("coverage");
        let html = trends(Site::default(), &view);
        assert!(html.contains("what you asked for"));
        assert!(html.contains("only metric <code>coverage</code>"));
        assert!(html.contains(&format!(
            "<a href=\"/projects/{project}/metrics?branch=main&amp;rows=20\">show all</a>"
        )));
        assert!(html.contains("metrics?branch=main&amp;metric=coverage&amp;rows=20\">JSON"));
    }

    #[test]
    fn coordinates_are_written_to_one_decimal() {
        for (value, text) in [
            (0.0, "0.0"),
            (64.0, "64.0"),
            (207.04, "207.0"),
            (9.96, "10.0"),
            (126.35, "126.4"),
            (99_999.0, "99999.0"),
            (-3.0, "0.0"),
        ] {
            let mut out = String::new();
            push_tenths(&mut out, value);
            assert_eq!(out, text, "{value}");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(42.0), "42");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(12.3456), "12.35");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(123.456), "123.5");
        assert_eq!(number(1.0e-5), "1.000e-5");
        assert_eq!(number(2.5e9), "2500000000");
        assert_eq!(number(2.5e20), "2.500e20");
        assert_eq!(number(f64::NAN), "–");
        assert_eq!(number(-3.0), "-3");
        assert_eq!(number(0.001234), "0.001234");
        assert_eq!(number(0.0012346), "0.001235");
        assert_eq!(number(-12.5), "-12.5");
        assert_eq!(number(999_999.5), "1000000");
    }
}
