//! Predicates: what a condition's test becomes once its literals are
//! resolved against `now` and the store's time zone.
//!
//! Every numeric and timestamp test is turned into a set of intervals plus a
//! verdict for null. That one shape covers `=`, `!=`, `<`, `BETWEEN`, `IN`,
//! `NOT IN`, `IS [NOT] NULL` and `IS [NOT] EMPTY`, so the null rules of
//! language.md live in one place: a negated comparison is the complement
//! *among non-null values* and never matches null.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use strata_lang::ast::{CmpOp, Literal, Test, TextOp, Value};

use crate::clock::AsOf;
use crate::error::Internal;

/// One end of a numeric interval: `(value, inclusive)`; `None` is infinite.
type End = Option<(Decimal, bool)>;

#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    pub lo: End,
    pub hi: End,
}

impl Interval {
    const ALL: Interval = Interval { lo: None, hi: None };

    fn point(v: Decimal) -> Interval {
        Interval {
            lo: Some((v, true)),
            hi: Some((v, true)),
        }
    }

    pub fn contains(&self, v: Decimal) -> bool {
        let lo_ok = match self.lo {
            None => true,
            Some((b, true)) => v >= b,
            Some((b, false)) => v > b,
        };
        let hi_ok = match self.hi {
            None => true,
            Some((b, true)) => v <= b,
            Some((b, false)) => v < b,
        };
        lo_ok && hi_ok
    }

    /// Whether `num / den` lies in the interval, by cross-multiplication so
    /// that a quotient is compared exactly (`den > 0`).
    fn contains_ratio(&self, num: Decimal, den: Decimal) -> bool {
        let side = |bound: Decimal| -> Ordering {
            // Compare num with bound × den; fall back to division when the
            // product does not fit a Decimal.
            match bound.checked_mul(den) {
                Some(scaled) => num.cmp(&scaled),
                None => match num.checked_div(den) {
                    Some(q) => q.cmp(&bound),
                    // A quotient too large for a Decimal is beyond any bound.
                    None if num.is_sign_negative() => Ordering::Less,
                    None => Ordering::Greater,
                },
            }
        };
        let lo_ok = match self.lo {
            None => true,
            Some((b, true)) => side(b) != Ordering::Less,
            Some((b, false)) => side(b) == Ordering::Greater,
        };
        let hi_ok = match self.hi {
            None => true,
            Some((b, true)) => side(b) != Ordering::Greater,
            Some((b, false)) => side(b) == Ordering::Less,
        };
        lo_ok && hi_ok
    }
}

/// A test on a number or money value.
#[derive(Clone, Debug, PartialEq)]
pub struct NumPred {
    pub null: bool,
    pub ranges: Vec<Interval>,
}

impl NumPred {
    pub fn test(&self, v: Option<Decimal>) -> bool {
        match v {
            None => self.null,
            Some(v) => self.ranges.iter().any(|r| r.contains(v)),
        }
    }

    /// Tests `num / den`; a zero denominator is null.
    pub fn test_ratio(&self, num: Decimal, den: Decimal) -> bool {
        if den.is_zero() {
            return self.null;
        }
        let (num, den) = if den.is_sign_negative() {
            (-num, -den)
        } else {
            (num, den)
        };
        self.ranges.iter().any(|r| r.contains_ratio(num, den))
    }

    /// The same test on integer quotients `num / den` (`den >= 0`, zero
    /// being null), compared exactly in `i128` by cross-multiplication.
    /// `None` when a bound has more than 18 decimals or a mantissa beyond
    /// `i64`, where the products could overflow.
    pub fn for_int_ratios(&self) -> Option<IntRatioPred> {
        let bound = |end: &End| -> Option<Option<(i64, i128, bool)>> {
            match end {
                None => Some(None),
                Some((b, incl)) => {
                    let m = i64::try_from(b.mantissa()).ok()?;
                    let t = b.scale();
                    (t <= 18).then(|| Some((m, 10_i128.pow(t), *incl)))
                }
            }
        };
        let ranges = self
            .ranges
            .iter()
            .map(|r| Some((bound(&r.lo)?, bound(&r.hi)?)))
            .collect::<Option<Vec<_>>>()?;
        Some(IntRatioPred {
            null: self.null,
            ranges,
        })
    }

