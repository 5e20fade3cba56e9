//! The instants at which members can change while the clock moves and the
//! data stands still: where a line comes into existence, where a window or a
//! relative bound passes over a recorded instant, where a day begins.
//!
//! Between two consecutive breakpoints every rule's members stay the same,
//! so evaluating from scratch at each one finds every entry and exit at its
//! exact instant. This is the plain reference that incremental maintenance
//! (issue #3) is to be held to; it is not fast.

use std::collections::BTreeSet;

use strata_data::Nanos;
use strata_lang::ast::{Expr, Operand, Test, Value};

use crate::clock::NANOS_PER_DAY;
use crate::{Engine, Rule};

/// The product windows of fields.md, in days.
const WINDOWS: [i64; 3] = [7, 14, 30];

/// Offsets (in nanoseconds) of every relative literal in a tree.
fn relative_offsets(expr: &Expr, out: &mut BTreeSet<i64>) {
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        match node {
            Expr::And(xs) | Expr::Or(xs) => stack.extend(xs),
            Expr::Not(x) => stack.push(x),
            Expr::Cond(c) => {
                let mut literals: Vec<&Value> = match &c.test {
                    Test::Cmp(_, lit) => vec![&lit.value],
                    Test::Between(a, b) => vec![&a.value, &b.value],
                    Test::In { values, .. } => values.iter().map(|l| &l.value).collect(),
                    _ => Vec::new(),
                };
                if let Operand::Call(call) = &c.operand {
                    for arg in &call.args {
                        literals.extend(arg.value.literals().iter().map(|l| &l.value));
                    }
                }
                for value in literals {
                    if let Value::Relative(r) = value {
                        out.insert(r.offset_seconds().saturating_mul(1_000_000_000));
                    }
                }
            }
        }
    }
}

impl Engine {
    /// Every instant in `(from, to]` at which the members of `rules` (or of
    /// a saved segment they may read) could differ from the instant before,
    /// sorted; `to` is always included. A superset of the true change
    /// instants: evaluating at each and comparing finds every change.
    pub fn breakpoints(&self, rules: &[&Rule], from: Nanos, to: Nanos) -> Vec<Nanos> {
        let mut offsets = BTreeSet::from([0]);
        for rule in rules {
            relative_offsets(&rule.expr, &mut offsets);
        }
        for saved in &self.saved {
            relative_offsets(&saved.rule.expr, &mut offsets);
        }
        for days in WINDOWS {
            offsets.insert(-days * NANOS_PER_DAY);
        }

        // Instants recorded in the data that a clock or a bound can pass.
        let data = &self.data;
        let mut recorded: Vec<Nanos> = (0..data.orders.len())
            .filter(|&o| data.orders.counting[o])
            .map(|o| data.orders.ordered_at[o])
            .chain(data.customers.created_at.iter().flatten().copied())
            .chain(data.products.created_at.iter().flatten().copied())
            .collect();
        recorded.sort_unstable();
        recorded.dedup();

        let mut out = BTreeSet::from([to]);
        let mut keep = |t: Option<i64>| {
            if let Some(t) = t
                && t > from
                && t <= to
            {
                out.insert(t);
            }
        };
        for &offset in &offsets {
            // `now + offset` reaches x at now = x − offset (an inclusive
            // bound still holds there) and passes it one nanosecond later.
            for &x in &recorded {
                let at = x.checked_sub(offset);
                keep(at);
                keep(at.and_then(|t| t.checked_add(1)));
            }
            // Days begin: `today`, daily windows, and relative bounds taken
            // by their calendar day.
            let (Some(lo), Some(hi)) = (from.checked_add(offset), to.checked_add(offset)) else {
                continue;
            };
            let mut day = self.as_of.date_of(lo);
            let last = self.as_of.date_of(hi);
            while day <= last {
                keep(self.as_of.day_start(day).checked_sub(offset));
                match day.tomorrow() {
                    Ok(next) => day = next,
                    Err(_) => break,
                }
                keep(self.as_of.day_start(day).checked_sub(offset));
            }
        }
        out.into_iter().collect()
    }
}
