//! The force-build form on the matrix page, or, for a viewer without
//! operator access, a note saying how to get it.

use super::html::escape;
use buildmesh_protocol::ProjectId;

/// A form (an HTML fragment, not a page) that posts a force build of
/// `project` to `/projects/{project}/force`, URL-encoded, with fields:
///
/// - `branch`: build this branch's head (prefilled with `branch`), or
/// - `commit`: build this commit (full hex id); one of the two is needed;
/// - `platform`: once per ticked platform of `platforms` (none: all the
///   project wants; decode repeated keys, e.g. as `Form<Vec<(String,
///   String)>>`);
/// - `reason`: free text for the record;
/// - `csrf`: hidden, `csrf` as given: the server takes the form only with
///   it and the operator's session cookie, so a page of another origin
///   cannot post it (it cannot read this page to learn the value).
///
/// The node signs the force build with the project maintainer's key, so
/// it must hold that key; the form says the server refuses otherwise.
pub fn force_form(
    project: &ProjectId,
    platforms: &[String],
    branch: Option<&str>,
    csrf: &str,
) -> String {
    let boxes: String = platforms
        .iter()
        .map(|p| {
            let p = escape(p);
            format!(
                "<label><input type=\"checkbox\" name=\"platform\" value=\"{p}\"> {p}</label>\n"
            )
        })
        .collect();
    format!(
        "<details class=\"force\">\n<summary>Force a build</summary>\n\
         <form method=\"post\" action=\"/projects/{project}/force\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <p><label>Head of branch <input type=\"text\" name=\"branch\" value=\"{}\" placeholder=\"main\"></label>\n\
         or <label>commit <input type=\"text\" name=\"commit\" size=\"42\" \
         pattern=\"[0-9a-fA-F]{{40}}|[0-9a-fA-F]{{64}}\" placeholder=\"full commit id\"></label></p>\n\
         <fieldset><legend>Platforms (none ticked: every platform)</legend>\n{boxes}</fieldset>\n\
         <p><label>Reason <input type=\"text\" name=\"reason\" size=\"40\" placeholder=\"flaky network\"></label></p>\n\
         <p><button type=\"submit\">Force build</button></p>\n\
         <p class=\"note\">The node signs the request with the project maintainer's key, so only \
         a node that holds that key can force a build; any other node refuses.</p>\n\
         </form>\n</details>\n",
        escape(csrf),
        escape(branch.unwrap_or_default()),
    )
}

/// What the matrix page shows instead of the form to a viewer without
/// operator access.
pub fn operator_note() -> &'static str {
    "<p class=\"note\">To force a build, open the operator link this node printed \
     when it started (<code>http://127.0.0.1:PORT/operator?token=…</code>; the token \
     is in <code>DATA_DIR/operator.token</code>) in this browser.</p>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_posts_to_the_project() {
        let project = ProjectId([1; 32]);
        let platforms = vec![
            "linux".to_owned(),
            "\"><script>alert(1)</script>".to_owned(),
        ];
        let html = force_form(&project, &platforms, Some("ma\"in"), "c5rf\"");
        assert!(html.contains(&format!(
            "<form method=\"post\" action=\"/projects/{project}/force\">"
        )));
        assert!(html.contains("name=\"branch\" value=\"ma&quot;in\""));
        assert!(html.contains("name=\"commit\""));
        assert!(html.contains("name=\"platform\" value=\"linux\""));
        assert!(html.contains("name=\"reason\""));
        assert!(html.contains("<input type=\"hidden\" name=\"csrf\" value=\"c5rf&quot;\">"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("maintainer's key"));
        assert!(html.contains("[0-9a-fA-F]{40}|[0-9a-fA-F]{64}"));
    }
}
