//! The segments an added line skips (`LRule::line_drift`) must be exactly
//! those it cannot move: random customers with random order histories,
//! random rules made of what a line can decide or miss (order counts,
//! first and last order dates, filtered and windowed counts and sums, attributes in
//! conjunctions), random orders of one to three lines (some back-dated,
//! some of other brands or marketplaces, some lines of negative revenue
//! beside positive ones: an order's lines are looked at together) and
//! clock moves; after every step the memberships equal
//! a from-scratch evaluation. The model test draws these shapes too, but
//! too seldom to pin each boundary (`number_of_orders = 1` after a first
//! order, `last_order_date < -7d` for a line of eight days ago).

use proptest::prelude::*;
use rust_decimal::Decimal;
use strata_data::Nanos;
use strata_lang::catalog::Kind;
use strata_live::{Change, CustomerRow, LineRow, LiveEngine, ProductRow};
use strata_testkit::Rng;

use crate::model::{put_rules, walk_against_scratch};

const SEC: i64 = 1_000_000_000;
const DAY: i64 = 86_400 * SEC;
const T0: Nanos = 1_719_748_800 * SEC;

const CUSTOMERS: &[(&str, &str)] = &[("C1", "US"), ("C2", "FR"), ("C3", "US")];
const PRODUCTS: &[(&str, &str)] = &[("S1", "Acme"), ("S2", "Zeta")];

fn atom(rng: &mut Rng) -> String {
    let ops = ["=", "!=", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL"];
    let op = rng.pick(&ops);
    let count = |rng: &mut Rng| match op {
        "IS NULL" | "IS NOT NULL" => String::new(),
        _ => rng.pick(&["0", "1", "2", "3"]).to_string(),
    };
    let time = |rng: &mut Rng| match op {
        "IS NULL" | "IS NOT NULL" => String::new(),
        _ => rng
            .pick(&["-1d", "-7d", "-30d", "today", "2024-06-20"])
            .to_string(),
    };
    let window = |rng: &mut Rng| {
        let mut args = Vec::new();
        if rng.chance(60) {
            args.push(format!("since: {}", rng.pick(&["-1d", "-7d", "-30d"])));
        }
        if rng.chance(40) {
            args.push(format!("brand: {}", rng.pick(&["'acme'", "'Zeta'"])));
        }
        if rng.chance(30) {
            args.push(format!("marketplace: {}", rng.pick(&["'US'", "'UK'"])));
        }
        args.join(", ")
    };
    match rng.below(9) {
        0 => format!("number_of_orders {op} {}", count(rng)),
        1 => format!("last_order_date {op} {}", time(rng)),
        2 => format!("first_order_date {op} {}", time(rng)),
        3 => {
            let (lo, hi) = (rng.pick(&["-30d", "-8d"]), rng.pick(&["-7d", "today"]));
            let f = rng.pick(&["first_order_date", "last_order_date"]);
            format!("{f} BETWEEN {lo} AND {hi}")
        }
        4 => {
            let op = rng.pick(&["=", "<", "<=", ">", ">="]);
            let n = rng.pick(&["0", "1", "2"]);
            format!("orders({}) {op} {n}", window(rng))
        }
        5 => format!("purchased({})", window(rng)),
        6 => format!("country = {}", rng.pick(&["'US'", "'FR'"])),
        7 => {
            let op = rng.pick(&["<", ">"]);
            let n = rng.pick(&["0", "20", "100"]);
            format!("spent({}) {op} {n}", window(rng))
        }
        _ => format!("amount_spent > {}", rng.pick(&["0", "20", "100"])),
    }
}

fn rule(rng: &mut Rng, depth: u32) -> String {
    if depth == 0 || rng.chance(30) {
        return atom(rng);
    }
    match rng.below(4) {
        0 => format!("NOT ({})", rule(rng, depth - 1)),
        1 => format!("({}) OR ({})", rule(rng, depth - 1), rule(rng, depth - 1)),
        _ => format!("({}) AND ({})", rule(rng, depth - 1), rule(rng, depth - 1)),
    }
}

/// One order of one to three lines: each of its own product and price,
/// now and then a discount above the price (a negative revenue, so that
/// lines of one order differ in sign).
fn line(rng: &mut Rng, order: usize, now: Nanos) -> Change {
    let agos = [0, 0, SEC, DAY, 7 * DAY, 8 * DAY, 31 * DAY, 400 * DAY];
    let ago = agos[rng.below(agos.len())];
    let customer = CUSTOMERS[rng.below(CUSTOMERS.len())].0;
    let marketplace = rng.pick(&["US", "UK"]).to_string();
    let n = 1 + rng.below(3);
    let rows = (0..n)
        .map(|_| LineRow {
            order_id: format!("O{order}"),
            ordered_at: now - ago,
            customer_id: Some(customer.into()),
            sku: PRODUCTS[rng.below(PRODUCTS.len())].0.into(),
            quantity: 1,
            unit_price: Decimal::from([5, 30, 90][rng.below(3)]),
            discount: if rng.chance(10) {
                Decimal::from(100)
            } else {
                Decimal::ZERO
            },
            fees: Decimal::ZERO,
            status: None,
            marketplace: Some(marketplace.clone()),
            seller_account: None,
        })
        .collect();
    Change::AddLines(rows)
}

fn scenario(seed: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let mut live = LiveEngine::empty(T0, jiff::tz::TimeZone::UTC);
    for &(sku, brand) in PRODUCTS {
        let row = ProductRow {
            sku: sku.into(),
            brand: Some(brand.into()),
            price: Some(Decimal::TEN),
            ..ProductRow::default()
        };
        live.apply(Change::UpsertProduct(row)).unwrap();
    }
    for &(id, country) in CUSTOMERS {
        let row = CustomerRow {
            customer_id: id.into(),
            country: Some(country.into()),
            ..CustomerRow::default()
        };
        live.apply(Change::UpsertCustomer(row)).unwrap();
    }
    let mut orders = 0;
    for _ in 0..rng.below(4) {
        orders += 1;
        live.apply(line(&mut rng, orders, T0)).unwrap();
    }
    let rules = put_rules(&mut live, &mut rng, (Kind::Customer, "d", 6), |rng| {
        rule(rng, 2)
    })?;
    walk_against_scratch(
        &mut live,
        &mut rng,
        (12, &[SEC, DAY, 6 * DAY]),
        &rules,
        |rng, now| {
            orders += 1;
            line(rng, orders, now)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn a_line_skips_only_the_segments_it_cannot_move(seed in any::<u64>()) {
        scenario(seed)?;
    }
}
