//! tiers.json, segments.json and settings.json.
//!
//! Thresholds come from the simulated data (rounded to two significant
//! digits, as a person would set them) so that the tiers and segments
//! split the store into visible proportions at any size.

use serde_json::{Value, json};

use crate::catalogue::Catalogue;
use crate::customers::{CustomerPlan, CustomerStats};
use crate::orders::ProductStats;

/// Value at quantile `q` of `xs` (sorted here), or `None` when empty.
pub(crate) fn quantile(mut xs: Vec<i64>, q: f64) -> Option<i64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    Some(xs[((xs.len() - 1) as f64 * q).round() as usize])
}

/// Two significant digits: 1234 → 1200, 87 → 87, 5 → 5.
fn round2(x: i64) -> i64 {
    let mut mag = 1;
    while x.abs() / mag >= 100 {
        mag *= 10;
    }
    (x as f64 / mag as f64).round() as i64 * mag
}

/// A scheme from (name, threshold) pairs, best first: thresholds must be
/// strictly decreasing (tiers.md), so a tier that collides is dropped.
fn scheme(market: Option<&str>, metric: &str, tiers: &[(&str, i64)]) -> Value {
    let mut kept: Vec<Value> = Vec::new();
    let mut last = i64::MAX;
    for &(name, threshold) in tiers {
        if threshold < last {
            kept.push(json!({"name": name, "threshold": threshold}));
            last = threshold;
        }
    }
    json!({"marketplace": market, "metric": metric, "tiers": kept})
}

/// US by profit, UK by revenue, everyone else (DE) by number of orders.
pub(crate) fn tiers(plans: &[CustomerPlan], stats: &[CustomerStats]) -> String {
    let of = |market: u8, f: fn(&CustomerStats) -> i64| -> Vec<i64> {
        plans
            .iter()
            .zip(stats)
            .filter(|(p, s)| p.market == market && s.orders > 0)
            .map(|(_, s)| f(s))
            .collect()
    };
    let dollars = |xs: &Vec<i64>, q: f64, default: i64| {
        quantile(xs.clone(), q).map_or(default, |c| round2(c / 100))
    };
    let profit = of(0, |s| s.profit);
    let revenue = of(1, |s| s.revenue);
    let orders = of(2, |s| s.orders as i64);
    let count = |q: f64, default: i64| quantile(orders.clone(), q).unwrap_or(default);
    let doc = json!([
        scheme(
            Some("US"),
            "profit",
            &[
                ("Platinum", dollars(&profit, 0.95, 500)),
                ("Gold", dollars(&profit, 0.8, 200)),
                ("Silver", dollars(&profit, 0.5, 50)),
                ("Bronze", 0),
            ]
        ),
        scheme(
            Some("UK"),
            "revenue",
            &[
                ("Platinum", dollars(&revenue, 0.97, 1000)),
                ("Gold", dollars(&revenue, 0.85, 400)),
                ("Silver", dollars(&revenue, 0.6, 150)),
            ]
        ),
        scheme(
            None,
            "orders",
            &[
                ("Platinum", count(0.97, 20).max(3)),
                ("Gold", count(0.85, 8).max(2)),
                ("Silver", 1),
                ("Bronze", 0)
            ]
        ),
    ]);
    pretty(&doc)
}

/// The saved segments that `in_segment` examples refer to.
pub(crate) fn segments(cat: &Catalogue, stats: &ProductStats) -> String {
    let units_30d: Vec<i64> = (0..cat.products.len())
        .filter(|&i| cat.products[i].sellable())
        .map(|i| stats.window[i][2] as i64)
        .collect();
    let best = quantile(units_30d, 0.95).unwrap_or(0).max(2);
    let doc = json!([
        {"name": "best-sellers", "kind": "product", "rule": format!("units_30d >= {best}")},
        {"name": "low-stock", "kind": "product", "rule": "days_of_stock < 14 AND units_30d > 0"},
        {"name": "discontinued", "kind": "product", "rule": "tags CONTAINS 'discontinued'"},
        {"name": "vip", "kind": "customer", "rule": "tags CONTAINS 'vip' OR tier = 'Platinum'"},
        {"name": "lapsed", "kind": "customer", "rule": "number_of_orders >= 2 AND last_order_date < -180d"},
    ]);
    pretty(&doc)
}

pub(crate) const SETTINGS: &str = "{\"timezone\": \"UTC\", \"currency\": \"USD\"}\n";

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values always serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_and_schemes() {
        assert_eq!(round2(1234), 1200);
        assert_eq!(round2(87), 87);
        assert_eq!(round2(-4567), -4600);
        let s = scheme(None, "orders", &[("A", 3), ("B", 3), ("C", 0)]);
        assert_eq!(s["tiers"].as_array().unwrap().len(), 2);
        assert_eq!(quantile(vec![5, 1, 3], 0.5), Some(3));
        assert_eq!(quantile(vec![], 0.5), None);
    }
}
