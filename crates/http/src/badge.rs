//! SVG status badges in the shields.io "flat" style, for READMEs:
//! a grey label on the left, a coloured message on the right.
//!
//! ```
//! use buildmesh_http::badge::{self, Color};
//! let svg = badge::svg("build", "passed", Color::Passed);
//! assert!(svg.starts_with("<svg"));
//! ```

use crate::json;
use crate::pages::escape;
use buildmesh_core::view::CellStatus;

/// A badge's message colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    /// Green, `#4c1`.
    Passed,
    /// Red, `#e05d44`.
    Failed,
    /// Orange, `#fe7d37`.
    Error,
    /// Amber, `#dfb317`.
    Building,
    /// Grey, `#9f9f9f`.
    Unknown,
    /// Purple, `#8e44ad`: builders disagree.
    Disagree,
}

impl Color {
    /// The CSS colour.
    pub fn hex(self) -> &'static str {
        match self {
            Color::Passed => "#4c1",
            Color::Failed => "#e05d44",
            Color::Error => "#fe7d37",
            Color::Building => "#dfb317",
            Color::Unknown => "#9f9f9f",
            Color::Disagree => "#8e44ad",
        }
    }
}

/// Space left and right of each text, pixels.
const PADDING_PX: u32 = 10;

/// Width of the printable ASCII characters (space to `~`) in Verdana at
/// 11px, in tenths of a pixel; others count as [`DEFAULT_TENTHS`].
const ASCII_TENTHS: [u32; 95] = [
    39, 43, 50, 90, 70, 118, 80, 30, 50, 50, 70, 90, 40, 50, 40, 50, // space to /
    70, 70, 70, 70, 70, 70, 70, 70, 70, 70, // 0 to 9
    50, 50, 90, 90, 90, 60, 110, // : to @
    75, 75, 77, 85, 70, 63, 85, 83, 46, 50, 76, 61, 93, 82, 87, 66, 87, 77, 75, 68, 81, 75, 109,
    75, 68, 75, // A to Z
    50, 50, 50, 90, 70, 70, // [ to `
    66, 69, 57, 69, 66, 39, 69, 70, 30, 38, 65, 30, 107, 70, 67, 69, 69, 47, 57, 43, 70, 65, 90,
    65, 65, 58, // a to z
    70, 50, 70, 90, // { to ~
];

/// Width of any other character, tenths of a pixel.
const DEFAULT_TENTHS: u32 = 70;

/// The width `text` takes in Verdana 11px, whole pixels, rounded up.
fn text_width_px(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| {
            u32::from(c)
                .checked_sub(32)
                .and_then(|i| ASCII_TENTHS.get(i as usize))
                .copied()
                .unwrap_or(DEFAULT_TENTHS)
        })
        .fold(0, u32::saturating_add);
    tenths.div_ceil(10)
}

/// A badge saying `label: message`, the message on `color`. Both texts are
/// escaped; widths follow the texts.
pub fn svg(label: &str, message: &str, color: Color) -> String {
    titled(label, message, color, &format!("{label}: {message}"))
}

/// [`svg`] with `title` (escaped) as its tooltip and accessible name: what
/// the badge cannot say in a few words.
pub fn titled(label: &str, message: &str, color: Color, title: &str) -> String {
    let label_width = text_width_px(label).saturating_add(2 * PADDING_PX);
    let message_width = text_width_px(message).saturating_add(2 * PADDING_PX);
    let width = label_width.saturating_add(message_width);
    let (label, message, title) = (escape(label), escape(message), escape(title));
    // Text x positions are centres, in tenths of a pixel for the 0.1 scale
    // shields uses to keep sub-pixel precision.
    let label_x = label_width * 5;
    let message_x = label_width * 10 + message_width * 5;
    let color = color.hex();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"20\" role=\"img\" aria-label=\"{title}\">\
<title>{title}</title>\
<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
<clipPath id=\"r\"><rect width=\"{width}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
<g clip-path=\"url(#r)\"><rect width=\"{label_width}\" height=\"20\" fill=\"#555\"/>\
<rect x=\"{label_width}\" width=\"{message_width}\" height=\"20\" fill=\"{color}\"/>\
<rect width=\"{width}\" height=\"20\" fill=\"url(#s)\"/></g>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" text-rendering=\"geometricPrecision\" font-size=\"110\">\
<text aria-hidden=\"true\" x=\"{label_x}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" transform=\"scale(.1)\">{label}</text>\
<text x=\"{label_x}\" y=\"140\" transform=\"scale(.1)\">{label}</text>\
<text aria-hidden=\"true\" x=\"{message_x}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" transform=\"scale(.1)\">{message}</text>\
<text x=\"{message_x}\" y=\"140\" transform=\"scale(.1)\">{message}</text></g></svg>"
    )
}

