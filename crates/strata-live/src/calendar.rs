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
    /// Consecutive dates and the first instant of each.
    dates: Vec<Date>,
    starts: Vec<Nanos>,
}

impl Calendar {
    /// Tabulates 1990–2099; instants outside fall back to the time zone.
    pub fn new(tz: TimeZone) -> Calendar {
        let mut dates = Vec::with_capacity(40_200);
        let mut starts = Vec::with_capacity(40_200);
        let mut day = Date::constant(1990, 1, 1);
        let last = Date::constant(2100, 1, 1);
        while day <= last {
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

    /// The first instant of a day.
    pub fn day_start(&self, d: Date) -> Nanos {
        let i = self.dates.partition_point(|&x| x < d);
        if i < self.dates.len() && self.dates[i] == d {
            self.starts[i]
        } else {
            day_start(d, &self.tz)
        }
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
}
