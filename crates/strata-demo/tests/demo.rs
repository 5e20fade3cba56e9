//! The generated dataset, read back with the `csv` crate: determinism, the
//! loader's invariants (dataset.md), and the shape the segment language
//! examples need.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use jiff::{SignedDuration, Timestamp};
use strata_demo::{DemoOptions, DemoSummary, generate};

const FILES: [&str; 7] = [
    "products.csv",
    "customers.csv",
    "orders.csv",
    "product_daily.csv",
    "tiers.json",
    "segments.json",
    "settings.json",
];

fn options(customers: usize, seed: u64) -> DemoOptions {
    DemoOptions {
        customers,
        seed,
        ..DemoOptions::default()
    }
}

fn run(dir: &Path, opts: &DemoOptions) -> DemoSummary {
    generate(dir, opts).expect("generation succeeds")
}

fn bytes(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn same_seed_gives_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let opts = options(9_000, 7);
    let sa = run(a.path(), &opts);
    let sb = run(b.path(), &opts);
    assert_eq!(sa, sb);
    for name in FILES {
        assert!(
            bytes(a.path(), name) == bytes(b.path(), name),
            "{name} differs between two runs with the same seed"
        );
    }
}

#[test]
fn different_seed_gives_different_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(a.path(), &options(2_500, 7));
    run(b.path(), &options(2_500, 8));
    for name in [
        "products.csv",
        "customers.csv",
        "orders.csv",
        "product_daily.csv",
    ] {
        assert!(
            bytes(a.path(), name) != bytes(b.path(), name),
            "{name} is the same for seeds 7 and 8"
        );
    }
}

#[test]
fn generate_creates_nested_directory_and_handles_no_customers() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b");
    let s = run(&dir, &options(0, 1));
    assert_eq!((s.customers, s.orders, s.order_lines), (0, 0, 0));
    assert_eq!(s.products, 200);
    let d = Data::read(&dir);
    assert_eq!(d.products.len(), 200);
    assert_eq!(d.customers.len(), 0);
    assert!(d.daily_rows > 0);
}

