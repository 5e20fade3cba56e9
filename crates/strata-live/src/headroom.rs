//! How many lines a product must still be sold before a false rule can
//! turn true for it.
//!
//! A line added to a product re-evaluates each of its segments the line
//! can move (`rule::Drift`). For `days_of_stock < 7 AND units_30d > 0`, a
//! best seller with a year of stock is not a member and each of its lines
//! can only bring it nearer, so each line evaluated it again. But a sum
//! over a window grows by at most the units (or revenue, or buyers) added,
//! and the velocity and days of stock are fractions of such sums: from one
//! evaluation, the units it takes to reach the nearest literal follow, and
//! until that many have been added the pair cannot enter. The engine keeps
//! that mark per pair ([`crate::quiet::PairTable`]) against the product's
//! running [`crate::store::Added`] counters and passes the pair by below
//! it.
//!
//! **A headroom is sound only while nothing it does not count moves the
//! pair nearer.** It is taken only on a test whose truth grows the way
//! lines move its operand (`units_30d >= 10`, `days_of_stock < 7`), on an
//! operand that time only moves the other way (a window loses lines, a
//! velocity falls, days of stock rise; conversion rates, whose sessions
//! leave the window, and sums of revenue once a negative line exists are
//! not among them), so that a false test stays false as the clock moves;
//! a condition that reads nothing moving with time or lines blocks for
//! good; every other change to what the rule reads evaluates the pair and
//! takes a new mark. A line of negative revenue added after a mark counts
//! as zero towards it: it lowers the sum, and its leaving the window later
//! undoes no more than that.
//!
//! `revenue_share > L` is the one operand time moves nearer (the group's
//! total falls as other products' lines leave), so its mark is on a
//! counter that adds that fall, weighted by the rule's largest threshold,
//! to the product's own revenue ([`share_counter`]): every move towards
//! the threshold is counted, at no less than its size.

use rust_decimal::Decimal;

use crate::eval::{Evaluator, fixed};
use crate::rule::{LNode, LOperand, LTest, Lit, PField, PFn};
use crate::store::{Added, Product, days_before};

/// What adding lines must bring before a false rule can turn true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Headroom {
    /// Any line may turn it.
    Now,
    /// Added lines alone never turn it.
    Never,
    /// Not before this many more units.
    Units(u64),
    /// Not before this many more hundredths of revenue.
    Cents(u64),
    /// Not before this many more lines.
    Lines(u64),
    /// Not before the product's [`share_counter`] has grown by this many
    /// hundredths.
    Share(u64),
}

/// Marks are kept as one `u64`: the counter in the top three bits, the
/// counter's value at which the pair must be looked at again below.
const TAG: u32 = 61;
const VALUE: u64 = (1 << TAG) - 1;
const UNITS: u64 = 1;
const CENTS: u64 = 2;
const LINES: u64 = 3;
const SHARE: u64 = 4;

/// What can bring a product's revenue share nearer a threshold `θ` (a
/// fraction, at most the rule's [`crate::rule::LRule::share_weight`]
/// `w`), summed since a mark, in hundredths: its own lines added (`x`
/// moves `θ·S − s` by `(1 − θ)·x`), and its group's total falling (`z`
/// moves it by `θ·z`, or `(θ − 1)·z` for its own line leaving), so
/// `Added::cents + w·fallen`. Rounded down for a mark's base (`up`
/// false) and up for the value it is compared with, so the difference is
/// never short of the real move.
pub fn share_counter(added: &Added, fallen: u64, weight: u64, up: bool) -> u64 {
    let w = u128::from(fallen) * u128::from(weight);
    let w = if up {
        w.div_ceil(1_000_000)
    } else {
        w / 1_000_000
    };
    added
        .cents
        .saturating_add(u64::try_from(w).unwrap_or(u64::MAX))
}

/// No mark: every line looks.
pub const NO_MARK: u64 = 0;

