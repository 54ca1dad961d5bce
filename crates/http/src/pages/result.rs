//! One build result: steps, logs, artifacts, metrics, environment.

use super::html::{bytes, duration, escape, id, id_link, link, outcome_status, status_box, time};
use super::{Site, layout, log};
use buildmesh_protocol::{
    BlobHash, BuildResult, EntryId, ProjectId, PublicKey, StepResult, StepStatus, TestSummary,
    Timestamp,
};

/// What the result page shows: a result entry and what the node knows
/// about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultView<'a> {
    /// The result entry's id.
    pub id: &'a EntryId,
    /// Who signed it.
    pub builder: &'a PublicKey,
    /// The project's name.
    pub project_name: &'a str,
    /// The project.
    pub project: &'a ProjectId,
    /// The result.
    pub result: &'a BuildResult,
    /// When the builder signed it.
    pub written_at: Timestamp,
    /// Whether its signature verifies under `builder`.
    pub signature_ok: bool,
    /// Whether the project trusts `builder`'s results.
    pub trusted: bool,
    /// Per step, in step order: the log text if this node holds it,
    /// already cut to its tail.
    pub logs: Vec<Option<String>>,
    /// What its tests said, if it reported tests.
    pub tests: Option<&'a TestSummary>,
    /// The failing tests with their output, if this node holds the
    /// details blob.
    pub failing_tests: Option<Vec<super::FailingTest>>,
    /// The blob of the builder's attestations of it, if it made some.
    pub attestation: Option<BlobHash>,
}

/// The result page: commit, platform, outcome, builder with its
/// verification badges, the steps and their logs (each with a link to the
/// raw blob), artifacts, metrics, environment and the error, if any.
pub fn result(site: Site<'_>, view: &ResultView<'_>) -> String {
    let result = view.result;
    let mut body = summary(view);
    if let Some(error) = &result.error {
        body.push_str(&format!(
            "<h2>Error</h2>\n<div class=\"problem\">{}</div>\n",
            escape(error)
        ));
    }
    if let Some(tests) = view.tests {
        body.push_str(&super::test_report::section(
            tests,
            view.failing_tests.as_deref(),
        ));
    }
    body.push_str(&where_it_failed(&result.steps, &view.logs));
    body.push_str(&steps(&result.steps));
    body.push_str(&logs(&result.steps, &view.logs));
    body.push_str(&artifacts(result));
    body.push_str(&pairs(
        "Metrics",
        result
            .metrics
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string())),
    ));
    body.push_str(&pairs(
        "Environment",
        result
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone())),
    ));
    let title = format!(
        "{} {} on {}",
        view.project_name,
        result.commit.short(),
        result.platform
    );
    layout::page(site, &title, &body, None)
}

fn summary(view: &ResultView<'_>) -> String {
    let result = view.result;
    let project = view.project;
    let commit = &result.commit;
    let outcome = outcome_status(result.outcome);
    let signature = if view.signature_ok {
        "<span class=\"tag good\">✓ signature verified</span>"
    } else {
        "<span class=\"tag bad\">✗ signature does not verify</span>"
    };
    let trust = if view.trusted {
        "<span class=\"tag good\">✓ trusted builder</span>"
    } else {
        "<span class=\"tag bad\">not trusted by this project</span>"
    };
    format!(
        "<p>{}</p>\n<h1>Result {}</h1>\n<table>\n\
         <tr><th>Commit</th><td>{}</td></tr>\n<tr><th>Platform</th><td><code>{}</code></td></tr>\n\
         <tr><th>Outcome</th><td>{}</td></tr>\n<tr><th>Builder</th><td>{} {signature} {trust}</td></tr>\n\
         <tr><th>Written</th><td>{}</td></tr>\n<tr><th>Entry</th><td>{} · {}</td></tr>\n</table>\n",
        link(
            &format!("/projects/{project}"),
            &format!("← {}", view.project_name)
        ),
        id(&view.id.short(), &view.id.to_string()),
        id_link(
            &format!("/projects/{project}/commits/{commit}"),
            &commit.short(),
            &commit.to_string()
        ),
        escape(&result.platform),
        status_box(outcome, None, ""),
        id(&view.builder.short(), &view.builder.to_string()),
        time(view.written_at),
        link(
            &format!("/api/v1/entries/{}", view.id),
            "signed entry (JSON)"
        ),
        attestation(view),
    )
}

