//! The index: every project this node knows, and how its newest commit
//! stands, readable at a glance: which commit, on which branch, how long
//! ago, and each platform's state in words.

use super::html::{escape, external_link, link, query_value, status_box, symbol, time_text};
use super::matrix::legend_items;
use super::{Site, layout};
use crate::json;
use buildmesh_core::view::{NewestCommit, Summary};
use buildmesh_protocol::Timestamp;

/// The index page: each project linking to its matrix at
/// `/projects/{id}`, then its newest commit (linking to the commit's
/// page, with its branch and age at `now`), that commit's state over all
/// platforms and on each one, and a legend of the states.
pub fn projects(site: Site<'_>, list: &[Summary], now: Timestamp) -> String {
    let body = if list.is_empty() {
        "<h1>Projects</h1>\n<p>This node knows no project yet. Declare one with \
         <code>buildmesh project declare</code>, or connect to a peer that knows some.</p>\n"
            .to_owned()
    } else {
        let rows: String = list.iter().map(|p| row(p, now)).collect();
        format!(
            "<h1>Projects</h1>\n<table class=\"projects\">\n<thead><tr><th>Project</th>\
             <th>Newest commit</th><th>Branch</th><th>Announced</th><th>State</th>\
             <th>Each platform</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n{}",
            legend()
        )
    };
    layout::page(site, "Projects", &body, None)
}

fn row(project: &Summary, now: Timestamp) -> String {
    let name = format!(
        "{}<br><span class=\"note\">{}</span>",
        link(&format!("/projects/{}", project.project), &project.name),
        external_link(&project.repository)
    );
    let Some(newest) = &project.newest else {
        let platforms: Vec<String> = project
            .platforms
            .iter()
            .map(|p| format!("<code>{}</code>", escape(p)))
            .collect();
        return format!(
            "<tr><td>{name}</td><td colspan=\"4\" class=\"note\">No commit announced yet</td>\
             <td>{}</td></tr>\n",
            platforms.join(" ")
        );
    };
    let commit_href = format!("/projects/{}/commits/{}", project.project, newest.commit);
    let commit = format!(
        "<a class=\"id\" href=\"{}\" title=\"{}\">{}</a> {}",
        escape(&commit_href),
        newest.commit,
        newest.commit.short(),
        escape(&newest.title)
    );
    let branches: Vec<String> = newest
        .branches
        .iter()
        .map(|b| {
            let href = format!("/projects/{}?branch={}", project.project, query_value(b));
            link(&href, b)
        })
        .collect();
    let state = newest.overall();
    format!(
        "<tr><td>{name}</td><td>{commit}</td><td>{}</td><td>{}</td><td class=\"cell\">{}</td>\
         <td class=\"chips\">{}</td></tr>\n",
        branches.join(" "),
        age(now, newest.announced_at),
        status_box(
            state,
            Some(&commit_href),
            &format!("newest commit: {}", json::status(state))
        ),
        chips(project, newest, &commit_href),
    )
}

/// One small box per platform: its symbol and label on its state's colour,
/// the state in words as its tooltip.
fn chips(project: &Summary, newest: &NewestCommit, commit_href: &str) -> String {
    let chips: Vec<String> = project
        .platforms
        .iter()
        .zip(&newest.statuses)
        .map(|(platform, status)| {
            let word = json::status(*status);
            format!(
                "<a class=\"status {word}\" href=\"{}\" title=\"{}: {word}\">{} {}</a>",
                escape(commit_href),
                escape(platform),
                symbol(*status),
                escape(platform)
            )
        })
        .collect();
    chips.join(" ")
}

/// How long ago `then` was at `now`, coarsely (`3 min ago`), the exact
/// time as its tooltip. A time ahead of `now` (another machine's clock)
/// is "just now".
fn age(now: Timestamp, then: Timestamp) -> String {
    let seconds = now.0.saturating_sub(then.0) / 1000;
    let text = match seconds {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{} min ago", seconds / 60),
        3_600..86_400 => format!("{} h ago", seconds / 3_600),
        _ => format!("{} d ago", seconds / 86_400),
    };
    let (date, clock) = then.utc();
    format!(
        "<time datetime=\"{date}T{clock}Z\" title=\"{}\">{text}</time>",
        time_text(then)
    )
}

