//! `testdata/handmade`: four products, four customers, ten order lines and
//! a few daily rows, evaluated at `NOW`. Every expected value below was
//! worked out by hand from the files (see the comments for the sums).
//!
//! Boundaries covered: a line exactly at `now − 30d` (O2), a line on the last
//! second of a day (O9, 2024-02-29T23:59:59Z), a refunded order (O5), a
//! cancelled one in upper case (O8), a line after `now` (O7), an anonymous
//! line (O6), a product without sales (P4), customers without orders (C3,
//! C4), a tier threshold hit exactly (C1's revenue 109.99, C3's 0), a daily
//! row dated exactly `today − 30` (P1, 2024-05-31) and one after today.

use std::path::Path;
use std::str::FromStr;

use rust_decimal::Decimal;
use strata_engine::reference::RVal;
use strata_engine::{Cell, Engine};
use strata_lang::catalog::Kind;

pub const NOW: &str = "2024-06-30T12:00:00Z";

pub fn engine_at(now: &str) -> Engine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/handmade");
    let data = strata_data::load_dir(&dir).expect("the hand-made dataset loads");
    Engine::new(data, now.parse().unwrap()).expect("the engine builds")
}

fn row_of(engine: &Engine, kind: Kind, id: &str) -> u32 {
    (0..engine.len(kind) as u32)
        .find(|&r| engine.id(kind, r) == id)
        .unwrap_or_else(|| panic!("no {kind} {id}"))
}

/// Whether a displayed cell equals the expected text: "" is null, numbers
/// compare as decimals (so `0` equals `0.00`), instants as instants.
fn cell_is(cell: &Cell<'_>, expected: &str) -> bool {
    match cell {
        Cell::Null => expected.is_empty(),
        Cell::Number(d) => Decimal::from_str(expected).is_ok_and(|e| e == *d),
        Cell::Instant(_) => {
            let want: Result<jiff::Timestamp, _> = expected.parse();
            let got: jiff::Timestamp = cell.to_text().parse().unwrap();
            want.is_ok_and(|w| w == got)
        }
        other => other.to_text() == expected,
    }
}

/// The same for the reference evaluator's value; quotients compare exactly
/// when the expected text is a fraction `n/d`.
fn rval_is(v: &RVal, expected: &str) -> bool {
    match v {
        RVal::Null => expected.is_empty(),
        RVal::Text(s) => s == expected,
        RVal::Set(items) => items.join(";") == expected,
        RVal::Bool(b) => b.to_string() == expected,
        RVal::Time(t) => expected
            .parse::<jiff::Timestamp>()
            .is_ok_and(|w| w.as_nanosecond() == i128::from(*t)),
        RVal::Num(n, d) => match expected.split_once('/') {
            Some((en, ed)) => {
                let (en, ed) = (
                    Decimal::from_str(en).unwrap(),
                    Decimal::from_str(ed).unwrap(),
                );
                *n * ed == en * *d
            }
            None => Decimal::from_str(expected).is_ok_and(|e| e * *d == *n),
        },
    }
}

