//! One commit: its cells on every platform and the results behind them.

use super::html::{
    escape, id, id_link, link, outcome_status, query_value, status_box, symbol, time, time_text,
};
use super::matrix::meaning;
use super::{Site, layout};
use crate::json;
use buildmesh_core::view::{Agreement, ArtifactCheck, Cell, CellStatus, Row};
use buildmesh_protocol::ProjectId;

/// The page of one commit of project `project` (named `project_name`):
/// its title, author, branches and announcement time, then one line per
/// platform (`platforms` in column order, as the row's cells are) with
/// the cell's status, every result behind it (each linking to
/// `/results/{id}`, with outcome and builder) and a live claim, if any;
/// then the artifacts each platform's builders reported, compared
/// (`artifacts`, one list per platform in column order).
pub fn commit(
    site: Site<'_>,
    project_name: &str,
    project: &ProjectId,
    row: &Row<'_>,
    platforms: &[String],
    artifacts: &[Vec<ArtifactCheck>],
) -> String {
    let branches: Vec<String> = row
        .branches
        .iter()
        .map(|b| link(&format!("/projects/{project}?branch={}", query_value(b)), b))
        .collect();
    let cells: String = platforms
        .iter()
        .zip(&row.cells)
        .map(|(platform, cell)| platform_row(platform, cell))
        .collect();
    // The states that need words beyond their box: what a reader of a
    // disagreeing cell must know is that it is not over yet.
    let mut unusual: Vec<CellStatus> = row
        .cells
        .iter()
        .map(|c| c.status)
        .filter(|s| {
            matches!(
                s,
                CellStatus::Disagree
                    | CellStatus::Flaky
                    | CellStatus::Differs
                    | CellStatus::Skipped
            )
        })
        .collect();
    unusual.sort_unstable();
    unusual.dedup();
    let notes: String = unusual
        .iter()
        .map(|s| format!("<p class=\"note\">{} {}.</p>\n", symbol(*s), meaning(*s)))
        .collect();
    let body = format!(
        "<p>{}</p>\n<h1>Commit {}</h1>\n<p>{}</p>\n<table>\n\
         <tr><th>Id</th><td><code>{}</code></td></tr>\n<tr><th>Author</th><td>{}</td></tr>\n\
         <tr><th>Branches</th><td>{}</td></tr>\n<tr><th>Announced</th><td>{}</td></tr>\n</table>\n\
         <h2>Platforms</h2>\n<table>\n<tr><th>Platform</th><th>Status</th><th>Results</th><th>Claim</th></tr>\n\
         {cells}</table>\n{notes}{}",
        link(
            &format!("/projects/{project}"),
            &format!("← {project_name}")
        ),
        id(&row.commit.short(), &row.commit.to_string()),
        escape(row.title),
        row.commit,
        escape(row.author),
        branches.join(" "),
        time(row.announced_at),
        artifacts_section(platforms, artifacts),
    );
    let title = format!("{project_name} {}", row.commit.short());
    layout::page(site, &title, &body, None)
}