fn legend() -> String {
    format!(
        "<p class=\"legend note\">State: the newest commit over all its platforms (the worst \
         that matters); each platform: its cell. {}</p>\n",
        legend_items()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_core::view::CellStatus;
    use buildmesh_protocol::{CommitId, ProjectId, PublicKey};

    const NOW: Timestamp = Timestamp(1_764_000_000_000);

    fn summary(statuses: &[CellStatus]) -> Summary {
        Summary {
            project: ProjectId([1; 32]),
            name: "hello".to_owned(),
            owner: PublicKey([2; 32]),
            repository: "https://example.org/hello.git".to_owned(),
            platforms: vec!["linux".to_owned(), "mac".to_owned(), "bsd".to_owned()]
                [..statuses.len()]
                .to_vec(),
            newest: CommitId::from_bytes(&[0xab; 20]).map(|commit| NewestCommit {
                commit,
                title: "Fix the parser".to_owned(),
                branches: vec!["main".to_owned()],
                announced_at: Timestamp(NOW.0 - 3 * 60 * 1000 - 5),
                statuses: statuses.to_vec(),
            }),
        }
    }

    #[test]
    fn the_newest_commit_is_named_with_branch_age_and_each_platform() {
        use CellStatus::{Claimed, Failed, Passed};
        let html = projects(Site::default(), &[summary(&[Passed, Failed, Claimed])], NOW);
        let project = ProjectId([1; 32]);
        let commit = "ab".repeat(20);
        let href = format!("/projects/{project}/commits/{commit}");
        assert!(html.contains(&format!(
            "<a class=\"id\" href=\"{href}\" title=\"{commit}\">ababababab</a> Fix the parser"
        )));
        assert!(html.contains(&format!(
            "<a href=\"/projects/{project}?branch=main\">main</a>"
        )));
        assert!(html.contains(">3 min ago</time>"));
        // Every column has a header; the state is in words, not only a sign.
        for header in [
            "Project",
            "Newest commit",
            "Branch",
            "Announced",
            "State",
            "Each platform",
        ] {
            assert!(html.contains(&format!("<th>{header}</th>")), "{header}");
        }
        assert!(html.contains(&format!(
            "<a class=\"status failed\" href=\"{href}\" title=\"newest commit: failed\">✗ failed</a>"
        )));
        assert!(html.contains("title=\"linux: passed\">✓ linux</a>"));
        assert!(html.contains("title=\"mac: failed\">✗ mac</a>"));
        assert!(html.contains("title=\"bsd: building\">… bsd</a>"));
        for word in ["passed", "failed", "error", "building", "pending"] {
            assert!(html.contains(&format!("class=\"status {word}\"")), "{word}");
        }
    }

    #[test]
    fn every_state_reads_in_words() {
        use CellStatus::{Error, Passed, Pending};
        let all_passed = projects(Site::default(), &[summary(&[Passed, Passed])], NOW);
        assert!(all_passed.contains("title=\"newest commit: passed\">✓ passed</a>"));
        let mixed = projects(Site::default(), &[summary(&[Passed, Error, Pending])], NOW);
        assert!(mixed.contains("title=\"newest commit: error\">! error</a>"));
        assert!(mixed.contains("title=\"bsd: pending\">· bsd</a>"));
    }

    #[test]
    fn hostile_strings_are_text() {
        let mut hostile = summary(&[CellStatus::Passed]);
        hostile.name = "<script>alert(1)</script>".to_owned();
        hostile.repository = "javascript:alert(1)".to_owned();
        hostile.platforms = vec!["<b>".to_owned()];
        if let Some(newest) = &mut hostile.newest {
            newest.title = "<i>".to_owned();
            newest.branches = vec!["a&b".to_owned()];
        }
        let html = projects(Site::default(), &[hostile], NOW);
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("href=\"javascript:"));
        assert!(html.contains("✓ &lt;b&gt;</a>") && !html.contains("<b>"));
        assert!(html.contains("&lt;i&gt;") && html.contains("?branch=a%26b\">a&amp;b</a>"));
    }

    #[test]
    fn a_project_without_commits_says_so() {
        let mut empty = summary(&[CellStatus::Passed]);
        empty.newest = None;
        let html = projects(Site::default(), &[empty], NOW);
        assert!(html.contains("No commit announced yet"));
        assert!(html.contains("<code>linux</code>"));
    }

    #[test]
    fn ages_are_coarse_and_never_negative() {
        let at = |ms: u64| age(NOW, Timestamp(NOW.0 - ms));
        assert!(at(59_999).contains(">just now<"));
        assert!(at(61_000).contains(">1 min ago<"));
        assert!(at(2 * 3_600_000 + 5).contains(">2 h ago<"));
        assert!(at(3 * 86_400_000).contains(">3 d ago<"));
        assert!(age(NOW, Timestamp(NOW.0 + 10_000)).contains(">just now<"));
        assert!(at(0).contains("title=\"2025-11-24 16:00:00 UTC\""));
    }

    #[test]
    fn an_empty_index_says_what_to_do() {
        let html = projects(Site::default(), &[], NOW);
        assert!(html.contains("buildmesh project declare"));
    }
}
