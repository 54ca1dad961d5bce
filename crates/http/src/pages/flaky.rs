//! The flaky tests page: which tests' verdicts did not follow the code,
//! since when, how often, and how to settle one.

use super::html::{escape, time_text};
use super::{Site, layout};
use buildmesh_core::view::{Evidence, FlakyTest};
use buildmesh_protocol::ProjectId;

/// The page.
pub fn flaky(
    site: Site<'_>,
    project: &ProjectId,
    name: &str,
    branch: &str,
    rows: usize,
    tests: &[FlakyTest<'_>],
) -> String {
    let mut body = format!(
        "<h1>Flaky tests of <a href=\"/projects/{project}\">{}</a></h1>\n\
         <p class=\"note\">Tests whose verdict did not follow the code on the newest {rows} \
         commits of {}: <b>same commit</b> means one build failed it and another build of the \
         same commit and platform did not; <b>flipped</b> means it failed on one commit and \
         not on the commits just before and after it. Settle a flipped one with \
         <code>buildmesh force --project {} --commit ID --flaky-check</code>, which builds that \
         commit again. As JSON: <a href=\"/api/v1/projects/{project}/flaky\">/api/v1/projects/{project}/flaky</a>.</p>\n",
        escape(name),
        escape(branch),
        escape(name),
    );
    if tests.is_empty() {
        body.push_str(
            "<p>No flaky test found. Tests are seen when builds report them: a recipe's \
             <code>[reports] junit</code>, or the summary lines of cargo test, cargo-nextest, \
             pytest and go test (docs/recipe.md).</p>\n",
        );
        return layout::page(site, &format!("{name}: flaky tests"), &body, None);
    }
    body.push_str(
        "<table class=\"flaky\">\n<tr><th>test</th><th>seen</th><th>flaky on</th>\
         <th>how often</th><th>since</th><th>last</th></tr>\n",
    );
    for test in tests {
        body.push_str(&row(project, test));
    }
    body.push_str("</table>\n");
    layout::page(site, &format!("{name}: flaky tests"), &body, None)
}

fn row(project: &ProjectId, test: &FlakyTest<'_>) -> String {
    let commit = |(id, at): (&buildmesh_protocol::CommitId, buildmesh_protocol::Timestamp)| {
        format!(
            "<a class=\"id\" href=\"/projects/{project}/commits/{id}\">{}</a> {}",
            id.short(),
            time_text(at)
        )
    };
    let seen = match test.evidence {
        Evidence::SameCommit => "same commit",
        Evidence::Flipped => "flipped",
    };
    let platforms: Vec<String> = test.platforms.iter().map(|p| escape(p)).collect();
    format!(
        "<tr><td><code>{}</code></td><td>{seen}</td><td>{}</td>\
         <td>{} of {} failing commits</td><td>{}</td><td>{}</td></tr>\n",
        escape(test.name),
        platforms.join(", "),
        test.flaky_commits,
        test.failed_commits,
        commit(test.since),
        commit(test.last),
    )
}