    /// The same test on integers that hold `value × 10^scale`, with
    /// [`I64Pred`]'s null sentinel.
    pub fn to_fixed(&self, scale: u32) -> I64Pred {
        let factor = Decimal::from_i128_with_scale(10_i128.pow(scale), 0);
        let to_int = |d: Decimal, round_up: bool| -> Option<i64> {
            let k = d.checked_mul(factor)?;
            let k = if round_up { k.ceil() } else { k.floor() };
            i64::try_from(k).ok()
        };
        let mut ranges = Vec::new();
        for r in &self.ranges {
            let lo = match r.lo {
                None => Some(I64Pred::MIN_VALUE),
                Some((b, incl)) => {
                    let floor_or_ceil = if incl {
                        to_int(b, true)
                    } else {
                        to_int(b, false).map(|f| f.saturating_add(1))
                    };
                    match floor_or_ceil {
                        Some(v) => Some(v.max(I64Pred::MIN_VALUE)),
                        // Beyond i64: below everything or above everything.
                        None if b.is_sign_negative() => Some(I64Pred::MIN_VALUE),
                        None => None,
                    }
                }
            };
            let hi = match r.hi {
                None => Some(i64::MAX),
                Some((b, incl)) => {
                    let v = if incl {
                        to_int(b, false)
                    } else {
                        to_int(b, true).map(|c| c.saturating_sub(1))
                    };
                    match v {
                        Some(v) => Some(v),
                        None if b.is_sign_negative() => None,
                        None => Some(i64::MAX),
                    }
                }
            };
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo <= hi
            {
                ranges.push((lo, hi));
            }
        }
        I64Pred {
            null: self.null,
            ranges,
        }
    }
}

/// A [`NumPred`] on integer quotients (see [`NumPred::for_int_ratios`]):
/// each bound `m / 10^t` is kept as `(m, 10^t, inclusive)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntRatioPred {
    pub null: bool,
    #[allow(clippy::type_complexity)]
    pub ranges: Vec<(Option<(i64, i128, bool)>, Option<(i64, i128, bool)>)>,
}

impl IntRatioPred {
    /// Whether `num / den` passes; `den == 0` is null.
    #[inline]
    pub fn test(&self, num: i64, den: i64) -> bool {
        if den == 0 {
            return self.null;
        }
        // num/den ⋛ m/p  ⇔  num·p ⋛ m·den, as den > 0 and p > 0; each
        // product stays below 2^63 · 10^18 < 2^127.
        let side = |(m, p, _): (i64, i128, bool)| {
            (i128::from(num) * p).cmp(&(i128::from(m) * i128::from(den)))
        };
        self.ranges.iter().any(|&(lo, hi)| {
            let lo_ok = lo.is_none_or(|b| match side(b) {
                Ordering::Greater => true,
                Ordering::Equal => b.2,
                Ordering::Less => false,
            });
            let hi_ok = hi.is_none_or(|b| match side(b) {
                Ordering::Less => true,
                Ordering::Equal => b.2,
                Ordering::Greater => false,
            });
            lo_ok && hi_ok
        })
    }
}

/// A test on an `i64` column (instants in nanoseconds, or fixed-point
/// numbers) whose null is [`I64Pred::NULL`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I64Pred {
    pub null: bool,
    /// Inclusive `(lo, hi)` ranges.
    pub ranges: Vec<(i64, i64)>,
}

impl I64Pred {
    pub const NULL: i64 = i64::MIN;
    pub const MIN_VALUE: i64 = i64::MIN + 1;

    #[inline]
    pub fn test(&self, v: i64) -> bool {
        if v == Self::NULL {
            return self.null;
        }
        self.ranges.iter().any(|&(lo, hi)| lo <= v && v <= hi)
    }

