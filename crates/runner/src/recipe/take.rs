//! Which of a regex's matches a metric takes: a recipe's `take` key.
//!
//! A step's output often holds the number more than once: `cargo test`
//! prints one `test result:` line per test binary, pytest one summary per
//! run. The metric says how its matches make one number.

use std::fmt;

/// How a `{ step, regex }` metric turns its matches into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricTake {
    /// The first match (the default: what recipes written before `take`
    /// existed meant, so their numbers do not change).
    #[default]
    First,
    /// The last match: a summary printed after the details.
    Last,
    /// All matches added: a count spread over several lines (tests passed
    /// in each of several test binaries).
    Sum,
    /// The largest match.
    Max,
    /// The smallest match.
    Min,
}

impl MetricTake {
    /// Every choice, as a recipe spells it.
    pub const NAMES: [&'static str; 5] = ["first", "last", "sum", "max", "min"];

    /// The choice a recipe spells `name`; `None` if there is none.
    pub fn from_name(name: &str) -> Option<MetricTake> {
        match name {
            "first" => Some(MetricTake::First),
            "last" => Some(MetricTake::Last),
            "sum" => Some(MetricTake::Sum),
            "max" => Some(MetricTake::Max),
            "min" => Some(MetricTake::Min),
            _ => None,
        }
    }

    /// How a recipe spells it.
    pub fn name(self) -> &'static str {
        match self {
            MetricTake::First => "first",
            MetricTake::Last => "last",
            MetricTake::Sum => "sum",
            MetricTake::Max => "max",
            MetricTake::Min => "min",
        }
    }

    /// One number from the matches' `values`, in output order; `None`
    /// when there are none. Reads no further than it needs (`First` stops
    /// at the first value), so a lazy iterator over a long log is searched
    /// only that far. The result may be infinite (a sum past `f64::MAX`):
    /// the caller checks, as it checks every metric.
    pub fn combine(self, values: impl IntoIterator<Item = f64>) -> Option<f64> {
        let mut values = values.into_iter();
        match self {
            MetricTake::First => values.next(),
            MetricTake::Last => values.last(),
            MetricTake::Sum => values.reduce(|a, b| a + b),
            MetricTake::Max => values.reduce(f64::max),
            MetricTake::Min => values.reduce(f64::min),
        }
    }
}

impl fmt::Display for MetricTake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const ALL: [MetricTake; 5] = [
        MetricTake::First,
        MetricTake::Last,
        MetricTake::Sum,
        MetricTake::Max,
        MetricTake::Min,
    ];

    #[test]
    fn names_round_trip_and_unknown_ones_are_none() {
        for (take, name) in ALL.into_iter().zip(MetricTake::NAMES) {
            assert_eq!(take.name(), name);
            assert_eq!(MetricTake::from_name(name), Some(take));
        }
        for name in ["", "First", "SUM", "average", "all", " sum"] {
            assert_eq!(MetricTake::from_name(name), None, "{name:?}");
        }
        assert_eq!(MetricTake::default(), MetricTake::First);
    }

    /// `cargo test` over a workspace: one `test result:` per binary.
    #[test]
    fn each_choice_on_a_workspaces_test_counts() {
        let counts = [8.0, 0.0, 41.0, 12.0, 0.0, 12.0];
        let take = |t: MetricTake| t.combine(counts);
        assert_eq!(take(MetricTake::First), Some(8.0));
        assert_eq!(take(MetricTake::Last), Some(12.0));
        assert_eq!(take(MetricTake::Sum), Some(73.0));
        assert_eq!(take(MetricTake::Max), Some(41.0));
        assert_eq!(take(MetricTake::Min), Some(0.0));
        for t in ALL {
            assert_eq!(t.combine([]), None, "{t}");
            assert_eq!(t.combine([-2.5]), Some(-2.5), "{t}");
        }
    }

    #[test]
    fn first_reads_no_further_than_the_first_value() {
        let mut read = 0;
        let values = [1.0, 2.0, 3.0].into_iter().inspect(|_| read += 1);
        assert_eq!(MetricTake::First.combine(values), Some(1.0));
        assert_eq!(read, 1);
    }

    #[test]
    fn a_sum_past_the_largest_float_is_infinite_for_the_caller_to_refuse() {
        let sum = MetricTake::Sum.combine([f64::MAX, f64::MAX]).unwrap();
        assert!(!sum.is_finite());
    }

    fn finite() -> impl Strategy<Value = f64> {
        -1e12f64..1e12
    }

    proptest! {
        #[test]
        fn each_choice_is_what_its_name_says(
            values in proptest::collection::vec(finite(), 1..50),
        ) {
            let first = MetricTake::First.combine(values.iter().copied()).unwrap();
            let last = MetricTake::Last.combine(values.iter().copied()).unwrap();
            let sum = MetricTake::Sum.combine(values.iter().copied()).unwrap();
            let max = MetricTake::Max.combine(values.iter().copied()).unwrap();
            let min = MetricTake::Min.combine(values.iter().copied()).unwrap();
            prop_assert_eq!(first, values[0]);
            prop_assert_eq!(last, values[values.len() - 1]);
            prop_assert_eq!(sum, values.iter().fold(0.0, |a, b| a + b));
            prop_assert!(values.contains(&max) && values.iter().all(|v| *v <= max));
            prop_assert!(values.contains(&min) && values.iter().all(|v| *v >= min));
            prop_assert!(min <= first && first <= max && min <= last && last <= max);
        }

        /// Max and min do not depend on the order of the output; the sum
        /// of whole numbers (test counts) does not either.
        #[test]
        fn max_min_and_sums_of_counts_ignore_order(
            values in proptest::collection::vec(finite(), 1..50),
            counts in proptest::collection::vec(0u32..1_000_000, 1..50),
        ) {
            let reversed: Vec<f64> = values.iter().rev().copied().collect();
            for take in [MetricTake::Max, MetricTake::Min] {
                prop_assert_eq!(take.combine(values.iter().copied()), take.combine(reversed.clone()));
            }
            let counts: Vec<f64> = counts.into_iter().map(f64::from).collect();
            let backwards = counts.iter().rev().copied();
            prop_assert_eq!(
                MetricTake::Sum.combine(counts.iter().copied()),
                MetricTake::Sum.combine(backwards)
            );
        }
    }
}