impl Headroom {
    /// The mark for a product whose counters stand at `added`; `share`
    /// gives its [`share_counter`] (rounded down), asked only of a share
    /// headroom.
    pub fn mark(self, added: &Added, share: impl FnOnce() -> u64) -> u64 {
        let at = |tag: u64, base: u64, more: u64| tag << TAG | base.saturating_add(more).min(VALUE);
        match self {
            Headroom::Now => NO_MARK,
            // A lines' count no product reaches.
            Headroom::Never => LINES << TAG | VALUE,
            Headroom::Units(n) => at(UNITS, added.units, n),
            Headroom::Cents(n) => at(CENTS, added.cents, n),
            Headroom::Lines(n) => at(LINES, added.lines, n),
            Headroom::Share(n) => at(SHARE, share(), n),
        }
    }
}

/// Whether a pair marked `mark` is still short of it; `share` gives the
/// product's [`share_counter`] (rounded up), asked only of a share mark.
pub fn short_of(mark: u64, added: &Added, share: impl FnOnce() -> u64) -> bool {
    let value = mark & VALUE;
    match mark >> TAG {
        UNITS => added.units < value,
        CENTS => added.cents < value,
        LINES => added.lines < value,
        SHARE => share() < value,
        _ => false,
    }
}

/// The stronger of two blocks on a conjunction (either holds it false).
fn stronger(a: Headroom, b: Headroom) -> Headroom {
    use Headroom::*;
    match (a, b) {
        (Never, _) | (_, Never) => Never,
        (Now, x) | (x, Now) => x,
        (Units(x), Units(y)) => Units(x.max(y)),
        (Cents(x), Cents(y)) => Cents(x.max(y)),
        (Lines(x), Lines(y)) => Lines(x.max(y)),
        (Share(x), Share(y)) => Share(x.max(y)),
        // Counters of different kinds do not compare: either will do.
        (x, _) => x,
    }
}

/// The weaker of two blocks on a disjunction (each part must stay false).
fn weaker(a: Headroom, b: Headroom) -> Headroom {
    use Headroom::*;
    match (a, b) {
        (Now, _) | (_, Now) => Now,
        (Never, x) | (x, Never) => x,
        (Units(x), Units(y)) => Units(x.min(y)),
        (Cents(x), Cents(y)) => Cents(x.min(y)),
        (Lines(x), Lines(y)) => Lines(x.min(y)),
        (Share(x), Share(y)) => Share(x.min(y)),
        _ => Now,
    }
}

/// An operand as a function of `Δ`, the units (revenue, lines) added from
/// now on: it moves no further than this. Integers, so that the headroom
/// costs a few multiplications rather than decimal divisions.
enum Reach {
    /// At most `(c / 10^scale + step·Δ) / k`.
    Up {
        c: i128,
        scale: u32,
        step: i128,
        k: i128,
    },
    /// At least `num / (c + step·Δ)`, `c > 0`.
    Down { num: i128, c: i128, step: i128 },
}

/// The weights of a velocity: `(5·u7/7 + 3·u14/14 + 2·u30/30) / 10` as one
/// fraction over `7·14·30·10`; a unit sold now adds one to each window.
const VELOCITY_DEN: i128 = 7 * 14 * 30 * 10;
const VELOCITY_STEP: i128 = 5 * 14 * 30 + 3 * 7 * 30 + 2 * 7 * 14;

