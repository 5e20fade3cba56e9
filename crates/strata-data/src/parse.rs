//! Cell parsers.
//!
//! The hot ones (decimals, integers, timestamps) are hand written: a large
//! `orders.csv` holds tens of millions of such cells, and a fixed grammar is
//! both faster and stricter than general-purpose parsers (no exponents, no
//! thousands separators, no timestamps without an offset).
//!
//! Internal parsers return a `&'static str` describing what is wrong, so a
//! bad cell costs no allocation until it is reported.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::store::Nanos;

pub(crate) const NOT_A_DECIMAL: &str = "not a decimal";
pub(crate) const NOT_AN_INTEGER: &str = "not an integer";
pub(crate) const OUT_OF_RANGE: &str = "out of range";
pub(crate) const NEGATIVE: &str = "must not be negative";
const NOT_A_TIMESTAMP: &str = "not a timestamp";
const NOT_A_DATE: &str = "not a date";
const NO_SUCH_DATE: &str = "not a valid calendar date";
const TIMESTAMP_OUT_OF_RANGE: &str = "timestamp out of range";

/// A decimal: optional sign, digits with at most one `.`, at least one digit.
/// Exact: the scale written is kept (`12.50` stays `12.50`).
pub(crate) fn decimal(text: &str) -> Result<Decimal, &'static str> {
    let bytes = text.as_bytes();
    let (negative, body) = split_sign(bytes);
    // Fast path: up to 18 significant digits fit an i64 mantissa.
    let mut mantissa: i64 = 0;
    let mut significant = 0;
    let mut scale = 0u32;
    let mut digits = 0;
    let mut point = false;
    for &c in body {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                scale += u32::from(point);
                if mantissa != 0 || c != b'0' {
                    significant += 1;
                    if significant > 18 {
                        return decimal_wide(negative, body);
                    }
                }
                mantissa = mantissa * 10 + i64::from(c - b'0');
            }
            b'.' if !point => point = true,
            _ => return Err(NOT_A_DECIMAL),
        }
    }
    if digits == 0 {
        return Err(NOT_A_DECIMAL);
    }
    if scale > 28 {
        return Err(OUT_OF_RANGE);
    }
    Ok(Decimal::new(
        if negative { -mantissa } else { mantissa },
        scale,
    ))
}

/// The slow path of [`decimal`] for long mantissas (up to Decimal's 96 bits).
fn decimal_wide(negative: bool, body: &[u8]) -> Result<Decimal, &'static str> {
    let mut mantissa: i128 = 0;
    let mut significant = 0;
    let mut scale = 0u32;
    let mut point = false;
    for &c in body {
        match c {
            b'0'..=b'9' => {
                scale += u32::from(point);
                if mantissa != 0 || c != b'0' {
                    significant += 1;
                    if significant > 29 {
                        return Err(OUT_OF_RANGE);
                    }
                }
                mantissa = mantissa * 10 + i128::from(c - b'0');
            }
            b'.' if !point => point = true,
            _ => return Err(NOT_A_DECIMAL),
        }
    }
    if scale > 28 {
        return Err(OUT_OF_RANGE);
    }
    Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale)
        .map_err(|_| OUT_OF_RANGE)
}

pub(crate) fn non_negative_decimal(text: &str) -> Result<Decimal, &'static str> {
    let value = decimal(text)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(NEGATIVE);
    }
    Ok(value)
}

/// A product rating, 0 to 5 inclusive.
pub(crate) fn rating(text: &str) -> Result<Decimal, &'static str> {
    let value = decimal(text)?;
    if value < Decimal::ZERO || value > Decimal::from(5) {
        return Err("must be between 0 and 5");
    }
    Ok(value)
}

/// An integer: optional sign and digits only (`2.0` is not an integer).
pub(crate) fn integer(text: &str) -> Result<i128, &'static str> {
    let (negative, body) = split_sign(text.as_bytes());
    if body.is_empty() {
        return Err(NOT_AN_INTEGER);
    }
    let mut value: i128 = 0;
    for &c in body {
        if !c.is_ascii_digit() {
            return Err(NOT_AN_INTEGER);
        }
        value = value * 10 + i128::from(c - b'0');
        // Far beyond any column's range, and keeps i128 from overflowing.
        if value > i128::from(u64::MAX) {
            return Err(OUT_OF_RANGE);
        }
    }
    Ok(if negative { -value } else { value })
}