/// A badge for a cell status, worded as the JSON API words it (`passed`,
/// `failed`, `error`, `building`, `pending`, `disagree`, `flaky`,
/// `differs`, `skipped`); `None` is `unknown`.
pub fn for_status(label: &str, status: Option<CellStatus>) -> String {
    let (message, color) = match status {
        None => ("unknown", Color::Unknown),
        Some(status) => (json::status(status), color_of(status)),
    };
    svg(label, message, color)
}

fn color_of(status: CellStatus) -> Color {
    match status {
        CellStatus::Passed => Color::Passed,
        CellStatus::Failed => Color::Failed,
        CellStatus::Error => Color::Error,
        CellStatus::Claimed => Color::Building,
        CellStatus::Pending | CellStatus::Skipped => Color::Unknown,
        CellStatus::Disagree | CellStatus::Flaky | CellStatus::Differs => Color::Disagree,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width_of(svg: &str) -> u32 {
        svg.split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn looks_like_a_flat_badge() {
        let badge = svg("build", "passed", Color::Passed);
        assert!(badge.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(badge.ends_with("</svg>"));
        assert!(badge.contains("<title>build: passed</title>"));
        assert!(badge.contains("fill=\"#555\""));
        assert!(badge.contains("fill=\"#4c1\""));
        assert!(badge.contains("clip-path=\"url(#r)\""));
        assert!(badge.contains("fill-opacity=\".3\""));
        assert_eq!(badge.matches(">passed</text>").count(), 2);
        // "build" 26.8px → 27 + 20; "passed" 38.4px → 39 + 20.
        assert_eq!(width_of(&badge), 47 + 59);
    }

    #[test]
    fn widths_grow_with_text() {
        let short = width_of(&svg("ci", "ok", Color::Passed));
        let longer = width_of(&svg("ci", "okay then", Color::Passed));
        let wide = width_of(&svg("ci", "WWWWWWWWW", Color::Passed));
        assert!(short < longer && longer < wide);
        assert_eq!(text_width_px(""), 0);
        assert_eq!(text_width_px("é"), 7);
    }

    #[test]
    fn texts_are_escaped() {
        let badge = svg("<&\">", "<script>alert(1)</script>", Color::Failed);
        assert!(
            badge.contains(
                "<title>&lt;&amp;&quot;&gt;: &lt;script&gt;alert(1)&lt;/script&gt;</title>"
            )
        );
        assert!(!badge.contains("<script>"));
        assert!(!badge.contains("<&"));
    }

    #[test]
    fn a_title_says_more_than_the_badge() {
        let badge = titled("buildmesh", "ambiguous name", Color::Error, "2 <projects>");
        assert!(badge.contains("<title>2 &lt;projects&gt;</title>"));
        assert!(badge.contains("aria-label=\"2 &lt;projects&gt;\""));
        assert_eq!(badge.matches(">ambiguous name</text>").count(), 2);
    }

    #[test]
    fn statuses_pick_words_and_colours() {
        assert!(for_status("linux", None).contains("linux: unknown"));
        assert!(for_status("linux", None).contains("#9f9f9f"));
        let failed = for_status("linux", Some(CellStatus::Failed));
        assert!(failed.contains("linux: failed") && failed.contains("#e05d44"));
        let building = for_status("linux", Some(CellStatus::Claimed));
        assert!(building.contains("linux: building") && building.contains("#dfb317"));
        assert!(for_status("x", Some(CellStatus::Error)).contains("#fe7d37"));
        assert!(for_status("x", Some(CellStatus::Passed)).contains("#4c1"));
        assert!(for_status("x", Some(CellStatus::Pending)).contains("x: pending"));
    }
}
