//! A build log as the result page shows it: lines that look like failures
//! marked, in a box that opens at its end (where test runners sum up).

use super::html::escape;

/// Text that marks a line as a failure wherever it stands in the line
/// (case as written). Chosen to be rare in passing output: each names a
/// failure in a common tool's own words.
///
/// | mark | printed by |
/// |------|------------|
/// | `error:`, `error[` | rustc, cargo, gcc and clang, git, many CLIs |
/// | `Error:` | Python exceptions (`ValueError: …`), Node.js, Go tools |
/// | `ERROR:` | unittest, most loggers |
/// | `FAILED` | pytest, `cargo test` (`… FAILED`, `test result: FAILED`), ctest |
/// | `FAIL:` | unittest, `go test` (`--- FAIL: TestX`) |
/// | `panicked at` | a Rust panic |
/// | `Traceback (most recent call last)` | Python |
/// | `fatal:` | git |
/// | `npm ERR!` | npm |
/// | `Segmentation fault` | the shell, of a crashed program |
/// | `: *** ` | make (`make: *** [all] Error 1`) |
///
/// A mark that ends in `:` does not count when another `:` follows (a
/// Rust path such as `io::Error::new` or `error::tests`).
pub const FAILURE_MARKS: &[&str] = &[
    "error:",
    "error[",
    "Error:",
    "ERROR:",
    "FAILED",
    "FAIL:",
    "panicked at",
    "Traceback (most recent call last)",
    "fatal:",
    "npm ERR!",
    "Segmentation fault",
    ": *** ",
];

/// Whether `line` looks like it reports a failure: it holds one of
/// [`FAILURE_MARKS`]; or counts failures, more than none (`1 failed`,
/// as pytest, cargo test and jest sum up; `0 failed` does not count); or
/// says an assertion failed (`assertion failed`, Rust's ``assertion `left
/// == right` failed``, C's `Assertion `x' failed`); or is a line of
/// pytest's failure detail (starting `E   `).
pub fn looks_like_failure(line: &str) -> bool {
    FAILURE_MARKS.iter().any(|mark| holds_mark(line, mark))
        || counts_failures(line)
        || assertion_failed(line)
        || line.starts_with("E   ")
}

fn holds_mark(line: &str, mark: &str) -> bool {
    line.match_indices(mark)
        .any(|(at, _)| !mark.ends_with(':') || !line[at + mark.len()..].starts_with(':'))
}

/// `N failed` with N a number above 0.
fn counts_failures(line: &str) -> bool {
    line.match_indices(" failed").any(|(at, _)| {
        let count = line[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("");
        !count.is_empty() && count.bytes().any(|b| b != b'0')
    })
}

fn assertion_failed(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower
        .find("assertion")
        .is_some_and(|at| lower[at..].contains(" failed"))
}

/// `text` as HTML for a `<pre>`: escaped, each line that
/// [`looks_like_failure`] in a `<mark class="fail">`. Returns the HTML and
/// how many lines were marked.
pub fn highlight(text: &str) -> (String, usize) {
    let mut html = String::with_capacity(text.len() + text.len() / 8);
    let mut marked = 0;
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        if looks_like_failure(body) {
            marked += 1;
            html.push_str("<mark class=\"fail\">");
            html.push_str(&escape(body));
            html.push_str("</mark>");
        } else {
            html.push_str(&escape(body));
        }
        html.push_str(end);
    }
    (html, marked)
}

