//! Small HTML helpers: escaping, links, and the ways ids, times, sizes
//! and statuses are shown.

use crate::json;
use buildmesh_core::view::CellStatus;
use buildmesh_protocol::{Outcome, Timestamp};

/// `text` made safe for HTML and XML text and for quoted attribute values:
/// `& < > " '` become entities, and control characters (other than tab
/// and line breaks, which `<pre>` needs) become U+FFFD, since XML forbids
/// them.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    escape_into(&mut out, text);
    out
}

/// [`escape`], appended to `out`: runs that need no escaping are copied
/// whole (a page of thousands of titles spends its time here).
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let mut copied = 0;
    for (at, c) in text.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\t' | '\n' | '\r' => continue,
            '\u{fffe}' | '\u{ffff}' => "\u{fffd}",
            c if c.is_control() => "\u{fffd}",
            _ => continue,
        };
        out.push_str(&text[copied..at]);
        out.push_str(replacement);
        copied = at + c.len_utf8();
    }
    out.push_str(&text[copied..]);
}

/// `bytes` as lower-case hex (as `hex::encode` and ids' `Display` give
/// them), appended to `out` without an allocation per id: pages with
/// thousands of ids spent a sixth of their time in `hex::encode`.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// A link to one of our own paths; `text` is escaped.
pub(crate) fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", escape(href), escape(text))
}

/// A link to an id, in monospace, with the full id as its tooltip.
pub(crate) fn id_link(href: &str, short: &str, full: &str) -> String {
    format!(
        "<a class=\"id\" href=\"{}\" title=\"{}\">{}</a>",
        escape(href),
        escape(full),
        escape(short)
    )
}

/// A key or id in monospace, shortened, with the full text as its tooltip.
pub(crate) fn id(short: &str, full: &str) -> String {
    format!("<code title=\"{}\">{}</code>", escape(full), escape(short))
}

/// A hex key given as text, shortened to 12 digits like `PublicKey::short`.
pub(crate) fn key_text(key: &str) -> String {
    let short: String = key.chars().take(12).collect();
    id(&short, key)
}

/// An outside URL: a link only if it is `http://` or `https://`, otherwise
/// plain text, so a `javascript:` URL from the log can never run.
pub(crate) fn external_link(url: &str) -> String {
    let lower: String = url.chars().take(8).flat_map(char::to_lowercase).collect();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        format!(
            "<a href=\"{0}\" rel=\"nofollow noopener noreferrer\">{0}</a>",
            escape(url)
        )
    } else {
        format!("<code>{}</code>", escape(url))
    }
}

/// `text` for a URL query value: unreserved characters stay, every other
/// byte is `%XX`.
pub(crate) fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A timestamp as `2025-11-24 16:00:00 UTC` in a `<time>` element.
pub(crate) fn time(at: Timestamp) -> String {
    let (date, clock) = at.utc();
    format!("<time datetime=\"{date}T{clock}Z\">{date} {clock} UTC</time>")
}

/// A timestamp as plain text, for tooltips.
pub(crate) fn time_text(at: Timestamp) -> String {
    let (date, clock) = at.utc();
    format!("{date} {clock} UTC")
}

/// A duration for people: `850 ms`, `12.3 s`, `3 min 4 s`, `1 h 2 min`.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{}.{} s", ms / 1000, ms % 1000 / 100),
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {} min", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A size for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`.
pub(crate) fn bytes(count: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut unit = 0;
    let mut tenths = u128::from(count) * 10 / 1024;
    while tenths >= 10_240 && unit + 1 < UNITS.len() {
        tenths /= 1024;
        unit += 1;
    }
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// The symbol that says a status without colour.
pub(crate) fn symbol(status: CellStatus) -> &'static str {
    match status {
        CellStatus::Passed => "✓",
        CellStatus::Failed => "✗",
        CellStatus::Error => "!",
        CellStatus::Claimed => "…",
        CellStatus::Pending => "·",
        CellStatus::Disagree => "≠",
        CellStatus::Flaky => "≈",
        CellStatus::Skipped => "–",
        CellStatus::Differs => "≢",
    }
}

/// The cell status an outcome shows as.
pub(crate) fn outcome_status(outcome: Outcome) -> CellStatus {
    match outcome {
        Outcome::Passed => CellStatus::Passed,
        Outcome::Failed => CellStatus::Failed,
        Outcome::Error => CellStatus::Error,
        // A pass with warnings is a pass (the result's page says which
        // step warned).
        Outcome::Warnings => CellStatus::Passed,
        Outcome::Skipped => CellStatus::Skipped,
        // No verdict: the cell is open again.
        Outcome::Retry | Outcome::Cancelled => CellStatus::Pending,
    }
}

/// A filled, coloured box with the status's symbol and word (so colour is
/// never the only signal), a link if `href` is given, `title` as tooltip.
pub(crate) fn status_box(status: CellStatus, href: Option<&str>, title: &str) -> String {
    let word = json::status(status);
    let label = format!("{} {word}", symbol(status));
    match href {
        Some(href) => format!(
            "<a class=\"status {word}\" href=\"{}\" title=\"{}\">{label}</a>",
            escape(href),
            escape(title)
        ),
        None => format!(
            "<span class=\"status {word}\" title=\"{}\">{label}</span>",
            escape(title)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("a\tb\nc\u{0}d\u{1b}"), "a\tb\nc\u{fffd}d\u{fffd}");
        assert_eq!(escape("héllo ✓"), "héllo ✓");
        assert_eq!(escape("é<\u{85}>\u{ffff}x"), "é&lt;\u{fffd}&gt;\u{fffd}x");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn hex_is_what_hex_encode_gives() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = "x".to_owned();
        push_hex(&mut out, &bytes);
        assert_eq!(out, format!("x{}", hex::encode(&bytes)));
    }

    #[test]
    fn only_http_urls_become_links() {
        assert!(external_link("https://example.org/x.git").starts_with("<a href="));
        assert!(external_link("HTTP://example.org").starts_with("<a href="));
        let script = external_link("javascript:alert(1)");
        assert!(!script.contains("href"));
        assert_eq!(script, "<code>javascript:alert(1)</code>");
        let quoted = external_link("https://x/\"><script>");
        assert!(!quoted.contains("\"><script>"));
        assert!(!external_link("git@example.org:x.git").contains("href"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("main"), "main");
        assert_eq!(query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(time_text(Timestamp(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            time_text(Timestamp(1_764_000_000_000)),
            "2025-11-24 16:00:00 UTC"
        );
        assert_eq!(
            time_text(Timestamp(951_782_400_000)),
            "2000-02-29 00:00:00 UTC"
        );
        assert!(time(Timestamp(0)).contains("datetime=\"1970-01-01T00:00:00Z\""));
        let _ = time_text(Timestamp(u64::MAX));
    }

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(184_000), "3 min 4 s");
        assert_eq!(duration(3_720_000), "1 h 2 min");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 200 * 1024), "3.1 MiB");
        assert_eq!(bytes(1 << 30), "1.0 GiB");
        assert_eq!(bytes(u64::MAX), "15.9 EiB");
    }

    #[test]
    fn status_boxes_say_the_status_in_words() {
        let passed = status_box(CellStatus::Passed, Some("/results/ab"), "linux");
        assert_eq!(
            passed,
            "<a class=\"status passed\" href=\"/results/ab\" title=\"linux\">✓ passed</a>"
        );
        let pending = status_box(CellStatus::Pending, None, "<x>");
        assert!(pending.contains("· pending"));
        assert!(pending.contains("title=\"&lt;x&gt;\""));
    }
}
