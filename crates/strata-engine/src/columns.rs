//! Column views the evaluator scans, whether the data came from the files
//! (text, tags, flags) or was computed at load (aggregates).

use rust_decimal::Decimal;
use strata_data::{TagColumn, TextColumn};

use crate::pred::I64Pred;

/// A number or money column.
#[derive(Clone, Debug)]
pub enum NumCol {
    /// Values stored as `value × 10^scale` in an `i64` ([`I64Pred::NULL`]
    /// for null): the fast path, used whenever every value fits.
    Fixed { scale: u32, vals: Vec<i64> },
    /// Exact decimals that do not fit the fixed form.
    Dec(Vec<Option<Decimal>>),
    /// Quotients kept as numerator and denominator so that comparisons are
    /// exact; a zero denominator is null.
    Ratio {
        num: Vec<Decimal>,
        den: Vec<Decimal>,
    },
    /// The same as integers scaled by one common factor (which cancels in
    /// the quotient): the fast path, when every value fits. Denominators
    /// are never negative.
    FixedRatio { num: Vec<i64>, den: Vec<i64> },
}

/// A single number read from a [`NumCol`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Num {
    Dec(Decimal),
    Ratio(Decimal, Decimal),
}

impl Num {
    /// The value as a decimal; a quotient is rounded to 12 places (the
    /// comparisons never use this rounded form).
    pub fn to_decimal(self) -> Decimal {
        match self {
            Num::Dec(d) => d,
            Num::Ratio(n, d) => match n.checked_div(d) {
                Some(q) => q.round_dp(12).normalize(),
                None => Decimal::ZERO,
            },
        }
    }
}

/// The largest scale money is kept at in fixed point.
pub const MAX_FIXED_SCALE: u32 = 9;

/// `d × 10^scale` as an integer, if that is exact and fits.
pub fn to_fixed(d: Decimal, scale: u32) -> Option<i64> {
    let own = d.scale();
    if own > scale {
        return None;
    }
    let m = d
        .mantissa()
        .checked_mul(10_i128.checked_pow(scale - own)?)?;
    i64::try_from(m).ok().filter(|&v| v != I64Pred::NULL)
}

/// The decimal an `i128` at `scale` stands for, if a Decimal can hold it.
pub fn from_fixed(v: i128, scale: u32) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(v, scale).ok()
}

impl NumCol {
    pub fn from_ints(vals: impl IntoIterator<Item = Option<i64>>) -> NumCol {
        NumCol::Fixed {
            scale: 0,
            vals: vals
                .into_iter()
                .map(|v| v.unwrap_or(I64Pred::NULL))
                .collect(),
        }
    }

    pub fn from_u64(vals: &[u64]) -> NumCol {
        NumCol::from_ints(vals.iter().map(|&v| i64::try_from(v).ok()))
    }

    /// Chooses the fixed form when every value has at most 9 decimals and
    /// fits an `i64` at the largest scale present.
    pub fn from_decimals(vals: Vec<Option<Decimal>>) -> NumCol {
        let scale = vals.iter().flatten().map(|d| d.scale()).max().unwrap_or(0);
        if scale <= MAX_FIXED_SCALE {
            let factor = Decimal::from_i128_with_scale(10_i128.pow(scale), 0);
            let fixed: Option<Vec<i64>> = vals
                .iter()
                .map(|v| match v {
                    None => Some(I64Pred::NULL),
                    Some(d) => {
                        let k = d.checked_mul(factor)?;
                        i64::try_from(k).ok().filter(|&k| k != I64Pred::NULL)
                    }
                })
                .collect();
            if let Some(vals) = fixed {
                return NumCol::Fixed { scale, vals };
            }
        }
        NumCol::Dec(vals)
    }

    /// A column of fixed-point sums at `scale`; falls back to decimals for
    /// a sum that does not fit an `i64`.
    pub fn from_fixed_sums(vals: &[i128], scale: u32) -> NumCol {
        let fixed: Option<Vec<i64>> = vals
            .iter()
            .map(|&v| i64::try_from(v).ok().filter(|&v| v != I64Pred::NULL))
            .collect();
        match fixed {
            Some(vals) => NumCol::Fixed { scale, vals },
            None => NumCol::Dec(vals.iter().map(|&v| from_fixed(v, scale)).collect()),
        }
    }

    /// A column of quotients `num[i] / den[i]`, in the fixed form when
    /// every numerator and denominator fits an `i64` at one common scale.
    pub fn ratio(num: Vec<Decimal>, den: Vec<Decimal>) -> NumCol {
        // A negative denominator flips both signs, so the quotient stays.
        let (num, den): (Vec<Decimal>, Vec<Decimal>) = num
            .into_iter()
            .zip(den)
            .map(|(n, d)| {
                if d.is_sign_negative() {
                    (-n, -d)
                } else {
                    (n, d)
                }
            })
            .unzip();
        let scale = num.iter().chain(&den).map(|d| d.scale()).max().unwrap_or(0);
        if scale <= MAX_FIXED_SCALE {
            let fixed = |v: &[Decimal]| -> Option<Vec<i64>> {
                v.iter().map(|&d| to_fixed(d, scale)).collect()
            };
            if let (Some(n), Some(d)) = (fixed(&num), fixed(&den)) {
                return NumCol::FixedRatio { num: n, den: d };
            }
        }
        NumCol::Ratio { num, den }
    }

    pub fn len(&self) -> usize {
        match self {
            NumCol::FixedRatio { num, .. } => num.len(),
            NumCol::Fixed { vals, .. } => vals.len(),
            NumCol::Dec(v) => v.len(),
            NumCol::Ratio { num, .. } => num.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, row: usize) -> Option<Num> {
        match self {
            NumCol::Fixed { scale, vals } => match vals[row] {
                I64Pred::NULL => None,
                v => Some(Num::Dec(Decimal::new(v, *scale))),
            },
            NumCol::Dec(v) => v[row].map(Num::Dec),
            NumCol::FixedRatio { num, den } => {
                if den[row] == 0 {
                    None
                } else {
                    Some(Num::Ratio(Decimal::from(num[row]), Decimal::from(den[row])))
                }
            }
            NumCol::Ratio { num, den } => {
                if den[row].is_zero() {
                    None
                } else {
                    Some(Num::Ratio(num[row], den[row]))
                }
            }
        }
    }
}

/// What a field reads, whatever its origin.
#[derive(Clone, Copy, Debug)]
pub enum Col<'a> {
    Text(&'a TextColumn),
    Tags(&'a TagColumn),
    Bool(&'a [Option<bool>]),
    Num(&'a NumCol),
    /// Instants in nanoseconds, [`I64Pred::NULL`] for null.
    Time(&'a [i64]),
}

pub fn time_column(vals: &[Option<i64>]) -> Vec<i64> {
    vals.iter().map(|v| v.unwrap_or(I64Pred::NULL)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn decimals_take_the_fixed_form_when_they_fit() {
        let d = |s: &str| Some(Decimal::from_str(s).unwrap());
        match NumCol::from_decimals(vec![d("1.5"), None, d("-2.25")]) {
            NumCol::Fixed { scale, vals } => {
                assert_eq!(scale, 2);
                assert_eq!(vals, vec![150, I64Pred::NULL, -225]);
            }
            other => panic!("{other:?}"),
        }
        let big = d("79228162514264337593543950335");
        assert!(matches!(NumCol::from_decimals(vec![big]), NumCol::Dec(_)));
        let fine = d("0.0000000001");
        assert!(matches!(NumCol::from_decimals(vec![fine]), NumCol::Dec(_)));
    }
}