/// A CSV file as header and rows of name → value.
fn read_csv(dir: &Path, name: &str, expected_header: &[&str]) -> Vec<HashMap<String, String>> {
    let mut reader =
        csv::Reader::from_path(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, expected_header, "{name} header");
    for h in &header {
        // dataset.md: only documented columns or custom `x_` ones.
        assert!(
            expected_header.contains(&h.as_str()) || h.starts_with("x_"),
            "{name}: unknown column {h}"
        );
    }
    reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(r.len(), header.len(), "{name}: ragged row {r:?}");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

struct Data {
    end: Timestamp,
    products: Vec<HashMap<String, String>>,
    customers: Vec<HashMap<String, String>>,
    orders: Vec<HashMap<String, String>>,
    daily: Vec<HashMap<String, String>>,
    daily_rows: usize,
    tiers: serde_json::Value,
    segments: serde_json::Value,
    settings: String,
}

impl Data {
    fn read(dir: &Path) -> Data {
        let products = read_csv(
            dir,
            "products.csv",
            &[
                "sku",
                "parent_sku",
                "asin",
                "title",
                "brand",
                "category",
                "tags",
                "seller_account",
                "marketplace",
                "price",
                "cost",
                "inventory",
                "created_at",
                "x_color",
            ],
        );
        let customers = read_csv(
            dir,
            "customers.csv",
            &[
                "customer_id",
                "email",
                "first_name",
                "last_name",
                "country",
                "city",
                "marketplace",
                "tags",
                "accepts_marketing",
                "created_at",
                "x_source",
            ],
        );
        let orders = read_csv(
            dir,
            "orders.csv",
            &[
                "order_id",
                "ordered_at",
                "customer_id",
                "status",
                "marketplace",
                "sku",
                "seller_account",
                "quantity",
                "unit_price",
                "discount",
                "fees",
            ],
        );
        let daily = read_csv(
            dir,
            "product_daily.csv",
            &["date", "sku", "sessions", "bsr", "reviews", "rating"],
        );
        let json = |name: &str| -> serde_json::Value {
            serde_json::from_slice(&bytes(dir, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        Data {
            end: DemoOptions::default().end,
            daily_rows: daily.len(),
            products,
            customers,
            orders,
            daily,
            tiers: json("tiers.json"),
            segments: json("segments.json"),
            settings: String::from_utf8(bytes(dir, "settings.json")).unwrap(),
        }
    }
}

/// The default dataset (10,000 customers, seed 42), generated once.
fn default_data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let summary = run(dir.path(), &DemoOptions::default());
        let data = Data::read(dir.path());
        assert_eq!(summary.products, data.products.len());
        assert_eq!(summary.customers, data.customers.len());
        assert_eq!(summary.order_lines, data.orders.len());
        assert_eq!(summary.daily_rows, data.daily_rows);
        let distinct: HashSet<&str> = data.orders.iter().map(|o| o["order_id"].as_str()).collect();
        assert_eq!(summary.orders, distinct.len());
        data
    })
}

fn ts(s: &str) -> Timestamp {
    assert!(
        s.ends_with('Z') && s.len() == 20,
        "not an RFC 3339 UTC timestamp: {s}"
    );
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn is_money(s: &str) -> bool {
    match s.split_once('.') {
        Some((units, cents)) => {
            !units.is_empty()
                && units.bytes().all(|b| b.is_ascii_digit())
                && cents.len() == 2
                && cents.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn cents(s: &str) -> i64 {
    if s.is_empty() {
        return 0;
    }
    assert!(is_money(s), "not money: {s}");
    s.replace('.', "").parse().unwrap()
}

fn tags(s: &str) -> HashSet<&str> {
    s.split(';').filter(|t| !t.is_empty()).collect()
}

#[test]
fn products_are_valid_and_varied() {
    let d = default_data();
    assert_eq!(d.products.len(), 1_000, "products ≈ customers / 10");
    let mut skus = HashSet::new();
    let mut asins = HashSet::new();
    let parents: HashSet<&str> = d
        .products
        .iter()
        .map(|p| p["parent_sku"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    let by_sku: HashMap<&str, &HashMap<String, String>> =
        d.products.iter().map(|p| (p["sku"].as_str(), p)).collect();
    for p in &d.products {
        let sku = p["sku"].as_str();
        assert!(skus.insert(sku), "duplicate sku {sku}");
        assert!(ts(&p["created_at"]) <= d.end);
        let asin = p["asin"].as_str();
        if !asin.is_empty() {
            assert!(
                asin.len() == 10
                    && asin.starts_with("B0")
                    && asin
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                "bad asin {asin}"
            );
            assert!(asins.insert(asin), "duplicate asin {asin}");
        }
        for col in ["price", "cost"] {
            assert!(
                p[col].is_empty() || is_money(&p[col]),
                "{sku}: {col} {}",
                p[col]
            );
        }
        assert!(p["inventory"].is_empty() || p["inventory"].parse::<u64>().is_ok());
        let cat = p["category"].as_str();
        assert!(!cat.is_empty() && cat.split(" > ").count() <= 2, "{cat}");
        if !p["parent_sku"].is_empty() {
            let parent = by_sku[p["parent_sku"].as_str()];
            assert!(
                parent["price"].is_empty() && parent["parent_sku"].is_empty(),
                "{sku}: parent is a plain row"
            );
            assert_eq!(parent["category"], p["category"]);
            assert!(sku.starts_with(&format!("{}-", parent["sku"])));
        }
        if parents.contains(sku) {
            assert!(p["price"].is_empty());
        } else {
            assert!(!p["price"].is_empty(), "{sku} has no price");
        }
    }
    let sock = by_sku.get("SOCK-RED-M").expect("SOCK-RED-M exists");
    assert_eq!(sock["parent_sku"], "SOCK");
    assert_eq!(sock["category"], "Socks");
    let count =
        |f: &dyn Fn(&HashMap<String, String>) -> bool| d.products.iter().filter(|p| f(p)).count();
    assert!(count(&|p| p["brand"] == "Acme") > 0);
    assert!(count(&|p| p["category"].starts_with("Home > ")) > 0);
    assert!(count(&|p| p["category"] == "Home") > 0);
    assert!(count(&|p| p["title"].is_empty()) > 0);
    assert!(
        count(&|p| p["title"].contains(',')) > 0,
        "some titles need quoting"
    );
    assert!(
        count(&|p| p["title"].contains('"')) > 0,
        "some titles hold a quote"
    );
    assert!(count(&|p| !p["price"].is_empty() && p["cost"].is_empty()) > 0);
    assert!(count(&|p| !p["price"].is_empty() && p["inventory"].is_empty()) > 0);
    assert!(count(&|p| p["inventory"] == "0") > 10, "stock-outs");
    assert!(count(&|p| p["x_color"] == "Red") > 0);
    for tag in [
        "new",
        "bestseller",
        "clearance",
        "seasonal",
        "discontinued",
        "gift",
        "eco",
    ] {
        assert!(count(&|p| tags(&p["tags"]).contains(tag)) > 0, "tag {tag}");
    }
    let markets: HashSet<&str> = d
        .products
        .iter()
        .map(|p| p["marketplace"].as_str())
        .collect();
    assert_eq!(markets, HashSet::from(["US", "UK", "DE"]));
    let accounts: HashSet<&str> = d
        .products
        .iter()
        .map(|p| p["seller_account"].as_str())
        .collect();
    assert_eq!(accounts.len(), 3);
}

#[test]
fn customers_are_valid() {
    let d = default_data();
    let mut ids = HashSet::new();
    let countries: HashMap<&str, &[&str]> = HashMap::from([
        ("US", &["US", "CA"][..]),
        ("UK", &["GB", "IE"][..]),
        ("DE", &["DE", "AT", "CH"][..]),
    ]);
    for c in &d.customers {
        assert!(
            ids.insert(c["customer_id"].as_str()),
            "duplicate customer {}",
            c["customer_id"]
        );
        assert!(ts(&c["created_at"]) <= d.end);
        assert!(["true", "false", ""].contains(&c["accepts_marketing"].as_str()));
        let country = c["country"].as_str();
        assert!(
            country.is_empty() || countries[c["marketplace"].as_str()].contains(&country),
            "{c:?}"
        );
        let email = c["email"].as_str();
        assert!(
            email.is_empty() || email.matches('@').count() == 1,
            "{email}"
        );
        assert!(
            c["x_source"].is_empty()
                || ["ads", "organic", "referral", "social", "email"]
                    .contains(&c["x_source"].as_str())
        );
    }
    let count =
        |f: &dyn Fn(&HashMap<String, String>) -> bool| d.customers.iter().filter(|c| f(c)).count();
    assert!(count(&|c| c["email"].is_empty()) > 0);
    assert!(count(&|c| c["email"].ends_with("@example.com")) > 0);
    assert!(count(&|c| c["accepts_marketing"].is_empty()) > 0);
    for tag in ["vip", "wholesale", "newsletter"] {
        assert!(count(&|c| tags(&c["tags"]).contains(tag)) > 0, "tag {tag}");
    }
    let markets: BTreeMap<&str, usize> = d.customers.iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c["marketplace"].as_str()).or_default() += 1;
        m
    });
    assert!(
        markets.len() == 3 && markets.values().all(|&n| n > 1_000),
        "{markets:?}"
    );
}

#[test]
fn orders_are_valid() {
    let d = default_data();
    let products: HashMap<&str, &HashMap<String, String>> =
        d.products.iter().map(|p| (p["sku"].as_str(), p)).collect();
    let customers: HashMap<&str, &HashMap<String, String>> = d
        .customers
        .iter()
        .map(|c| (c["customer_id"].as_str(), c))
        .collect();
    let mut order_level: HashMap<&str, [&str; 4]> = HashMap::new();
    let mut order_skus: HashSet<(&str, &str)> = HashSet::new();
    let mut last_time = Timestamp::MIN;
    for o in &d.orders {
        let id = o["order_id"].as_str();
        let sku = o["sku"].as_str();
        let product = products
            .get(sku)
            .unwrap_or_else(|| panic!("{id}: unknown sku {sku}"));
        assert!(!product["price"].is_empty(), "{id}: parent row {sku} sold");
        assert_eq!(o["seller_account"], product["seller_account"]);
        assert_eq!(
            o["marketplace"], product["marketplace"],
            "listing sold in its marketplace"
        );
        let at = ts(&o["ordered_at"]);
        assert!(at < d.end, "{id}: {at} after end");
        assert!(at >= last_time, "orders.csv is in time order");
        last_time = at;
        assert!(
            at >= ts(&product["created_at"]),
            "{id}: {sku} sold before it was listed"
        );
        let cid = o["customer_id"].as_str();
        if !cid.is_empty() {
            let c = customers
                .get(cid)
                .unwrap_or_else(|| panic!("{id}: unknown customer {cid}"));
            assert_eq!(o["marketplace"], c["marketplace"]);
            assert!(at >= ts(&c["created_at"]), "{id}: ordered before sign-up");
        }
        let level = [
            o["ordered_at"].as_str(),
            cid,
            o["status"].as_str(),
            o["marketplace"].as_str(),
        ];
        assert_eq!(
            *order_level.entry(id).or_insert(level),
            level,
            "{id}: order-level columns disagree"
        );
        assert!(order_skus.insert((id, sku)), "{id}: {sku} on two lines");
        assert!(o["quantity"].parse::<u32>().unwrap() >= 1);
        assert!(is_money(&o["unit_price"]) && is_money(&o["fees"]));
        assert!(o["discount"].is_empty() || is_money(&o["discount"]));
        let revenue =
            o["quantity"].parse::<i64>().unwrap() * cents(&o["unit_price"]) - cents(&o["discount"]);
        assert!(revenue >= 0);
        if o["status"] != "cancelled" {
            let fee_share = cents(&o["fees"]) as f64 / revenue.max(1) as f64;
            assert!(
                revenue < 100 || (0.07..=0.18).contains(&fee_share),
                "{id}: fees {fee_share}"
            );
        }
    }
    let n_orders = order_level.len();
    let lines_per_order = d.orders.len() as f64 / n_orders as f64;
    assert!((1.5..=2.5).contains(&lines_per_order), "{lines_per_order}");
    let lines_per_customer = d.orders.len() as f64 / d.customers.len() as f64;
    assert!(
        (8.0..=12.0).contains(&lines_per_customer),
        "{lines_per_customer} lines per customer"
    );
    let share = |f: &dyn Fn(&[&str; 4]) -> bool| {
        order_level.values().filter(|l| f(l)).count() as f64 / n_orders as f64
    };
    let cancelled = share(&|l| l[2] == "cancelled");
    let refunded = share(&|l| l[2] == "refunded");
    let anonymous = share(&|l| l[1].is_empty());
    assert!((0.02..=0.04).contains(&cancelled), "cancelled {cancelled}");
    assert!((0.01..=0.03).contains(&refunded), "refunded {refunded}");
    assert!(
        (0.035..=0.065).contains(&anonymous),
        "anonymous {anonymous}"
    );
    assert!(share(&|l| l[2] == "pending") > 0.0);
    assert!(share(&|l| l[2] == "shipped" || l[2] == "delivered") > 0.9);
    let statuses: HashSet<&str> = order_level.values().map(|l| l[2]).collect();
    assert_eq!(
        statuses,
        HashSet::from(["pending", "shipped", "delivered", "cancelled", "refunded"])
    );

    // Some customers never order; the orders-per-customer curve is skewed.
    let mut per_customer: HashMap<&str, usize> = HashMap::new();
    for l in order_level.values().filter(|l| !l[1].is_empty()) {
        *per_customer.entry(l[1]).or_default() += 1;
    }
    let never = d.customers.len() - per_customer.len();
    assert!(
        never as f64 > 0.05 * d.customers.len() as f64,
        "{never} customers without orders"
    );
    let once = per_customer.values().filter(|&&n| n == 1).count();
    let many = per_customer.values().filter(|&&n| n >= 10).count();
    assert!(
        once as f64 > 0.3 * per_customer.len() as f64 && many > 100,
        "once {once}, 10+ {many}"
    );

    // Most of the volume is recent, with a holiday peak.
    let two_years_ago = d.end - SignedDuration::from_hours(730 * 24);
    let recent = d
        .orders
        .iter()
        .filter(|o| ts(&o["ordered_at"]) >= two_years_ago)
        .count();
    assert!(recent as f64 > 0.6 * d.orders.len() as f64);
    let month = |m: &str| {
        d.orders
            .iter()
            .filter(|o| o["ordered_at"].starts_with(m))
            .count()
    };
    assert!(
        month("2025-12") as f64 > 1.3 * month("2025-09") as f64,
        "December peak"
    );

    // Long tail: the top tenth of the sellable products sells most units.
    let mut units: HashMap<&str, u64> = HashMap::new();
    for o in d
        .orders
        .iter()
        .filter(|o| o["status"] != "cancelled" && o["status"] != "refunded")
    {
        *units.entry(o["sku"].as_str()).or_default() += o["quantity"].parse::<u64>().unwrap();
    }
    let mut sellable: Vec<u64> = d
        .products
        .iter()
        .filter(|p| !p["price"].is_empty())
        .map(|p| units.get(p["sku"].as_str()).copied().unwrap_or(0))
        .collect();
    sellable.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = sellable.iter().sum();
    let top: u64 = sellable[..sellable.len() / 10].iter().sum();
    assert!(
        top as f64 > 0.5 * total as f64,
        "top 10% carry {top} of {total} units"
    );
    let unsold = sellable.iter().filter(|&&u| u == 0).count();
    assert!(unsold > 0, "some products never sell");
}

#[test]
fn daily_rows_are_valid() {
    let d = default_data();
    let skus: HashSet<&str> = d.products.iter().map(|p| p["sku"].as_str()).collect();
    let last_date = (d.end - SignedDuration::from_hours(24))
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let mut seen = HashSet::new();
    let mut last_reviews: HashMap<&str, u64> = HashMap::new();
    let mut first_reviews: HashMap<&str, u64> = HashMap::new();
    let mut dates = HashSet::new();
    for r in &d.daily {
        let sku = r["sku"].as_str();
        assert!(skus.contains(sku));
        let date = r["date"].as_str();
        assert!(
            date.parse::<jiff::civil::Date>().is_ok() && date <= last_date.as_str(),
            "{date}"
        );
        assert!(seen.insert((sku, date)), "({sku}, {date}) twice");
        dates.insert(date);
        r["sessions"].parse::<u64>().unwrap();
        assert!(r["bsr"].is_empty() || r["bsr"].parse::<u64>().unwrap() >= 1);
        if !r["reviews"].is_empty() {
            let n: u64 = r["reviews"].parse().unwrap();
            first_reviews.entry(sku).or_insert(n);
            let before = last_reviews.insert(sku, n).unwrap_or(0);
            assert!(n >= before, "{sku}: reviews went down");
        }
        if !r["rating"].is_empty() {
            let x: f64 = r["rating"].parse().unwrap();
            assert!(
                (1.0..=5.0).contains(&x) && r["rating"].len() == 3,
                "{}",
                r["rating"]
            );
        }
    }
    assert_eq!(dates.len(), 45);
    assert!(dates.contains(last_date.as_str()));
    let no_bsr = d.daily.iter().filter(|r| r["bsr"].is_empty()).count();
    assert!(no_bsr > 0 && no_bsr < d.daily.len() / 5);
    // Gaps: some products miss days inside their range.
    let mut per_sku: HashMap<&str, usize> = HashMap::new();
    for r in &d.daily {
        *per_sku.entry(r["sku"].as_str()).or_default() += 1;
    }
    assert!(per_sku.values().filter(|&&n| n < 45).count() > 0);
    let grew = last_reviews
        .iter()
        .filter(|(sku, n)| first_reviews[**sku] < **n)
        .count();
    assert!(grew > 10, "reviews accrue");
}

#[test]
fn json_files_follow_the_spec() {
    let d = default_data();
    assert_eq!(
        d.settings.trim(),
        r#"{"timezone": "UTC", "currency": "USD"}"#
    );
    let schemes = d.tiers.as_array().unwrap();
    let markets: Vec<Option<&str>> = schemes.iter().map(|s| s["marketplace"].as_str()).collect();
    assert_eq!(markets, [Some("US"), Some("UK"), None]);
    for s in schemes {
        assert!(["orders", "units", "revenue", "profit"].contains(&s["metric"].as_str().unwrap()));
        let tiers = s["tiers"].as_array().unwrap();
        assert!((1..=10).contains(&tiers.len()));
        let thresholds: Vec<f64> = tiers
            .iter()
            .map(|t| t["threshold"].as_f64().unwrap())
            .collect();
        assert!(thresholds.windows(2).all(|w| w[0] > w[1]), "{thresholds:?}");
        let names: HashSet<&str> = tiers.iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), tiers.len());
        assert!(names.contains("Gold") && names.contains("Platinum"));
    }
    let segments: HashMap<&str, (&str, &str)> = d
        .segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                (s["kind"].as_str().unwrap(), s["rule"].as_str().unwrap()),
            )
        })
        .collect();
    for (name, kind) in [
        ("best-sellers", "product"),
        ("low-stock", "product"),
        ("discontinued", "product"),
        ("vip", "customer"),
        ("lapsed", "customer"),
    ] {
        assert_eq!(segments[name].0, kind, "{name}");
    }
    assert_eq!(
        segments["low-stock"].1,
        "days_of_stock < 14 AND units_30d > 0"
    );
}

