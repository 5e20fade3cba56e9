//! Calendar arithmetic on Unix seconds, and the store's demand calendar.
//!
//! Hand-rolled (Howard Hinnant's civil-date algorithms) because tens of
//! millions of timestamps are formatted, and a per-call `jiff` conversion
//! would dominate the run time.

pub(crate) const DAY: i64 = 86_400;
pub(crate) const YEAR: f64 = 365.25 * DAY as f64;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// 0 = Sunday.
pub(crate) fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

fn push_2(buf: &mut Vec<u8>, n: u32) {
    buf.push(b'0' + (n / 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// `YYYY-MM-DD`; years are validated to 1000..=9999 up front.
pub(crate) fn push_date(buf: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let y = y as u32;
    push_2(buf, y / 100);
    push_2(buf, y % 100);
    buf.push(b'-');
    push_2(buf, m);
    buf.push(b'-');
    push_2(buf, d);
}

/// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn push_timestamp(buf: &mut Vec<u8>, secs: i64) {
    let days = secs.div_euclid(DAY);
    let s = secs.rem_euclid(DAY) as u32;
    push_date(buf, days);
    buf.push(b'T');
    push_2(buf, s / 3600);
    buf.push(b':');
    push_2(buf, s / 60 % 60);
    buf.push(b':');
    push_2(buf, s % 60);
    buf.push(b'Z');
}

/// Per-day facts about the store's history, indexed from the founding day.
pub(crate) struct Calendar {
    pub first_day: i64,
    /// Store-wide demand multiplier (holiday peak, Prime Day, January lull).
    demand: Vec<f32>,
    /// Month 0..12 of each day, for per-product seasonality.
    month: Vec<u8>,
    /// Sale days, when list prices are cut more often.
    promo: Vec<bool>,
    pub max_demand: f64,
}

impl Calendar {
    pub fn new(first_day: i64, last_day: i64) -> Self {
        let n = (last_day - first_day + 1).max(1) as usize;
        let mut demand = Vec::with_capacity(n);
        let mut month = Vec::with_capacity(n);
        let mut promo = Vec::with_capacity(n);
        for i in 0..n as i64 {
            let day = first_day + i;
            let (y, m, d) = civil_from_days(day);
            let thanksgiving = {
                let nov1 = days_from_civil(y, 11, 1);
                nov1 + ((4 + 7 - weekday(nov1)) % 7) as i64 + 21
            };
            let prime_day = {
                let jul1 = days_from_civil(y, 7, 1);
                jul1 + ((2 + 7 - weekday(jul1)) % 7) as i64 + 7
            };
            let mut f: f64 = [
                0.8, 0.78, 0.9, 0.95, 1.0, 1.05, 1.1, 1.0, 0.95, 1.05, 1.3, 1.55,
            ][m as usize - 1];
            if m == 12 && d > 22 {
                // Past the last shipping date before Christmas.
                f = 0.9;
            }
            let mut sale = false;
            if (thanksgiving..=thanksgiving + 4).contains(&day) {
                f = 2.6;
                sale = true;
            } else if (prime_day..=prime_day + 1).contains(&day) {
                f = 2.2;
                sale = true;
            } else if (thanksgiving - 7..thanksgiving).contains(&day) {
                sale = true;
            }
            f *= match weekday(day) {
                0 | 1 => 1.08,
                5 | 6 => 0.94,
                _ => 1.0,
            };
            demand.push(f as f32);
            month.push((m - 1) as u8);
            promo.push(sale);
        }
        let max_demand = demand.iter().fold(0.0f32, |a, &b| a.max(b)) as f64;
        Calendar {
            first_day,
            demand,
            month,
            promo,
            max_demand,
        }
    }

    #[inline]
    fn index(&self, secs: i64) -> usize {
        ((secs.div_euclid(DAY) - self.first_day).max(0) as usize).min(self.demand.len() - 1)
    }

    #[inline]
    pub fn demand(&self, secs: i64) -> f64 {
        self.demand[self.index(secs)] as f64
    }

    #[inline]
    pub fn month(&self, secs: i64) -> usize {
        self.month[self.index(secs)] as usize
    }

    #[inline]
    pub fn promo(&self, secs: i64) -> bool {
        self.promo[self.index(secs)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_format() {
        for z in [-800_000, -1, 0, 1, 10_957, 20_758, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let mut buf = Vec::new();
        push_timestamp(&mut buf, 1_709_301_900);
        assert_eq!(buf, b"2024-03-01T14:05:00Z");
        let jiff_ts: jiff::Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let mut buf = Vec::new();
        push_timestamp(&mut buf, jiff_ts.as_second() - 1);
        assert_eq!(buf, b"2026-10-31T23:59:59Z");
        assert_eq!(weekday(0), 4);
    }

    #[test]
    fn black_friday_is_the_peak() {
        // 2025-11-28 is Black Friday.
        let bf = days_from_civil(2025, 11, 28);
        let cal = Calendar::new(bf - 400, bf + 40);
        let f = cal.demand(bf * DAY + 3600);
        assert!(f >= 2.4, "{f}");
        assert!(cal.promo(bf * DAY));
        assert!(cal.demand((bf - 300) * DAY) < f);
    }
}