/// An integer ≥ 0 (inventory, sessions, bsr, reviews).
pub(crate) fn count(text: &str) -> Result<u64, &'static str> {
    let value = integer(text)?;
    if value < 0 {
        return Err(NEGATIVE);
    }
    u64::try_from(value).map_err(|_| OUT_OF_RANGE)
}

/// An order line's quantity: an integer ≥ 1 that fits `u32`.
pub(crate) fn quantity(text: &str) -> Result<u32, &'static str> {
    let value = integer(text)?;
    if value < 1 {
        return Err("must be at least 1");
    }
    u32::try_from(value).map_err(|_| OUT_OF_RANGE)
}

/// `true` or `false` in any case.
pub(crate) fn boolean(text: &str) -> Result<bool, &'static str> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("not true or false")
    }
}

fn split_sign(bytes: &[u8]) -> (bool, &[u8]) {
    match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    }
}

/// Parses a timestamp: RFC 3339 with `Z` or `±hh:mm` (fractional seconds up
/// to nanoseconds; `T`, `t` or a space between date and time, as RFC 3339
/// allows), or a bare date `YYYY-MM-DD` meaning the start of that day in
/// `tz`. Surrounding ASCII whitespace is ignored.
///
/// The error is a short description of what is wrong.
pub fn parse_timestamp(text: &str, tz: &TimeZone) -> Result<Nanos, String> {
    TimestampParser::new(tz.clone())
        .parse(text.trim_ascii())
        .map_err(str::to_owned)
}

/// Parses a calendar date `YYYY-MM-DD`. Surrounding ASCII whitespace is
/// ignored.
pub fn parse_date(text: &str) -> Result<Date, String> {
    date(text.trim_ascii()).map_err(str::to_owned)
}

pub(crate) fn date(text: &str) -> Result<Date, &'static str> {
    let (year, month, day) = ymd(text.as_bytes()).ok_or(NOT_A_DATE)?;
    if text.len() != 10 {
        return Err(NOT_A_DATE);
    }
    civil_date(year, month, day)
}

/// Checks the calendar (no 30 February) and builds the date.
fn civil_date(year: i32, month: u32, day: u32) -> Result<Date, &'static str> {
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(NO_SUCH_DATE);
    }
    // Four digits always fit jiff's range (-9999..=9999).
    Date::new(year as i16, month as i8, day as i8).map_err(|_| NO_SUCH_DATE)
}

/// Reads `YYYY-MM-DD` at the start of `bytes` without checking the calendar.
fn ymd(bytes: &[u8]) -> Option<(i32, u32, u32)> {
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])?;
    let month = digits(&bytes[5..7])?;
    let day = digits(&bytes[8..10])?;
    Some((year as i32, month, day))
}