    pub fn test_opt(&self, v: Option<i64>) -> bool {
        self.test(v.unwrap_or(Self::NULL))
    }
}

/// A test on text, case-insensitive (both sides lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextPred {
    pub null: bool,
    pub op: TextTest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextTest {
    Eq(String),
    Ne(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Match {
        op: TextOp,
        negated: bool,
        needle: String,
    },
    /// Non-null text: empty or not (`IS [NOT] EMPTY`, `IS NOT NULL`).
    Empty(bool),
    Any,
    Never,
}

/// Whether `s` lower-cased equals `lower` (already lower-cased), without
/// allocating for ASCII text: ASCII lower-cases to ASCII, so an ASCII `s`
/// can only equal an ASCII `lower`.
pub fn lower_eq(s: &str, lower: &str) -> bool {
    if s.is_ascii() {
        s.len() == lower.len() && s.eq_ignore_ascii_case(lower)
    } else {
        s.to_lowercase() == lower
    }
}

impl TextPred {
    pub fn test(&self, v: Option<&str>) -> bool {
        match v {
            None => self.null,
            Some(s) => self.test_present(s),
        }
    }

    pub fn test_present(&self, s: &str) -> bool {
        let lower = || s.to_lowercase();
        match &self.op {
            TextTest::Eq(x) => lower_eq(s, x),
            TextTest::Ne(x) => !lower_eq(s, x),
            TextTest::In(xs) => xs.iter().any(|x| lower_eq(s, x)),
            TextTest::NotIn(xs) => !xs.iter().any(|x| lower_eq(s, x)),
            TextTest::Match {
                op,
                negated,
                needle,
            } => {
                let l = lower();
                let hit = match op {
                    TextOp::Contains => l.contains(needle.as_str()),
                    TextOp::StartsWith => l.starts_with(needle.as_str()),
                    TextOp::EndsWith => l.ends_with(needle.as_str()),
                };
                hit != *negated
            }
            TextTest::Empty(want_empty) => s.is_empty() == *want_empty,
            TextTest::Any => true,
            TextTest::Never => false,
        }
    }
}

/// A test on a boolean: non-null and equal to `want`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoolPred {
    pub want: bool,
}

impl BoolPred {
    pub fn test(&self, v: Option<bool>) -> bool {
        v == Some(self.want)
    }
}

/// A test on a text set (tags), which is never null.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetPred {
    Contains(String),
    NotContains(String),
    Empty(bool),
}

impl SetPred {
    pub fn test<'a>(&self, mut elements: impl Iterator<Item = &'a str>) -> bool {
        match self {
            SetPred::Contains(x) => elements.any(|e| e.to_lowercase() == *x),
            SetPred::NotContains(x) => elements.all(|e| e.to_lowercase() != *x),
            SetPred::Empty(want) => elements.next().is_none() == *want,
        }
    }
}

fn number(lit: &Literal) -> Result<Decimal, Internal> {
    match &lit.value {
        Value::Number(n) => Ok(*n),
        other => Err(Internal::new(format!("expected a number, got {other:?}"))),
    }
}

fn text(lit: &Literal) -> Result<String, Internal> {
    match &lit.value {
        Value::String(s) => Ok(s.to_lowercase()),
        other => Err(Internal::new(format!("expected a string, got {other:?}"))),
    }
}

fn complement_of_points(mut points: Vec<Decimal>) -> Vec<Interval> {
    points.sort();
    points.dedup();
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut lo: End = None;
    for p in points {
        out.push(Interval {
            lo,
            hi: Some((p, false)),
        });
        lo = Some((p, false));
    }
    out.push(Interval { lo, hi: None });
    out
}

