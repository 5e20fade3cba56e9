//! The normal form: what the builder and the engine see.

use crate::ast::{Condition, Expr, Operand};

/// Flattens `AND` groups directly inside `AND` (and `OR` inside `OR`) and
/// writes `in_segment(segment: 'x')` in its positional form
/// `in_segment('x')`. Nothing else changes: arguments keep their written
/// order and `NOT NOT` stays, so the text the user wrote is still
/// recognisable.
///
/// Recursive; the trees it gets come from [`crate::parse`] or
/// [`crate::json::from_json`], whose depth limits bound the recursion.
pub fn normalise(expr: Expr) -> Expr {
    match expr {
        Expr::And(items) => Expr::And(flatten(items, true)),
        Expr::Or(items) => Expr::Or(flatten(items, false)),
        Expr::Not(inner) => Expr::Not(Box::new(normalise(*inner))),
        Expr::Cond(c) => Expr::Cond(positional_segment(c)),
    }
}

fn flatten(items: Vec<Expr>, and: bool) -> Vec<Expr> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match (normalise(item), and) {
            (Expr::And(inner), true) | (Expr::Or(inner), false) => out.extend(inner),
            (other, _) => out.push(other),
        }
    }
    out
}

fn positional_segment(mut c: Condition) -> Condition {
    if let Operand::Call(call) = &mut c.operand {
        let key = crate::catalog::CUSTOMER_FUNCTIONS
            .iter()
            .chain(crate::catalog::PRODUCT_FUNCTIONS)
            .find(|f| f.name == call.name.name)
            .and_then(|f| f.positional);
        if let Some(key) = key {
            for arg in &mut call.args {
                if arg.name.as_ref().is_some_and(|n| n.name == key) {
                    arg.name = None;
                }
            }
        }
    }
    c
}
