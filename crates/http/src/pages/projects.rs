//! The index: every project this node knows.

use super::html::{escape, external_link, link};
use super::{Site, layout};
use buildmesh_protocol::ProjectId;

/// One project on the index page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    /// The project.
    pub id: ProjectId,
    /// Its name.
    pub name: String,
    /// Its repository URL.
    pub repository: String,
    /// The platforms it wants.
    pub platforms: Vec<String>,
    /// Cells passed in its matrix.
    pub passed: usize,
    /// Cells failed.
    pub failed: usize,
    /// Cells being built.
    pub building: usize,
}

/// The index page: each project linking to its matrix at
/// `/projects/{id}`, with repository, platforms and cell counts.
pub fn projects(site: Site<'_>, list: &[ProjectSummary]) -> String {
    let body = if list.is_empty() {
        "<h1>Projects</h1>\n<p>This node knows no project yet. Declare one with \
         <code>buildmesh project declare</code>, or connect to a peer that knows some.</p>\n"
            .to_owned()
    } else {
        let rows: String = list.iter().map(row).collect();
        format!(
            "<h1>Projects</h1>\n<table>\n<tr><th>Project</th><th>Repository</th><th>Platforms</th>\
             <th>✓ passed</th><th>✗ failed</th><th>… building</th></tr>\n{rows}</table>\n"
        )
    };
    layout::page(site, "Projects", &body, None)
}

fn row(project: &ProjectSummary) -> String {
    let platforms: Vec<String> = project
        .platforms
        .iter()
        .map(|p| format!("<code>{}</code>", escape(p)))
        .collect();
    let failed = if project.failed > 0 {
        format!("<span class=\"tag bad\">{}</span>", project.failed)
    } else {
        "0".to_owned()
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{failed}</td><td>{}</td></tr>\n",
        link(&format!("/projects/{}", project.id), &project.name),
        external_link(&project.repository),
        platforms.join(" "),
        project.passed,
        project.building,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_projects_with_links() {
        let list = vec![ProjectSummary {
            id: ProjectId([1; 32]),
            name: "<script>alert(1)</script>".to_owned(),
            repository: "javascript:alert(1)".to_owned(),
            platforms: vec!["linux".to_owned(), "<b>".to_owned()],
            passed: 3,
            failed: 1,
            building: 2,
        }];
        let html = projects(Site::default(), &list);
        assert!(html.contains(&format!("<a href=\"/projects/{}\">", ProjectId([1; 32]))));
        assert!(!html.contains("<script>alert(1)</script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("href=\"javascript:"));
        assert!(html.contains("<code>&lt;b&gt;</code>"));
        assert!(html.contains("<td>3</td><td><span class=\"tag bad\">1</span></td><td>2</td>"));
    }

    #[test]
    fn an_empty_index_says_what_to_do() {
        let html = projects(Site::default(), &[]);
        assert!(html.contains("buildmesh project declare"));
    }
}