impl Evaluator<'_> {
    /// The headroom of a rule that is false for product `p` now.
    pub fn product_headroom(&self, node: &LNode, p: u32) -> Headroom {
        debug_assert!(!self.product(node, p), "headroom of a true rule");
        self.headroom(node, p)
    }

    /// A part that is true comes out as [`Headroom::Now`]: one with a
    /// boundary stands past it, any other is not looked into.
    fn headroom(&self, node: &LNode, p: u32) -> Headroom {
        match node {
            // Nothing that moves with time or lines: as it stands, for good.
            _ if fixed(node) => match self.product(node, p) {
                true => Headroom::Now,
                false => Headroom::Never,
            },
            // A false part holds it false.
            LNode::And(xs) => {
                let mut h = Headroom::Now;
                for x in xs {
                    h = stronger(h, self.headroom(x, p));
                    if h == Headroom::Never {
                        break;
                    }
                }
                h
            }
            // Every part must turn.
            LNode::Or(xs) => {
                let mut h = Headroom::Never;
                for x in xs {
                    h = weaker(h, self.headroom(x, p));
                    if h == Headroom::Now {
                        break;
                    }
                }
                h
            }
            LNode::Not(_) => Headroom::Now,
            LNode::Cond(op, test, _) => self.cond_headroom(op, test, p),
        }
    }

    fn cond_headroom(&self, op: &LOperand, test: &LTest, e: u32) -> Headroom {
        let p = &self.store.products[e as usize];
        let now = self.clock.now;
        let window = |days: i64| p.sums_since(days_before(now, days));
        let units = |c: u64| Reach::Up {
            c: c.into(),
            scale: 0,
            step: 1,
            k: 1,
        };
        let money = |r: Decimal| Reach::Up {
            c: r.mantissa(),
            scale: r.scale(),
            step: 1,
            k: 1,
        };
        let velocity = || {
            let (u7, u14, u30) = (window(7).0, window(14).0, window(30).0);
            i128::from(u7) * (5 * 14 * 30)
                + i128::from(u14) * (3 * 7 * 30)
                + i128::from(u30) * (2 * 7 * 14)
        };
        use Headroom::{Cents, Lines, Units};
        let (reach, counter): (Reach, fn(u64) -> Headroom) = match op {
            LOperand::P(PField::Units(n)) => (units(window(*n).0), Units),
            LOperand::P(PField::UnitsSold) => {
                (units(p.lines.last().map_or(0, |l| l.cum_units)), Units)
            }
            LOperand::P(PField::SalesN(n)) => (money(window(*n).1), Cents),
            LOperand::P(PField::Sales) => (
                money(p.lines.last().map_or(Decimal::ZERO, |l| l.cum_revenue)),
                Cents,
            ),
            LOperand::P(PField::AvgDaily(n)) => (
                Reach::Up {
                    c: window(*n).0.into(),
                    scale: 0,
                    step: 1,
                    k: (*n).into(),
                },
                Units,
            ),
            LOperand::P(PField::DailyVelocity) => (
                Reach::Up {
                    c: velocity(),
                    scale: 0,
                    step: VELOCITY_STEP,
                    k: VELOCITY_DEN,
                },
                Units,
            ),
            LOperand::P(PField::DaysOfStock) => {
                let (Some(inv), c) = (p.inventory, velocity()) else {
                    return Headroom::Now;
                };
                if c == 0 {
                    return Headroom::Now;
                }
                (
                    Reach::Down {
                        num: i128::from(inv) * VELOCITY_DEN,
                        c,
                        step: VELOCITY_STEP,
                    },
                    Units,
                )
            }
            LOperand::P(PField::RevenueShare) => return self.share_headroom(test, p),
            LOperand::P(PField::Customers30d) => match p.buyers_30d(now) {
                Some(n) => (units(n as u64), Lines),
                None => return Headroom::Now,
            },
            // A window that ends now: lines only leave it as time passes.
            LOperand::PCall {
                f,
                since,
                until: None,
            } => {
                let lo = since.map_or(i64::MIN, |b| self.bound(b));
                let (u, r) = p.sums(p.first_at(lo), p.lines.len());
                match f {
                    PFn::UnitsSold => (units(u), Units),
                    PFn::Sales => (money(r), Cents),
                }
            }
            _ => return Headroom::Now,
        };
        let in_cents = matches!(counter(0), Cents(_));
        // A negative line in the window raises the sum when it leaves.
        if in_cents && self.store.negative_revenue {
            return Headroom::Now;
        }
        let up = matches!(reach, Reach::Up { .. });
        let Some(l) = boundary(test, up) else {
            return Headroom::Now;
        };
        // Revenue counts in hundredths (each line's rounded up by the
        // counter).
        let per = if in_cents { 100 } else { 1 };
        match reach_literal(&reach, l, per) {
            Reached::Never => Headroom::Never,
            Reached::Now | Reached::After(0) => Headroom::Now,
            Reached::After(n) => counter(u64::try_from(n).unwrap_or(VALUE)),
        }
    }

    /// `revenue_share > L` (or `>=`), false: the share `100·s / S` reaches
    /// `L` only once `θ·S − s` (`θ = L / 100`) is gone, and only the moves
    /// [`share_counter`] sums bring it nearer, by no more than they count,
    /// while `0 <= θ <= 1` and no line has negative revenue (the last
    /// guards against a line that lowered the total before the mark
    /// raising a share as it leaves). Other products' lines raise the total
    /// and move the share away.
    fn share_headroom(&self, test: &LTest, p: &Product) -> Headroom {
        if self.store.negative_revenue {
            return Headroom::Now;
        }
        let Some(l) = boundary(test, true) else {
            return Headroom::Now;
        };
        let total = self.store.groups[p.group as usize].total;
        if l.is_sign_negative() || l > Decimal::ONE_HUNDRED || total <= Decimal::ZERO {
            return Headroom::Now;
        }
        let s = p.sums_since(days_before(self.clock.now, 30)).1;
        // Hundredths of θ·S − s, rounded down.
        let gap = l
            .checked_mul(total)
            .zip(s.checked_mul(Decimal::ONE_HUNDRED))
            .and_then(|(x, y)| x.checked_sub(y))
            .map(|g| g.floor());
        match gap.and_then(|g| u64::try_from(g).ok()) {
            Some(0) | None => Headroom::Now,
            Some(g) => Headroom::Share(g),
        }
    }
}

