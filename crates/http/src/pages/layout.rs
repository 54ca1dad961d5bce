//! The frame every page shares: head, stylesheet, navigation, footer.

use super::Site;
use super::html::{escape, key_text};

/// The whole stylesheet: small enough to inline in every page.
const STYLE: &str = "\
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#fafafa}
nav{background:#24292f;padding:.5em 1em}
nav a{color:#fff;margin-right:1.2em;text-decoration:none}
nav a.brand{font-weight:bold}
main{padding:1em;overflow-x:auto}
footer{color:#666;padding:.8em 1em;border-top:1px solid #ddd;font-size:12px}
h1{font-size:1.4em;margin:.2em 0}
h2{font-size:1.15em;margin:1.2em 0 .4em}
code,pre,.id{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.cell{padding:2px}
.status{display:block;padding:2px 6px;border-radius:3px;color:#fff;text-decoration:none;text-align:center;white-space:nowrap;min-width:5.5em}
span.status,.legend .status{display:inline-block}
.chips .status{display:inline-block;min-width:0;margin:1px 0}
.passed{background:#2e7d32}
.failed{background:#c62828}
.error{background:#d9480f}
.building{background:#f0ad00;color:#222}
.pending{background:#c8c8c8;color:#222}
.disagree{background:#6a1b9a}
.flaky{background:repeating-linear-gradient(135deg,#6a1b9a 0 6px,#8e4aa8 6px 12px)}
.skipped{background:#eee;color:#555}
.differs{background:#4a148c}
.tag{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;background:#eee;margin:0 2px}
.tag.good{background:#d4edda}
.tag.bad{background:#f8d7da}
.tag.first{background:#c62828;color:#fff}
.note{color:#555}
.broken{border-left:4px solid #c62828;background:#fff;padding:.2em 1em;margin:1em 0}
.problem{border-left:4px solid #d9480f;background:#fff;padding:.2em 1em;margin:1em 0;white-space:pre-wrap}
tr.first-failing td{border-top:2px solid #c62828}
pre{background:#1e1e1e;color:#eee;padding:.6em;overflow:auto;max-height:40em;white-space:pre-wrap;word-break:break-all}
details{margin:.3em 0}
.log-box{display:flex;flex-direction:column-reverse;overflow:auto;max-height:40em;background:#1e1e1e;margin:.5em 0}
#failure{max-height:16em}
.log-box pre{max-height:none;overflow:visible;margin:0}
mark.fail{background:#8b1e1e;color:#fff}
summary{cursor:pointer}
form input[type=text]{font-family:ui-monospace,monospace}
fieldset{border:1px solid #ddd}
.charts{display:flex;flex-wrap:wrap;gap:.8em}
figure.chart{margin:0;background:#fff;border:1px solid #ddd;padding:.4em .6em}
figcaption .platform{font-weight:bold;margin-right:.6em}
figcaption .last{font-size:1.6em;font-weight:bold;margin-right:.4em}
svg.chart{display:block}
svg.chart .axis{stroke:#999}
svg.chart .tick{font-size:11px;fill:#555}
svg.chart .line{fill:none;stroke:#1f6feb;stroke-width:1.5}
svg.chart circle{fill:#1f6feb}
svg.chart circle.crossing{fill:#c62828}
.crossing-note{color:#c62828;margin-left:.6em}
";

/// A complete document: `title` is text (escaped here), `body` and
/// `script` are HTML this module's callers built.
pub(crate) fn page(site: Site<'_>, title: &str, body: &str, script: Option<&str>) -> String {
    page_with(site, title, script, body.len(), |out| out.push_str(body))
}

/// [`page`], whose body `write` appends in place (`body_bytes`, about):
/// a page of megabytes is then written once, never copied into its frame.
pub(crate) fn page_with(
    site: Site<'_>,
    title: &str,
    script: Option<&str>,
    body_bytes: usize,
    write: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(STYLE.len() + body_bytes + 1024);
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
    );
    out.push_str(&escape(title));
    out.push_str(" · buildmesh</title>\n<style>\n");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    out.push_str(nav());
    out.push_str("<main>\n");
    write(&mut out);
    out.push_str("</main>\n");
    out.push_str(&footer(site));
    if let Some(js) = script {
        out.push_str("<script>\n");
        out.push_str(js);
        out.push_str("\n</script>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn nav() -> &'static str {
    "<nav><a class=\"brand\" href=\"/\">buildmesh</a>\
     <a href=\"/\">Projects</a><a href=\"/mesh\">Mesh</a><a href=\"/audit\">Audit</a></nav>\n"
}

fn footer(site: Site<'_>) -> String {
    format!(
        "<footer>buildmesh · served by node <a href=\"/mesh\">{}</a></footer>\n",
        key_text(site.node_key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_has_head_nav_and_footer() {
        let key = "3e25".repeat(16);
        let html = page(
            Site { node_key: &key },
            "<b>",
            "<p>hi</p>",
            Some("let x = 1;"),
        );
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<title>&lt;b&gt; · buildmesh</title>"));
        assert!(html.contains("<a href=\"/mesh\">Mesh</a>"));
        assert!(html.contains("<a href=\"/audit\">Audit</a>"));
        assert!(html.contains(&format!("title=\"{key}\">3e253e253e25</code>")));
        assert!(html.contains("<script>\nlet x = 1;\n</script>"));
        assert!(html.ends_with("</html>\n"));
    }
}
