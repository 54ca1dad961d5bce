//! A metrics file in Hydra's convention: one `name value [unit]` per line.
//!
//! Names are metric names like `[metrics]` ones (at most
//! [`NAME_BYTES_MAX`] bytes, no control character), values finite
//! numbers. The unit is accepted and not kept: a result's metrics are
//! plain numbers. Blank lines are skipped; any other line that is not a
//! metric is reported and left out, and the rest still count.

use crate::recipe::{METRICS_MAX, NAME_BYTES_MAX};
use std::collections::BTreeMap;

/// Most problems one file reports by line; past this they are counted.
const PROBLEMS_LISTED_MAX: usize = 8;

/// What a metrics file gave.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Read {
    /// By name: at most [`METRICS_MAX`], the first ones in the file.
    pub metrics: BTreeMap<String, f64>,
    /// What was left out and why, by line.
    pub problems: Vec<String>,
}

/// The metrics of `text`, and the lines that are not metrics.
pub(crate) fn read(text: &str) -> Read {
    let mut read = Read::default();
    let mut problems = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = match metric(line) {
            Ok((name, _)) if read.metrics.contains_key(name) => {
                format!("{name} is given again; the first value counts")
            }
            Ok(_) if read.metrics.len() == METRICS_MAX => {
                format!("more than {METRICS_MAX} metrics; the rest are left out")
            }
            Ok((name, value)) => {
                read.metrics.insert(name.to_owned(), value);
                continue;
            }
            Err(problem) => problem,
        };
        problems += 1;
        if read.problems.len() < PROBLEMS_LISTED_MAX {
            read.problems.push(format!("line {}: {problem}", index + 1));
        }
    }
    if problems > read.problems.len() {
        let more = problems - read.problems.len();
        read.problems
            .push(format!("and {more} more lines left out"));
    }
    read
}

/// One `name value [unit]` line.
fn metric(line: &str) -> Result<(&str, f64), String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [name, value, ..] = fields[..] else {
        return Err(format!("{:?} is not `name value [unit]`", shown(line)));
    };
    if fields.len() > 3 {
        return Err(format!(
            "{:?} has {} fields; a line is `name value [unit]`",
            shown(line),
            fields.len()
        ));
    }
    if name.len() > NAME_BYTES_MAX {
        return Err(format!(
            "the name {:?} is {} bytes; the limit is {NAME_BYTES_MAX}",
            shown(name),
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains a control character".into());
    }
    match value.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok((name, value)),
        _ => Err(format!("{name}: {:?} is not a finite number", shown(value))),
    }
}

fn shown(text: &str) -> String {
    crate::fit::truncate(text, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hydra_lines_with_and_without_units() {
        let read = read("closure_size 12345 bytes\nmccabe_max 14\n\n  startup_ms 0.25 ms  \n");
        assert_eq!(
            read.metrics,
            BTreeMap::from([
                ("closure_size".to_owned(), 12345.0),
                ("mccabe_max".to_owned(), 14.0),
                ("startup_ms".to_owned(), 0.25),
            ])
        );
        assert!(read.problems.is_empty(), "{:?}", read.problems);
    }

    #[test]
    fn lines_that_are_not_metrics_are_left_out_and_said() {
        let long = "n".repeat(NAME_BYTES_MAX + 1);
        let text =
            format!("good 1\njustaname\nx NaN\ny inf ms\na 1 b c\n{long} 2\ngood 2\nz\u{7}z 1\n");
        let read = read(&text);
        assert_eq!(read.metrics, BTreeMap::from([("good".to_owned(), 1.0)]));
        let problems = read.problems.join("\n");
        for expected in [
            "line 2: \"justaname\" is not `name value [unit]`",
            "line 3: x: \"NaN\" is not a finite number",
            "line 4: y: \"inf\" is not a finite number",
            "line 5: \"a 1 b c\" has 4 fields",
            "line 6: the name",
            "line 7: good is given again",
            "line 8: the name contains a control character",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
    }

    #[test]
    fn metrics_and_problems_are_bounded() {
        let many: String = (0..=METRICS_MAX + 20)
            .map(|i| format!("m{i} {i}\n"))
            .collect();
        let read = read(&many);
        assert_eq!(read.metrics.len(), METRICS_MAX);
        assert_eq!(read.problems.len(), PROBLEMS_LISTED_MAX + 1);
        assert_eq!(
            read.problems.last().map(String::as_str),
            Some("and 13 more lines left out")
        );
    }
}
