//! Calendar arithmetic of the store's time zone, tabulated: the scheduler
//! asks for the date of an instant and the start of a date many times per
//! change, and a time-zone lookup each time would dominate its cost.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use strata_data::Nanos;
use strata_engine::clock::{date_of, day_start};

#[derive(Clone, Debug)]
pub struct Calendar {
    pub tz: TimeZone,
    /// Consecutive dates and the first instant of each; `dates[i]` is day
    /// `FIRST + i` counted from 1970-01-01.
    dates: Vec<Date>,
    starts: Vec<Nanos>,
}

/// Day number of 1990-01-01, the table's first day.
const FIRST: i64 = 7_305;

/// Days from 1970-01-01 to `d` (negative before), by the usual shift of
/// the year to start in March so that the leap day comes last: whole
/// 400-year eras of 146,097 days, then years of 365 days plus a leap day
/// every 4th but not every 100th, then the days of the months since
/// March (30.6 a month, in integers).
pub fn epoch_day(d: Date) -> i64 {
    let (m, day) = (i64::from(d.month()), i64::from(d.day()));
    let y = i64::from(d.year()) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl Calendar {
    /// Tabulates 1990–2099; instants outside fall back to the time zone.
    pub fn new(tz: TimeZone) -> Calendar {
        let mut dates = Vec::with_capacity(40_200);
        let mut starts = Vec::with_capacity(40_200);
        let mut day = Date::constant(1990, 1, 1);
        let last = Date::constant(2100, 1, 1);
        while day <= last {
            debug_assert_eq!(epoch_day(day) - FIRST, dates.len() as i64);
            dates.push(day);
            starts.push(day_start(day, &tz));
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        Calendar { tz, dates, starts }
    }

    /// The calendar day an instant falls on.
    pub fn date_of(&self, t: Nanos) -> Date {
        let i = self.starts.partition_point(|&s| s <= t);
        if i == 0 || i == self.starts.len() {
            return date_of(t, &self.tz);
        }
        self.dates[i - 1]
    }

    /// The table index of a day, if it is in the table.
    fn index(&self, d: Date) -> Option<usize> {
        let i = usize::try_from(epoch_day(d) - FIRST).ok()?;
        (i < self.dates.len()).then_some(i)
    }

    /// The first instant of a day.
    pub fn day_start(&self, d: Date) -> Nanos {
        match self.index(d) {
            Some(i) => self.starts[i],
            None => day_start(d, &self.tz),
        }
    }

    /// The day `n` days after `d` (before, for a negative `n`); `None`
    /// past the last or first representable day.
    pub fn checked_shift(&self, d: Date, n: i64) -> Option<Date> {
        if let Some(i) = self.index(d)
            && let Some(x) = i.checked_add_signed(n as isize)
            && let Some(&day) = self.dates.get(x)
        {
            return Some(day);
        }
        d.checked_add(jiff::Span::new().days(n)).ok()
    }

    /// [`Calendar::checked_shift`], stopping at the first or last
    /// representable day.
    pub fn shift(&self, d: Date, n: i64) -> Date {
        self.checked_shift(d, n)
            .unwrap_or(if n < 0 { Date::MIN } else { Date::MAX })
    }

    /// The first instant of the day after `d`.
    pub fn day_end(&self, d: Date) -> Nanos {
        match d.tomorrow() {
            Ok(next) => self.day_start(next),
            Err(_) => Nanos::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_time_zone_across_dst_and_the_table_edges() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let cal = Calendar::new(tz.clone());
        let hour = 3_600 * 1_000_000_000i64;
        let probes = [
            "1989-12-31T23:30:00Z",
            "1990-01-01T00:00:00Z",
            "2024-03-30T23:00:00Z",
            "2024-03-30T22:59:59.999999999Z",
            "2024-10-27T00:30:00Z",
            "2099-12-31T23:30:00Z",
            "2150-06-01T00:00:00Z",
        ];
        for p in probes {
            let t = strata_engine::clock::timestamp_nanos(p.parse().unwrap());
            for dt in [-hour, -1, 0, 1, hour] {
                let x = t + dt;
                assert_eq!(cal.date_of(x), date_of(x, &tz), "{p} {dt}");
                let d = date_of(x, &tz);
                assert_eq!(cal.day_start(d), day_start(d, &tz), "{d}");
            }
        }
    }

    #[test]
    fn day_numbers_and_shifts_agree_with_jiff() {
        let cal = Calendar::new(TimeZone::UTC);
        let epoch = Date::constant(1970, 1, 1);
        let mut d = Date::constant(1600, 2, 27);
        while d < Date::constant(2200, 1, 1) {
            let days = i64::from((d - epoch).get_days());
            assert_eq!(epoch_day(d), days, "{d}");
            for n in [-400, -31, -30, -29, -1, 0, 1, 29, 30, 31, 400] {
                let want = d.checked_add(jiff::Span::new().days(n)).unwrap();
                assert_eq!(cal.shift(d, n), want, "{d} {n}");
            }
            d = d.checked_add(jiff::Span::new().days(13)).unwrap();
        }
        assert_eq!(cal.checked_shift(Date::MAX, 1), None);
        assert_eq!(cal.shift(Date::MAX, 1), Date::MAX);
        assert_eq!(cal.shift(Date::MIN, -1), Date::MIN);
    }
}