fn digits(bytes: &[u8]) -> Option<u32> {
    let mut value = 0;
    for &c in bytes {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(c - b'0');
    }
    Some(value)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`); cheaper than going through jiff for every cell.
fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses timestamp cells for one store time zone, remembering the start of
/// each bare date already seen (time zone arithmetic is the slow part, and a
/// file holds few distinct dates).
pub(crate) struct TimestampParser {
    tz: TimeZone,
    midnights: FxHashMap<Date, Nanos>,
}

impl TimestampParser {
    pub(crate) fn new(tz: TimeZone) -> TimestampParser {
        TimestampParser {
            tz,
            midnights: FxHashMap::default(),
        }
    }

    pub(crate) fn parse(&mut self, text: &str) -> Result<Nanos, &'static str> {
        let bytes = text.as_bytes();
        let (year, month, day) = ymd(bytes).ok_or(NOT_A_TIMESTAMP)?;
        if bytes.len() == 10 {
            let date = civil_date(year, month, day)?;
            return self.midnight(date);
        }
        let mut rest = &bytes[10..];
        let time = |rest: &[u8]| -> Option<(u32, u32, u32)> {
            if rest.len() < 9 || !matches!(rest[0], b'T' | b't' | b' ') {
                return None;
            }
            if rest[3] != b':' || rest[6] != b':' {
                return None;
            }
            Some((
                digits(&rest[1..3])?,
                digits(&rest[4..6])?,
                digits(&rest[7..9])?,
            ))
        };
        let (hour, minute, second) = time(rest).ok_or(NOT_A_TIMESTAMP)?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(NOT_A_TIMESTAMP);
        }
        rest = &rest[9..];
        let mut nanos: i64 = 0;
        if let [b'.', tail @ ..] = rest {
            let count = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if count == 0 || count > 9 {
                return Err(NOT_A_TIMESTAMP);
            }
            nanos = i64::from(digits(&tail[..count]).ok_or(NOT_A_TIMESTAMP)?)
                * 10i64.pow(9 - count as u32);
            rest = &tail[count..];
        }
        let offset_seconds: i64 = match rest {
            [] => return Err("timestamp without Z or ±hh:mm offset"),
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = digits(&[*h1, *h2]).ok_or(NOT_A_TIMESTAMP)?;
                let minutes = digits(&[*m1, *m2]).ok_or(NOT_A_TIMESTAMP)?;
                if hours > 23 || minutes > 59 {
                    return Err(NOT_A_TIMESTAMP);
                }
                let seconds = i64::from(hours * 3600 + minutes * 60);
                if *sign == b'-' { -seconds } else { seconds }
            }
            _ => return Err(NOT_A_TIMESTAMP),
        };
        civil_date(year, month, day)?;
        let seconds = days_from_civil(year, month, day) * 86_400
            + i64::from(hour * 3600 + minute * 60 + second)
            - offset_seconds;
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Nanos::try_from(total).map_err(|_| TIMESTAMP_OUT_OF_RANGE)
    }

    /// The first instant of `date` in the store's time zone. Where the clocks
    /// skip midnight (a DST gap), that is the moment the gap ends; where
    /// midnight happens twice, the earlier one.
    fn midnight(&mut self, date: Date) -> Result<Nanos, &'static str> {
        if let Some(&nanos) = self.midnights.get(&date) {
            return Ok(nanos);
        }
        let zoned = date
            .to_zoned(self.tz.clone())
            .map_err(|_| TIMESTAMP_OUT_OF_RANGE)?;
        let nanos = Nanos::try_from(zoned.timestamp().as_nanosecond())
            .map_err(|_| TIMESTAMP_OUT_OF_RANGE)?;
        self.midnights.insert(date, nanos);
        Ok(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Debug;

    /// Runs a table of cases: the input, then the expected value written as
    /// `Ok(..)`'s debug form or the error text.
    fn check<T: Debug>(
        mut parse: impl FnMut(&str) -> Result<T, &'static str>,
        cases: &[(&str, &str)],
    ) {
        let mut failures = Vec::new();
        for &(input, expect) in cases {
            let got = match parse(input) {
                Ok(value) => format!("{value:?}"),
                Err(message) => format!("error: {message}"),
            };
            if got != expect {
                failures.push(format!("{input:?}: expected {expect:?}, got {got:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn decimals() {
        check(
            decimal,
            &[
                ("0", "0"),
                ("12", "12"),
                ("12.50", "12.50"),
                ("-3.25", "-3.25"),
                ("+3.25", "3.25"),
                (".5", "0.5"),
                ("5.", "5"),
                ("007.10", "7.10"),
                ("123456789012345678", "123456789012345678"),
                ("1234567890123456789.5", "1234567890123456789.5"),
                (
                    "0.0000000000000000000000000001",
                    "0.0000000000000000000000000001",
                ),
                (
                    "79228162514264337593543950335",
                    "79228162514264337593543950335",
                ),
                ("79228162514264337593543950336", "error: out of range"),
                ("0.00000000000000000000000000001", "error: out of range"),
                ("", "error: not a decimal"),
                ("-", "error: not a decimal"),
                (".", "error: not a decimal"),
                ("1.2.3", "error: not a decimal"),
                ("12,50", "error: not a decimal"),
                ("1,234.50", "error: not a decimal"),
                ("$12", "error: not a decimal"),
                ("12 EUR", "error: not a decimal"),
                ("1e5", "error: not a decimal"),
                ("NaN", "error: not a decimal"),
                ("inf", "error: not a decimal"),
                ("--1", "error: not a decimal"),
                ("1_000", "error: not a decimal"),
            ],
        );
    }

    #[test]
    fn decimal_scale_is_kept() {
        assert_eq!(decimal("12.50").unwrap().scale(), 2);
        assert_eq!(decimal("12.50").unwrap(), Decimal::new(125, 1));
    }

    #[test]
    fn bounded_numbers() {
        check(
            non_negative_decimal,
            &[
                ("0", "0"),
                ("-0.00", "0.00"),
                ("-0.01", "error: must not be negative"),
            ],
        );
        check(
            rating,
            &[
                ("0", "0"),
                ("4.5", "4.5"),
                ("5.0", "5.0"),
                ("5.01", "error: must be between 0 and 5"),
                ("-1", "error: must be between 0 and 5"),
            ],
        );
        check(
            count,
            &[
                ("0", "0"),
                ("42", "42"),
                ("+7", "7"),
                ("18446744073709551615", "18446744073709551615"),
                ("18446744073709551616", "error: out of range"),
                (
                    "99999999999999999999999999999999999999999",
                    "error: out of range",
                ),
                ("-1", "error: must not be negative"),
                ("1.0", "error: not an integer"),
                ("1e3", "error: not an integer"),
                ("", "error: not an integer"),
                ("-", "error: not an integer"),
            ],
        );
        check(
            quantity,
            &[
                ("1", "1"),
                ("4294967295", "4294967295"),
                ("4294967296", "error: out of range"),
                ("0", "error: must be at least 1"),
                ("-2", "error: must be at least 1"),
                ("2.5", "error: not an integer"),
            ],
        );
        check(
            boolean,
            &[
                ("true", "true"),
                ("FALSE", "false"),
                ("True", "true"),
                ("yes", "error: not true or false"),
                ("1", "error: not true or false"),
            ],
        );
    }

    #[test]
    fn dates() {
        check(
            date,
            &[
                ("2024-03-01", "2024-03-01"),
                ("2024-02-29", "2024-02-29"),
                ("2023-02-29", "error: not a valid calendar date"),
                ("2024-13-01", "error: not a valid calendar date"),
                ("2024-00-10", "error: not a valid calendar date"),
                ("2024-04-31", "error: not a valid calendar date"),
                ("1900-02-29", "error: not a valid calendar date"),
                ("2000-02-29", "2000-02-29"),
                ("2024-3-1", "error: not a date"),
                ("2024/03/01", "error: not a date"),
                ("2024-03-01T00:00:00Z", "error: not a date"),
                ("01.03.2024", "error: not a date"),
                ("", "error: not a date"),
            ],
        );
        assert_eq!(
            parse_date(" 2024-03-01 ").unwrap().to_string(),
            "2024-03-01"
        );
    }

    fn instant(nanos: Nanos) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap()
    }

    /// Parses in `tz` and shows the instant in UTC, so cases read as text.
    fn check_timestamps(tz: &str, cases: &[(&str, &str)]) {
        let mut parser = TimestampParser::new(TimeZone::get(tz).unwrap());
        check(|text| parser.parse(text).map(instant), cases);
    }

    #[test]
    fn timestamps() {
        let cases: &[(&str, &str)] = &[
            ("2024-03-01T14:05:00Z", "2024-03-01T14:05:00Z"),
            ("2024-03-01t14:05:00z", "2024-03-01T14:05:00Z"),
            ("2024-03-01 14:05:00Z", "2024-03-01T14:05:00Z"),
            ("2024-03-01T14:05:00+02:00", "2024-03-01T12:05:00Z"),
            ("2024-03-01T00:30:00-05:30", "2024-03-01T06:00:00Z"),
            ("2024-03-01T14:05:00.5Z", "2024-03-01T14:05:00.5Z"),
            (
                "2024-03-01T14:05:00.123456789Z",
                "2024-03-01T14:05:00.123456789Z",
            ),
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
            ("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z"),
            ("2024-03-01", "2024-03-01T00:00:00Z"),
            (
                "1677-09-21T00:12:43.145224192Z",
                "1677-09-21T00:12:43.145224192Z",
            ),
            (
                "2262-04-11T23:47:16.854775807Z",
                "2262-04-11T23:47:16.854775807Z",
            ),
            (
                "2262-04-11T23:47:16.854775808Z",
                "error: timestamp out of range",
            ),
            (
                "1677-09-21T00:12:43.145224191Z",
                "error: timestamp out of range",
            ),
            ("9999-12-31", "error: timestamp out of range"),
            ("0001-01-01T00:00:00Z", "error: timestamp out of range"),
            ("2024-03-01T14:05:00.1234567890Z", "error: not a timestamp"),
            ("2024-03-01T14:05:00.Z", "error: not a timestamp"),
            (
                "2024-03-01T14:05:00",
                "error: timestamp without Z or ±hh:mm offset",
            ),
            (
                "2024-03-01T14:05:00.250",
                "error: timestamp without Z or ±hh:mm offset",
            ),
            ("2024-03-01T14:05Z", "error: not a timestamp"),
            ("2024-03-01T24:00:00Z", "error: not a timestamp"),
            ("2024-03-01T23:60:00Z", "error: not a timestamp"),
            ("2024-03-01T23:59:60Z", "error: not a timestamp"),
            ("2024-03-01T14:05:00+0200", "error: not a timestamp"),
            ("2024-03-01T14:05:00+02", "error: not a timestamp"),
            ("2024-03-01T14:05:00+24:00", "error: not a timestamp"),
            ("2024-03-01T14:05:00 Z", "error: not a timestamp"),
            (
                "2024-03-01T14:05:00Z[Europe/Berlin]",
                "error: not a timestamp",
            ),
            ("2024-02-30T14:05:00Z", "error: not a valid calendar date"),
            ("2024-02-30", "error: not a valid calendar date"),
            ("03/01/2024", "error: not a timestamp"),
            ("1709301900", "error: not a timestamp"),
            ("", "error: not a timestamp"),
        ];
        check_timestamps("UTC", cases);
    }

    #[test]
    fn bare_dates_are_midnight_in_the_store_zone() {
        check_timestamps(
            "Europe/Berlin",
            &[
                ("2024-01-15", "2024-01-14T23:00:00Z"),
                ("2024-07-15", "2024-07-14T22:00:00Z"),
                // Offsets written out do not depend on the store zone.
                ("2024-07-15T00:00:00Z", "2024-07-15T00:00:00Z"),
            ],
        );
        // Havana skips from 00:00 to 01:00 on 2023-03-12: the day starts at
        // 01:00 CDT (05:00 UTC).
        check_timestamps(
            "America/Havana",
            &[
                ("2023-03-12", "2023-03-12T05:00:00Z"),
                ("2023-03-13", "2023-03-13T04:00:00Z"),
            ],
        );
        // The public helper parses the same way.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            instant(parse_timestamp(" 2024-01-15 ", &berlin).unwrap()).to_string(),
            "2024-01-14T23:00:00Z"
        );
        assert_eq!(
            parse_timestamp("soon", &berlin).unwrap_err(),
            "not a timestamp"
        );
    }

    #[test]
    fn days_from_civil_matches_jiff() {
        let epoch = Date::new(1970, 1, 1).unwrap();
        let mut day = Date::new(1600, 1, 1).unwrap();
        let last = Date::new(2500, 12, 31).unwrap();
        while day <= last {
            let expect = i64::from((day - epoch).get_days());
            let got = days_from_civil(i32::from(day.year()), day.month() as u32, day.day() as u32);
            assert_eq!(got, expect, "{day}");
            day = day.tomorrow().unwrap();
        }
    }
}
