//! Random datasets and random rules for the model tests of `strata-engine`
//! and `strata-live` (a dev-only crate, never published).
//!
//! Datasets are written as CSV files so that the loader's view of them is
//! part of what is compared. Times cluster around [`NOW`] and hit the window
//! boundaries exactly; text values come from small pools that differ in
//! case, so that equality, case folding and nulls are all exercised.

use std::fmt::Write as _;
use std::path::Path;

pub const NOW: &str = "2024-06-30T12:00:00Z";
pub const NOW_SECS: i64 = 1_719_748_800;

/// SplitMix64: a tiny, deterministic generator so a failing seed replays.
pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

pub fn instant(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).unwrap().to_string()
}

/// Order times: spread over two months before `NOW`, with the window
/// boundaries themselves, the last second of a day, and the future.
pub fn order_time(rng: &mut Rng) -> String {
    let day = 86_400;
    match rng.below(10) {
        0 => instant(NOW_SECS - 30 * day),
        1 => instant(NOW_SECS - 7 * day),
        2 => instant(NOW_SECS - 14 * day + rng.below(2) as i64),
        3 => instant(NOW_SECS + 3_600),
        4 => "2024-06-15T23:59:59Z".to_owned(),
        5 => "2024-05-31".to_owned(),
        _ => instant(NOW_SECS - (rng.below(60 * 4) as i64) * 6 * 3_600),
    }
}

pub const TEXTS: &[&str] = &[
    "Acme",
    "acme",
    "Zeta",
    "Home > Kitchen",
    "Apparel > Socks",
    "Socks",
    "ÄRGER",
];
pub const COUNTRIES: &[&str] = &["US", "us", "GB", "DE"];
pub const MARKETS: &[&str] = &["US", "UK", "us"];
pub const TAGS: &[&str] = &["vip", "VIP", "new", "sale"];

pub fn cell(rng: &mut Rng, pool: &[&str], null_percent: u64) -> String {
    if rng.chance(null_percent) {
        String::new()
    } else {
        rng.pick(pool).to_owned()
    }
}

