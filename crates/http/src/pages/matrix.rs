//! The main page: a project's platform matrix.

use super::force::{force_form, operator_note};
use super::html::{escape, external_link, id, id_link, link, query_value, status_box, time_text};
use super::{Site, layout};
use crate::json;
use buildmesh_core::view::{Blame, blame};
use buildmesh_core::view::{Cell, CellStatus, Matrix, Pulls, Row};
use buildmesh_protocol::{CommitId, ProjectId};
use std::collections::BTreeSet;

/// The matrix page of a project: one row per commit (in the matrix's
/// order, newest first), one coloured cell per platform, linking to the
/// cell's first result; a legend; the first failing commit and its
/// blamelist if the build is broken (see [`blame`]); the force-build form
/// if `csrf` is given (the viewer holds the operator session; see
/// [`force_form`]), else a note on how to get operator access. `branch` is
/// the filter the matrix was derived with, if any.
///
/// With JavaScript, the page reloads itself when the node reports a
/// `cell` event for this project on `/api/v1/events`.
pub fn matrix(
    site: Site<'_>,
    matrix: &Matrix<'_>,
    branch: Option<&str>,
    csrf: Option<&str>,
) -> String {
    matrix_with_pulls(site, matrix, None, branch, csrf, None, &FlakyCells::new())
}

/// Cells whose only failures are flaky tests, as (row, column) of the
/// matrix: marked, as their red may say nothing about the code.
pub type FlakyCells = BTreeSet<(usize, usize)>;

/// [`matrix`], with the project's recent pull requests listed under it
/// (see [`super::pulls_section`]) when `pulls` is given, and the
/// Markdown of its badge to copy (see [`badge_snippet`]) when the URL
/// people reach this node at, `base_url`, is given.
pub fn matrix_with_pulls(
    site: Site<'_>,
    matrix: &Matrix<'_>,
    pulls: Option<&Pulls<'_>>,
    branch: Option<&str>,
    csrf: Option<&str>,
    base_url: Option<&str>,
    flaky: &FlakyCells,
) -> String {
    let blame = blame(matrix);
    let mut body = header(matrix, branch);
    if let Some(blame) = &blame {
        body.push_str(&blame_box(&matrix.project, blame));
    }
    body.push_str(&table(matrix, blame.as_ref(), flaky));
    if let Some(pulls) = pulls {
        body.push_str(&super::pulls_section(pulls));
    }
    body.push_str(&legend());
    if let Some(base_url) = base_url {
        body.push_str(&badge_snippet(base_url, matrix));
    }
    match csrf {
        Some(csrf) => body.push_str(&force_form(&matrix.project, matrix.platforms, branch, csrf)),
        None => body.push_str(operator_note()),
    }
    layout::page(
        site,
        matrix.name,
        &body,
        Some(&live_reload(&matrix.project)),
    )
}

fn header(matrix: &Matrix<'_>, branch: Option<&str>) -> String {
    let project = matrix.project;
    let filter = match branch {
        Some(branch) => format!(
            "Commits on branch <code>{}</code>, newest first · {}",
            escape(branch),
            link(&format!("/projects/{project}"), "all branches")
        ),
        None => "Commits on every watched branch, newest first".to_owned(),
    };
    let on_branch = branch
        .map(|b| format!("?branch={}", query_value(b)))
        .unwrap_or_default();
    format!(
        "<h1>{}</h1>\n<p>Repository {} · maintainer {} · project {}</p>\n\
         <p>{} · {} · {}</p>\n<p class=\"note\">{filter}</p>\n",
        escape(matrix.name),
        external_link(matrix.repository),
        id(&matrix.owner.short(), &matrix.owner.to_string()),
        id(&project.short(), &project.to_string()),
        link(
            &format!("/projects/{project}/metrics{on_branch}"),
            "Metrics over time"
        ),
        link(
            &format!("/projects/{project}/flaky{on_branch}"),
            "Flaky tests"
        ),
        link(
            &format!("/api/v1/projects/{project}/matrix{on_branch}"),
            "this matrix as JSON"
        ),
    )
}

