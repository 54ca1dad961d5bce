//! Pull requests: the list under a project's matrix, and a page per pull
//! request with its heads, newest first, each with its cells.

use super::commit::platform_row;
use super::html::{escape, id, link, status_box, time};
use super::{Site, layout};
use crate::json;
use buildmesh_core::view::{Pull, PullHead, Pulls};
use buildmesh_protocol::ProjectId;

/// The recent open pull requests of a project (number, title, author,
/// base, the latest head's state), each linking to its page; a line saying
/// whether the project builds pull requests, and how many recent closed
/// ones are left out (they are no longer built; the JSON lists them).
pub fn pulls_section(pulls: &Pulls<'_>) -> String {
    let project = pulls.project;
    let state = if pulls.enabled {
        "This project builds pull requests: a node that watches its repository \
         announces a pull request's head when the forge's webhook reports it."
    } else {
        "This project does not build pull requests (its maintainer turns them on with \
         <code>buildmesh project declare … --pull-requests</code>)."
    };
    let closed = pulls.pulls.iter().filter(|p| !p.open).count();
    let state = match closed {
        0 => state.to_owned(),
        1 => format!("{state} 1 recently closed pull request is not listed."),
        n => format!("{state} {n} recently closed pull requests are not listed."),
    };
    if closed == pulls.pulls.len() {
        return format!("<h2>Pull requests</h2>\n<p class=\"note\">{state}</p>\n");
    }
    let rows: String = pulls
        .pulls
        .iter()
        .filter(|p| p.open)
        .map(|p| {
            let href = pull_href(&project, p.number);
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>\
                 <td class=\"cell\">{}</td><td>{}</td></tr>\n",
                link(&href, &format!("#{}", p.number)),
                escape(p.title),
                escape(p.author),
                escape(p.base),
                status_box(p.status, Some(&href), json::status(p.status)),
                id(&p.head.short(), &p.head.to_string()),
            )
        })
        .collect();
    format!(
        "<h2>Pull requests</h2>\n<p class=\"note\">{state}</p>\n<table>\n\
         <thead><tr><th>Pull request</th><th>Title</th><th>Author</th><th>Base</th>\
         <th>Latest head</th><th>Head</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
}

/// The page of one pull request: its base and author, then each head,
/// newest first, with one line per platform (status, results linking to
/// `/results/{id}`, claim) as the commit page shows them.
pub fn pull(site: Site<'_>, pull: &Pull<'_>) -> String {
    let project = pull.project;
    let heads: String = pull
        .heads
        .iter()
        .enumerate()
        .map(|(n, head)| head_section(pull, head, n == 0))
        .collect();
    let state = if pull.open {
        "open"
    } else {
        "closed (its heads are no longer built)"
    };
    let body = format!(
        "<p>{}</p>\n<h1>Pull request #{}</h1>\n<table>\n\
         <tr><th>Into</th><td><code>{}</code></td></tr>\n<tr><th>Opened by</th><td>{}</td></tr>\n\
         <tr><th>State</th><td>{state}</td></tr>\n\
         </table>\n<p class=\"note\">Its heads, newest first. Only the newest is built; a \
         pull request's head is never on a branch's row of the matrix.</p>\n{heads}",
        link(&format!("/projects/{project}"), &format!("← {}", pull.name)),
        pull.number,
        escape(pull.base),
        escape(pull.author),
    );
    let title = format!("{} #{}", pull.name, pull.number);
    layout::page(site, &title, &body, None)
}

fn head_section(pull: &Pull<'_>, head: &PullHead<'_>, latest: bool) -> String {
    let cells: String = pull
        .platforms
        .iter()
        .zip(&head.cells)
        .map(|(platform, cell)| platform_row(platform, cell))
        .collect();
    format!(
        "<h2>{}Head {}</h2>\n<p>{} · announced {}</p>\n<table>\n\
         <tr><th>Platform</th><th>Status</th><th>Results</th><th>Claim</th></tr>\n{cells}</table>\n",
        if latest { "Latest: " } else { "" },
        id(&head.commit.short(), &head.commit.to_string()),
        escape(head.title),
        time(head.announced_at),
    )
}

fn pull_href(project: &ProjectId, number: u64) -> String {
    format!("/projects/{project}/pulls/{number}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use buildmesh_core::view::testing::{cell, commits};
    use buildmesh_core::view::{CellStatus, PullSummary};
    use buildmesh_protocol::Timestamp;

    const HOSTILE: &str = "<script>alert(1)</script>";

    #[test]
    fn the_list_links_each_pull_request_and_escapes_what_anyone_wrote() {
        let ids = commits(1);
        let platforms = vec!["linux".to_owned()];
        let pulls = Pulls {
            project: ProjectId([7; 32]),
            name: "demo",
            platforms: &platforms,
            enabled: true,
            pulls: vec![PullSummary {
                number: 7,
                base: HOSTILE,
                author: HOSTILE,
                title: HOSTILE,
                head: &ids[0],
                open: true,
                updated_at: Timestamp(0),
                cells: vec![cell(CellStatus::Failed)],
                status: CellStatus::Failed,
            }],
        };
        let html = pulls_section(&pulls);
        assert!(html.contains(&format!("href=\"/projects/{}/pulls/7\"", pulls.project)));
        assert!(html.contains("#7"));
        assert!(!html.contains(HOSTILE));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("failed"));
    }

    #[test]
    fn closed_pull_requests_are_counted_not_listed() {
        let ids = commits(2);
        let platforms = vec!["linux".to_owned()];
        let summary = |n: usize, open| PullSummary {
            number: 7 + n as u64,
            base: "main",
            author: "octocat",
            title: "a pull request",
            head: &ids[n],
            open,
            updated_at: Timestamp(0),
            cells: vec![cell(CellStatus::Pending)],
            status: CellStatus::Pending,
        };
        let mut pulls = Pulls {
            project: ProjectId([7; 32]),
            name: "demo",
            platforms: &platforms,
            enabled: true,
            pulls: vec![summary(0, true), summary(1, false)],
        };
        let html = pulls_section(&pulls);
        assert!(html.contains("/pulls/7\""));
        assert!(!html.contains("/pulls/8\""), "{html}");
        assert!(html.contains("1 recently closed pull request is not listed"));
        pulls.pulls.remove(0);
        let html = pulls_section(&pulls);
        assert!(!html.contains("<table>"), "{html}");
        assert!(html.contains("1 recently closed"));
    }

    #[test]
    fn the_page_shows_every_head_newest_first() {
        let ids = commits(2);
        let platforms = vec!["linux".to_owned()];
        let head = |n: usize, status| PullHead {
            commit: &ids[n],
            title: "a head",
            announced_at: Timestamp(n as u64),
            cells: vec![cell(status)],
            status,
        };
        let page = pull(
            Site::default(),
            &Pull {
                project: ProjectId([7; 32]),
                name: "demo",
                platforms: &platforms,
                enabled: true,
                number: 7,
                base: "main",
                author: "octocat",
                open: false,
                heads: vec![head(1, CellStatus::Passed), head(0, CellStatus::Failed)],
            },
        );
        let newer = page.find(&ids[1].short()).unwrap_or(usize::MAX);
        let older = page.find(&ids[0].short()).unwrap_or(0);
        assert!(newer < older, "newest first");
        assert!(page.contains("Pull request #7"));
        assert!(page.contains("octocat"));
        assert!(page.contains("closed"));
    }
}
