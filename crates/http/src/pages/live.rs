//! A build while it runs: its output, tailed live; and what its live page
//! says once there is nothing live to show.

use super::html::{escape, query_value};
use super::{Site, layout};
use buildmesh_protocol::{CommitId, ProjectId};

/// The live page of cell `commit` × `platform` of `project`. Without
/// JavaScript it says the build is running and links back to the matrix;
/// with it, it shows what `/api/v1/live/{project}/{commit}/{platform}`
/// sends: first what the build printed before the page was opened, then
/// each `output` as it comes, in a box that stays at its end. On `end`
/// it loads its own address again, which the node answers with the
/// result (a 303) once it has one.
pub fn live(site: Site<'_>, project: &ProjectId, commit: &CommitId, platform: &str) -> String {
    let commit_text = commit.to_string();
    // A path segment, percent-encoded, then a JS string literal that cannot
    // close the script element.
    let path = format!(
        "/api/v1/live/{project}/{commit_text}/{}",
        query_value(platform)
    );
    let stream = serde_json::to_string(&path)
        .unwrap_or_default()
        .replace('<', "\\u003c");
    let body = format!(
        "<h1>Building {short} on {platform}</h1>\n\
         <p id=\"state\">Output appears here as the steps print it, from the start of the build. \
         When the build ends, this page opens its result (also in the \
         <a href=\"/projects/{project}\">matrix</a>).</p>\n\
         <div class=\"log-box\"><pre id=\"log\" class=\"log\"></pre></div>\n\
         <noscript><p class=\"note\">Without JavaScript the output does not show here; reload \
         the page to see whether the build ended.</p></noscript>\n\
         <script>\n\
         const log = document.getElementById('log');\n\
         let step = null;\n\
         const source = new EventSource({stream});\n\
         source.addEventListener('cut', (e) => {{\n\
           const cut = JSON.parse(e.data);\n\
           log.append('… earlier output cut (' + cut.bytes + ' bytes) …\\n');\n\
         }});\n\
         source.addEventListener('output', (e) => {{\n\
           const chunk = JSON.parse(e.data);\n\
           if (chunk.step !== step) {{ step = chunk.step; log.append('\\n== ' + step + ' ==\\n'); }}\n\
           log.append(chunk.text);\n\
         }});\n\
         source.addEventListener('skipped', () => log.append('\\n[some output skipped]\\n'));\n\
         source.addEventListener('end', () => {{\n\
           source.close();\n\
           document.getElementById('state').textContent = 'The build ended: opening its result…';\n\
           location.replace(location.href);\n\
         }});\n\
         </script>\n",
        short = commit.short(),
        platform = escape(platform),
    );
    layout::page(site, "Building", &body, None)
}

/// Why a live page has nothing live to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveGone {
    /// The build ended here a moment ago; its result is being written.
    Recording,
    /// No build of the cell runs here, and this node knows no result of it.
    NotHere,
}

/// The live page of a cell with nothing live to show: what happened, and
/// that the page looks again (the server sends a `Refresh` header).
pub fn live_gone(
    site: Site<'_>,
    project: &ProjectId,
    commit: &CommitId,
    platform: &str,
    gone: LiveGone,
) -> String {
    let (title, what) = match gone {
        LiveGone::Recording => (
            "Build ended",
            "The build ended. Its result is being written; this page opens it in a moment.",
        ),
        LiveGone::NotHere => (
            "Not building here",
            "No build of this cell runs on this node now, and this node knows no result of it \
             yet (another node may be building it; its own dashboard shows the output). This \
             page looks again every few seconds.",
        ),
    };
    let body = format!(
        "<h1>{title}: {short} on {platform}</h1>\n<p>{what}</p>\n\
         <p><a href=\"/projects/{project}\">The project's matrix</a></p>\n",
        short = commit.short(),
        platform = escape(platform),
    );
    layout::page(site, title, &body, None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cell() -> (ProjectId, CommitId) {
        (
            ProjectId([5; 32]),
            CommitId::from_bytes(&[0xcd; 20]).unwrap(),
        )
    }

    #[test]
    fn the_live_page_replays_then_follows_then_moves_on() {
        let (project, commit) = cell();
        let html = live(Site::default(), &project, &commit, "linux</script>");
        assert!(!html.contains("linux</script>"), "{html}");
        assert!(html.contains(&format!(
            "new EventSource(\"/api/v1/live/{project}/{commit}/linux%3C%2Fscript%3E\")"
        )));
        assert!(html.contains("addEventListener('cut'"));
        assert!(html.contains("addEventListener('end'"));
        assert!(html.contains("location.replace(location.href)"));
        assert!(html.contains("<div class=\"log-box\"><pre id=\"log\""));
    }

    #[test]
    fn a_page_with_nothing_live_says_why() {
        let (project, commit) = cell();
        let html = live_gone(
            Site::default(),
            &project,
            &commit,
            "<b>",
            LiveGone::Recording,
        );
        assert!(html.contains("The build ended."));
        assert!(html.contains("&lt;b&gt;") && !html.contains("<b>"));
        assert!(!html.contains("Building"));
        let html = live_gone(
            Site::default(),
            &project,
            &commit,
            "linux",
            LiveGone::NotHere,
        );
        assert!(html.contains("No build of this cell runs on this node"));
        assert!(html.contains(&format!("href=\"/projects/{project}\"")));
    }
}