fn commit_href(project: &ProjectId, row: &Row<'_>) -> String {
    format!("/projects/{project}/commits/{}", row.commit)
}

fn blame_box(project: &ProjectId, blame: &Blame<'_>) -> String {
    let items: String = blame
        .blamelist
        .iter()
        .map(|row| {
            format!(
                "<li>{} {} — {}</li>\n",
                id_link(
                    &commit_href(project, row),
                    &row.commit.short(),
                    &row.commit.to_string()
                ),
                escape(row.title),
                escape(row.author)
            )
        })
        .collect();
    format!(
        "<section class=\"broken\">\n<h2>✗ Broken since {}</h2>\n\
         <p>The first failing commit, then every commit since (the blamelist):</p>\n<ul>\n{items}</ul>\n</section>\n",
        id(
            &blame.first_failing.short(),
            &blame.first_failing.to_string()
        ),
    )
}

fn table(matrix: &Matrix<'_>, blame: Option<&Blame<'_>>, flaky: &FlakyCells) -> String {
    if matrix.rows.is_empty() {
        return "<p>No commits announced yet. Nodes that watch the repository announce \
                new commits on its branches; <code>buildmesh announce</code> announces one by hand.</p>\n"
            .to_owned();
    }
    let columns: String = matrix
        .platforms
        .iter()
        .map(|p| format!("<th>{}</th>", escape(p)))
        .collect();
    let rows: String = matrix
        .rows
        .iter()
        .enumerate()
        .map(|(n, row)| {
            let first = blame.is_some_and(|b| b.first_failing == row.commit);
            table_row(matrix, row, first, |column| flaky.contains(&(n, column)))
        })
        .collect();
    format!(
        "<table class=\"matrix\">\n<thead><tr><th>Commit</th><th>Title</th><th>Author</th>\
         <th>Branches</th>{columns}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
}

fn table_row(
    matrix: &Matrix<'_>,
    row: &Row<'_>,
    first_failing: bool,
    flaky: impl Fn(usize) -> bool,
) -> String {
    let project = matrix.project;
    let commit = format!(
        "<a class=\"id\" href=\"{}\" title=\"{} announced {}\">{}</a>",
        commit_href(&project, row),
        row.commit,
        time_text(row.announced_at),
        row.commit.short()
    );
    let (class, tag) = if first_failing {
        (
            " class=\"first-failing\"",
            " <span class=\"tag first\">first failing</span>",
        )
    } else {
        ("", "")
    };
    let branches: Vec<String> = row
        .branches
        .iter()
        .map(|b| link(&format!("/projects/{project}?branch={}", query_value(b)), b))
        .collect();
    let cells: String = matrix
        .platforms
        .iter()
        .zip(&row.cells)
        .enumerate()
        .map(|(column, (platform, cell))| {
            cell_td(&matrix.project, row.commit, platform, cell, flaky(column))
        })
        .collect();
    format!(
        "<tr{class}><td>{commit}{tag}</td><td>{}</td><td>{}</td><td>{}</td>{cells}</tr>\n",
        escape(row.title),
        escape(row.author),
        branches.join(" ")
    )
}

fn cell_td(
    project: &ProjectId,
    commit: &CommitId,
    platform: &str,
    cell: &Cell,
    flaky_only: bool,
) -> String {
    let live = (cell.status == CellStatus::Claimed && cell.results.is_empty())
        .then(|| format!("/live/{project}/{commit}/{}", query_value(platform)));
    let href = cell
        .results
        .first()
        .map(|r| format!("/results/{}", r.id))
        .or(live);
    if flaky_only {
        let title = format!(
            "{}; every failing test is a known flaky one",
            cell_title(platform, cell)
        );
        return format!(
            "<td class=\"cell flaky-only\">{} <a class=\"tag\" href=\"/projects/{project}/flaky\" \
             title=\"only flaky tests failed\">flaky</a></td>",
            status_box(cell.status, href.as_deref(), &title)
        );
    }
    format!(
        "<td class=\"cell\">{}</td>",
        status_box(cell.status, href.as_deref(), &cell_title(platform, cell))
    )
}

/// The tooltip of a cell: platform, status, how many results, who builds.
fn cell_title(platform: &str, cell: &Cell) -> String {
    let mut title = format!("{platform}: {}", json::status(cell.status));
    match cell.results.len() {
        0 => {}
        1 => title.push_str(", 1 result"),
        n => title.push_str(&format!(", {n} results")),
    }
    if let Some((builder, until)) = cell.claimed_by {
        title.push_str(&format!(
            ", claimed by {} until {}",
            builder.short(),
            time_text(until)
        ));
    }
    title
}

fn legend() -> String {
    format!(
        "<p class=\"legend note\">{}</p>\n<noscript><p class=\"note\">Reload the page to see new results.</p></noscript>\n",
        legend_items()
    )
}

/// The states in the order the legend shows them.
const LEGEND: [CellStatus; 9] = [
    CellStatus::Passed,
    CellStatus::Failed,
    CellStatus::Disagree,
    CellStatus::Flaky,
    CellStatus::Differs,
    CellStatus::Error,
    CellStatus::Claimed,
    CellStatus::Pending,
    CellStatus::Skipped,
];

/// What a state means, in a few words for the legend and the commit page.
pub(super) fn meaning(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Passed => "enough trusted builders passed it",
        CellStatus::Failed => "a trusted builder saw it fail",
        CellStatus::Disagree => {
            "trusted builders disagree: one more builder, one that has not built it, decides"
        }
        CellStatus::Flaky => "trusted builders keep disagreeing, two or more on each side",
        CellStatus::Differs => "builders' artifacts differ, and the project requires them to agree",
        CellStatus::Error => "a build could not judge it",
        CellStatus::Claimed => "a builder holds it now",
        CellStatus::Pending => "nobody builds it yet",
        CellStatus::Skipped => "the recipe does not build this platform",
    }
}