pub fn money(rng: &mut Rng) -> String {
    let cents = rng.below(6_000);
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub fn write_dataset(dir: &Path, rng: &mut Rng) {
    write_dataset_scaled(dir, rng, 1);
}

/// A random dataset; `scale` multiplies the entity and order counts (large
/// scales make column scans span several 64-row words).
pub fn write_dataset_scaled(dir: &Path, rng: &mut Rng, scale: usize) {
    let products = scale * (2 + rng.below(6));
    let customers = scale * (3 + rng.below(8));
    let mut csv = String::from(
        "sku,parent_sku,title,brand,category,tags,seller_account,marketplace,price,cost,inventory,created_at,x_color\n",
    );
    for p in 0..products {
        let tags: Vec<&str> = (0..rng.below(3)).map(|_| rng.pick(TAGS)).collect();
        let inventory = if rng.chance(20) {
            String::new()
        } else {
            rng.below(40).to_string()
        };
        // A cost with ten decimals now and then pushes money past the
        // fixed-point form, so the decimal paths get compared too.
        let cost = if rng.chance(25) {
            String::new()
        } else if rng.chance(5) {
            "1.0000000001".to_owned()
        } else {
            money(rng)
        };
        let _ = writeln!(
            csv,
            "S{p},{},{},{},{},{},{},{},{},{cost},{inventory},{},{}",
            cell(rng, &["PAR1", "PAR2"], 40),
            cell(rng, &["Red socks", "Lamp", ""], 20),
            cell(rng, &["Acme", "acme", "Zeta"], 10),
            cell(rng, &["Home > Kitchen", "Apparel > Socks", "Socks"], 10),
            tags.join(";"),
            cell(rng, &["acct1", "acct2"], 20),
            cell(rng, MARKETS, 20),
            money(rng),
            if rng.chance(30) {
                String::new()
            } else {
                order_time(rng)
            },
            cell(rng, &["red", "Blue"], 40),
        );
    }
    std::fs::write(dir.join("products.csv"), csv).unwrap();

    let mut csv = String::from(
        "customer_id,email,first_name,country,city,marketplace,tags,accepts_marketing,created_at,x_seg\n",
    );
    for c in 0..customers {
        let tags: Vec<&str> = (0..rng.below(3)).map(|_| rng.pick(TAGS)).collect();
        let _ = writeln!(
            csv,
            "C{c},{},{},{},{},{},{},{},{},{}",
            cell(
                rng,
                &["a@Example.com", "b@shop.co.uk", "noat", "c@example.COM"],
                20
            ),
            cell(rng, TEXTS, 20),
            cell(rng, COUNTRIES, 20),
            cell(rng, &["Berlin", "Boston"], 40),
            cell(rng, MARKETS, 20),
            tags.join(";"),
            cell(rng, &["true", "false"], 30),
            if rng.chance(30) {
                String::new()
            } else {
                order_time(rng)
            },
            cell(rng, &["a", "B"], 40),
        );
    }
    std::fs::write(dir.join("customers.csv"), csv).unwrap();

    let mut orders: Vec<(String, String)> = Vec::new();
    for o in 0..scale * (4 + rng.below(20)) {
        let at = order_time(rng);
        let customer = if rng.chance(15) {
            String::new()
        } else {
            format!("C{}", rng.below(customers))
        };
        let status = cell(rng, &["shipped", "cancelled", "Refunded", "pending"], 30);
        let market = cell(rng, MARKETS, 20);
        let mut lines = String::new();
        for _ in 0..1 + rng.below(3) {
            let discount = if rng.chance(70) {
                String::new()
            } else {
                money(rng)
            };
            let fees = if rng.chance(50) {
                String::new()
            } else {
                money(rng)
            };
            let _ = writeln!(
                lines,
                "O{o},{at},{customer},S{},{},{},{discount},{fees},{status},{market}",
                rng.below(products),
                1 + rng.below(4),
                money(rng),
            );
        }
        orders.push((at, lines));
    }
    // Half the files come in time order, as exports usually do: the engine
    // then takes a path that skips sorting.
    if rng.chance(50) {
        let instant = |at: &str| -> jiff::Timestamp {
            at.parse()
                .unwrap_or_else(|_| format!("{at}T00:00:00Z").parse().unwrap())
        };
        orders.sort_by_key(|(at, _)| instant(at));
    }
    let mut csv = String::from(
        "order_id,ordered_at,customer_id,sku,quantity,unit_price,discount,fees,status,marketplace\n",
    );
    for (_, lines) in &orders {
        csv.push_str(lines);
    }
    std::fs::write(dir.join("orders.csv"), csv).unwrap();

    let mut csv = String::from("date,sku,sessions,bsr,reviews,rating\n");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..scale * rng.below(20) {
        let p = rng.below(products);
        let day = rng.below(40) as i64 - 36; // up to a few days after today
        if !seen.insert((p, day)) {
            continue;
        }
        let date = jiff::civil::date(2024, 6, 30)
            .checked_add(jiff::Span::new().days(day))
            .unwrap();
        let opt = |rng: &mut Rng, max: usize| {
            if rng.chance(30) {
                String::new()
            } else {
                rng.below(max).to_string()
            }
        };
        let sessions = opt(rng, 50);
        let bsr = opt(rng, 9_000);
        let reviews = opt(rng, 100);
        let rating = if rng.chance(40) {
            String::new()
        } else {
            format!("{}.{}", rng.below(5), rng.below(10))
        };
        let _ = writeln!(csv, "{date},S{p},{sessions},{bsr},{reviews},{rating}");
    }
    std::fs::write(dir.join("product_daily.csv"), csv).unwrap();

    let tiers = r#"[
        {"marketplace": "US", "metric": "revenue", "tiers": [{"name": "Gold", "threshold": 50}, {"name": "Silver", "threshold": 0}]},
        {"marketplace": null, "metric": "orders", "tiers": [{"name": "Repeat", "threshold": 1}, {"name": "One", "threshold": 0}]}
    ]"#;
    std::fs::write(dir.join("tiers.json"), tiers).unwrap();

    // Saved segments may only refer to earlier ones, so there is no cycle.
    let p0 = product_rule(rng, 2, &[]);
    let c0 = customer_rule(rng, 2, &["prod-0"], &[]);
    let c1 = customer_rule(rng, 2, &["prod-0"], &["cust-0"]);
    let segments = serde_json::json!([
        {"name": "prod-0", "kind": "product", "rule": p0},
        {"name": "cust-0", "kind": "customer", "rule": c0},
        {"name": "cust-1", "kind": "customer", "rule": c1},
    ]);
    std::fs::write(dir.join("segments.json"), segments.to_string()).unwrap();
}

