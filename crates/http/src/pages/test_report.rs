//! A result's tests on its page: the counts, then the failing tests first,
//! each with its output when the builder kept the report's details.

use super::html::escape;
use super::log;
use buildmesh_protocol::TestSummary;
use serde::Deserialize;

/// Largest details blob read for a page, bytes: the runner bounds what it
/// writes, this bounds what a stranger's blob can cost the page.
pub const DETAILS_BYTES_MAX: u64 = 4 * 1024 * 1024;

/// Failing tests shown with their output, at most.
const SHOWN_MAX: usize = 200;

/// Lines of one test's output shown.
const OUTPUT_LINES: usize = 40;

/// One failing test as the details blob lists it (`docs/recipe.md`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FailingTest {
    /// Its full name.
    pub name: String,
    /// Its suite (JUnit's `testsuite`), if any.
    #[serde(default)]
    pub suite: Option<String>,
    /// `failed` or `errored`.
    #[serde(default)]
    pub status: String,
    /// The failure's message, if any.
    #[serde(default)]
    pub message: Option<String>,
    /// What it printed, cut by the runner.
    #[serde(default)]
    pub output: Option<String>,
}

#[derive(Deserialize)]
struct Details {
    tests: Vec<FailingTest>,
}

/// The failing tests of a details blob's bytes, or `None` if they are not
/// the documented JSON.
pub fn parse_details(bytes: &[u8]) -> Option<Vec<FailingTest>> {
    serde_json::from_slice::<Details>(bytes)
        .ok()
        .map(|d| d.tests)
}

/// The page's Tests section.
pub fn section(tests: &TestSummary, details: Option<&[FailingTest]>) -> String {
    let mut html = format!("<h2 id=\"tests\">Tests</h2>\n<p>{}</p>\n", counts(tests));
    let failing = tests.failed.saturating_add(tests.errored);
    if failing == 0 {
        return html;
    }
    match details {
        Some(list) if !list.is_empty() => {
            html.push_str("<ul class=\"failing\">\n");
            for test in list.iter().take(SHOWN_MAX) {
                html.push_str(&one(test));
            }
            html.push_str("</ul>\n");
            if list.len() > SHOWN_MAX {
                html.push_str(&format!(
                    "<p class=\"note\">and {} more in the report.</p>\n",
                    list.len() - SHOWN_MAX
                ));
            }
        }
        _ => {
            html.push_str("<ul class=\"failing\">\n");
            for name in &tests.failing {
                html.push_str(&format!("<li><code>{}</code></li>\n", escape(name)));
            }
            html.push_str("</ul>\n");
            let named = u64::try_from(tests.failing.len()).unwrap_or(u64::MAX);
            if failing > named {
                html.push_str(&format!(
                    "<p class=\"note\">{} more failed; the result names at most {}.</p>\n",
                    failing - named,
                    buildmesh_protocol::FAILING_TESTS_MAX
                ));
            }
        }
    }
    html
}

/// "38 passed · 2 failed · 1 skipped, from junit".
fn counts(tests: &TestSummary) -> String {
    let mut parts = vec![format!("{} passed", tests.passed)];
    for (n, word, class) in [
        (tests.failed, "failed", "bad"),
        (tests.errored, "errored", "bad"),
        (tests.skipped, "skipped", ""),
    ] {
        if n > 0 {
            parts.push(format!("<span class=\"{class}\">{n} {word}</span>"));
        }
    }
    format!("{}, from {}", parts.join(" · "), escape(&tests.source))
}

fn one(test: &FailingTest) -> String {
    let suite = test
        .suite
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| format!(" <span class=\"note\">in {}</span>", escape(s)))
        .unwrap_or_default();
    let message = test
        .message
        .as_deref()
        .map(|m| m.lines().next().unwrap_or("").trim())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", escape(m)))
        .unwrap_or_default();
    let heading = format!(
        "<code>{}</code> {}{suite}{message}",
        escape(&test.name),
        escape(&test.status),
    );
    // One line per test, so the page's first screen still reaches "where
    // it failed"; the output opens on a click.
    match test.output.as_deref().filter(|o| !o.trim().is_empty()) {
        Some(output) => {
            let shown = log::log_box(log::last_lines(output, OUTPUT_LINES, 16 * 1024), None).0;
            format!("<li><details><summary>{heading}</summary>\n{shown}</details></li>\n")
        }
        None => format!("<li>{heading}</li>\n"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn summary(failing: &[&str], failed: u64) -> TestSummary {
        TestSummary {
            passed: 38,
            failed,
            skipped: 1,
            errored: 0,
            failing: failing.iter().map(|s| s.to_string()).collect(),
            source: "junit".into(),
            details: None,
        }
    }

    #[test]
    fn counts_then_failing_tests_with_their_output() {
        let details = parse_details(
            br#"{"tests":[{"name":"parse::<b>","suite":"unit","status":"failed",
                "message":"assertion failed","output":"left: 1\nright: 2\n"}]}"#,
        )
        .unwrap();
        let html = section(&summary(&["parse::<b>"], 1), Some(&details));
        assert!(
            html.contains("38 passed · <span class=\"bad\">1 failed</span>"),
            "{html}"
        );
        assert!(
            html.contains("<code>parse::&lt;b&gt;</code> failed"),
            "{html}"
        );
        assert!(
            html.contains("assertion failed") && html.contains("right: 2"),
            "{html}"
        );
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn without_details_the_names_the_result_carries() {
        let html = section(&summary(&["a::one"], 40), None);
        assert!(html.contains("<code>a::one</code>"), "{html}");
        assert!(html.contains("39 more failed"), "{html}");
        assert!(parse_details(b"not json").is_none());
        let passing = section(&summary(&[], 0), None);
        assert!(!passing.contains("Failing"), "{passing}");
    }
}
