//! Line and branch coverage from an LCOV or a Cobertura file, told apart
//! by content: Cobertura is XML, LCOV is `KEY:value` lines.
//!
//! LCOV (lcov, grcov, cargo-llvm-cov, coverage.py's `lcov` report): the
//! `LF`/`LH` (lines found and hit) and `BRF`/`BRH` (branches) of every
//! record, summed; a record without `LF` counts its `DA` lines. Cobertura
//! (coverage.py's `xml` report, gcovr, cargo-tarpaulin, Java's Cobertura):
//! the root's `line-rate` and `branch-rate`, which cover the whole file.

use super::xml;
use quick_xml::events::Event;

/// What a coverage file says, as percentages from 0 to 100 rounded to
/// two decimals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Coverage {
    /// `LCOV` or `Cobertura`.
    pub format: &'static str,
    /// Lines: `None` if the file counts none.
    pub lines: Option<f64>,
    /// Branches: `None` if the file counts none.
    pub branches: Option<f64>,
}

/// The coverage `text` gives, or why it gives none.
pub(crate) fn read(text: &str) -> Result<Coverage, String> {
    if text.trim_start().starts_with('<') {
        cobertura(text)
    } else {
        lcov(text)
    }
}

/// Lines and branches found and hit, summed over records.
#[derive(Default)]
struct Counts {
    lines: (u64, u64),
    branches: (u64, u64),
}

fn lcov(text: &str) -> Result<Coverage, String> {
    let mut all = Counts::default();
    let mut record: Option<Record> = None;
    let mut records = 0;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("SF:") {
            record = Some(Record::default());
        } else if line == "end_of_record" {
            let ended = record
                .take()
                .ok_or_else(|| format!("line {}: end_of_record without SF:", index + 1))?;
            add(&mut all, &ended.counts());
            records += 1;
        } else if let (Some(record), Some((key, value))) = (record.as_mut(), line.split_once(':')) {
            record.read(key, value).map_err(|()| {
                format!(
                    "line {}: {:?} is not a count",
                    index + 1,
                    crate::fit::truncate(line, 64)
                )
            })?;
        }
    }
    if records == 0 {
        return Err(
            "neither Cobertura XML (it does not start with '<') nor LCOV (no SF: ... \
             end_of_record record)"
                .into(),
        );
    }
    Ok(Coverage {
        format: "LCOV",
        lines: percent("lines", all.lines)?,
        branches: percent("branches", all.branches)?,
    })
}

/// One LCOV record, from `SF:` to `end_of_record`.
#[derive(Default)]
struct Record {
    /// `LF`, `LH`, `BRF`, `BRH`.
    counts: Counts,
    /// Whether it has `LF`: if not, its `DA` lines are counted.
    has_totals: bool,
    /// `DA` lines, and those with hits.
    data: (u64, u64),
}

impl Record {
    /// Reads one `KEY:value` line; other keys than the counted ones are
    /// left alone.
    fn read(&mut self, key: &str, value: &str) -> Result<(), ()> {
        let number = |text: &str| text.trim().parse::<u64>().map_err(|_| ());
        match key {
            "LF" => (self.counts.lines.0, self.has_totals) = (number(value)?, true),
            "LH" => self.counts.lines.1 = number(value)?,
            "BRF" => self.counts.branches.0 = number(value)?,
            "BRH" => self.counts.branches.1 = number(value)?,
            "DA" => {
                let hits = number(value.split(',').nth(1).ok_or(())?)?;
                self.data.0 += 1;
                self.data.1 += u64::from(hits > 0);
            }
            _ => {}
        }
        Ok(())
    }

    fn counts(self) -> Counts {
        let mut counts = self.counts;
        if !self.has_totals {
            counts.lines = self.data;
        }
        counts
    }
}

fn add(all: &mut Counts, record: &Counts) {
    let sum = |a: (u64, u64), b: (u64, u64)| (a.0.saturating_add(b.0), a.1.saturating_add(b.1));
    all.lines = sum(all.lines, record.lines);
    all.branches = sum(all.branches, record.branches);
}

/// `hit` of `found` as a percentage; `None` when nothing was found.
fn percent(what: &str, (found, hit): (u64, u64)) -> Result<Option<f64>, String> {
    if found == 0 {
        return Ok(None);
    }
    if hit > found {
        return Err(format!("it says {hit} {what} of {found} were hit"));
    }
    // Counts past 2^53 lose precision, not meaning.
    #[allow(clippy::cast_precision_loss)]
    let fraction = hit as f64 / found as f64;
    Ok(Some(rounded(fraction)))
}