/// A link to the result's attestations, or a word on why there are
/// none. One line beside the entry's: the failure must stay on screen.
fn attestation(view: &ResultView<'_>) -> String {
    let what = if view.result.artifacts.is_empty() {
        "the in-toto test result, signed by the builder (DSSE): any in-toto or DSSE tool \
         verifies it with the builder's key"
    } else {
        "the in-toto test result and SLSA provenance of the artifacts, signed by the builder \
         (DSSE): any in-toto or DSSE tool verifies them with the builder's key"
    };
    match view.attestation {
        Some(_) => format!(
            "<a href=\"/api/v1/results/{}/attestation\" title=\"{}\">attestation (in-toto)</a>",
            view.id,
            escape(what)
        ),
        None => "<span class=\"note\" title=\"the builder signed this result without \
                 attestations, as nodes did before them\">no attestation</span>"
            .to_owned(),
    }
}

/// How a step ended, in words, and whether that is good, bad or neither.
fn step_status(status: StepStatus) -> (String, &'static str) {
    match status {
        StepStatus::Exited(0) => ("exited 0".to_owned(), "good"),
        StepStatus::Exited(code) => (format!("exited {code}"), "bad"),
        StepStatus::Signalled(signal) => (format!("killed by signal {signal}"), "bad"),
        StepStatus::TimedOut => ("timed out".to_owned(), "bad"),
        StepStatus::Skipped => ("skipped".to_owned(), ""),
        StepStatus::FailedToStart => ("failed to start".to_owned(), "bad"),
    }
}

fn steps(steps: &[StepResult]) -> String {
    if steps.is_empty() {
        return "<h2>Steps</h2>\n<p class=\"note\">No steps ran.</p>\n".to_owned();
    }
    let rows: String = steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let (status, class) = step_status(step.status);
            format!(
                "<tr><td><a href=\"#log-{index}\">{}</a></td><td><code>{}</code></td>\
                 <td><span class=\"tag {class}\">{status}</span></td><td>{}</td></tr>\n",
                escape(&step.name),
                escape(&step.command),
                duration(step.duration_ms)
            )
        })
        .collect();
    format!(
        "<h2>Steps</h2>\n<table>\n<tr><th>Step</th><th>Command</th><th>Status</th><th>Duration</th></tr>\n{rows}</table>\n"
    )
}

/// Lines of the failing step's log shown first, under the summary.
pub const FAILURE_TAIL_LINES: usize = 10;

/// At most this much of them, so that long lines cannot make the section
/// long.
pub const FAILURE_TAIL_BYTES: usize = 4096;

/// The last lines of the first step that failed, if this node holds its
/// log: where test runners say what failed, seen without scrolling.
fn where_it_failed(steps: &[StepResult], texts: &[Option<String>]) -> String {
    let failed = steps.iter().enumerate().find_map(|(index, step)| {
        let (status, class) = step_status(step.status);
        let text = texts.get(index)?.as_deref()?;
        (class == "bad").then_some((index, step, status, text))
    });
    let Some((index, step, status, text)) = failed else {
        return String::new();
    };
    let tail = log::last_lines(text, FAILURE_TAIL_LINES, FAILURE_TAIL_BYTES);
    let (boxed, _) = log::log_box(tail, Some("failure"));
    format!(
        "<h2>Where it failed</h2>\n<p class=\"note\">The last lines of step \
         <a href=\"#log-{index}\">{}</a> ({status}); its whole log is under Logs.</p>\n{boxed}",
        escape(&step.name),
    )
}

/// Each step's log in a box that opens at its end, where test runners sum
/// up, with lines that look like failures marked; a failing step's is
/// open.
fn logs(steps: &[StepResult], texts: &[Option<String>]) -> String {
    let mut html = String::from("<h2>Logs</h2>\n");
    for (index, step) in steps.iter().enumerate() {
        let (_, class) = step_status(step.status);
        let open = if class == "bad" { " open" } else { "" };
        let raw = link(&format!("/api/v1/blobs/{}?view=text", step.log), "raw");
        let shown = match texts.get(index).and_then(Option::as_deref) {
            Some(text) => {
                let (boxed, marked) = log::log_box(text, None);
                let note = log_note(text.len() as u64, step.log_bytes, &raw, marked);
                format!("{note}{boxed}")
            }
            None => format!(
                "<p class=\"note\">This node does not hold this log; {raw} fetches it from a peer.</p>\n"
            ),
        };
        html.push_str(&format!(
            "<details id=\"log-{index}\"{open}><summary>{} · {} · {raw}</summary>\n{shown}</details>\n",
            escape(&step.name),
            bytes(step.log_bytes),
        ));
    }
    html
}