/// The last `lines` lines of `text` that are not blank (a final line
/// break does not start another; blank lines between them are kept, not
/// counted: test runners pad their summaries with them), within its last
/// `bytes_max` bytes, from a line's start if one starts there: what a
/// reader looks at first when a step failed.
pub fn last_lines(text: &str, lines: usize, bytes_max: usize) -> &str {
    if lines == 0 {
        return "";
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let (mut counted, mut end, mut from_lines) = (0, body.len(), 0);
    for (at, _) in body.rmatch_indices('\n') {
        counted += usize::from(!body[at + 1..end].trim().is_empty());
        if counted == lines {
            from_lines = at + 1;
            break;
        }
        end = at;
    }
    let mut from_bytes = text.len().saturating_sub(bytes_max);
    while !text.is_char_boundary(from_bytes) {
        from_bytes += 1;
    }
    if from_bytes <= from_lines {
        return &text[from_lines..];
    }
    let line_start = body
        .get(from_bytes..)
        .and_then(|rest| rest.find('\n'))
        .map_or(from_bytes, |at| from_bytes + at + 1);
    let start = if text[..from_bytes].ends_with('\n') {
        from_bytes
    } else {
        line_start
    };
    &text[start..]
}

/// A log box: `text` highlighted, in a scroll box that opens at its end
/// without JavaScript (a reversed flex column starts scrolled to its
/// end in every current browser; the text inside stays in order), with
/// element id `id` if given (an id, not text from a log); and how many
/// lines were marked.
pub fn log_box(text: &str, id: Option<&str>) -> (String, usize) {
    let (html, marked) = highlight(text);
    let id = id.map(|id| format!(" id=\"{id}\"")).unwrap_or_default();
    let boxed = format!("<div class=\"log-box\"{id}><pre class=\"log\">{html}</pre></div>\n");
    (boxed, marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_the_words_of_common_tools_are_marked() {
        let failures = [
            "error: could not compile `shop` (lib) due to 1 previous error",
            "error[E0308]: mismatched types",
            "src/main.c:3:5: error: expected ';' before '}' token",
            "FAILED tests/test_cart.py::test_total - AssertionError: 3 != 4",
            "========= 1 failed, 1317 passed in 12.31s =========",
            "test cart::total ... FAILED",
            "test result: FAILED. 11 passed; 1 failed; 0 ignored",
            "thread 'cart::total' panicked at src/cart.rs:12:9:",
            "assertion `left == right` failed",
            "assertion failed: total > 0",
            "shop: cart.c:9: main: Assertion `total > 0' failed.",
            "Traceback (most recent call last):",
            "ValueError: invalid literal for int() with base 10: 'x'",
            "E       assert 3 == 4",
            "FAIL: test_total (test_cart.CartTest)",
            "--- FAIL: TestTotal (0.00s)",
            "ERROR: test_load (test_cart.CartTest)",
            "fatal: not a git repository",
            "npm ERR! code ELIFECYCLE",
            "make: *** [Makefile:4: test] Error 1",
            "Segmentation fault (core dumped)",
            "\u{1b}[31mFAILED\u{1b}[0m tests/x.py::y",
            "Tests:       2 failed, 40 passed, 42 total",
        ];
        for line in failures {
            assert!(looks_like_failure(line), "not marked: {line:?}");
        }
    }

    #[test]
    fn passing_output_is_not_marked() {
        let fine = [
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured",
            "test error::tests::parses_an_error ... ok",
            "   Compiling shop v0.1.0 (/work)",
            "warning: unused variable: `x`",
            "    let e = io::Error::new(kind, \"x\");",
            "1318 passed in 12.31s",
            "collected 1318 items",
            "no errors found",
            "summary: 0 failed, 00 failed",
            "",
        ];
        for line in fine {
            assert!(!looks_like_failure(line), "marked: {line:?}");
        }
    }

    #[test]
    fn the_last_lines_are_bounded_in_lines_and_bytes() {
        let text = "one\ntwo\nthree\nfour\n";
        assert_eq!(last_lines(text, 2, 100), "three\nfour\n");
        assert_eq!(
            last_lines("one\ntwo\n\n  \nthree\n\n", 2, 100),
            "two\n\n  \nthree\n\n",
            "blank lines are kept but not counted"
        );
        assert_eq!(last_lines("one\ntwo", 1, 100), "two");
        assert_eq!(last_lines(text, 10, 100), text);
        assert_eq!(last_lines(text, 0, 100), "");
        assert_eq!(last_lines(text, 10, 7), "four\n");
        assert_eq!(last_lines(text, 10, 5), "four\n");
        assert_eq!(last_lines("a\nlong line", 10, 4), "line");
        assert_eq!(last_lines("ééé", 5, 3), "é");
    }

    #[test]
    fn marked_lines_are_wrapped_and_everything_is_escaped() {
        let text = "ok <b>\nerror: <script>\nlast";
        let (html, marked) = highlight(text);
        assert_eq!(marked, 1);
        assert_eq!(
            html,
            "ok &lt;b&gt;\n<mark class=\"fail\">error: &lt;script&gt;</mark>\nlast"
        );
        let (boxed, marked) = log_box("1 failed, 2 passed\n", None);
        assert_eq!(marked, 1);
        assert_eq!(
            boxed,
            "<div class=\"log-box\"><pre class=\"log\"><mark class=\"fail\">1 failed, 2 passed</mark>\n</pre></div>\n"
        );
        let (boxed, _) = log_box("", Some("failure"));
        assert!(boxed.starts_with("<div class=\"log-box\" id=\"failure\">"));
    }
}