/// Each platform's artifacts: reproducible when its builders report one
/// hash, differs when not, unchecked while one builder reported it; each
/// builder's hash beside. Nothing when no build kept an artifact.
fn artifacts_section(platforms: &[String], artifacts: &[Vec<ArtifactCheck>]) -> String {
    let mut rows = String::new();
    for (platform, checks) in platforms.iter().zip(artifacts) {
        for check in checks {
            let builds: Vec<String> = check
                .builds
                .iter()
                .map(|b| {
                    format!(
                        "{} by {} in {}",
                        id(&b.hash.short(), &b.hash.to_string()),
                        id(&b.builder.short(), &b.builder.to_string()),
                        id_link(
                            &format!("/results/{}", b.result),
                            &b.result.short(),
                            &b.result.to_string()
                        )
                    )
                })
                .chain(check.missing.iter().map(|builder| {
                    format!("none by {}", id(&builder.short(), &builder.to_string()))
                }))
                .collect();
            let agreement = check.agreement.name();
            rows.push_str(&format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td>\
                 <td><span class=\"tag {}\">{agreement}</span></td><td>{}</td></tr>\n",
                escape(platform),
                escape(&check.name),
                match check.agreement {
                    Agreement::Reproducible => "good",
                    Agreement::Differs => "bad",
                    Agreement::Unchecked => "",
                },
                builds.join("<br>\n")
            ));
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    format!(
        "<h2>Artifacts</h2>\n<p class=\"note\">Each platform's builders' copies compared by \
         hash: reproducible when they agree, differs when they do not.</p>\n<table>\n\
         <tr><th>Platform</th><th>Artifact</th><th>Builders agree?</th><th>Hash by builder</th></tr>\n{rows}</table>\n"
    )
}

/// One platform's line: its status, the results behind it, its claim.
pub(super) fn platform_row(platform: &str, cell: &Cell) -> String {
    let href = cell.results.first().map(|r| format!("/results/{}", r.id));
    let results: Vec<String> = cell
        .results
        .iter()
        .map(|r| {
            let status = outcome_status(r.outcome);
            format!(
                "{} {} {} by {}",
                id_link(
                    &format!("/results/{}", r.id),
                    &r.id.short(),
                    &r.id.to_string()
                ),
                symbol(status),
                json::outcome(r.outcome),
                id(&r.builder.short(), &r.builder.to_string())
            )
        })
        .collect();
    let claim = match cell.claimed_by {
        Some((builder, until)) => format!(
            "{} until {}",
            id(&builder.short(), &builder.to_string()),
            escape(&time_text(until))
        ),
        None => "—".to_owned(),
    };
    format!(
        "<tr><td><code>{}</code></td><td class=\"cell\">{}</td><td>{}</td><td>{claim}</td></tr>\n",
        escape(platform),
        status_box(cell.status, href.as_deref(), platform),
        if results.is_empty() {
            "—".to_owned()
        } else {
            results.join("<br>\n")
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_core::view::testing::{commits, row};
    use buildmesh_core::view::{ArtifactBuild, CellResult};
    use buildmesh_protocol::{BlobHash, EntryId, Outcome, PublicKey, Timestamp};

    const HOSTILE: &str = "<script>alert(1)</script>";

    #[test]
    fn shows_each_platform_with_results_and_claims() {
        let ids = commits(1);
        let platforms = vec!["linux".to_owned(), "mac".to_owned()];
        let mut r = row(&ids[0], &[CellStatus::Failed, CellStatus::Claimed]);
        r.cells[0].results = vec![
            CellResult {
                id: EntryId([1; 32]),
                builder: PublicKey([2; 32]),
                outcome: Outcome::Failed,
                at: Timestamp(0),
            },
            CellResult {
                id: EntryId([3; 32]),
                builder: PublicKey([4; 32]),
                outcome: Outcome::Passed,
                at: Timestamp(0),
            },
        ];
        r.cells[1].claimed_by = Some((PublicKey([6; 32]), Timestamp(0)));
        let project = ProjectId([5; 32]);
        let html = commit(
            Site::default(),
            "hello",
            &project,
            &r,
            &platforms,
            &[Vec::new(), Vec::new()],
        );
        assert!(!html.contains("<h2>Artifacts</h2>"));
        assert!(html.contains(&format!("<code>{}</code>", ids[0])));
        assert!(html.contains(&format!("href=\"/projects/{project}\">← hello</a>")));
        assert!(html.contains(&format!(
            "class=\"status failed\" href=\"/results/{}\"",
            EntryId([1; 32])
        )));
        assert!(html.contains(&format!("href=\"/results/{}\"", EntryId([3; 32]))));
        assert!(html.contains("✓ passed by"));
        assert!(html.contains(&PublicKey([4; 32]).short()));
        assert!(html.contains("… building</span>"));
        assert!(html.contains("until 1970-01-01 00:00:00 UTC"));
        assert!(html.contains("Ada &lt;ada@example.org&gt;"));
    }

    fn check(name: &str, agreement: Agreement) -> ArtifactCheck {
        let build = |n: u8| ArtifactBuild {
            builder: PublicKey([n; 32]),
            hash: BlobHash([n + 10; 32]),
            result: EntryId([n + 20; 32]),
        };
        ArtifactCheck {
            name: name.to_owned(),
            agreement,
            builds: vec![build(1), build(2)],
            missing: vec![PublicKey([9; 32])],
        }
    }

    /// Both builders' hashes are shown beside the verdict, so a reader
    /// sees who built what.
    #[test]
    fn artifacts_show_agreement_with_each_builders_hash() {
        let ids = commits(1);
        let platforms = vec!["linux".to_owned(), "mac".to_owned()];
        let r = row(&ids[0], &[CellStatus::Differs, CellStatus::Passed]);
        let html = commit(
            Site::default(),
            "hello",
            &ProjectId([5; 32]),
            &r,
            &platforms,
            &[
                vec![check("target/app", Agreement::Differs)],
                vec![check("target/app", Agreement::Reproducible)],
            ],
        );
        assert!(html.contains("<h2>Artifacts</h2>"), "{html}");
        assert!(html.contains("<span class=\"tag bad\">differs</span>"));
        assert!(html.contains("<span class=\"tag good\">reproducible</span>"));
        for n in [1u8, 2] {
            assert!(html.contains(&BlobHash([n + 10; 32]).short()));
            assert!(html.contains(&PublicKey([n; 32]).short()));
            assert!(html.contains(&format!("/results/{}", EntryId([n + 20; 32]))));
        }
        assert!(html.contains("≢ differs"));
        let none = format!("none by <code title=\"{}\">", PublicKey([9; 32]));
        assert!(html.contains(&none), "{html}");
        assert!(
            html.contains("≢ builders' artifacts differ, and the project requires them to agree.")
        );
    }

    #[test]
    fn hostile_strings_are_text() {
        let ids = commits(1);
        let platforms = vec![HOSTILE.to_owned()];
        let mut r = row(&ids[0], &[CellStatus::Pending]);
        r.title = HOSTILE;
        r.author = HOSTILE;
        r.branches = vec![HOSTILE];
        let html = commit(
            Site::default(),
            HOSTILE,
            &ProjectId([5; 32]),
            &r,
            &platforms,
            &[vec![check(HOSTILE, Agreement::Differs)]],
        );
        assert!(!html.contains(HOSTILE));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