/// The note over a log box: whether the log is cut (`shown` of `whole`
/// bytes; `raw` links to all of it) and how many lines are marked.
fn log_note(shown: u64, whole: u64, raw: &str, marked: usize) -> String {
    let mut parts = Vec::new();
    if shown < whole {
        parts.push(format!(
            "The last {} of {}; {raw} for all of it.",
            bytes(shown),
            bytes(whole)
        ));
    }
    match marked {
        0 => {}
        1 => parts.push("1 line that looks like a failure is marked.".to_owned()),
        n => parts.push(format!("{n} lines that look like failures are marked.")),
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("<p class=\"note\">{}</p>\n", parts.join(" "))
}

fn artifacts(result: &BuildResult) -> String {
    if result.artifacts.is_empty() {
        return String::new();
    }
    let rows: String = result
        .artifacts
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                link(&format!("/api/v1/blobs/{}", a.hash), &a.name),
                bytes(a.bytes),
                id(&a.hash.short(), &a.hash.to_string())
            )
        })
        .collect();
    format!(
        "<h2>Artifacts</h2>\n<table>\n<tr><th>Name</th><th>Size</th><th>SHA-256</th></tr>\n{rows}</table>\n"
    )
}

/// A two-column table under a heading; nothing if there are no pairs.
fn pairs<'a>(heading: &str, pairs: impl Iterator<Item = (&'a str, String)>) -> String {
    let rows: String = pairs
        .map(|(key, value)| {
            format!(
                "<tr><th>{}</th><td>{}</td></tr>\n",
                escape(key),
                escape(&value)
            )
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    format!("<h2>{heading}</h2>\n<table>\n{rows}</table>\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use buildmesh_protocol::{Artifact, CommitId, Outcome};

    const HOSTILE: &str = "<script>alert(1)</script>";
    const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

    fn step(name: &str, status: StepStatus, log: u8, log_bytes: u64) -> StepResult {
        StepResult {
            name: name.to_owned(),
            command: format!("cargo {name}"),
            status,
            duration_ms: 12_345,
            log: BlobHash([log; 32]),
            log_bytes,
        }
    }

    fn build_result() -> BuildResult {
        BuildResult {
            project: ProjectId([5; 32]),
            commit: CommitId::from_bytes(&[0xcd; 20]).unwrap(),
            platform: "linux-x86_64".to_owned(),
            outcome: Outcome::Failed,
            steps: vec![
                step("build", StepStatus::Exited(0), 1, 5),
                step("test", StepStatus::Exited(101), 2, 1000),
                step("doc", StepStatus::Skipped, 3, 0),
            ],
            artifacts: vec![Artifact {
                name: "target/hello".to_owned(),
                hash: BlobHash([4; 32]),
                bytes: 2048,
            }],
            metrics: [("coverage".to_owned(), 87.5)].into_iter().collect(),
            environment: [("os".to_owned(), "linux".to_owned())]
                .into_iter()
                .collect(),
            error: None,
        }
    }

    fn render(result: &BuildResult, logs: Vec<Option<String>>) -> String {
        let view = ResultView {
            id: &EntryId([0xee; 32]),
            builder: &PublicKey([9; 32]),
            project_name: "hello",
            project: &ProjectId([5; 32]),
            result,
            written_at: Timestamp(1_764_000_000_000),
            signature_ok: true,
            trusted: false,
            tests: None,
            failing_tests: None,
            attestation: Some(BlobHash([6; 32])),
            logs,
        };
        super::result(Site::default(), &view)
    }

    #[test]
    fn shows_steps_logs_artifacts_metrics_environment() {
        let result = build_result();
        let html = render(
            &result,
            vec![Some("built\n".to_owned()), Some("tail".to_owned()), None],
        );
        let project = ProjectId([5; 32]);
        assert!(html.contains("✗ failed"));
        assert!(html.contains(&format!(
            "href=\"/projects/{project}/commits/{}\"",
            result.commit
        )));
        assert!(html.contains("<code>linux-x86_64</code>"));
        assert!(html.contains("✓ signature verified"));
        assert!(html.contains("not trusted by this project"));
        assert!(html.contains(&format!(
            "href=\"/api/v1/results/{}/attestation\"",
            EntryId([0xee; 32])
        )));
        assert!(html.contains(&PublicKey([9; 32]).short()));
        assert!(html.contains("2025-11-24 16:00:00 UTC"));
        assert!(
            html.contains("exited 0") && html.contains("exited 101") && html.contains("skipped")
        );
        assert!(html.contains("12.3 s"));
        assert!(html.contains("<code>cargo test</code>"));
        assert!(html.contains(&format!(
            "href=\"/api/v1/blobs/{}?view=text\"",
            BlobHash([2; 32])
        )));
        assert!(html.contains("<details id=\"log-1\" open>"));
        assert!(html.contains("<details id=\"log-0\">"));
        assert!(html.contains("<div class=\"log-box\"><pre class=\"log\">built\n</pre></div>"));
        assert!(html.contains("The last 4 B of 1000 B"));
        assert!(html.contains("does not hold this log"));
        assert!(html.contains(&format!(
            "href=\"/api/v1/blobs/{}\">target/hello</a>",
            BlobHash([4; 32])
        )));
        assert!(html.contains("2.0 KiB"));
        assert!(html.contains("<th>coverage</th><td>87.5</td>"));
        assert!(html.contains("<th>os</th><td>linux</td>"));
        assert!(html.contains(&format!("href=\"/api/v1/entries/{}\"", EntryId([0xee; 32]))));
        assert!(!html.contains("<h2>Error</h2>"));
        assert!(html.contains("<h2>Where it failed</h2>"));
    }

    /// Issue "the first hour of a maintainer", item 8: the lines that say
    /// what failed are marked, in a box that opens at its end.
    #[test]
    fn a_failing_log_marks_its_failures_in_a_box_opened_at_its_end() {
        let result = build_result();
        let log = "collected 3 items\n\nFAILED tests/test_cart.py::test_total\n\
                   ==== 1 failed, 2 passed in 0.1s ====\n";
        let html = render(&result, vec![None, Some(log.to_owned()), None]);
        assert!(html.contains("<details id=\"log-1\" open><summary>test · 1000 B · "));
        assert!(html.contains("2 lines that look like failures are marked."));
        // And its last lines come first, under the summary.
        let first = html.find("<h2>Where it failed</h2>").unwrap();
        assert!(first < html.find("<h2>Steps</h2>").unwrap());
        assert!(html[first..].starts_with(
            "<h2>Where it failed</h2>\n<p class=\"note\">The last lines of step \
             <a href=\"#log-1\">test</a> (exited 101)"
        ));
        assert!(html.contains(
            "<div class=\"log-box\" id=\"failure\"><pre class=\"log\">collected 3 items"
        ));
        assert!(html.contains(
            "<div class=\"log-box\"><pre class=\"log\">collected 3 items\n\n\
             <mark class=\"fail\">FAILED tests/test_cart.py::test_total</mark>\n\
             <mark class=\"fail\">==== 1 failed, 2 passed in 0.1s ====</mark>\n</pre></div>"
        ));
    }

    #[test]
    fn step_statuses_in_words() {
        assert_eq!(step_status(StepStatus::TimedOut).0, "timed out");
        assert_eq!(
            step_status(StepStatus::Signalled(9)).0,
            "killed by signal 9"
        );
        assert_eq!(step_status(StepStatus::FailedToStart).0, "failed to start");
    }

    #[test]
    fn hostile_strings_are_text() {
        let mut result = build_result();
        result.platform = HOSTILE.to_owned();
        result.steps[0].name = HOSTILE.to_owned();
        result.steps[0].command = HOSTILE.to_owned();
        result.artifacts[0].name = HOSTILE.to_owned();
        result.metrics.insert(HOSTILE.to_owned(), 1.0);
        result
            .environment
            .insert("kernel".to_owned(), HOSTILE.to_owned());
        result.error = Some(HOSTILE.to_owned());
        result.outcome = Outcome::Error;
        let html = render(&result, vec![Some(HOSTILE.to_owned())]);
        assert!(!html.contains(HOSTILE));
        assert!(html.contains(ESCAPED));
        assert!(html.contains("<h2>Error</h2>"));
        assert!(html.contains("! error"));
    }
}