pub const NUMBERS: &[&str] = &[
    "0", "1", "2", "3", "5", "10", "12.5", "20.00", "49.99", "-1", "0.5", "100",
];
pub const TIMES: &[&str] = &[
    "-1h",
    "-7d",
    "-30d",
    "-2w",
    "+1d",
    "-14d",
    "2024-06-30",
    "2024-05-31",
    "2024-06-15",
    "today",
    "2024-05-31T12:00:00Z",
    "2024-06-16T14:00:00+02:00",
];
pub const STRINGS: &[&str] = &[
    "'acme'",
    "'Zeta'",
    "'socks'",
    "'us'",
    "'GB'",
    "'example.com'",
    "'vip'",
    "'a'",
    "'ärger'",
    "''",
];

pub fn num_test(rng: &mut Rng) -> String {
    match rng.below(9) {
        0 => format!("BETWEEN {} AND {}", rng.pick(NUMBERS), rng.pick(NUMBERS)),
        1 => format!("IN ({}, {})", rng.pick(NUMBERS), rng.pick(NUMBERS)),
        2 => format!("NOT IN ({})", rng.pick(NUMBERS)),
        3 => rng
            .pick(&["IS NULL", "IS NOT NULL", "IS EMPTY", "IS NOT EMPTY"])
            .to_owned(),
        _ => format!(
            "{} {}",
            rng.pick(&["=", "!=", "<", "<=", ">", ">="]),
            rng.pick(NUMBERS)
        ),
    }
}

pub fn time_test(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("BETWEEN {} AND {}", rng.pick(TIMES), rng.pick(TIMES)),
        1 => rng.pick(&["IS NULL", "IS NOT NULL"]).to_owned(),
        _ => format!(
            "{} {}",
            rng.pick(&["=", "!=", "<", "<=", ">", ">="]),
            rng.pick(TIMES)
        ),
    }
}

pub fn text_test(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => format!("IN ({}, {})", rng.pick(STRINGS), rng.pick(STRINGS)),
        1 => format!("NOT IN ({})", rng.pick(STRINGS)),
        2 => format!(
            "{} {}",
            rng.pick(&[
                "CONTAINS",
                "NOT CONTAINS",
                "STARTS WITH",
                "NOT STARTS WITH",
                "ENDS WITH",
                "NOT ENDS WITH"
            ]),
            rng.pick(STRINGS)
        ),
        3 => rng
            .pick(&["IS NULL", "IS NOT NULL", "IS EMPTY", "IS NOT EMPTY"])
            .to_owned(),
        _ => format!("{} {}", rng.pick(&["=", "!="]), rng.pick(STRINGS)),
    }
}

pub fn set_test(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => rng.pick(&["IS EMPTY", "IS NOT EMPTY"]).to_owned(),
        _ => format!(
            "{} {}",
            rng.pick(&["CONTAINS", "NOT CONTAINS"]),
            rng.pick(STRINGS)
        ),
    }
}

pub fn bounds(rng: &mut Rng, out: &mut Vec<String>) {
    if rng.chance(50) {
        out.push(format!("since: {}", rng.pick(TIMES)));
    }
    if rng.chance(30) {
        out.push(format!("until: {}", rng.pick(TIMES)));
    }
}

pub fn combine(rng: &mut Rng, depth: u32, atom: &mut dyn FnMut(&mut Rng) -> String) -> String {
    if depth == 0 || rng.chance(35) {
        return atom(rng);
    }
    match rng.below(3) {
        0 => format!("NOT ({})", combine(rng, depth - 1, atom)),
        1 => {
            let a = combine(rng, depth - 1, atom);
            let b = combine(rng, depth - 1, atom);
            format!("({a}) AND ({b})")
        }
        _ => {
            let a = combine(rng, depth - 1, atom);
            let b = combine(rng, depth - 1, atom);
            format!("({a}) OR ({b})")
        }
    }
}