/// `(id, field, displayed value, exact value)`: the exact form is a
/// fraction where the displayed one is rounded to 12 places.
type FieldCase = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn check_fields(kind: Kind, cases: &[FieldCase]) {
    let engine = engine_at(NOW);
    let mut failures = Vec::new();
    for &(id, field, shown, exact) in cases {
        let row = row_of(&engine, kind, id);
        let cell = engine.cell(kind, row, field);
        if !cell_is(&cell, shown) {
            failures.push(format!(
                "{id}.{field}: engine shows {cell:?}, expected {shown:?}"
            ));
        }
        let reference = engine.reference_value(kind, row as usize, field).unwrap();
        if !rval_is(&reference, exact.unwrap_or(shown)) {
            failures.push(format!(
                "{id}.{field}: reference has {reference:?}, expected {:?}",
                exact.unwrap_or(shown)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_customer_field() {
    // C1: O1 (20.00 + 44.99), O2 (10.00), O3 (3 × 12.50 − 2.50 = 35.00).
    // Profit: O1 20 − 1 − 2×4 = 11, 44.99 − 2.50 − 0 (P3 has no cost) = 42.49,
    // O2 10 − 0 − 4 = 6, O3 35 − 3 − 3×5 = 17: 76.49.
    // C2: O4 (12.50) and O9 (10.00); O7 lies after now, O8 is cancelled.
    // Profit 12.50 − 1.25 − 5 = 6.25 and 10 − 0.10 − 4 = 5.90: 12.15.
    let cases: &[FieldCase] = &[
        ("C1", "customer_id", "C1", None),
        ("C1", "email", "Ann@Example.COM", None),
        ("C1", "email_domain", "example.com", None),
        ("C4", "email_domain", "", None),
        ("C1", "first_name", "Ann", None),
        ("C3", "last_name", "", None),
        ("C2", "country", "GB", None),
        ("C1", "city", "Boston", None),
        ("C2", "marketplace", "UK", None),
        ("C1", "tags", "vip;newsletter", None),
        ("C2", "tags", "", None),
        ("C1", "accepts_marketing", "true", None),
        ("C2", "accepts_marketing", "false", None),
        ("C3", "accepts_marketing", "", None),
        ("C1", "created_at", "2023-01-01T00:00:00Z", None),
        ("C2", "created_at", "2023-05-05T00:00:00Z", None),
        ("C3", "created_at", "", None),
        ("C1", "number_of_orders", "3", None),
        ("C2", "number_of_orders", "2", None),
        ("C3", "number_of_orders", "0", None),
        ("C4", "number_of_orders", "0", None),
        ("C1", "units_purchased", "7", None),
        ("C2", "units_purchased", "2", None),
        ("C3", "units_purchased", "0", None),
        ("C1", "amount_spent", "109.99", None),
        ("C2", "amount_spent", "22.50", None),
        ("C3", "amount_spent", "0", None),
        ("C1", "total_profit", "76.49", None),
        ("C2", "total_profit", "12.15", None),
        ("C4", "total_profit", "0", None),
        (
            "C1",
            "average_order_value",
            "36.663333333333",
            Some("109.99/3"),
        ),
        ("C2", "average_order_value", "11.25", None),
        ("C3", "average_order_value", "", None),
        ("C1", "first_order_date", "2024-01-10T09:00:00Z", None),
        ("C1", "last_order_date", "2024-06-25T08:00:00Z", None),
        ("C2", "first_order_date", "2024-02-29T23:59:59Z", None),
        ("C2", "last_order_date", "2024-06-20T10:00:00Z", None),
        ("C3", "first_order_date", "", None),
        ("C4", "last_order_date", "", None),
        // US by revenue: Gold needs more than 109.99 (C1 has exactly that),
        // Silver more than 0 (C3 has exactly 0). Others fall to the null
        // scheme by orders: C2 has 2 > 1, C4 has 0 > −1.
        ("C1", "tier", "Silver", None),
        ("C3", "tier", "", None),
        ("C2", "tier", "Repeat", None),
        ("C4", "tier", "Any", None),
        ("C1", "x_source", "ads", None),
        ("C4", "x_source", "", None),
    ];
    check_fields(Kind::Customer, cases);
}

#[test]
fn every_product_field() {
    // now − 7d = 06-23T12:00, − 14d = 06-16T12:00, − 30d = 05-31T12:00.
    // P1 lines: O1 2 × 10 (Jan), O2 1 (exactly now − 30d), O6 2 × 9
    // (06-28, anonymous), O9 1 (Feb). P2: O3 3 (06-25), O4 1 (06-20).
    // P1 velocity (150·2 + 45·2 + 14·3) / 2100 = 432/2100.
    // Share group (acct1, US): 28.00 + 47.50 + 0 = 75.50.
    // Daily window 06-01..06-30; baseline for new reviews: latest row on or
    // before 05-31.
    let cases: &[FieldCase] = &[
        ("P1", "sku", "P1", None),
        ("P1", "parent_sku", "PAR1", None),
        ("P3", "parent_sku", "", None),
        ("P1", "asin", "B000000001", None),
        ("P3", "title", "", None),
        ("P4", "title", "Lonely Lamp", None),
        ("P1", "brand", "Acme", None),
        ("P3", "category", "Home > Kitchen", None),
        ("P1", "tags", "bestseller;new", None),
        ("P2", "tags", "", None),
        ("P4", "seller_account", "acct2", None),
        ("P4", "marketplace", "UK", None),
        ("P3", "price", "49.99", None),
        ("P3", "cost", "", None),
        ("P1", "inventory", "30", None),
        ("P2", "inventory", "0", None),
        ("P4", "inventory", "", None),
        ("P2", "created_at", "2023-02-01T00:00:00Z", None),
        ("P3", "created_at", "", None),
        ("P1", "units_sold", "6", None),
        ("P1", "sales", "58.00", None),
        ("P2", "units_sold", "4", None),
        ("P2", "sales", "47.50", None),
        ("P3", "units_sold", "1", None),
        ("P3", "sales", "44.99", None),
        ("P4", "units_sold", "0", None),
        ("P4", "sales", "0", None),
        ("P1", "units_7d", "2", None),
        ("P1", "units_14d", "2", None),
        ("P1", "units_30d", "3", None),
        ("P1", "sales_7d", "18.00", None),
        ("P1", "sales_14d", "18.00", None),
        ("P1", "sales_30d", "28.00", None),
        ("P2", "units_7d", "3", None),
        ("P2", "units_14d", "4", None),
        ("P2", "sales_7d", "35.00", None),
        ("P2", "sales_14d", "47.50", None),
        ("P2", "sales_30d", "47.50", None),
        ("P3", "units_30d", "0", None),
        ("P1", "avg_daily_units_7d", "0.285714285714", Some("2/7")),
        ("P1", "avg_daily_units_14d", "0.142857142857", Some("2/14")),
        ("P1", "avg_daily_units_30d", "0.1", None),
        ("P2", "avg_daily_units_7d", "0.428571428571", Some("3/7")),
        ("P2", "avg_daily_units_30d", "0.133333333333", Some("4/30")),
        ("P1", "daily_velocity", "0.205714285714", Some("432/2100")),
        ("P2", "daily_velocity", "0.326666666667", Some("686/2100")),
        ("P3", "daily_velocity", "0", None),
        ("P1", "days_of_stock", "145.833333333333", Some("63000/432")),
        ("P2", "days_of_stock", "0", None),
        ("P3", "days_of_stock", "", None),
        ("P4", "days_of_stock", "", None),
        ("P1", "inventory_value", "120.00", None),
        ("P2", "inventory_value", "0", None),
        ("P3", "inventory_value", "", None),
        ("P4", "inventory_value", "", None),
        ("P1", "revenue_share", "37.086092715232", Some("2800/75.5")),
        ("P2", "revenue_share", "62.913907284768", Some("4750/75.5")),
        ("P3", "revenue_share", "0", None),
        ("P4", "revenue_share", "", None),
        ("P1", "customers_30d", "1", None),
        ("P2", "customers_30d", "2", None),
        ("P3", "customers_30d", "0", None),
        ("P1", "sessions_30d", "60", None),
        ("P2", "sessions_30d", "0", None),
        ("P1", "conversion_rate_30d", "5", None),
        ("P2", "conversion_rate_30d", "", None),
        ("P1", "bsr", "3500", None),
        ("P2", "bsr", "8000", None),
        ("P3", "bsr", "", None),
        ("P1", "reviews", "45", None),
        ("P2", "reviews", "12", None),
        ("P1", "rating", "4.3", None),
        ("P2", "rating", "3.9", None),
        ("P1", "new_reviews_30d", "5", None),
        ("P2", "new_reviews_30d", "2", None),
        ("P3", "new_reviews_30d", "", None),
        ("P1", "x_color", "red", None),
        ("P3", "x_color", "", None),
    ];
    check_fields(Kind::Product, cases);
}

/// Members of each rule, by both evaluators.
fn check_rules(kind: Kind, cases: &[(&str, &[&str])]) {
    let engine = engine_at(NOW);
    let mut failures = Vec::new();
    for (rule, expected) in cases {
        let compiled = match engine.compile(kind, rule) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{rule}: {e}"));
                continue;
            }
        };
        let ids = |bits: roaring::RoaringBitmap| -> Vec<String> {
            bits.iter().map(|r| engine.id(kind, r).to_owned()).collect()
        };
        let fast = ids(engine.evaluate(&compiled).unwrap());
        let plain = ids(engine.evaluate_reference(&compiled).unwrap());
        if fast != *expected {
            failures.push(format!(
                "{rule}: engine gives {fast:?}, expected {expected:?}"
            ));
        }
        if plain != *expected {
            failures.push(format!(
                "{rule}: reference gives {plain:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn customer_functions_and_boundaries() {
    check_rules(
        Kind::Customer,
        &[
            // O2 sits exactly at now − 30d and counts.
            ("orders(since: -30d) = 2", &["C1"]),
            ("orders(since: -30d) = 1", &["C2"]),
            ("orders(since: -30d) = 0", &["C3", "C4"]),
            ("orders(sku: 'p1') >= 1", &["C1", "C2"]),
            ("orders(sku: 'P1') = 2", &["C1"]),
            ("units(category: 'Apparel > Socks') = 6", &["C1"]),
            ("units(category: 'apparel > socks') = 2", &["C2"]),
            ("spent(brand: ('Zeta', 'Nope')) = 44.99", &["C1"]),
            ("spent(brand: 'zeta') = 0", &["C2", "C3", "C4"]),
            ("purchased(marketplace: 'uk')", &["C2"]),
            ("purchased(in_segment: 'socks')", &["C1", "C2"]),
            // Only the anonymous O6 falls on 06-28.
            ("purchased(since: 2024-06-28, until: 2024-06-28)", &[]),
            // A date `until` includes its whole last day (O9 at 23:59:59).
            ("orders(until: 2024-02-29) = 1", &["C1", "C2"]),
            ("orders(until: 2024-02-29T23:59:58Z) = 1", &["C1"]),
            (
                "orders(since: 2024-02-29T23:59:59Z, until: 2024-03-01) = 1",
                &["C2"],
            ),
            ("NOT purchased(since: -90d) AND number_of_orders >= 1", &[]),
            ("NOT purchased(since: -7d)", &["C2", "C3", "C4"]),
            ("in_segment('sock-buyers')", &["C1", "C2"]),
            ("in_segment('loyal-sock-buyers')", &["C1"]),
            ("NOT in_segment('loyal-sock-buyers')", &["C2", "C3", "C4"]),
        ],
    );
}

#[test]
fn customer_fields_in_rules() {
    check_rules(
        Kind::Customer,
        &[
            ("amount_spent > 100 AND number_of_orders >= 3", &["C1"]),
            ("amount_spent > 109.99", &[]),
            ("amount_spent >= 109.99", &["C1"]),
            ("amount_spent = 0", &["C3", "C4"]),
            ("amount_spent IS EMPTY", &["C3", "C4"]),
            ("average_order_value IS NULL", &["C3", "C4"]),
            ("average_order_value > 36.663333333333", &["C1"]),
            (
                "average_order_value < 36.663333333334 AND average_order_value > 12",
                &["C1"],
            ),
            ("total_profit BETWEEN 12.15 AND 76.49", &["C1", "C2"]),
            // A date compares by calendar day: O9 at 23:59:59 is on 02-29.
            ("first_order_date = 2024-02-29", &["C2"]),
            ("first_order_date <= 2024-02-29", &["C1", "C2"]),
            ("first_order_date > 2024-02-29", &[]),
            ("first_order_date < 2024-03-01", &["C1", "C2"]),
            (
                "first_order_date BETWEEN 2024-02-01 AND 2024-02-29",
                &["C2"],
            ),
            ("first_order_date >= 2024-02-29T23:59:59Z", &["C2"]),
            ("first_order_date > 2024-02-29T23:59:59Z", &[]),
            ("first_order_date != 2024-02-29", &["C1"]),
            // Null never matches a comparison, negated or not; NOT does.
            ("last_order_date > -90d", &["C1", "C2"]),
            ("NOT (last_order_date > -90d)", &["C3", "C4"]),
            ("last_order_date < -7d", &["C2"]),
            ("last_order_date IS NULL", &["C3", "C4"]),
            ("country != 'US'", &["C2"]),
            ("country NOT IN ('US')", &["C2"]),
            ("country NOT CONTAINS 'U'", &["C2"]),
            ("NOT (country = 'US')", &["C2", "C4"]),
            ("country IS EMPTY", &["C4"]),
            ("email_domain = 'EXAMPLE.com'", &["C1", "C3"]),
            ("email ENDS WITH '.COM'", &["C1", "C3"]),
            ("email STARTS WITH 'ann'", &["C1"]),
            ("email CONTAINS '@shop'", &["C2"]),
            ("email NOT STARTS WITH 'ann'", &["C2", "C3"]),
            ("first_name IN ('ann', 'DANA')", &["C1", "C4"]),
            ("tags CONTAINS 'VIP'", &["C1"]),
            ("tags NOT CONTAINS 'vip'", &["C2", "C3", "C4"]),
            ("tags IS EMPTY", &["C2", "C4"]),
            ("tags IS NOT EMPTY", &["C1", "C3"]),
            ("accepts_marketing", &["C1"]),
            ("accepts_marketing = false", &["C2"]),
            ("accepts_marketing != true", &["C2"]),
            ("NOT accepts_marketing", &["C2", "C3", "C4"]),
            ("tier IN ('Silver', 'Repeat')", &["C1", "C2"]),
            ("tier IS NULL", &["C3"]),
            ("created_at < 2023-05-05", &["C1"]),
            ("created_at <= 2023-05-05", &["C1", "C2"]),
            ("x_source = 'ADS' OR x_source = 'organic'", &["C1", "C2"]),
            ("number_of_orders IN (0, 3)", &["C1", "C3", "C4"]),
            ("number_of_orders NOT IN (0, 3)", &["C2"]),
            ("units_purchased IS NOT EMPTY", &["C1", "C2"]),
        ],
    );
}

#[test]
fn product_fields_and_functions_in_rules() {
    check_rules(
        Kind::Product,
        &[
            ("title IS NOT EMPTY AND inventory IS NOT EMPTY", &["P1"]),
            ("inventory IS EMPTY", &["P2", "P4"]),
            ("days_of_stock < 14 AND units_30d > 0", &["P2"]),
            ("days_of_stock > 145.833333333333", &["P1"]),
            ("days_of_stock < 145.833333333334", &["P1", "P2"]),
            ("days_of_stock IS NULL", &["P3", "P4"]),
            (
                "brand = 'Acme' OR (price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home')",
                &["P1", "P2", "P3", "P4"],
            ),
            ("price BETWEEN 10 AND 49.98", &["P1", "P2", "P4"]),
            (
                "revenue_share > 37.086092715231 AND revenue_share < 37.086092715232",
                &["P1"],
            ),
            ("revenue_share IS NULL", &["P4"]),
            ("revenue_share = 0", &["P3"]),
            ("daily_velocity = 0", &["P3", "P4"]),
            ("avg_daily_units_30d = 0.1", &["P1"]),
            ("conversion_rate_30d = 5", &["P1"]),
            ("customers_30d >= 1", &["P1", "P2"]),
            ("sessions_30d = 60", &["P1"]),
            ("bsr < 5000", &["P1"]),
            ("reviews IS NULL", &["P3", "P4"]),
            ("rating >= 4", &["P1"]),
            ("new_reviews_30d = 5", &["P1"]),
            ("inventory_value = 0", &["P2"]),
            ("inventory_value IS EMPTY", &["P2", "P3", "P4"]),
            ("units_sold = 0", &["P4"]),
            ("sales = 0 AND units_sold = 0", &["P4"]),
            // O2 sits exactly at now − 30d.
            ("units_sold(since: -30d) = 3", &["P1"]),
            ("units_sold(until: 2024-02-29) = 3", &["P1"]),
            (
                "sales(since: 2024-06-01, until: 2024-06-28) = 18.00",
                &["P1"],
            ),
            (
                "sales(since: 2024-06-01, until: 2024-06-28T23:59:58Z) = 0",
                &["P1", "P3", "P4"],
            ),
            // A relative bound on daily rows counts by its calendar day:
            // -30d is 05-31, so the 05-31 row is in.
            ("sessions(since: -30d) = 160", &["P1"]),
            ("sessions(since: 2024-06-15) = 50", &["P1"]),
            ("sessions(until: 2024-05-31) = 150", &[]),
            ("sessions(until: 2024-05-31) = 100", &["P1"]),
            ("sessions() = 1000", &[]),
            ("in_segment('socks')", &["P1", "P2"]),
            (
                "NOT in_segment('socks') AND parent_sku IS NULL",
                &["P3", "P4"],
            ),
            (
                "tags CONTAINS 'new' OR tags CONTAINS 'clearance'",
                &["P1", "P3"],
            ),
            ("x_color IN ('RED', 'blue')", &["P1", "P2"]),
            ("created_at >= 2024-01-01", &["P4"]),
            ("sku = 'p3'", &["P3"]),
        ],
    );
}

#[test]
fn windows_move_with_now() {
    // One second after O2 leaves the 30-day window.
    let engine = engine_at("2024-06-30T12:00:01Z");
    let rule = engine.compile(Kind::Product, "units_30d = 2").unwrap();
    let ids: Vec<&str> = engine
        .evaluate(&rule)
        .unwrap()
        .iter()
        .map(|r| engine.id(Kind::Product, r))
        .collect();
    assert_eq!(ids, ["P1"]);
    // Before O9 existed, C2 had one counting order.
    let engine = engine_at("2024-02-29T23:59:58Z");
    let rule = engine
        .compile(Kind::Customer, "number_of_orders = 0")
        .unwrap();
    let ids: Vec<&str> = engine
        .evaluate(&rule)
        .unwrap()
        .iter()
        .map(|r| engine.id(Kind::Customer, r))
        .collect();
    assert_eq!(ids, ["C2", "C3", "C4"]);
}

#[test]
fn unknown_segments_are_refused_with_a_suggestion() {
    let engine = engine_at(NOW);
    let err = engine
        .compile(Kind::Customer, "in_segment('sock-buyer')")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    error: unknown customer segment 'sock-buyer'; did you mean 'sock-buyers'?
     --> 1:12
      |
    1 | in_segment('sock-buyer')
      |            ^^^^^^^^^^^^
    ");
    let err = engine
        .compile(Kind::Customer, "in_segment('socks')")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    error: segment 'socks' is a product segment; a customer segment is needed here
     --> 1:12
      |
    1 | in_segment('socks')
      |            ^^^^^^^
    ");
    let err = engine
        .compile(Kind::Customer, "purchased(in_segment: 'sock-buyers')")
        .unwrap_err();
    insta::assert_snapshot!(err.to_string(), @r"
    error: segment 'sock-buyers' is a customer segment; a product segment is needed here
     --> 1:23
      |
    1 | purchased(in_segment: 'sock-buyers')
      |                       ^^^^^^^^^^^^^
    ");
}

/// Sums are accumulated as narrowly as they fit (`i32`, `i64`, decimal) and
/// must stay exact on every path: C1's lines each fit `i64` in cents but
/// their sum does not; C2's sum fits `i64` but not `i32`.
#[test]
fn sums_beyond_i64_stay_exact() {
    use strata_engine::AccessPath;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("products.csv"), "sku,cost\nP1,1.00\n").unwrap();
    std::fs::write(d.join("customers.csv"), "customer_id\nC1\nC2\n").unwrap();
    std::fs::write(
        d.join("orders.csv"),
        "order_id,ordered_at,customer_id,sku,quantity,unit_price\n\
         O1,2024-06-01T00:00:00Z,C1,P1,1,60000000000000000.00\n\
         O2,2024-06-02T00:00:00Z,C1,P1,1,60000000000000000.00\n\
         O3,2024-06-02T00:00:00Z,C2,P1,1,30000000.00\n",
    )
    .unwrap();
    let data = strata_data::load_dir(d).unwrap();
    let mut engine = Engine::new(data, NOW.parse().unwrap()).unwrap();
    let row = row_of(&engine, Kind::Customer, "C1");
    assert!(cell_is(
        &engine.cell(Kind::Customer, row, "amount_spent"),
        "120000000000000000.00"
    ));
    for rule in [
        "spent(since: 2024-01-01) > 119999999999999999.99",
        "spent(sku: 'P1') = 120000000000000000",
        "amount_spent > 100000000000000000 AND total_profit = 119999999999999998",
        "spent(since: 2024-06-02) = 30000000",
        "spent(sku: 'P1') < 30000000.01",
    ] {
        let compiled = engine.compile(Kind::Customer, rule).unwrap();
        let plain = engine.evaluate_reference(&compiled).unwrap();
        assert_eq!(plain.len(), 1, "{rule}");
        for path in AccessPath::ALL {
            engine.set_access_path(path);
            assert_eq!(
                engine.evaluate(&compiled).unwrap(),
                plain,
                "{rule} ({path:?})"
            );
        }
    }
}

/// The same files in Berlin: dates, `today` and daily windows follow the
/// store's time zone, instants do not move.
#[test]
fn dates_follow_the_store_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/handmade");
    for f in [
        "products.csv",
        "customers.csv",
        "orders.csv",
        "product_daily.csv",
        "tiers.json",
        "segments.json",
    ] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("settings.json"),
        r#"{"timezone": "Europe/Berlin"}"#,
    )
    .unwrap();
    let data = strata_data::load_dir(dir.path()).unwrap();
    // 22:30Z on 06-30 is already 07-01 in Berlin.
    let engine = Engine::new(data, "2024-06-30T22:30:00Z".parse().unwrap()).unwrap();
    let ids = |kind: Kind, rule: &str| -> Vec<String> {
        let compiled = engine.compile(kind, rule).unwrap();
        let fast = engine.evaluate(&compiled).unwrap();
        assert_eq!(
            fast,
            engine.evaluate_reference(&compiled).unwrap(),
            "{rule}"
        );
        fast.iter().map(|r| engine.id(kind, r).to_owned()).collect()
    };
    // O9 at 02-29 23:59:59Z is 03-01 00:59:59 in Berlin.
    assert_eq!(ids(Kind::Customer, "first_order_date = 2024-03-01"), ["C2"]);
    assert!(ids(Kind::Customer, "first_order_date = 2024-02-29").is_empty());
    assert_eq!(ids(Kind::Customer, "orders(until: 2024-02-29) = 1"), ["C1"]);
    // A bare date in the files is midnight in Berlin (22:00Z the day before).
    assert_eq!(ids(Kind::Customer, "created_at = 2023-05-05"), ["C2"]);
    assert_eq!(
        ids(Kind::Customer, "created_at < 2023-05-05T00:00:00Z"),
        ["C1", "C2"]
    );
    assert_eq!(ids(Kind::Customer, "last_order_date < today"), ["C1", "C2"]);
    // Today is 07-01: the daily window is 06-02 ..= 07-01, so the 07-01 row
    // (1000 sessions) is in and the 06-01 row is out.
    assert_eq!(ids(Kind::Product, "sessions_30d = 1050"), ["P1"]);
    assert_eq!(ids(Kind::Product, "sessions(since: today) = 1000"), ["P1"]);
}

/// Amounts whose totals could overflow exact arithmetic are refused with a
/// message, not a panic.
#[test]
fn amounts_beyond_exact_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("products.csv"), "sku\nP1\n").unwrap();
    std::fs::write(d.join("customers.csv"), "customer_id\nC1\n").unwrap();
    std::fs::write(
        d.join("orders.csv"),
        "order_id,ordered_at,customer_id,sku,quantity,unit_price\n\
         O1,2024-06-01T00:00:00Z,C1,P1,1,9000000000000000000000000\n\
         O2,2024-06-02T00:00:00Z,C1,P1,1,9000000000000000000000000\n",
    )
    .unwrap();
    let data = strata_data::load_dir(d).unwrap();
    let err = Engine::new(data, NOW.parse().unwrap()).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"the total of revenue, fees and costs of goods over all order lines exceeds 1e25, the largest total Strata sums exactly");
}
