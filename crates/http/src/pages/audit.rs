//! Audit: fork proofs and every result with the key that signed it.

use super::html::{id, id_link, link};
use super::{Site, layout};
use buildmesh_core::log::{ForkKind, ForkProof};
use buildmesh_protocol::{EntryId, PublicKey};

/// The audit page: the authors proven to have forked their chain (none of
/// their entries count), with links to the two entries that prove it, and
/// the results given as `(result entry, builder, trusted by its project)`,
/// each linking to its page and its signed entry.
pub fn audit(
    site: Site<'_>,
    forks: &[(PublicKey, ForkProof)],
    results: &[(EntryId, PublicKey, bool)],
) -> String {
    let body = format!(
        "<h1>Audit</h1>\n<p class=\"note\">Every entry is signed by its author; \
         <code>buildmesh verify</code> checks a node's whole log.</p>\n{}{}",
        forks_table(forks),
        results_table(results)
    );
    layout::page(site, "Audit", &body, None)
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

fn results_table(results: &[(EntryId, PublicKey, bool)]) -> String {
    if results.is_empty() {
        return "<h2>Results</h2>\n<p>No results yet.</p>\n".to_owned();
    }
    let rows: String = results
        .iter()
        .map(|(entry, builder, trusted)| {
            let trust = if *trusted {
                "<span class=\"tag good\">✓ trusted</span>"
            } else {
                "<span class=\"tag bad\">not trusted</span>"
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{trust}</td><td>{}</td></tr>\n",
                id_link(
                    &format!("/results/{entry}"),
                    &entry.short(),
                    &entry.to_string()
                ),
                id(&builder.short(), &builder.to_string()),
                link(&format!("/api/v1/entries/{entry}"), "signed entry"),
            )
        })
        .collect();
    format!(
        "<h2>Results ({})</h2>\n<table>\n<tr><th>Result</th><th>Builder</th><th>Trust</th>\
         <th>Entry</th></tr>\n{rows}</table>\n",
        results.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_forks_and_results() {
        let forks = vec![(
            PublicKey([1; 32]),
            ForkProof::equivocation(7, EntryId([2; 32]), EntryId([3; 32])),
        )];
        let results = vec![
            (EntryId([4; 32]), PublicKey([5; 32]), true),
            (EntryId([6; 32]), PublicKey([7; 32]), false),
        ];
        let html = audit(Site::default(), &forks, &results);
        assert!(html.contains("two entries at seq 7"));
        assert!(html.contains(&format!("href=\"/api/v1/entries/{}\"", EntryId([2; 32]))));
        assert!(html.contains(&format!("href=\"/api/v1/entries/{}\"", EntryId([3; 32]))));
        assert!(html.contains(&format!("href=\"/results/{}\"", EntryId([4; 32]))));
        assert!(html.contains(&PublicKey([5; 32]).short()));
        assert!(html.contains("✓ trusted") && html.contains("not trusted"));
        assert!(html.contains("Results (2)"));
    }

    #[test]
    fn an_empty_audit_says_so() {
        let html = audit(Site::default(), &[], &[]);
        assert!(html.contains("No author has signed two histories"));
        assert!(html.contains("No results yet"));
    }
}
