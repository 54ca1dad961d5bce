//! Regressions: a commit whose value of a metric crosses one of the
//! project's thresholds (or an operator's), read from a series as
//! [`super::trends`] draws it. A crossing is judged against the previous
//! commit that has a value on the same platform, so every node holding
//! the same entries finds the same crossings.

use super::trends::Point;
use buildmesh_protocol::{Threshold, ThresholdRule};
use std::fmt;

/// Why a threshold's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "threshold {text:?}: {why}; write METRIC above|below|drop|rise NUMBER, \
     as in \"coverage_lines drop 1\" or \"tests_failed above 0\""
)]
pub struct ThresholdError {
    text: String,
    why: &'static str,
}

/// Reads `METRIC above|below|drop|rise NUMBER`.
pub fn parse_threshold(text: &str) -> Result<Threshold, ThresholdError> {
    let error = |why| ThresholdError {
        text: text.to_owned(),
        why,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    let [metric, word, number] = words[..] else {
        return Err(error("it needs three words"));
    };
    let value: f64 = number.parse().map_err(|_| error("the number is not one"))?;
    if !value.is_finite() {
        return Err(error("the number must be finite"));
    }
    let rule = match word {
        "above" => ThresholdRule::Above(value),
        "below" => ThresholdRule::Below(value),
        "drop" | "drops" => ThresholdRule::DropsBy(value),
        "rise" | "rises" => ThresholdRule::RisesBy(value),
        _ => return Err(error("the middle word is not above, below, drop or rise")),
    };
    if matches!(rule, ThresholdRule::DropsBy(_) | ThresholdRule::RisesBy(_)) && value < 0.0 {
        return Err(error("a drop or rise is a positive amount"));
    }
    Ok(Threshold {
        metric: metric.to_owned(),
        rule,
    })
}

/// A threshold as people write it: `coverage_lines drop 1`.
pub struct Described<'a>(pub &'a Threshold);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, value) = match self.0.rule {
            ThresholdRule::Above(v) => ("above", v),
            ThresholdRule::Below(v) => ("below", v),
            ThresholdRule::DropsBy(v) => ("drop", v),
            ThresholdRule::RisesBy(v) => ("rise", v),
        };
        write!(f, "{} {word} {value}", self.0.metric)
    }
}

/// Whether `value`, after `previous`, crosses `rule`. A level (above,
/// below) is crossed when the previous value was on the right side of
/// it: a metric that stays above it is one regression, not one per
/// commit. With no previous value nothing is crossed: there is nothing
/// the commit made worse.
pub fn crosses(rule: ThresholdRule, previous: Option<f64>, value: f64) -> bool {
    let Some(previous) = previous else {
        return false;
    };
    match rule {
        ThresholdRule::Above(level) => value > level && previous <= level,
        ThresholdRule::Below(level) => value < level && previous >= level,
        ThresholdRule::DropsBy(amount) => previous - value > amount,
        ThresholdRule::RisesBy(amount) => value - previous > amount,
    }
}

/// For each point of a series (oldest first), whether it crosses `rule`.
pub fn crossings(points: &[Point<'_>], rule: ThresholdRule) -> Vec<bool> {
    let mut previous = None;
    points
        .iter()
        .map(|point| {
            let crossed = crosses(rule, previous, point.value);
            previous = Some(point.value);
            crossed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_each_form_and_says_how_to_write_one() {
        let read = |t| parse_threshold(t).map(|t| Described(&t).to_string());
        assert_eq!(
            read("coverage_lines drop 1").unwrap(),
            "coverage_lines drop 1"
        );
        assert_eq!(
            read("tests_failed  above 0").unwrap(),
            "tests_failed above 0"
        );
        assert_eq!(read("mccabe_max above 15").unwrap(), "mccabe_max above 15");
        assert_eq!(
            read("coverage_lines below 80.5").unwrap(),
            "coverage_lines below 80.5"
        );
        assert_eq!(
            read("duration_seconds rises 60").unwrap(),
            "duration_seconds rise 60"
        );
        for bad in [
            "coverage drop",
            "coverage falls 1",
            "coverage drop x",
            "c drop -1",
            "c above inf",
        ] {
            let message = parse_threshold(bad).unwrap_err().to_string();
            assert!(
                message.contains("METRIC above|below|drop|rise NUMBER"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_level_is_crossed_once_and_a_step_each_time() {
        let above = ThresholdRule::Above(0.0);
        assert!(!crosses(above, None, 3.0), "nothing before it");
        assert!(crosses(above, Some(0.0), 1.0));
        assert!(
            !crosses(above, Some(1.0), 2.0),
            "still above is not a new crossing"
        );
        let below = ThresholdRule::Below(80.0);
        assert!(crosses(below, Some(80.0), 79.9));
        assert!(!crosses(below, Some(79.0), 78.0));
        let drop = ThresholdRule::DropsBy(1.0);
        assert!(!crosses(drop, Some(80.0), 79.0), "exactly the allowed drop");
        assert!(crosses(drop, Some(80.0), 78.9));
        assert!(crosses(drop, Some(78.9), 77.8), "each drop is its own");
        let rise = ThresholdRule::RisesBy(60.0);
        assert!(crosses(rise, Some(100.0), 161.0));
        assert!(!crosses(rise, Some(100.0), 40.0));
    }
}