/// A rule's text and a hand-written evaluation of it.
type Example<'a> = (
    &'static str,
    Box<dyn Fn(&HashMap<String, String>) -> bool + 'a>,
);

/// Per-customer totals over counting lines, as fields.md defines them.
#[derive(Default)]
struct Totals {
    orders: HashSet<String>,
    spent: i64,
    profit: i64,
    last: Option<Timestamp>,
}

/// The language.md examples, evaluated by hand on the default dataset at
/// `now = end`: each must select some but not all of its kind.
#[test]
fn language_examples_have_answers() {
    let d = default_data();
    let now = d.end;
    let days = |n: i64| now - SignedDuration::from_hours(24 * n);
    let products: HashMap<&str, &HashMap<String, String>> =
        d.products.iter().map(|p| (p["sku"].as_str(), p)).collect();
    let counting: Vec<&HashMap<String, String>> = d
        .orders
        .iter()
        .filter(|o| o["status"] != "cancelled" && o["status"] != "refunded")
        .collect();
    let mut totals: HashMap<&str, Totals> = HashMap::new();
    let (mut u7, mut u14, mut u30) = (HashMap::new(), HashMap::new(), HashMap::new());
    for o in &counting {
        let p = products[o["sku"].as_str()];
        let q: i64 = o["quantity"].parse().unwrap();
        let at = ts(&o["ordered_at"]);
        for (map, n) in [(&mut u7, 7), (&mut u14, 14), (&mut u30, 30)] {
            if at >= days(n) {
                *map.entry(o["sku"].as_str()).or_insert(0i64) += q;
            }
        }
        if o["customer_id"].is_empty() {
            continue;
        }
        let revenue = q * cents(&o["unit_price"]) - cents(&o["discount"]);
        let t = totals.entry(o["customer_id"].as_str()).or_default();
        t.orders.insert(o["order_id"].clone());
        t.spent += revenue;
        t.profit += revenue - cents(&o["fees"]) - q * cents(&p["cost"]);
        t.last = t.last.max(Some(at));
    }
    let low_stock: HashSet<&str> = d
        .products
        .iter()
        .filter(|p| {
            let sku = p["sku"].as_str();
            let get = |m: &HashMap<&str, i64>| m.get(sku).copied().unwrap_or(0) as f64;
            let velocity = 0.5 * get(&u7) / 7.0 + 0.3 * get(&u14) / 14.0 + 0.2 * get(&u30) / 30.0;
            let inventory = p["inventory"].parse::<f64>().ok();
            velocity > 0.0 && inventory.is_some_and(|i| i / velocity < 14.0) && get(&u30) > 0.0
        })
        .map(|p| p["sku"].as_str())
        .collect();
    let tier = |c: &HashMap<String, String>| -> Option<String> {
        let schemes = d.tiers.as_array().unwrap();
        let scheme = schemes
            .iter()
            .find(|s| s["marketplace"].as_str() == Some(c["marketplace"].as_str()))
            .or_else(|| schemes.iter().find(|s| s["marketplace"].is_null()))?;
        let t = totals.get(c["customer_id"].as_str());
        let value = match scheme["metric"].as_str().unwrap() {
            "orders" => t.map_or(0, |t| t.orders.len() as i64) * 100,
            "revenue" => t.map_or(0, |t| t.spent),
            "profit" => t.map_or(0, |t| t.profit),
            m => panic!("metric {m}"),
        };
        scheme["tiers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| value > (x["threshold"].as_f64().unwrap() * 100.0).round() as i64)
            .max_by_key(|x| (x["threshold"].as_f64().unwrap() * 100.0) as i64)
            .map(|x| x["name"].as_str().unwrap().to_string())
    };
    let mut by_customer: HashMap<&str, Vec<&HashMap<String, String>>> = HashMap::new();
    for o in &counting {
        by_customer
            .entry(o["customer_id"].as_str())
            .or_default()
            .push(o);
    }
    let lines_of = |cid: &str| by_customer.get(cid).map_or(&[][..], Vec::as_slice).iter();

    let customer_examples: Vec<Example> = vec![
        (
            "amount_spent > 500 AND number_of_orders >= 3",
            Box::new(|c| {
                totals
                    .get(c["customer_id"].as_str())
                    .is_some_and(|t| t.spent > 50_000 && t.orders.len() >= 3)
            }),
        ),
        (
            "last_order_date < -180d AND amount_spent > 200",
            Box::new(|c| {
                totals
                    .get(c["customer_id"].as_str())
                    .is_some_and(|t| t.last < Some(days(180)) && t.spent > 20_000)
            }),
        ),
        (
            "purchased(category: 'Socks', since: 2016-10-01, until: 2017-02-28)",
            Box::new(|c| {
                lines_of(&c["customer_id"]).any(|o| {
                    products[o["sku"].as_str()]["category"].eq_ignore_ascii_case("socks")
                        && ("2016-10-01".."2017-03-01").contains(&&o["ordered_at"][..10])
                })
            }),
        ),
        (
            "tags CONTAINS 'vip' OR tier IN ('Gold', 'Platinum')",
            Box::new(|c| {
                tags(&c["tags"]).contains("vip")
                    || matches!(tier(c).as_deref(), Some("Gold" | "Platinum"))
            }),
        ),
        (
            "NOT purchased(since: -90d) AND number_of_orders >= 1",
            Box::new(|c| {
                totals
                    .get(c["customer_id"].as_str())
                    .is_some_and(|t| t.last < Some(days(90)))
            }),
        ),
        (
            "email_domain = 'example.com' AND NOT (country IN ('US', 'CA'))",
            Box::new(|c| {
                c["email"].to_lowercase().ends_with("@example.com")
                    && !["US", "CA"].contains(&c["country"].as_str())
            }),
        ),
        (
            "orders(sku: 'SOCK-RED-M', since: -30d) >= 2",
            Box::new(|c| {
                let orders: HashSet<&str> = lines_of(&c["customer_id"])
                    .filter(|o| o["sku"] == "SOCK-RED-M" && ts(&o["ordered_at"]) >= days(30))
                    .map(|o| o["order_id"].as_str())
                    .collect();
                orders.len() >= 2
            }),
        ),
        (
            "purchased(in_segment: 'low-stock') AND accepts_marketing = true",
            Box::new(|c| {
                c["accepts_marketing"] == "true"
                    && lines_of(&c["customer_id"]).any(|o| low_stock.contains(o["sku"].as_str()))
            }),
        ),
    ];
    let mut report = Vec::new();
    for (rule, f) in &customer_examples {
        let n = d.customers.iter().filter(|c| f(c)).count();
        report.push(format!("{n:>6}  {rule}"));
        assert!(
            n > 0 && n < d.customers.len(),
            "{rule}: {n} of {} customers",
            d.customers.len()
        );
    }
    // Tiers split every marketplace into visible proportions.
    let mut per_tier: HashMap<(String, Option<String>), usize> = HashMap::new();
    for c in &d.customers {
        *per_tier
            .entry((c["marketplace"].clone(), tier(c)))
            .or_default() += 1;
    }
    for ((market, name), n) in &per_tier {
        assert!(*n >= 20, "{market} {name:?}: {n} customers");
    }

    let best: i64 = d.segments.as_array().unwrap()[0]["rule"].as_str().unwrap()
        ["units_30d >= ".len()..]
        .parse()
        .unwrap();
    let units_30d = |p: &HashMap<String, String>| u30.get(p["sku"].as_str()).copied().unwrap_or(0);
    let product_examples: Vec<Example> = vec![
        (
            "title IS NOT EMPTY AND inventory IS NOT EMPTY",
            Box::new(|p| !p["title"].is_empty() && !["", "0"].contains(&p["inventory"].as_str())),
        ),
        (
            "days_of_stock < 14 AND units_30d > 0",
            Box::new(|p| low_stock.contains(p["sku"].as_str())),
        ),
        (
            "brand = 'Acme' OR (price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home')",
            Box::new(|p| {
                p["brand"] == "Acme"
                    || (!p["price"].is_empty()
                        && (1_000..=4_999).contains(&cents(&p["price"]))
                        && p["category"].starts_with("Home"))
            }),
        ),
        (
            "in_segment('best-sellers') AND NOT in_segment('discontinued')",
            Box::new(|p| units_30d(p) >= best && !tags(&p["tags"]).contains("discontinued")),
        ),
    ];
    for (rule, f) in &product_examples {
        let n = d.products.iter().filter(|p| f(p)).count();
        report.push(format!("{n:>6}  {rule}"));
        assert!(
            n > 0 && n < d.products.len(),
            "{rule}: {n} of {} products",
            d.products.len()
        );
    }
    eprintln!("{}", report.join("\n"));
}