pub fn customer_rule(
    rng: &mut Rng,
    depth: u32,
    product_segments: &[&str],
    customer_segments: &[&str],
) -> String {
    let mut atom = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 | 1 => {
                let f = rng.pick(&[
                    "number_of_orders",
                    "units_purchased",
                    "amount_spent",
                    "total_profit",
                    "average_order_value",
                ]);
                format!("{f} {}", num_test(rng))
            }
            2 => format!(
                "{} {}",
                rng.pick(&["created_at", "first_order_date", "last_order_date"]),
                time_test(rng)
            ),
            3 => {
                let f = rng.pick(&[
                    "email",
                    "email_domain",
                    "first_name",
                    "country",
                    "city",
                    "marketplace",
                    "tier",
                    "x_seg",
                    "customer_id",
                ]);
                format!("{f} {}", text_test(rng))
            }
            4 => format!("tags {}", set_test(rng)),
            5 => rng
                .pick(&[
                    "accepts_marketing",
                    "accepts_marketing = false",
                    "accepts_marketing != false",
                ])
                .to_owned(),
            6 if !customer_segments.is_empty() => {
                format!("in_segment('{}')", rng.pick(customer_segments))
            }
            _ => {
                let mut args = Vec::new();
                bounds(rng, &mut args);
                if rng.chance(25) {
                    args.push(format!("sku: ({}, 'S1')", rng.pick(&["'s0'", "'S2'"])));
                }
                if rng.chance(20) {
                    args.push(format!(
                        "category: {}",
                        rng.pick(&["'socks'", "'Home > Kitchen'"])
                    ));
                }
                if rng.chance(20) {
                    args.push(format!("brand: {}", rng.pick(&["'ACME'", "'Zeta'"])));
                }
                if rng.chance(20) {
                    args.push(format!(
                        "marketplace: {}",
                        rng.pick(&["'us'", "('UK', 'DE')"])
                    ));
                }
                if !product_segments.is_empty() && rng.chance(20) {
                    args.push(format!("in_segment: '{}'", rng.pick(product_segments)));
                }
                let args = args.join(", ");
                match rng.below(5) {
                    0 => format!("purchased({args})"),
                    1 => format!("purchased({args}) = false"),
                    2 => format!("orders({args}) {}", num_test(rng)),
                    3 => format!("units({args}) {}", num_test(rng)),
                    _ => format!("spent({args}) {}", num_test(rng)),
                }
            }
        }
    };
    combine(rng, depth, &mut atom)
}

pub fn product_rule(rng: &mut Rng, depth: u32, product_segments: &[&str]) -> String {
    let mut atom = |rng: &mut Rng| -> String {
        match rng.below(9) {
            0..=2 => {
                let f = rng.pick(&[
                    "price",
                    "cost",
                    "inventory",
                    "units_sold",
                    "sales",
                    "units_7d",
                    "units_14d",
                    "units_30d",
                    "sales_7d",
                    "sales_14d",
                    "sales_30d",
                    "avg_daily_units_7d",
                    "avg_daily_units_14d",
                    "avg_daily_units_30d",
                    "daily_velocity",
                    "days_of_stock",
                    "inventory_value",
                    "revenue_share",
                    "customers_30d",
                    "sessions_30d",
                    "conversion_rate_30d",
                    "bsr",
                    "reviews",
                    "rating",
                    "new_reviews_30d",
                ]);
                format!("{f} {}", num_test(rng))
            }
            3 => format!("created_at {}", time_test(rng)),
            4 => {
                let f = rng.pick(&[
                    "sku",
                    "parent_sku",
                    "title",
                    "brand",
                    "category",
                    "seller_account",
                    "marketplace",
                    "x_color",
                ]);
                format!("{f} {}", text_test(rng))
            }
            5 => format!("tags {}", set_test(rng)),
            6 if !product_segments.is_empty() => {
                format!("in_segment('{}')", rng.pick(product_segments))
            }
            _ => {
                let mut args = Vec::new();
                bounds(rng, &mut args);
                let f = rng.pick(&["units_sold", "sales", "sessions"]);
                format!("{f}({}) {}", args.join(", "), num_test(rng))
            }
        }
    };
    combine(rng, depth, &mut atom)
}
