//! Rule evaluation on a 100,000-customer demo dataset (`cargo bench -p
//! strata-engine`). The figures of BENCHMARKS.md come from the 1M-customer
//! comparison with DuckDB (`bench/run.sh`); this is the quick loop for
//! working on the evaluator.

use std::sync::LazyLock;

use strata_engine::Engine;
use strata_lang::catalog::Kind;

fn main() {
    divan::main();
}

const NOW: &str = "2026-11-01T00:00:00Z";

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let opts = strata_demo::DemoOptions {
        customers: 100_000,
        ..strata_demo::DemoOptions::default()
    };
    strata_demo::generate(dir.path(), &opts).expect("the demo dataset");
    let data = strata_data::load_dir(dir.path()).expect("the demo dataset loads");
    Engine::new(data, NOW.parse().unwrap()).expect("the engine builds")
});

const CUSTOMER_RULES: &[&str] = &[
    "amount_spent > 500 AND number_of_orders >= 3",
    "average_order_value > 80",
    "purchased(since: -30d)",
    "orders(since: -30d) >= 2",
    "purchased(category: 'Socks', since: 2025-10-01, until: 2026-02-28)",
    "spent(brand: 'Acme') > 100",
    "tags CONTAINS 'vip' OR tier IN ('Gold', 'Platinum')",
    "(amount_spent > 1000 OR orders(since: -60d) >= 3) AND NOT tags CONTAINS 'wholesale'",
];

const PRODUCT_RULES: &[&str] = &[
    "days_of_stock < 14 AND units_30d > 0",
    "revenue_share > 1",
    "brand = 'Acme' OR (price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home')",
    "units_sold(since: -7d) > 5",
];

#[divan::bench(args = CUSTOMER_RULES)]
fn customers(bencher: divan::Bencher, rule: &str) {
    let engine = &*ENGINE;
    let compiled = engine
        .compile(Kind::Customer, rule)
        .expect("the rule compiles");
    bencher.bench(|| engine.evaluate(&compiled).expect("evaluates").len());
}

#[divan::bench(args = PRODUCT_RULES)]
fn products(bencher: divan::Bencher, rule: &str) {
    let engine = &*ENGINE;
    let compiled = engine
        .compile(Kind::Product, rule)
        .expect("the rule compiles");
    bencher.bench(|| engine.evaluate(&compiled).expect("evaluates").len());
}
