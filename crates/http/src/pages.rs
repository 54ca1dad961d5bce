//! The web dashboard: server-rendered HTML pages, one pure function each.
//!
//! A page function takes what the page shows and returns a complete HTML5
//! document (UTF-8, a small inline stylesheet, readable without
//! JavaScript). Nothing here does IO or routing; the pages only link to
//! the paths the server is meant to serve them at:
//!
//! | page | path | links to |
//! |------|------|----------|
//! | [`projects`] | `/` | `/projects/{project}`, commits |
//! | [`matrix`] | `/projects/{project}` (`?branch=`) | commits, results, `/projects/{project}/force`, `/projects/{project}/metrics` |
//! | [`trends`] | `/projects/{project}/metrics` (`?branch=&platform=&metric=&rows=`) | `/results/{entry}`, the matrix, the JSON |
//! | [`commit`] | `/projects/{project}/commits/{commit}` | `/results/{entry}` |
//! | [`pull`] | `/projects/{project}/pulls/{number}` | commits, `/results/{entry}` |
//! | [`result`] | `/results/{entry}` | `/api/v1/blobs/{hash}`, `/api/v1/entries/{entry}` |
//! | [`live`], [`live_gone`] | `/live/{project}/{commit}/{platform}` | `/projects/{project}` |
//! | [`mesh`] | `/mesh` | |
//! | [`audit`] | `/audit` | `/results/{entry}`, projects, commits, `/api/v1/entries/{entry}` |
//!
//! Every string that came from the log (titles, authors, branch names,
//! step names, logs, platform labels, repository URLs) is untrusted: it
//! goes through [`escape`], and a URL becomes a link only if it starts
//! with `http://` or `https://`. Every page carries the same navigation
//! and a footer naming the node that served it ([`Site`]).

mod audit;
mod commit;
mod flaky;
mod force;
mod html;
mod layout;
mod live;
mod log;
mod matrix;
mod mesh;
mod projects;
mod pulls;
mod result;
mod test_report;
mod trends;

pub use audit::{AuditResult, audit, verify_command};
pub use commit::commit;
pub use flaky::flaky;
pub use force::force_form;
pub use html::escape;
pub(crate) use html::{push_hex, query_value};
pub use live::{LiveGone, live, live_gone};
pub use log::{FAILURE_MARKS, looks_like_failure};
pub use matrix::{FlakyCells, badge_url, matrix, matrix_with_pulls};
pub use mesh::mesh;
pub use projects::projects;
pub use pulls::{pull, pulls_section};
pub use result::{ResultView, result};
pub use test_report::{DETAILS_BYTES_MAX, FailingTest, parse_details};
pub(crate) use trends::is_builtin as is_metric_builtin;
pub use trends::{Chart, ChartPoint, TrendsView, chart_svg, trends};

/// What every page shows around its content: the node serving it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Site<'a> {
    /// The serving node's public key, hex (as [`crate::NodeStatus`] has it).
    pub node_key: &'a str,
}

/// A 404 page: `what` was not found (such as "no project with this id in
/// this node's log").
pub fn not_found(site: Site<'_>, what: &str) -> String {
    let body = format!(
        "<h1>Not found</h1>\n<p>{}</p>\n<p><a href=\"/\">All projects</a></p>\n",
        escape(what)
    );
    layout::page(site, "Not found", &body, None)
}

/// An error page: `message` says what went wrong and, ideally, what to do.
pub fn error(site: Site<'_>, message: &str) -> String {
    let body = format!(
        "<h1>Something went wrong</h1>\n<p>{}</p>\n<p><a href=\"/\">All projects</a></p>\n",
        escape(message)
    );
    layout::page(site, "Error", &body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>";

    #[test]
    fn not_found_escapes_what() {
        let html = not_found(Site { node_key: "ab" }, HOSTILE);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains(HOSTILE));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<title>Not found"));
    }

    #[test]
    fn error_escapes_message() {
        let html = error(Site::default(), HOSTILE);
        assert!(!html.contains(HOSTILE));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