/// Each state's box and what it means, as every page with states shows
/// them.
pub(super) fn legend_items() -> String {
    let items: Vec<String> = LEGEND
        .iter()
        .map(|status| {
            let meaning = meaning(*status);
            format!("{} {meaning}", status_box(*status, None, meaning))
        })
        .collect();
    items.join(" · ")
}

/// The badge's URL under `base_url` (no trailing `/`): by name and the
/// owner's full key, which together only this project has (its id derives
/// from them), so a stranger's project of the same name cannot break it.
pub fn badge_url(base_url: &str, matrix: &Matrix<'_>) -> String {
    format!(
        "{base_url}/badges/{}.svg?owner={}",
        query_value(matrix.name),
        matrix.owner
    )
}

/// A README's badge, as Markdown to copy, `[![buildmesh](badge)](page)`,
/// with the badge itself to see and how to vary it.
fn badge_snippet(base_url: &str, matrix: &Matrix<'_>) -> String {
    let badge = badge_url(base_url, matrix);
    let page = format!("{base_url}/projects/{}", matrix.project);
    let markdown = format!("[![buildmesh]({badge})]({page})");
    let short = format!("{base_url}/badges/{}.svg", query_value(matrix.name));
    format!(
        "<h2>Badge</h2>\n<p><img src=\"{}\" alt=\"the badge\"></p>\n\
         <p class=\"note\">The newest commit's state, for a README: copy this Markdown.</p>\n\
         <pre class=\"snippet\"><code>{}</code></pre>\n\
         <p class=\"note\">Add <code>&amp;platform=LABEL</code> for one platform, \
         <code>&amp;branch=NAME</code> for one branch. <code>{}</code> works too while no other \
         project this node knows is named {}; the owner's key keeps it working if one comes.</p>\n",
        escape(&badge),
        escape(&markdown),
        escape(&short),
        escape(matrix.name),
    )
}

