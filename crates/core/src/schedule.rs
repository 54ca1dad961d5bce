//! Cron schedules, crontab style, in UTC: when a scheduled build is due.
//!
//! Five fields, `minute hour day-of-month month day-of-week`, each `*`, a
//! number, a range `a-b`, a list `a,b,c`, or any of those with a step
//! `/n`. Days of the week run 0–7 with 0 and 7 both Sunday, as in Unix
//! crontab. When both day fields are restricted, a day matching either
//! counts, as in crontab. `@daily`, `@nightly`, `@hourly` and `@weekly` are
//! shorthands. A pure function of the time: no clock, no time zone table.

use buildmesh_protocol::Timestamp;

/// How far ahead [`Cron::next_after`] looks before giving up (a schedule
/// such as `0 0 30 2 *`, February 30th, never fires).
pub const LOOKAHEAD_DAYS: u64 = 4 * 366;

const MINUTE_MS: u64 = 60_000;
const DAY_MINUTES: u64 = 24 * 60;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron schedule {text:?}: {problem}")]
pub struct CronError {
    text: String,
    problem: String,
}

impl Cron {
    /// Parses a five-field schedule or a shorthand.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let fail = |problem: String| CronError {
            text: text.to_owned(),
            problem,
        };
        let expanded = match text.trim() {
            "@daily" | "@nightly" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@weekly" => "0 0 * * 0",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(fail(format!(
                "expected 5 fields (minute hour day month weekday), found {}",
                fields.len()
            )));
        };
        let weekdays = field(weekday, 0, 7).map_err(|p| fail(format!("weekday: {p}")))?;
        Ok(Cron {
            minutes: field(minute, 0, 59).map_err(|p| fail(format!("minute: {p}")))?,
            hours: field(hour, 0, 23).map_err(|p| fail(format!("hour: {p}")))?,
            days: field(day, 1, 31).map_err(|p| fail(format!("day of month: {p}")))?,
            months: field(month, 1, 12).map_err(|p| fail(format!("month: {p}")))?,
            // 7 is Sunday too.
            weekdays: (weekdays | (weekdays >> 7)) & 0x7f,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    /// The first minute strictly after `after` that the schedule names, or
    /// `None` if none comes within [`LOOKAHEAD_DAYS`].
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let mut minute = after.0 / MINUTE_MS + 1;
        let last = minute + LOOKAHEAD_DAYS * DAY_MINUTES;
        while minute < last {
            let day = minute / DAY_MINUTES;
            if !self.day_matches(day) {
                minute = (day + 1) * DAY_MINUTES;
                continue;
            }
            let of_day = minute % DAY_MINUTES;
            if bit(self.hours, of_day / 60) && bit(self.minutes, of_day % 60) {
                return Some(Timestamp(minute * MINUTE_MS));
            }
            minute += 1;
        }
        None
    }

    /// Whether the day `day` (days since 1970-01-01) matches.
    fn day_matches(&self, day: u64) -> bool {
        let (_, month, day_of_month) = civil(day);
        let weekday = (day + 4) % 7; // 1970-01-01 was a Thursday
        if !bit(self.months, month) {
            return false;
        }
        let by_day = bit(self.days, day_of_month);
        let by_weekday = bit(self.weekdays, weekday);
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }
}

fn bit(set: u64, n: u64) -> bool {
    n < 64 && set & (1 << n) != 0
}

/// One field as a bit set over `low..=high`.
fn field(text: &str, low: u64, high: u64) -> Result<u64, String> {
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, number(step)?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(format!("step 0 in {part:?}"));
        }
        let (from, to) = match range {
            "*" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if part.contains('/') => (number(range)?, high),
                None => (number(range)?, number(range)?),
            },
        };
        if from < low || to > high || from > to {
            return Err(format!("{part:?} is outside {low}-{high}"));
        }
        set |= (from..=to)
            .step_by(usize::try_from(step).unwrap_or(usize::MAX))
            .fold(0, |s, n| s | 1 << n);
    }
    Ok(set)
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// (year, month 1–12, day 1–31) of `days` since 1970-01-01, by Howard
/// Hinnant's civil-from-days algorithm.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC date and time, for readable cases.
    fn at(days_since_epoch: u64, hour: u64, minute: u64) -> Timestamp {
        Timestamp(((days_since_epoch * 24 + hour) * 60 + minute) * MINUTE_MS)
    }

    // 2026-11-25 (a Wednesday) is day 20_782 since the epoch.
    const WED: u64 = 20_782;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(WED), (2026, 11, 25));
        assert_eq!(civil(11_016), (2000, 2, 29));
    }

    #[test]
    fn nightly_fires_at_the_next_three_oclock() {
        let cron = Cron::parse("0 3 * * *").unwrap();
        assert_eq!(cron.next_after(at(WED, 2, 59)), Some(at(WED, 3, 0)));
        assert_eq!(cron.next_after(at(WED, 3, 0)), Some(at(WED + 1, 3, 0)));
        assert_eq!(
            Cron::parse("@nightly").unwrap().next_after(at(WED, 12, 0)),
            Some(at(WED + 1, 0, 0))
        );
    }

    #[test]
    fn weekdays_follow_unix_crontab() {
        // Monday to Friday at 09:30: from Friday noon, next is Monday.
        let cron = Cron::parse("30 9 * * 1-5").unwrap();
        let friday = WED + 2;
        assert_eq!(
            cron.next_after(at(friday, 12, 0)),
            Some(at(friday + 3, 9, 30))
        );
        // 0 and 7 are both Sunday.
        let sunday = WED + 4;
        for text in ["0 0 * * 0", "0 0 * * 7"] {
            assert_eq!(
                Cron::parse(text).unwrap().next_after(at(WED, 0, 0)),
                Some(at(sunday, 0, 0))
            );
        }
    }

    #[test]
    fn steps_lists_and_either_day_field() {
        let cron = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(cron.next_after(at(WED, 10, 14)), Some(at(WED, 10, 15)));
        let cron = Cron::parse("0 12 1,15 * 0").unwrap();
        // The 1st, the 15th, or any Sunday: Sunday the 29th comes first.
        assert_eq!(cron.next_after(at(WED, 13, 0)), Some(at(WED + 4, 12, 0)));
        assert_eq!(
            Cron::parse("0 0 30 2 *").unwrap().next_after(at(WED, 0, 0)),
            None
        );
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (text, says) in [
            ("0 3 * *", "5 fields"),
            ("60 3 * * *", "minute"),
            ("0 3 * * 8", "weekday"),
            ("0 3 */0 * *", "step 0"),
            ("0 x * * *", "hour"),
        ] {
            let error = Cron::parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
