//! The instant a rule is evaluated at, and the calendar arithmetic of the
//! store's time zone that dates, `today` and daily windows need.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use strata_data::Nanos;

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// `now` together with the store's time zone.
///
/// **The engine never reads the wall clock**: every evaluation is as of the
/// `AsOf` it was built with, so results are reproducible.
#[derive(Clone, Debug)]
pub struct AsOf {
    pub now: Nanos,
    pub tz: TimeZone,
    /// The calendar date of `now` in `tz`.
    pub today: Date,
}

impl AsOf {
    pub fn new(now: jiff::Timestamp, tz: TimeZone) -> AsOf {
        let now = timestamp_nanos(now);
        let today = date_of(now, &tz);
        AsOf { now, tz, today }
    }

    /// The calendar day an instant falls on, in the store's time zone.
    pub fn date_of(&self, instant: Nanos) -> Date {
        date_of(instant, &self.tz)
    }

    /// The first instant of a calendar day in the store's time zone.
    pub fn day_start(&self, date: Date) -> Nanos {
        day_start(date, &self.tz)
    }

    /// The first instant of the day after `date`: a date used as an upper
    /// bound includes its whole day, i.e. everything before this.
    pub fn day_end_exclusive(&self, date: Date) -> Nanos {
        match date.tomorrow() {
            Ok(next) => self.day_start(next),
            Err(_) => Nanos::MAX,
        }
    }

    /// `now − days × 24 h`, the start of an `N`-day order window.
    pub fn window_start(&self, days: i64) -> Nanos {
        self.now.saturating_sub(days * NANOS_PER_DAY)
    }

    /// `today − (days − 1)`, the first date of an `N`-day daily-row window.
    pub fn daily_window_start(&self, days: i64) -> Date {
        self.today
            .checked_sub(jiff::Span::new().days(days - 1))
            .unwrap_or(Date::MIN)
    }

    /// `today − days`.
    pub fn days_ago(&self, days: i64) -> Date {
        self.today
            .checked_sub(jiff::Span::new().days(days))
            .unwrap_or(Date::MIN)
    }
}

pub fn timestamp_nanos(ts: jiff::Timestamp) -> Nanos {
    // The store's range is i64 nanoseconds; clamp rather than wrap for the
    // far-off instants a rule literal may name.
    let n = ts.as_nanosecond();
    n.clamp(i128::from(Nanos::MIN), i128::from(Nanos::MAX)) as Nanos
}

pub fn date_of(instant: Nanos, tz: &TimeZone) -> Date {
    let ts = jiff::Timestamp::from_nanosecond(i128::from(instant)).unwrap_or(jiff::Timestamp::MIN);
    tz.to_datetime(ts).date()
}

pub fn day_start(date: Date, tz: &TimeZone) -> Nanos {
    // `to_zoned` resolves a midnight that a DST change skips to the first
    // instant of the day that exists.
    match date.to_zoned(tz.clone()) {
        Ok(z) => timestamp_nanos(z.timestamp()),
        Err(_) if date <= Date::constant(1970, 1, 1) => Nanos::MIN,
        Err(_) => Nanos::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_bounds_follow_the_time_zone() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let now: jiff::Timestamp = "2024-03-31T12:00:00Z".parse().unwrap();
        let as_of = AsOf::new(now, tz);
        assert_eq!(as_of.today, Date::constant(2024, 3, 31));
        // 2024-03-31 in Berlin starts at 2024-03-30T23:00Z and, with the
        // switch to summer time, lasts 23 hours.
        let start = as_of.day_start(as_of.today);
        let end = as_of.day_end_exclusive(as_of.today);
        let expect: jiff::Timestamp = "2024-03-30T23:00:00Z".parse().unwrap();
        assert_eq!(start, timestamp_nanos(expect));
        assert_eq!(end - start, 23 * 3_600 * NANOS_PER_SECOND);
        assert_eq!(as_of.daily_window_start(30), Date::constant(2024, 3, 2));
        assert_eq!(as_of.days_ago(30), Date::constant(2024, 3, 1));
    }
}