pub fn num_pred(test: &Test) -> Result<NumPred, Internal> {
    let zero = Decimal::ZERO;
    let (null, ranges) = match test {
        Test::Cmp(op, lit) => {
            let c = number(lit)?;
            let ranges = match op {
                CmpOp::Eq => vec![Interval::point(c)],
                CmpOp::Ne => complement_of_points(vec![c]),
                CmpOp::Lt => vec![Interval {
                    lo: None,
                    hi: Some((c, false)),
                }],
                CmpOp::Le => vec![Interval {
                    lo: None,
                    hi: Some((c, true)),
                }],
                CmpOp::Gt => vec![Interval {
                    lo: Some((c, false)),
                    hi: None,
                }],
                CmpOp::Ge => vec![Interval {
                    lo: Some((c, true)),
                    hi: None,
                }],
            };
            (false, ranges)
        }
        Test::Between(a, b) => (
            false,
            vec![Interval {
                lo: Some((number(a)?, true)),
                hi: Some((number(b)?, true)),
            }],
        ),
        Test::In { negated, values } => {
            let points = values.iter().map(number).collect::<Result<Vec<_>, _>>()?;
            if *negated {
                (false, complement_of_points(points))
            } else {
                (false, points.into_iter().map(Interval::point).collect())
            }
        }
        Test::IsNull { negated: false } => (true, Vec::new()),
        Test::IsNull { negated: true } => (false, vec![Interval::ALL]),
        Test::IsEmpty { negated: false } => (true, vec![Interval::point(zero)]),
        Test::IsEmpty { negated: true } => (false, complement_of_points(vec![zero])),
        Test::Text { .. } | Test::Truth => {
            return Err(Internal::new(format!("{test:?} on a number")));
        }
    };
    Ok(NumPred { null, ranges })
}

/// The instants a time literal stands for, as an inclusive range: one
/// instant for a timestamp or relative value, a whole calendar day for a
/// date or `today`.
pub fn instant_range(lit: &Literal, as_of: &AsOf) -> Result<(i64, i64), Internal> {
    match &lit.value {
        Value::Timestamp { instant, .. } => {
            let t = crate::clock::timestamp_nanos(*instant);
            Ok((t, t))
        }
        Value::Relative(rel) => {
            let offset = i128::from(rel.offset_seconds()) * 1_000_000_000;
            let t = (i128::from(as_of.now) + offset)
                .clamp(i128::from(i64::MIN + 1), i128::from(i64::MAX));
            Ok((t as i64, t as i64))
        }
        Value::Date(d) => Ok(day_range(*d, as_of)),
        Value::Today => Ok(day_range(as_of.today, as_of)),
        other => Err(Internal::new(format!("expected a time, got {other:?}"))),
    }
}

fn day_range(d: jiff::civil::Date, as_of: &AsOf) -> (i64, i64) {
    let start = as_of.day_start(d).max(I64Pred::MIN_VALUE);
    let end = as_of.day_end_exclusive(d);
    let last = if end == i64::MAX { i64::MAX } else { end - 1 };
    (start, last)
}

pub fn time_pred(test: &Test, as_of: &AsOf) -> Result<I64Pred, Internal> {
    const LO: i64 = I64Pred::MIN_VALUE;
    const HI: i64 = i64::MAX;
    let before = |t: i64| t.checked_sub(1).filter(|&x| x >= LO).map(|x| (LO, x));
    let after = |t: i64| t.checked_add(1).map(|x| (x, HI));
    let (null, ranges) = match test {
        Test::Cmp(op, lit) => {
            let (lo, hi) = instant_range(lit, as_of)?;
            let ranges: Vec<(i64, i64)> = match op {
                CmpOp::Eq => vec![(lo, hi)],
                CmpOp::Ne => before(lo).into_iter().chain(after(hi)).collect(),
                CmpOp::Lt => before(lo).into_iter().collect(),
                CmpOp::Le => vec![(LO, hi)],
                CmpOp::Gt => after(hi).into_iter().collect(),
                CmpOp::Ge => vec![(lo, HI)],
            };
            (false, ranges)
        }
        Test::Between(a, b) => {
            let (lo, _) = instant_range(a, as_of)?;
            let (_, hi) = instant_range(b, as_of)?;
            (false, if lo <= hi { vec![(lo, hi)] } else { Vec::new() })
        }
        Test::IsNull { negated: false } => (true, Vec::new()),
        Test::IsNull { negated: true } => (false, vec![(LO, HI)]),
        other => return Err(Internal::new(format!("{other:?} on a timestamp"))),
    };
    Ok(I64Pred { null, ranges })
}

