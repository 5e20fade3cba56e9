//! Conditions on a customer's running totals and order dates, compiled to
//! plain comparisons of the numbers its record holds.
//!
//! Every line of an order asks these of each customer segment (the drift
//! walk reads the totals after the line) and every settle asks them again,
//! so they are the most evaluated conditions there are. The general path
//! builds a value (`Decimal::from` of a count, a ratio with a one), matches
//! it against the literal's kind and rescales the literal on every call;
//! here the literal is turned into bounds once, when the rule is compiled:
//! an integer range for counts, decimal bounds for money.
//!
//! [`Quick::of`] only takes the shapes it can answer exactly as
//! [`crate::eval::Evaluator`]'s general path does, and the proptest below
//! holds the two equal on random values, operators and literals.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use strata_lang::ast::CmpOp;

use crate::eval::{Clock, cmp_decimal, cmp_ratio, cmp_time, op_holds};
use crate::rule::{CField, LOperand, LTest, Lit, TimeLit};
use crate::store::Customer;

/// A compiled customer condition.
#[derive(Clone, Debug)]
pub enum Quick {
    /// `number_of_orders` (or, with `units`, `units_purchased`) lies in
    /// `lo..=hi`; with `outside`, it does not. Counts are never null.
    Count {
        units: bool,
        lo: i128,
        hi: i128,
        outside: bool,
    },
    /// A money total against bounds (each inclusive or not); with
    /// `outside`, the value is not within them. `average_order_value` is
    /// null, and every comparison false, without orders.
    Money {
        field: Purse,
        /// Boxed: two limits are most of a cache line.
        span: Box<Span>,
        outside: bool,
    },
    /// A recorded instant compared with a time literal; false when the
    /// customer has no such instant.
    Instant {
        field: Stamp,
        op: CmpOp,
        lit: TimeLit,
    },
}

/// The bounds of a money test, each inclusive or not.
#[derive(Clone, Debug)]
pub struct Span {
    pub lo: Option<(Limit, bool)>,
    pub hi: Option<(Limit, bool)>,
}

/// A number literal with its mantissa at each scale a value is likely to
/// have: a value of scale `s` compares its mantissa with `scaled[s]`, one
/// integer comparison where a decimal one brings both to a common scale
/// first. Every numeric literal of a rule is one ([`crate::rule::Lit`]):
/// the evaluator compares a plain number (`units_30d >= 10`, `sales_7d >
/// 100`) through it, and these comparisons are most of what a settle does.
#[derive(Clone, Debug)]
pub struct Limit {
    pub value: Decimal,
    /// `value × 10^s` for `s` from `value.scale()` up (below it, zero and
    /// unused). Boxed: a rule's literals are few and stay in cache, and
    /// a condition stays small.
    scaled: Box<[i128; SCALES]>,
}

/// Scales `0..SCALES` have their mantissa ready; a literal's `7.9e28` at
/// most, times `10^7`, stays inside an `i128`.
const SCALES: usize = 8;

impl Limit {
    pub fn new(value: Decimal) -> Limit {
        let mut scaled = [0; SCALES];
        let mut m = value.mantissa();
        for (s, slot) in scaled.iter_mut().enumerate().skip(value.scale() as usize) {
            *slot = m;
            if s + 1 < SCALES {
                m *= 10;
            }
        }
        Limit {
            value,
            scaled: Box::new(scaled),
        }
    }

    /// How `v` compares with the limit, exactly.
    pub fn cmp_value(&self, v: Decimal) -> Ordering {
        let s = v.scale() as usize;
        if s < SCALES && s >= self.value.scale() as usize {
            return v.mantissa().cmp(&self.scaled[s]);
        }
        cmp_decimal(v, self.value)
    }

    /// How `v` compares with the limit times `d` (`d >= 1`), exactly.
    pub fn cmp_times(&self, v: Decimal, d: u64) -> Ordering {
        if d == 1 {
            return self.cmp_value(v);
        }
        let s = v.scale() as usize;
        if s < SCALES
            && s >= self.value.scale() as usize
            && let Some(limit) = self.scaled[s].checked_mul(i128::from(d))
        {
            return v.mantissa().cmp(&limit);
        }
        cmp_ratio(v, Decimal::from(d), self.value)
    }