/// A fraction from 0 to 1 as a percentage with two decimals.
fn rounded(fraction: f64) -> f64 {
    (fraction * 10_000.0).round() / 100.0
}

fn cobertura(text: &str) -> Result<Coverage, String> {
    let mut root: Option<Vec<(String, String)>> = None;
    xml::walk(text, &mut |_, event| {
        if let (None, Event::Start(element) | Event::Empty(element)) = (&root, event) {
            if element.name().as_ref() != b"coverage" {
                return Err(format!(
                    "its root element is <{}>; a Cobertura report's is <coverage>",
                    xml::name_of(element)
                ));
            }
            let attributes = element.attributes().flatten().map(|a| {
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                (key, String::from_utf8_lossy(&a.value).into_owned())
            });
            root = Some(attributes.collect());
        }
        Ok(())
    })?;
    let attributes = root.ok_or("it holds no XML element")?;
    let get = |key: &str| {
        attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let rate = |key: &str| -> Result<Option<f64>, String> {
        let Some(value) = get(key) else {
            return Ok(None);
        };
        match value.trim().parse::<f64>() {
            Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(Some(rounded(rate))),
            _ => Err(format!(
                "<coverage {key}={:?}> is not a fraction from 0 to 1",
                crate::fit::truncate(value, 64)
            )),
        }
    };
    let lines = rate("line-rate")?.ok_or("<coverage> has no line-rate")?;
    // coverage.py writes branch-rate="0" with branches-valid="0" when it
    // did not measure branches: that is no number, not 0 %.
    let branches = match get("branches-valid").map(str::trim) {
        Some("0") => None,
        _ => rate("branch-rate")?,
    };
    Ok(Coverage {
        format: "Cobertura",
        lines: Some(lines),
        branches,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// coverage.py 6.5.0 through pytest-cov 4.0.0 (`--cov-branch`), on the
    /// project of pytest's samples: 17 of 20 lines, 5 of 6 branches.
    const COBERTURA: &str = include_str!("samples/pytest-cobertura.xml");
    /// The same run's `--cov-report=lcov`.
    const LCOV: &str = include_str!("samples/pytest.lcov");

    #[test]
    fn both_formats_of_one_run_agree() {
        let cobertura = read(COBERTURA).unwrap();
        let lcov = read(LCOV).unwrap();
        assert_eq!(
            cobertura,
            Coverage {
                format: "Cobertura",
                lines: Some(85.0),
                branches: Some(83.33)
            }
        );
        assert_eq!(
            (lcov.format, lcov.lines, lcov.branches),
            ("LCOV", Some(85.0), Some(83.33))
        );
    }

    #[test]
    fn lcov_without_line_totals_counts_its_da_lines() {
        let text = "TN:\nSF:a.rs\nDA:1,3\nDA:2,0\nDA:3,1\nend_of_record\nSF:b.rs\nLF:1\nLH:1\nend_of_record\n";
        let coverage = read(text).unwrap();
        assert_eq!((coverage.lines, coverage.branches), (Some(75.0), None));
    }

    #[test]
    fn unmeasured_branches_are_no_number() {
        let text = r#"<?xml version="1.0" ?>
<coverage version="6.5.0" lines-valid="3" lines-covered="2" line-rate="0.6667" branches-covered="0" branches-valid="0" branch-rate="0" complexity="0"/>"#;
        let coverage = read(text).unwrap();
        assert_eq!((coverage.lines, coverage.branches), (Some(66.67), None));
    }

    #[test]
    fn wrong_files_say_what_is_wrong() {
        let e = read("hello\nworld\n").unwrap_err();
        assert!(
            e.contains("neither Cobertura XML") && e.contains("LCOV"),
            "{e}"
        );
        let e = read("SF:a\nLF:ten\nend_of_record\n").unwrap_err();
        assert!(e.starts_with("line 2: \"LF:ten\" is not a count"), "{e}");
        let e = read("SF:a\nLF:1\nLH:2\nend_of_record\n").unwrap_err();
        assert!(e.contains("2 lines of 1"), "{e}");
        let e = read("<coverage line-rate=\"1.5\"/>").unwrap_err();
        assert!(e.contains("line-rate=\"1.5\"> is not a fraction"), "{e}");
        let e = read("<coverage branch-rate=\"1\"/>").unwrap_err();
        assert!(e.contains("no line-rate"), "{e}");
        let e = read("<report line-rate=\"1\"/>").unwrap_err();
        assert!(e.contains("root element is <report>"), "{e}");
        let e = read("<coverage line-rate=\"1\">\n<packages>").unwrap_err();
        assert!(e.starts_with("truncated"), "{e}");
    }
}