pub fn text_pred(test: &Test) -> Result<TextPred, Internal> {
    let (null, op) = match test {
        Test::Cmp(CmpOp::Eq, lit) => (false, TextTest::Eq(text(lit)?)),
        Test::Cmp(CmpOp::Ne, lit) => (false, TextTest::Ne(text(lit)?)),
        Test::In { negated, values } => {
            let xs = values.iter().map(text).collect::<Result<Vec<_>, _>>()?;
            (
                false,
                if *negated {
                    TextTest::NotIn(xs)
                } else {
                    TextTest::In(xs)
                },
            )
        }
        Test::Text { op, negated, value } => (
            false,
            TextTest::Match {
                op: *op,
                negated: *negated,
                needle: text(value)?,
            },
        ),
        Test::IsNull { negated: false } => (true, TextTest::Never),
        Test::IsNull { negated: true } => (false, TextTest::Any),
        Test::IsEmpty { negated: false } => (true, TextTest::Empty(true)),
        Test::IsEmpty { negated: true } => (false, TextTest::Empty(false)),
        other => return Err(Internal::new(format!("{other:?} on text"))),
    };
    Ok(TextPred { null, op })
}

pub fn bool_pred(test: &Test) -> Result<BoolPred, Internal> {
    let lit_bool = |lit: &Literal| match lit.value {
        Value::Bool(b) => Ok(b),
        ref other => Err(Internal::new(format!("expected a boolean, got {other:?}"))),
    };
    match test {
        Test::Truth => Ok(BoolPred { want: true }),
        Test::Cmp(CmpOp::Eq, lit) => Ok(BoolPred {
            want: lit_bool(lit)?,
        }),
        Test::Cmp(CmpOp::Ne, lit) => Ok(BoolPred {
            want: !lit_bool(lit)?,
        }),
        other => Err(Internal::new(format!("{other:?} on a boolean"))),
    }
}