/// Reloads the page (at most every half second) when a cell of this
/// project changes. The project id is hex, so it is safe inside the script.
fn live_reload(project: &ProjectId) -> String {
    format!(
        "(function () {{\n  if (!window.EventSource) return;\n  var project = \"{project}\", pending = null;\n  \
         var events = new EventSource(\"/api/v1/events\");\n  \
         events.addEventListener(\"cell\", function (event) {{\n    \
         try {{ if (JSON.parse(event.data).project !== project) return; }} catch (e) {{ return; }}\n    \
         if (!pending) pending = setTimeout(function () {{ location.reload(); }}, 500);\n  }});\n}})();"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_core::view::CellResult;
    use buildmesh_core::view::testing::{commits, row};
    use buildmesh_protocol::{EntryId, Outcome, PublicKey, Timestamp};

    const HOSTILE: &str = "<script>alert(1)</script>";
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

    fn passed_cell(id: u8) -> Cell {
        Cell {
            status: CellStatus::Passed,
            results: vec![CellResult {
                id: EntryId([id; 32]),
                builder: PublicKey([9; 32]),
                outcome: Outcome::Passed,
                at: Timestamp(0),
            }],
            claimed_by: None,
        }
    }

    fn render(rows: Vec<Row<'_>>, platforms: &[String], branch: Option<&str>) -> String {
        let m = buildmesh_core::view::testing::matrix(platforms, rows);
        matrix(Site { node_key: "ab" }, &m, branch, Some("c5rf"))
    }

    #[test]
    fn rows_cells_and_links() {
        let ids = commits(2);
        let platforms = vec!["linux-x86_64".to_owned(), "mac".to_owned()];
        let mut newest = row(&ids[1], &[CellStatus::Pending, CellStatus::Claimed]);
        newest.cells[1].claimed_by = Some((PublicKey([3; 32]), Timestamp(0)));
        let mut older = row(&ids[0], &[CellStatus::Passed, CellStatus::Error]);
        older.cells[0] = passed_cell(0xab);
        let html = render(vec![newest, older], &platforms, None);
        let project = ProjectId([5; 32]);
        assert!(html.contains("<h1>hello</h1>"));
        assert!(html.contains("<a href=\"https://example.org/hello.git\""));
        assert!(html.contains(&PublicKey([7; 32]).short()));
        assert!(html.contains(&format!("href=\"/projects/{project}/commits/{}\"", ids[1])));
        assert!(html.contains(&format!(">{}</a>", ids[1].short())));
        assert!(html.contains("<th>linux-x86_64</th><th>mac</th>"));
        let result = format!("/results/{}", EntryId([0xab; 32]));
        assert!(html.contains(&format!("class=\"status passed\" href=\"{result}\"")));
        assert!(html.contains("✓ passed</a>"));
        assert!(html.contains("… building</span>"));
        assert!(html.contains("! error</span>"));
        assert!(html.contains("claimed by 030303030303"));
        assert!(html.contains(&format!("/projects/{project}?branch=main")));
        assert!(html.contains(&format!(
            "<a href=\"/projects/{project}/metrics\">Metrics over time</a>"
        )));
        assert!(html.contains("new EventSource(\"/api/v1/events\")"));
        assert!(html.contains(&format!("action=\"/projects/{project}/force\"")));
        assert!(!html.contains("first failing"));
        // Newest first, as given.
        let newer_at = html.find(&ids[1].short()).unwrap_or(usize::MAX);
        let older_at = html.find(&ids[0].short()).unwrap_or(0);
        assert!(newer_at < older_at);
    }

    #[test]
    fn the_force_form_is_only_for_the_operator() {
        let ids = commits(1);
        let platforms = vec!["linux".to_owned()];
        let m = buildmesh_core::view::testing::matrix(
            &platforms,
            vec![row(&ids[0], &[CellStatus::Passed])],
        );
        let operator = matrix(Site::default(), &m, None, Some("c5rf"));
        assert!(operator.contains("<form method=\"post\""));
        assert!(operator.contains("name=\"csrf\" value=\"c5rf\""));
        assert!(!operator.contains("/operator?token="));
        let visitor = matrix(Site::default(), &m, None, None);
        assert!(!visitor.contains("<form"));
        assert!(!visitor.contains("csrf"));
        assert!(visitor.contains("/operator?token="));
        assert!(visitor.contains("operator.token"));
    }

    #[test]
    fn hostile_strings_are_text() {
        let ids = commits(1);
        let platforms = vec![HOSTILE.to_owned()];
        let mut r = row(&ids[0], &[CellStatus::Failed]);
        r.title = HOSTILE;
        r.author = HOSTILE;
        r.branches = vec![HOSTILE];
        let mut m = buildmesh_core::view::testing::matrix(&platforms, vec![r]);
        m.name = HOSTILE;
        m.repository = "javascript:alert(1)";
        let html = matrix_with_pulls(
            Site::default(),
            &m,
            None,
            Some(HOSTILE),
            Some(HOSTILE),
            Some(HOSTILE),
            &FlakyCells::new(),
        );
        assert!(html.contains("snippet"));
        assert!(!html.contains(HOSTILE));
        assert!(html.contains(ESCAPED));
        assert!(!html.contains("href=\"javascript:"));
        assert!(html.contains("?branch=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
    }

    #[test]
    fn a_broken_branch_shows_first_failing_and_blamelist() {
        let ids = commits(3);
        let platforms = vec!["linux".to_owned()];
        let mut failing_new = row(&ids[2], &[CellStatus::Failed]);
        failing_new.author = "Bob";
        let mut failing_old = row(&ids[1], &[CellStatus::Failed]);
        failing_old.author = "Carol";
        let rows = vec![
            failing_new,
            failing_old,
            row(&ids[0], &[CellStatus::Passed]),
        ];
        let html = render(rows, &platforms, Some("main"));
        assert!(html.contains(&format!("Broken since <code title=\"{}\"", ids[1])));
        assert!(html.contains("<tr class=\"first-failing\">"));
        assert_eq!(html.matches("first failing</span>").count(), 1);
        let list_start = html.find("<ul>").unwrap_or(0);
        let list = &html[list_start..html.find("</ul>").unwrap_or(0)];
        assert!(list.contains("Bob") && list.contains("Carol"));
        assert!(!list.contains(&ids[0].short()));
        assert!(list.find("Carol") < list.find("Bob"));
        assert!(html.contains("Commits on branch <code>main</code>"));
        let project = ProjectId([5; 32]);
        assert!(html.contains(&format!(
            "<a href=\"/projects/{project}/metrics?branch=main\">Metrics over time</a>"
        )));
    }

    #[test]
    fn the_badge_is_given_as_markdown_to_copy() {
        let ids = commits(1);
        let platforms = vec!["linux".to_owned()];
        let mut m = buildmesh_core::view::testing::matrix(
            &platforms,
            vec![row(&ids[0], &[CellStatus::Passed])],
        );
        m.name = "my lib";
        let base = "https://ci.example.org";
        let html = matrix_with_pulls(
            Site::default(),
            &m,
            None,
            None,
            None,
            Some(base),
            &FlakyCells::new(),
        );
        let owner = PublicKey([7; 32]);
        let project = ProjectId([5; 32]);
        let badge = format!("{base}/badges/my%20lib.svg?owner={owner}");
        assert_eq!(badge_url(base, &m), badge);
        let markdown = format!("[![buildmesh]({badge})]({base}/projects/{project})");
        assert!(
            html.contains(&format!(
                "<pre class=\"snippet\"><code>{markdown}</code></pre>"
            )),
            "{html}"
        );
        assert!(html.contains(&format!("<img src=\"{badge}\"")));
        assert!(!matrix(Site::default(), &m, None, None).contains("snippet"));
    }

    #[test]
    fn an_empty_matrix_says_so() {
        let html = render(Vec::new(), &[], None);
        assert!(html.contains("No commits announced yet"));
        assert!(html.contains("· pending"));
    }
}
