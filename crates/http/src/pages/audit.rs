//! Audit: fork proofs and every result with the key that signed it.

use super::html::{escape, id, id_link, link, outcome_status, status_box};
use super::{Site, layout};
use crate::json;
use buildmesh_core::log::{ForkKind, ForkProof};
use buildmesh_protocol::{CommitId, EntryId, Outcome, ProjectId, PublicKey};

/// One build result as the audit page lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditResult<'a> {
    /// The result entry.
    pub id: EntryId,
    /// Its project.
    pub project: ProjectId,
    /// The project's name.
    pub project_name: &'a str,
    /// The commit built.
    pub commit: &'a CommitId,
    /// The platform built on.
    pub platform: &'a str,
    /// What the build said.
    pub outcome: Outcome,
    /// Who signed it.
    pub builder: PublicKey,
    /// Whether its project trusts that builder.
    pub trusted: bool,
}

/// The audit page: how to check this node's whole log oneself (the
/// command, with this node's URL `base_url` in it, such as
/// `http://127.0.0.1:7878`), the authors proven to have forked their
/// chain (none of their entries count), with links to the two entries
/// that prove it, and the results in the order given (each with its
/// project, commit, platform, outcome, builder and trust, linking to its
/// page and its signed entry).
pub fn audit(
    site: Site<'_>,
    forks: &[(PublicKey, ForkProof)],
    results: &[AuditResult<'_>],
    base_url: &str,
) -> String {
    let body = format!(
        "<h1>Audit</h1>\n<p>Every entry is signed by its author. To check every signature, \
         id and chain of this node's log yourself, run:</p>\n<pre class=\"snippet\"><code>{}</code></pre>\n\
         <p class=\"note\">It reads the log as <code>GET /api/v1/entries</code> streams it; a stopped \
         node's own store checks with <code>buildmesh log verify --data-dir DIR</code>.</p>\n\
         <p>To check those entries and, as well, that the matrix this node shows is the one they give \
         (every cell, every result), from any machine:</p>\n<pre class=\"snippet\"><code>{}</code></pre>\n{}{}",
        escape(&verify_command(base_url)),
        escape(&check_command(base_url)),
        forks_table(forks),
        results_table(results)
    );
    layout::page(site, "Audit", &body, None)
}

/// The command that fetches this node's log and verifies it, ready to
/// paste into a POSIX shell (the URL single-quoted).
pub fn verify_command(base_url: &str) -> String {
    let url = format!("{base_url}/api/v1/entries").replace('\'', "'\\''");
    format!("curl -sS '{url}' | buildmesh log verify")
}

/// The command that checks this node from outside, its matrix included
/// (`buildmesh verify`, docs/operating.md), ready to paste.
pub fn check_command(base_url: &str) -> String {
    let url = base_url.replace('\'', "'\\''");
    format!("buildmesh verify --node '{url}'")
}

fn entry_link(entry: &EntryId) -> String {
    id_link(
        &format!("/api/v1/entries/{entry}"),
        &entry.short(),
        &entry.to_string(),
    )
}

fn forks_table(forks: &[(PublicKey, ForkProof)]) -> String {
    if forks.is_empty() {
        return "<h2>Forks</h2>\n<p>No author has signed two histories.</p>\n".to_owned();
    }
    let rows: String = forks
        .iter()
        .map(|(author, proof)| {
            let what = match proof.kind {
                ForkKind::Equivocation => format!("two entries at seq {}", proof.seq),
                ForkKind::BrokenLink => {
                    format!("entry {} does not follow the one before it", proof.seq)
                }
            };
            format!(
                "<tr><td>{}</td><td>{what}</td><td>{} {}</td></tr>\n",
                id(&author.short(), &author.to_string()),
                entry_link(&proof.first),
                entry_link(&proof.second),
            )
        })
        .collect();
    format!(
        "<h2>Forks ({})</h2>\n<p>None of these authors' entries count.</p>\n<table>\n\
         <tr><th>Author</th><th>Proof</th><th>Entries</th></tr>\n{rows}</table>\n",
        forks.len()
    )
}

fn results_table(results: &[AuditResult<'_>]) -> String {
    if results.is_empty() {
        return "<h2>Results</h2>\n<p>No results yet.</p>\n".to_owned();
    }
    let rows: String = results.iter().map(result_row).collect();
    format!(
        "<h2>Results ({})</h2>\n<p class=\"note\">Newest first.</p>\n<table>\n<tr><th>Result</th>\
         <th>Project</th><th>Commit</th><th>Platform</th><th>Outcome</th><th>Builder</th>\
         <th>Trust</th><th>Entry</th></tr>\n{rows}</table>\n",
        results.len()
    )
}

fn result_row(result: &AuditResult<'_>) -> String {
    let AuditResult {
        id: entry,
        project,
        commit,
        ..
    } = result;
    let trust = if result.trusted {
        "<span class=\"tag good\">✓ trusted</span>"
    } else {
        "<span class=\"tag bad\">not trusted</span>"
    };
    let page = format!("/results/{entry}");
    let outcome = status_box(
        outcome_status(result.outcome),
        Some(&page),
        &format!("{}: {}", result.platform, json::outcome(result.outcome)),
    );
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"cell\">{outcome}</td>\
         <td>{}</td><td>{trust}</td><td>{}</td></tr>\n",
        id_link(&page, &entry.short(), &entry.to_string()),
        link(&format!("/projects/{project}"), result.project_name),
        id_link(
            &format!("/projects/{project}/commits/{commit}"),
            &commit.short(),
            &commit.to_string()
        ),
        escape(result.platform),
        id(&result.builder.short(), &result.builder.to_string()),
        link(&format!("/api/v1/entries/{entry}"), "signed entry"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:7878";

    fn result(id: u8, outcome: Outcome, trusted: bool, commit: &CommitId) -> AuditResult<'_> {
        AuditResult {
            id: EntryId([id; 32]),
            project: ProjectId([8; 32]),
            project_name: "hello",
            commit,
            platform: "linux-x86_64",
            outcome,
            builder: PublicKey([id + 1; 32]),
            trusted,
        }
    }

    #[test]
    fn lists_forks_and_results() {
        let forks = vec![(
            PublicKey([1; 32]),
            ForkProof::equivocation(7, EntryId([2; 32]), EntryId([3; 32])),
        )];
        let Some(commit) = CommitId::from_bytes(&[0xcd; 20]) else {
            panic!("a commit id is 20 bytes");
        };
        let results = vec![
            result(4, Outcome::Passed, true, &commit),
            result(6, Outcome::Failed, false, &commit),
        ];
        let html = audit(Site::default(), &forks, &results, BASE);
        assert!(html.contains("two entries at seq 7"));
        assert!(html.contains(&format!("href=\"/api/v1/entries/{}\"", EntryId([2; 32]))));
        assert!(html.contains(&format!("href=\"/api/v1/entries/{}\"", EntryId([3; 32]))));
        assert!(html.contains(&format!("href=\"/results/{}\"", EntryId([4; 32]))));
        assert!(html.contains(&PublicKey([5; 32]).short()));
        assert!(html.contains("✓ trusted") && html.contains("not trusted"));
        assert!(html.contains("Results (2)"));
        // Project, commit, platform and outcome, as the matrix shows them.
        for header in ["Project", "Commit", "Platform", "Outcome"] {
            assert!(html.contains(&format!("<th>{header}</th>")), "{header}");
        }
        let project = ProjectId([8; 32]);
        assert!(html.contains(&format!("<a href=\"/projects/{project}\">hello</a>")));
        assert!(html.contains(&format!(
            "<a class=\"id\" href=\"/projects/{project}/commits/{commit}\" title=\"{commit}\">cdcdcdcdcd</a>"
        )));
        assert!(html.contains("<code>linux-x86_64</code>"));
        let failed = format!(
            "<a class=\"status failed\" href=\"/results/{}\" title=\"linux-x86_64: failed\">✗ failed</a>",
            EntryId([6; 32])
        );
        assert!(html.contains(&failed), "{html}");
        assert!(html.contains("class=\"status passed\""));
    }

    #[test]
    fn the_verify_command_is_one_that_exists_with_this_nodes_url() {
        let html = audit(Site::default(), &[], &[], BASE);
        assert!(!html.contains("<code>buildmesh verify</code>"));
        assert!(html.contains(
            "<code>curl -sS &#39;http://127.0.0.1:7878/api/v1/entries&#39; | buildmesh log verify</code>"
        ));
        assert!(
            html.contains("<code>buildmesh verify --node &#39;http://127.0.0.1:7878&#39;</code>")
        );
        assert_eq!(
            check_command("https://ci.example.org/it's"),
            "buildmesh verify --node 'https://ci.example.org/it'\\''s'"
        );
        assert_eq!(
            verify_command("https://ci.example.org/it's"),
            "curl -sS 'https://ci.example.org/it'\\''s/api/v1/entries' | buildmesh log verify"
        );
    }

    #[test]
    fn hostile_names_are_text() {
        let Some(commit) = CommitId::from_bytes(&[1; 20]) else {
            panic!("a commit id is 20 bytes");
        };
        let mut hostile = result(4, Outcome::Error, true, &commit);
        hostile.project_name = "<script>alert(1)</script>";
        hostile.platform = "<b>";
        let html = audit(Site::default(), &[], &[hostile], "http://<x>");
        assert!(!html.contains("<script>alert(1)</script>") && !html.contains("<b>"));
        assert!(!html.contains("http://<x>"));
        assert!(html.contains("&lt;script&gt;") && html.contains("! error</a>"));
    }

    #[test]
    fn an_empty_audit_says_so() {
        let html = audit(Site::default(), &[], &[], BASE);
        assert!(html.contains("No author has signed two histories"));
        assert!(html.contains("No results yet"));
    }
}