    /// How the value `n / d` (`d > 0`, as [`crate::eval::V::Num`] holds
    /// it) compares with the limit, exactly.
    pub fn cmp_fraction(&self, n: Decimal, d: Decimal) -> Ordering {
        // Most values are plain numbers: no product to form.
        if d.scale() == 0 && d.mantissa() == 1 {
            self.cmp_value(n)
        } else {
            cmp_ratio(n, d, self.value)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purse {
    Spent,
    Profit,
    /// `amount_spent / number_of_orders`.
    Average,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    Created,
    FirstOrder,
    LastOrder,
}

/// Where a value lies against the bounds of a test: the bounds
/// `(lo, hi)` a single comparison or a range sets (each inclusive or not),
/// and whether it holds outside them instead (`!=`).
type Bounds<T> = (Option<(T, bool)>, Option<(T, bool)>, bool);

fn bounds(test: &LTest) -> Option<Bounds<Decimal>> {
    Some(match test {
        LTest::Cmp(op, Lit::Num(c)) => {
            let c = c.value;
            match op {
                CmpOp::Eq => (Some((c, true)), Some((c, true)), false),
                CmpOp::Ne => (Some((c, true)), Some((c, true)), true),
                CmpOp::Lt => (None, Some((c, false)), false),
                CmpOp::Le => (None, Some((c, true)), false),
                CmpOp::Gt => (Some((c, false)), None, false),
                CmpOp::Ge => (Some((c, true)), None, false),
            }
        }
        LTest::Between(Lit::Num(a), Lit::Num(b)) => {
            (Some((a.value, true)), Some((b.value, true)), false)
        }
        _ => return None,
    })
}

impl Quick {
    /// The compiled form of a customer condition, where it has one.
    pub fn of(op: &LOperand, test: &LTest) -> Option<Quick> {
        let LOperand::C(f) = op else {
            return None;
        };
        match f {
            CField::NumberOfOrders | CField::UnitsPurchased => {
                let (lo, hi, outside) = bounds(test)?;
                // The integers a count can take on each side: `> 2.5` is
                // `>= 3`, `< 3` is `<= 2`.
                let lo = match lo {
                    None => i128::MIN,
                    Some((c, true)) => c.ceil().to_i128()?,
                    Some((c, false)) => c.floor().to_i128()?.checked_add(1)?,
                };
                let hi = match hi {
                    None => i128::MAX,
                    Some((c, true)) => c.floor().to_i128()?,
                    Some((c, false)) => c.ceil().to_i128()?.checked_sub(1)?,
                };
                Some(Quick::Count {
                    units: *f == CField::UnitsPurchased,
                    lo,
                    hi,
                    outside,
                })
            }
            CField::AmountSpent | CField::TotalProfit | CField::AverageOrderValue => {
                let (lo, hi, outside) = bounds(test)?;
                let limit = |b: Option<(Decimal, bool)>| b.map(|(x, incl)| (Limit::new(x), incl));
                let (lo, hi) = (limit(lo), limit(hi));
                let field = match f {
                    CField::AmountSpent => Purse::Spent,
                    CField::TotalProfit => Purse::Profit,
                    _ => Purse::Average,
                };
                Some(Quick::Money {
                    field,
                    span: Box::new(Span { lo, hi }),
                    outside,
                })
            }
            CField::CreatedAt | CField::FirstOrderDate | CField::LastOrderDate => {
                let LTest::Cmp(op, Lit::Time(lit)) = test else {
                    return None;
                };
                let field = match f {
                    CField::CreatedAt => Stamp::Created,
                    CField::FirstOrderDate => Stamp::FirstOrder,
                    _ => Stamp::LastOrder,
                };
                Some(Quick::Instant {
                    field,
                    op: *op,
                    lit: *lit,
                })
            }
            _ => None,
        }
    }

    /// The condition's truth for customer `c` at the clock's instant.
    pub fn holds(&self, c: &Customer, clock: &Clock) -> bool {
        match self {
            Quick::Count {
                units,
                lo,
                hi,
                outside,
            } => {
                let n = if *units {
                    i128::from(c.units)
                } else {
                    c.orders.len() as i128
                };
                (*lo..=*hi).contains(&n) != *outside
            }
            Quick::Money {
                field,
                span,
                outside,
            } => {
                if *field == Purse::Average && c.orders.is_empty() {
                    return false;
                }
                let cmp = |x: &Limit| match field {
                    Purse::Spent => x.cmp_value(c.spent),
                    Purse::Profit => x.cmp_value(c.profit),
                    Purse::Average => x.cmp_times(c.spent, c.orders.len() as u64),
                };
                let above = span.lo.as_ref().is_none_or(|(x, incl)| match cmp(x) {
                    Ordering::Greater => true,
                    Ordering::Equal => *incl,
                    Ordering::Less => false,
                });
                let below = || {
                    span.hi.as_ref().is_none_or(|(x, incl)| match cmp(x) {
                        Ordering::Less => true,
                        Ordering::Equal => *incl,
                        Ordering::Greater => false,
                    })
                };
                (above && below()) != *outside
            }
            Quick::Instant { field, op, lit } => {
                let t = match field {
                    Stamp::Created => c.created_at,
                    Stamp::FirstOrder => c.orders.first().map(|&(t, _)| t),
                    Stamp::LastOrder => c.orders.last().map(|&(t, _)| t),
                };
                let Some(t) = t else {
                    return false;
                };
                op_holds(*op, cmp_time(clock, t, *lit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use strata_lang::ast::CmpOp;

    use super::{Limit, Quick};
    use crate::calendar::Calendar;
    use crate::eval::{Clock, Evaluator, Memberships};
    use crate::rule::{CField, LNode, LOperand, LTest, Lit, Plan, TimeLit};
    use crate::store::{Customer, Store};

    const DAY: i64 = 86_400_000_000_000;
    const NOW: i64 = 1_780_000_000 * 1_000_000_000;

    fn op() -> impl Strategy<Value = CmpOp> {
        proptest::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ])
    }

    /// Small values at the scales money has, so that amounts and
    /// literals fall on either side of each other, with both scales
    /// larger; now and then one from the whole range.
    fn amount() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            6 => (-50i64..500, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
            1 => crate::eval::tests::decimal(),
        ]
    }

    fn literal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            3 => (-2i64..12).prop_map(Decimal::from),
            3 => (-50i64..500, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
            1 => crate::eval::tests::decimal(),
        ]
    }

    fn num_test() -> impl Strategy<Value = LTest> {
        prop_oneof![
            (op(), literal()).prop_map(|(op, c)| LTest::Cmp(op, Lit::Num(Limit::new(c)))),
            (literal(), literal()).prop_map(|(a, b)| {
                LTest::Between(Lit::Num(Limit::new(a)), Lit::Num(Limit::new(b)))
            }),
        ]
    }

    fn time_lit() -> impl Strategy<Value = TimeLit> {
        let near = -400 * DAY..400 * DAY;
        prop_oneof![
            near.clone()
                .prop_map(|o| TimeLit::Instant(i128::from(NOW + o))),
            near.clone().prop_map(TimeLit::Rel),
            (near, 0..3 * DAY).prop_map(|(o, len)| TimeLit::Day(NOW + o, NOW + o + len)),
            Just(TimeLit::Today),
        ]
    }

    fn customer() -> impl Strategy<Value = Customer> {
        (
            proptest::collection::vec(-400 * DAY..DAY, 0..5),
            0u64..12,
            amount(),
            amount(),
            proptest::option::of(-400 * DAY..DAY),
        )
            .prop_map(|(mut times, units, spent, profit, created)| {
                times.sort_unstable();
                Customer {
                    orders: times
                        .into_iter()
                        .enumerate()
                        .map(|(i, t)| (NOW + t, i as u32))
                        .collect(),
                    units,
                    spent,
                    profit,
                    created_at: created.map(|t| NOW + t),
                    alive: true,
                    ..Customer::default()
                }
            })
    }

    fn condition() -> impl Strategy<Value = (CField, LTest)> {
        let number = proptest::sample::select(vec![
            CField::NumberOfOrders,
            CField::UnitsPurchased,
            CField::AmountSpent,
            CField::TotalProfit,
            CField::AverageOrderValue,
        ]);
        let instant = proptest::sample::select(vec![
            CField::CreatedAt,
            CField::FirstOrderDate,
            CField::LastOrderDate,
        ]);
        prop_oneof![
            (number, num_test()),
            (instant, op(), time_lit()).prop_map(|(f, op, t)| (f, LTest::Cmp(op, Lit::Time(t)))),
        ]
    }

    proptest! {
        /// A literal compares with a value, or with a value over a count
        /// or a fraction's divisor, exactly as `Decimal` orders them.
        #[test]
        fn limits_compare_as_decimals(c in literal(), v in amount(), d in 1u64..20, same in any::<bool>()) {
            // Half the time the value is the literal itself, rescaled.
            let v = if same {
                let mut x = c;
                x.rescale((c.scale() + (d % 3) as u32).min(28));
                x
            } else {
                v
            };
            let limit = Limit::new(c);
            prop_assert_eq!(limit.cmp_value(v), v.cmp(&c));
            let want = match c.checked_mul(Decimal::from(d)) {
                Some(cd) => v.cmp(&cd),
                None if c.is_sign_positive() => std::cmp::Ordering::Less,
                None => std::cmp::Ordering::Greater,
            };
            prop_assert_eq!(limit.cmp_times(v, d), want);
            prop_assert_eq!(limit.cmp_fraction(v, Decimal::from(d)), want);
            prop_assert_eq!(limit.cmp_fraction(v, Decimal::ONE), v.cmp(&c));
        }

        /// A compiled condition holds exactly where the general path's
        /// does, and every shape drawn here compiles.
        #[test]
        fn quick_agrees_with_the_general_path(
            c in customer(),
            (f, test) in condition(),
            later in 0..2 * DAY,
            pin in any::<bool>(),
            zeros in 0u32..3,
        ) {
            // Half the time the literal is the customer's own value, at
            // its scale or a larger one: the equal case of every bound.
            let own = match f {
                CField::NumberOfOrders => Some(Decimal::from(c.orders.len())),
                CField::UnitsPurchased => Some(Decimal::from(c.units)),
                CField::AmountSpent => Some(c.spent),
                CField::TotalProfit => Some(c.profit),
                _ => None,
            };
            let test = match (test, own) {
                (LTest::Cmp(op, Lit::Num(_)), Some(v)) if pin => {
                    let mut v = v;
                    v.rescale(v.scale() + zeros);
                    LTest::Cmp(op, Lit::Num(Limit::new(v)))
                }
                (LTest::Between(_, hi), Some(v)) if pin => {
                    LTest::Between(Lit::Num(Limit::new(v)), hi)
                }
                (test, _) => test,
            };
            // Likewise an instant: the customer's own, or now's distance
            // to it.
            let stamp = match f {
                CField::CreatedAt => c.created_at,
                CField::FirstOrderDate => c.orders.first().map(|o| o.0),
                CField::LastOrderDate => c.orders.last().map(|o| o.0),
                _ => None,
            };
            let test = match (test, stamp) {
                (LTest::Cmp(op, Lit::Time(_)), Some(t)) if pin => LTest::Cmp(
                    op,
                    Lit::Time(match zeros {
                        0 => TimeLit::Instant(i128::from(t)),
                        _ => TimeLit::Rel(t - (NOW + later)),
                    }),
                ),
                (test, _) => test,
            };
            let clock = Clock::new(NOW + later, Arc::new(Calendar::new(jiff::tz::TimeZone::UTC)));
            let op = LOperand::C(f);
            let quick = Quick::of(&op, &test);
            prop_assert!(quick.is_some(), "{f:?} {test:?} has no compiled form");
            let mut store = Store::default();
            store.customers.push(c);
            let members = Memberships::default();
            let ev = Evaluator { store: &store, clock: &clock, members: &members, memo: None, tiers: None };
            let general = ev.customer(&LNode::Cond(op, test, Plan::default()), 0);
            prop_assert_eq!(quick.unwrap().holds(&store.customers[0], &clock), general);
        }
    }
}