/// The literal a test's truth turns at, if that truth only grows the way
/// the operand moves with lines (`> l` or `>= l` for an operand lines
/// raise, `< l` or `<= l` for one they lower): then the way time moves it
/// only keeps a false test false, and the test can turn true only where
/// the operand reaches the literal.
fn boundary(test: &LTest, up: bool) -> Option<Decimal> {
    use strata_lang::ast::CmpOp::{Ge, Gt, Le, Lt};
    match test {
        LTest::Cmp(Gt | Ge, Lit::Num(l)) if up => Some(l.value),
        LTest::Cmp(Lt | Le, Lit::Num(l)) if !up => Some(l.value),
        _ => None,
    }
}

enum Reached {
    /// It stands on the literal: any move may change the truth.
    Now,
    /// Lines never bring it to the literal.
    Never,
    /// Not before `Δ` (in `1/per`) is more than this, rounded down.
    After(i128),
}

/// The least `Δ`, in `1/per`, rounded down (towards looking early), at
/// which an operand that does not pass its literal `l` can reach it.
fn reach_literal(reach: &Reach, l: Decimal, per: i128) -> Reached {
    let (m, s) = (l.mantissa(), l.scale());
    let done = |x: Option<i128>| x.map_or(Reached::Now, Reached::After);
    match *reach {
        // (c / 10^cs + step·Δ) / k ≥ m / 10^s: over 10^S, S = max(s, cs),
        // Δ ≥ (m·k·10^(S−s) − c·10^(S−cs)) / (step·10^S).
        Reach::Up { c, scale, step, k } => {
            let top = s.max(scale);
            let gap = (|| {
                let lk = m.checked_mul(k)?.checked_mul(pow10(top - s)?)?;
                lk.checked_sub(c.checked_mul(pow10(top - scale)?)?)
            })();
            match gap {
                Some(g) if g <= 0 => Reached::Now,
                Some(g) => done((|| {
                    g.checked_mul(per)?
                        .checked_div(step.checked_mul(pow10(top)?)?)
                })()),
                None => Reached::Now,
            }
        }
        // The operand stays positive while there is stock.
        Reach::Down { .. } if m <= 0 => Reached::Never,
        // num / (c + step·Δ) ≤ m / 10^s  ⇔  Δ ≥ (num·10^s − m·c) / (m·step).
        Reach::Down { num, c, step } => {
            let gap = (|| num.checked_mul(pow10(s)?)?.checked_sub(m.checked_mul(c)?))();
            match gap {
                Some(g) if g <= 0 => Reached::Now,
                Some(g) => done((|| g.checked_mul(per)?.checked_div(m.checked_mul(step)?))()),
                None => Reached::Now,
            }
        }
    }
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;

    fn literal() -> impl Strategy<Value = Decimal> {
        (-5_000i64..200_000, 0u32..5).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// Where the literal is reached at a whole number of units, that
    /// number is the headroom: 10 in stock at 140 / 29400 units a day is
    /// 2100 days of stock, and ten units sold now bring the velocity to 1
    /// and the days of stock to 10.
    #[test]
    fn a_literal_reached_exactly_is_the_headroom() {
        let down = Reach::Down {
            num: 10 * VELOCITY_DEN,
            c: 140,
            step: VELOCITY_STEP,
        };
        assert!(matches!(
            reach_literal(&down, Decimal::TEN, 1),
            Reached::After(10)
        ));
        let up = Reach::Up {
            c: 140,
            scale: 0,
            step: VELOCITY_STEP,
            k: VELOCITY_DEN,
        };
        assert!(matches!(
            reach_literal(&up, Decimal::ONE, 1),
            Reached::After(10)
        ));
        let cents = Reach::Up {
            c: 1050,
            scale: 2,
            step: 1,
            k: 1,
        };
        assert!(matches!(
            reach_literal(&cents, Decimal::new(2001, 2), 100),
            Reached::After(951)
        ));
    }

    proptest! {
        /// Below its headroom an operand stays short of the literal, and
        /// one step past it reaches it (the headroom is exact up to
        /// rounding down), for sums, money, velocities and days of stock.
        #[test]
        fn headroom_is_short_of_the_literal_and_no_shorter(
            c in 0u64..5_000,
            inv in 0u64..5_000,
            shape in 0u8..4,
            l in literal(),
        ) {
            let dec = |x: i128| Decimal::from_i128_with_scale(x, 0);
            let (reach, per, at): (Reach, i128, Box<dyn Fn(i128) -> Decimal>) = match shape {
                0 => (
                    Reach::Up { c: c.into(), scale: 0, step: 1, k: 1 },
                    1,
                    Box::new(move |d| dec(c.into()) + dec(d)),
                ),
                // Revenue of c hundredths; Δ in hundredths.
                1 => (
                    Reach::Up { c: c.into(), scale: 2, step: 1, k: 1 },
                    100,
                    Box::new(move |d| (dec(c.into()) + dec(d)) / dec(100)),
                ),
                2 => (
                    Reach::Up { c: c.into(), scale: 0, step: VELOCITY_STEP, k: VELOCITY_DEN },
                    1,
                    Box::new(move |d| {
                        (dec(c.into()) + dec(d) * dec(VELOCITY_STEP)) / dec(VELOCITY_DEN)
                    }),
                ),
                _ => (
                    Reach::Down {
                        num: i128::from(inv) * VELOCITY_DEN,
                        c: i128::from(c) + 1,
                        step: VELOCITY_STEP,
                    },
                    1,
                    Box::new(move |d| {
                        dec(inv.into()) * dec(VELOCITY_DEN)
                            / (dec(i128::from(c) + 1) + dec(d) * dec(VELOCITY_STEP))
                    }),
                ),
            };
            let down = shape == 3;
            let reaches = |v: Decimal| if down { v <= l } else { v >= l };
            match reach_literal(&reach, l, per) {
                Reached::Now => prop_assert!(reaches(at(0)), "Now, yet {} is short of {}", at(0), l),
                Reached::Never => prop_assert!(down && l <= Decimal::ZERO),
                // Held back while fewer than n have been added.
                Reached::After(n) => {
                    prop_assert!(n >= 0);
                    prop_assert!(n == 0 || !reaches(at(n - 1)), "{} reaches {} at {}", at(n - 1), l, n - 1);
                    prop_assert!(reaches(at(n + 1)), "{} is short of {} at {}", at(n + 1), l, n + 1);
                }
            }
        }
    }
}
