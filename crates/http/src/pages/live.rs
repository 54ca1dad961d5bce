//! A build while it runs: its output, tailed live.

use super::html::{escape, query_value};
use super::{Site, layout};
use buildmesh_protocol::{CommitId, ProjectId};

/// The live page of cell `commit` × `platform` of `project`. Without
/// JavaScript it says the build is running and links back to the matrix;
/// with it, it appends each `output` event of
/// `/api/v1/live/{project}/{commit}/{platform}` and reloads the matrix
/// page's way (on a `cell` event for the project) to show the result.
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
         <p>Output appears here as the steps print it. When the build ends, its \
         result shows in the <a href=\"/projects/{project}\">matrix</a>.</p>\n\
         <pre id=\"log\" class=\"log\"></pre>\n\
         <script>\n\
         const log = document.getElementById('log');\n\
         let step = null;\n\
         const source = new EventSource({stream});\n\
         source.addEventListener('output', (e) => {{\n\
           const chunk = JSON.parse(e.data);\n\
           if (chunk.step !== step) {{ step = chunk.step; log.append('\\n== ' + step + ' ==\\n'); }}\n\
           log.append(chunk.text);\n\
         }});\n\
         source.addEventListener('skipped', () => log.append('\\n[some output skipped]\\n'));\n\
         </script>\n",
        short = commit.short(),
        platform = escape(platform),
    );
    layout::page(site, "Building", &body, None)
}