pub fn set_pred(test: &Test) -> Result<SetPred, Internal> {
    match test {
        Test::Text {
            op: TextOp::Contains,
            negated,
            value,
        } => {
            let x = text(value)?;
            Ok(if *negated {
                SetPred::NotContains(x)
            } else {
                SetPred::Contains(x)
            })
        }
        Test::IsEmpty { negated } => Ok(SetPred::Empty(!negated)),
        other => Err(Internal::new(format!("{other:?} on a text set"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn cond(rule: &str) -> Test {
        match strata_lang::parse(rule).unwrap() {
            strata_lang::ast::Expr::Cond(c) => c.test,
            other => panic!("not a condition: {other:?}"),
        }
    }

    /// Each case: rule on `x`, then values that must match and must not.
    #[test]
    fn numeric_tests_agree_on_decimals_fixed_and_ratios() {
        let cases: &[(&str, &[&str], &[&str], bool)] = &[
            ("x > 5", &["5.01", "6"], &["5", "4.99"], false),
            ("x >= 5", &["5", "5.001"], &["4.999"], false),
            ("x < 49.99", &["49.98", "-1"], &["49.99", "50"], false),
            ("x <= 49.995", &["49.99"], &["50"], false),
            ("x = 3", &["3", "3.00"], &["3.01"], false),
            ("x != 3", &["2", "4"], &["3"], false),
            (
                "x BETWEEN 10 AND 49.99",
                &["10", "49.99"],
                &["9.99", "50"],
                false,
            ),
            ("x IN (1, 2)", &["1", "2"], &["3"], false),
            ("x NOT IN (1, 2)", &["0", "1.5", "3"], &["1", "2"], false),
            ("x IS EMPTY", &["0"], &["1"], true),
            ("x IS NOT EMPTY", &["1", "-1"], &["0"], false),
            ("x IS NULL", &[], &["0"], true),
            ("x IS NOT NULL", &["0"], &[], false),
        ];
        for (rule, yes, no, null) in cases {
            let p = num_pred(&cond(rule)).unwrap();
            let fixed = p.to_fixed(3);
            assert_eq!(p.test(None), *null, "{rule} on null");
            assert_eq!(fixed.test(I64Pred::NULL), *null, "{rule} fixed on null");
            for (vals, want) in [(yes, true), (no, false)] {
                for v in vals.iter() {
                    let v = d(v);
                    assert_eq!(p.test(Some(v)), want, "{rule} on {v}");
                    let k = i64::try_from((v * Decimal::from(1000)).trunc()).unwrap();
                    assert_eq!(fixed.test(k), want, "{rule} fixed on {v}");
                    // v as a ratio v*7 / 7.
                    assert_eq!(
                        p.test_ratio(v * Decimal::from(7), Decimal::from(7)),
                        want,
                        "{rule} ratio on {v}"
                    );
                }
            }
        }
    }

    #[test]
    fn ratios_compare_exactly() {
        // 1/3 is above 0.333333333333 and below 0.333333333334.
        let p = num_pred(&cond("x > 0.333333333333")).unwrap();
        assert!(p.test_ratio(Decimal::ONE, Decimal::from(3)));
        let p = num_pred(&cond("x >= 0.333333333334")).unwrap();
        assert!(!p.test_ratio(Decimal::ONE, Decimal::from(3)));
        // 14 / (1/3 × 3) stays exactly 14.
        let p = num_pred(&cond("x <= 14")).unwrap();
        assert!(p.test_ratio(Decimal::from(14 * 3), Decimal::from(3)));
    }

    #[test]
    fn integer_ratios_agree_with_decimal_ratios() {
        let rules = [
            "x > 0.333333333333",
            "x >= 1",
            "x < -2.5",
            "x = 0.5",
            "x != 0.5",
            "x BETWEEN 0.1 AND 14",
            "x IN (3, 0.25)",
            "x NOT IN (3)",
            "x IS EMPTY",
            "x IS NOT NULL",
            "x <= 9223372036854775807",
        ];
        let pairs = [
            (1, 3),
            (-5, 2),
            (0, 7),
            (1, 2),
            (42, 3),
            (7, 0),
            (i64::MAX, 1),
            (i64::MIN + 1, 3),
            (1, 4),
        ];
        for rule in rules {
            let p = num_pred(&cond(rule)).unwrap();
            let fast = p
                .for_int_ratios()
                .expect("short bounds have the integer form");
            for (n, d) in pairs {
                assert_eq!(
                    fast.test(n, d),
                    p.test_ratio(Decimal::from(n), Decimal::from(d)),
                    "{rule} on {n}/{d}"
                );
            }
        }
        // Bounds the integer form cannot hold exactly fall back.
        assert!(
            num_pred(&cond("x > 0.3333333333333333333333333"))
                .unwrap()
                .for_int_ratios()
                .is_none()
        );
        assert!(
            num_pred(&cond("x > 92233720368547758070"))
                .unwrap()
                .for_int_ratios()
                .is_none()
        );
    }

    #[test]
    fn fixed_rounding_of_thresholds_finer_than_the_scale() {
        let p = num_pred(&cond("x > 5.005")).unwrap().to_fixed(2);
        assert!(!p.test(500));
        assert!(p.test(501));
        let p = num_pred(&cond("x < 5.005")).unwrap().to_fixed(2);
        assert!(p.test(500));
        assert!(!p.test(501));
        let p = num_pred(&cond("x = 5.005")).unwrap().to_fixed(2);
        assert!(!p.test(500) && !p.test(501));
    }
}
