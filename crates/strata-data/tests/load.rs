//! Loading small datasets written to temporary directories: exact values for
//! valid data, and the exact problem text for each validation rule
//! (snapshots in `tests/snapshots`).

use std::path::Path;

use insta::assert_snapshot;
use rust_decimal::Decimal;
use strata_data::{
    Dataset, DatasetBuilder, LoadError, NO_CUSTOMER, NULL_CODE, Nanos, RuleSource, SegmentKind,
    TierMetric, load_dir,
};
use tempfile::TempDir;

fn write(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

fn load(files: &[(&str, &[u8])]) -> Dataset {
    let dir = write(files);
    match load_dir(dir.path()) {
        Ok(dataset) => dataset,
        Err(e) => panic!("expected a valid dataset, got:\n{e}"),
    }
}

/// The refusal message for a dataset that must be invalid.
fn problems(files: &[(&str, &[u8])]) -> String {
    let dir = write(files);
    match load_dir(dir.path()) {
        Ok(dataset) => panic!("expected problems, loaded {}", dataset.summary()),
        Err(LoadError::Invalid(problems)) => problems.to_string(),
        Err(e) => panic!("expected problems, got I/O error {e}"),
    }
}

/// The minimal valid files, to which a test adds or replaces one.
const PRODUCTS: &[u8] = b"sku\nA1\nB2\n";
const CUSTOMERS: &[u8] = b"customer_id\nC1\nC2\n";
const ORDERS: &[u8] = b"order_id,ordered_at,sku,quantity,unit_price\n";

fn with<'a>(replace: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    let mut files: Vec<(&str, &[u8])> = vec![
        ("products.csv", PRODUCTS),
        ("customers.csv", CUSTOMERS),
        ("orders.csv", ORDERS),
    ];
    for &(name, content) in replace {
        files.retain(|(n, _)| *n != name);
        files.push((name, content));
    }
    files
}

fn instant(text: &str) -> Nanos {
    let ts: jiff::Timestamp = text.parse().unwrap();
    i64::try_from(ts.as_nanosecond()).unwrap()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn texts(column: &strata_data::TextColumn) -> Vec<Option<&str>> {
    (0..column.len()).map(|i| column.get(i)).collect()
}

const SHOP_PRODUCTS: &[u8] =
    b"\xEF\xBB\xBFsku,title,brand,category,tags,price,cost,inventory,created_at,x_color,marketplace
A1,Mug,Acme,Kitchen,\"mug; gift ;mug;;\",12.50,4.00,10,2024-01-01,red,US
B2,\"Plate, large\",Acme,Kitchen,,8, 1.5 ,0,2024-01-02T10:00:00Z,,US
C3,\"Bowl \"\"deluxe\"\"
on two lines\",Bolt,,vip,3.10,,,,blue,DE
";

const SHOP_CUSTOMERS: &[u8] =
    b"customer_id,email,first_name,country,marketplace,tags,accepts_marketing,created_at,x_segment
C1,ann@example.com,Ann,US,US,vip,TRUE,2024-01-01,gold
C2,bob@example.de, Bob ,DE,DE,,false,,
C3,,,US,US,vip;wholesale,,2024-07-01,
";

const SHOP_ORDERS: &[u8] = b"order_id,ordered_at,customer_id,sku,quantity,unit_price,discount,fees,status,marketplace,seller_account
O1,2024-03-01T10:00:00Z,C1,A1,2,12.50,1.00,0.50,shipped,US,main
O2,2024-03-02,,A1,1,12.50,,,Cancelled,US,
O1,2024-03-01T12:00:00+02:00,C1,B2,1,8,,,shipped,US,main
O3,2024-03-03T00:00:00.5Z,C2,C3,3,3.10,10.00,,,DE,second
O4,2024-03-04T08:00:00Z,C3,A1,1,0,,,REFUNDED,,main
";

const SHOP_DAILY: &[u8] = b"date,sku,sessions,bsr,reviews,rating
2024-03-01,A1,100,5,12,4.5
2024-03-02,A1,80,,13,
2024-03-01,B2,,,,
";

const SHOP_SETTINGS: &[u8] = br#"{"timezone": "Europe/Berlin", "currency": "EUR"}"#;

const SHOP_TIERS: &[u8] = br#"[
  {"marketplace": "US", "metric": "profit", "tiers": [
    {"name": "Gold", "threshold": 100},
    {"name": "Loss makers", "threshold": -1000000},
    {"name": "Platinum", "threshold": "200.010"}
  ]},
  {"marketplace": null, "metric": "orders", "tiers": [{"name": "Regular", "threshold": 0.5}]}
]"#;

const SHOP_SEGMENTS: &[u8] = br#"[
  {"name": "vip", "kind": "customer", "rule": "tags CONTAINS 'vip'", "description": "Our best"},
  {"name": "cheap", "kind": "product", "rule": {"field": "price", "op": "<", "value": 10}}
]"#;

fn shop() -> Dataset {
    load(&[
        ("products.csv", SHOP_PRODUCTS),
        ("customers.csv", SHOP_CUSTOMERS),
        ("orders.csv", SHOP_ORDERS),
        ("product_daily.csv", SHOP_DAILY),
        ("settings.json", SHOP_SETTINGS),
        ("tiers.json", SHOP_TIERS),
        ("segments.json", SHOP_SEGMENTS),
    ])
}

#[test]
fn products_load_exactly() {
    let data = shop();
    let p = &data.products;
    assert_eq!(p.len(), 3);
    // The BOM is not part of the first column name, so `sku` was found.
    assert_eq!(texts(&p.sku), [Some("A1"), Some("B2"), Some("C3")]);
    assert_eq!(p.sku.codes, [0, 1, 2]);
    // Quoted fields keep commas, doubled quotes and newlines.
    assert_eq!(
        texts(&p.title),
        [
            Some("Mug"),
            Some("Plate, large"),
            Some("Bowl \"deluxe\"\non two lines")
        ]
    );
    assert_eq!(
        p.brand.dict,
        ["Acme".into(), "Bolt".into()] as [Box<str>; 2]
    );
    assert_eq!(p.brand.codes, [0, 0, 1]);
    assert_eq!(p.category.codes, [0, 0, NULL_CODE]);
    assert_eq!(p.tags.get(0).collect::<Vec<_>>(), ["mug", "gift"]);
    assert_eq!(p.tags.get(1).count(), 0);
    assert_eq!(p.tags.get(2).collect::<Vec<_>>(), ["vip"]);
    assert_eq!(
        p.price,
        [Some(dec("12.50")), Some(dec("8")), Some(dec("3.10"))]
    );
    assert_eq!(p.price[0].unwrap().scale(), 2);
    assert_eq!(p.cost, [Some(dec("4.00")), Some(dec("1.5")), None]);
    assert_eq!(p.inventory, [Some(10), Some(0), None]);
    // A bare date is midnight in the store's time zone (Berlin, UTC+1 in
    // January); an explicit offset is taken as written.
    assert_eq!(
        p.created_at,
        [
            Some(instant("2023-12-31T23:00:00Z")),
            Some(instant("2024-01-02T10:00:00Z")),
            None
        ]
    );
    assert_eq!(p.custom.len(), 1);
    assert_eq!(p.custom[0].name, "x_color");
    assert_eq!(
        texts(&p.custom[0].values),
        [Some("red"), None, Some("blue")]
    );
    assert_eq!(texts(&p.marketplace), [Some("US"), Some("US"), Some("DE")]);
    // Columns the file does not have are all null.
    assert_eq!(texts(&p.asin), [None, None, None]);
    assert!(p.asin.dict.is_empty());
}

#[test]
fn customers_load_exactly() {
    let data = shop();
    let c = &data.customers;
    assert_eq!(texts(&c.customer_id), [Some("C1"), Some("C2"), Some("C3")]);
    assert_eq!(c.customer_id.codes, [0, 1, 2]);
    // Text is kept as written, spaces included.
    assert_eq!(texts(&c.first_name), [Some("Ann"), Some(" Bob "), None]);
    assert_eq!(c.country.codes, [0, 1, 0]);
    assert_eq!(c.accepts_marketing, [Some(true), Some(false), None]);
    assert_eq!(c.tags.get(2).collect::<Vec<_>>(), ["vip", "wholesale"]);
    assert_eq!(c.tags.codes_of(0), &c.tags.codes_of(2)[..1]);
    assert_eq!(
        c.created_at,
        [
            Some(instant("2023-12-31T23:00:00Z")),
            None,
            // Summer time: UTC+2.
            Some(instant("2024-06-30T22:00:00Z"))
        ]
    );
    assert_eq!(c.custom[0].name, "x_segment");
    assert_eq!(texts(&c.custom[0].values), [Some("gold"), None, None]);
}

#[test]
fn orders_and_lines_load_exactly() {
    let data = shop();
    let o = &data.orders;
    let ids: Vec<&str> = (0..o.len()).map(|i| o.order_id.get(i)).collect();
    assert_eq!(ids, ["O1", "O2", "O3", "O4"]);
    assert_eq!(
        o.ordered_at,
        [
            instant("2024-03-01T10:00:00Z"),
            instant("2024-03-01T23:00:00Z"),
            instant("2024-03-03T00:00:00.5Z"),
            instant("2024-03-04T08:00:00Z"),
        ]
    );
    assert_eq!(o.customer, [0, NO_CUSTOMER, 1, 2]);
    assert_eq!(
        texts(&o.status),
        [
            Some("shipped"),
            Some("Cancelled"),
            Some("shipped"),
            Some("REFUNDED")
        ]
    );
    assert_eq!(o.counting, [true, false, true, false]);
    assert_eq!(
        texts(&o.marketplace),
        [Some("US"), Some("US"), Some("DE"), None]
    );

    let l = &data.lines;
    assert_eq!(l.len(), 5);
    assert_eq!(l.order, [0, 1, 0, 2, 3]);
    assert_eq!(l.product, [0, 0, 1, 2, 0]);
    assert_eq!(l.quantity, [2, 1, 1, 3, 1]);
    // quantity × unit_price − discount, exact; may be negative.
    assert_eq!(
        l.revenue,
        [dec("24.00"), dec("12.50"), dec("8"), dec("-0.70"), dec("0")]
    );
    assert_eq!(
        l.fees,
        [dec("0.50"), dec("0"), dec("0"), dec("0"), dec("0")]
    );
    assert_eq!(
        texts(&l.seller_account),
        [
            Some("main"),
            None,
            Some("main"),
            Some("second"),
            Some("main")
        ]
    );
}

#[test]
fn daily_settings_tiers_segments_load_exactly() {
    let data = shop();
    let d = &data.daily;
    assert_eq!(d.product, [0, 0, 1]);
    assert_eq!(
        d.date.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["2024-03-01", "2024-03-02", "2024-03-01"]
    );
    assert_eq!(d.sessions, [Some(100), Some(80), None]);
    assert_eq!(d.bsr, [Some(5), None, None]);
    assert_eq!(d.reviews, [Some(12), Some(13), None]);
    assert_eq!(d.rating, [Some(dec("4.5")), None, None]);

    assert_eq!(data.settings.timezone_name, "Europe/Berlin");
    assert_eq!(data.settings.currency, "EUR");

    assert_eq!(data.tiers.len(), 2);
    let us = &data.tiers[0];
    assert_eq!(us.marketplace.as_deref(), Some("US"));
    assert_eq!(us.metric, TierMetric::Profit);
    // Highest threshold first; thresholds exact.
    let tiers: Vec<(&str, String)> = us
        .tiers
        .iter()
        .map(|t| (t.name.as_str(), t.threshold.to_string()))
        .collect();
    assert_eq!(
        tiers,
        [
            ("Platinum", "200.010".to_owned()),
            ("Gold", "100".to_owned()),
            ("Loss makers", "-1000000".to_owned())
        ]
    );
    assert_eq!(data.tiers[1].marketplace, None);
    assert_eq!(data.tiers[1].metric, TierMetric::Orders);
    assert_eq!(data.tiers[1].tiers[0].threshold, dec("0.5"));

    assert_eq!(data.segments.len(), 2);
    assert_eq!(data.segments[0].name, "vip");
    assert_eq!(data.segments[0].kind, SegmentKind::Customer);
    assert_eq!(
        data.segments[0].rule,
        RuleSource::Text("tags CONTAINS 'vip'".to_owned())
    );
    assert_eq!(data.segments[0].description.as_deref(), Some("Our best"));
    assert_eq!(data.segments[1].description, None);
    assert_eq!(data.segments[1].kind, SegmentKind::Product);
    assert_eq!(
        data.segments[1].rule,
        RuleSource::Json(serde_json::json!({"field": "price", "op": "<", "value": 10}))
    );

    assert_eq!(
        data.summary(),
        "3 products, 3 customers, 4 orders (5 lines), 3 daily rows, 2 tier schemes, 2 segments"
    );
}

#[test]
fn minimal_dataset_uses_defaults() {
    let data = load(&with(&[]));
    assert_eq!(data.settings.timezone_name, "UTC");
    assert_eq!(data.settings.currency, "USD");
    assert!(data.orders.is_empty() && data.daily.is_empty());
    assert!(data.tiers.is_empty() && data.segments.is_empty());
    assert_eq!(
        data.summary(),
        "2 products, 2 customers, 0 orders (0 lines), 0 daily rows, 0 tier schemes, 0 segments"
    );
    let one = load(&with(&[
        ("products.csv", b"sku\nA1\n"),
        ("customers.csv", b"customer_id\nC1\n"),
        (
            "orders.csv",
            b"order_id,ordered_at,sku,quantity,unit_price\nO1,2024-01-01,A1,1,1\n",
        ),
        ("product_daily.csv", b"date,sku\n2024-01-01,A1\n"),
        (
            "tiers.json",
            br#"[{"metric": "units", "tiers": [{"name": "T", "threshold": 1}]}]"#,
        ),
        (
            "segments.json",
            br#"[{"name": "s", "kind": "product", "rule": "price > 1"}]"#,
        ),
    ]));
    assert_eq!(
        one.summary(),
        "1 product, 1 customer, 1 order (1 line), 1 daily row, 1 tier scheme, 1 segment"
    );
}

#[test]
fn columns_in_any_order_crlf_and_blank_lines() {
    let data = load(&with(&[
        (
            "orders.csv",
            b"unit_price,quantity,sku,ordered_at,order_id\r\n\r\n1.5,2,B2,2024-01-01T00:00:00Z,X\r\n",
        ),
        ("customers.csv", b"customer_id\r\nC1"),
    ]));
    assert_eq!(data.lines.product, [1]);
    assert_eq!(data.lines.revenue, [dec("3.0")]);
    assert_eq!(data.orders.order_id.len(), 1);
    assert_eq!(data.orders.order_id.get(0), "X");
    assert_eq!(data.customers.len(), 1);
}

#[test]
fn bare_date_in_a_dst_gap_is_the_start_of_the_day() {
    // Havana moves clocks from 00:00 to 01:00 on 2023-03-12.
    let data = load(&with(&[
        ("settings.json", br#"{"timezone": "America/Havana"}"#),
        (
            "orders.csv",
            b"order_id,ordered_at,sku,quantity,unit_price\nO1,2023-03-12,A1,1,1\nO2,2023-03-11,A1,1,1\n",
        ),
    ]));
    assert_eq!(
        data.orders.ordered_at,
        [
            instant("2023-03-12T05:00:00Z"),
            instant("2023-03-11T05:00:00Z")
        ]
    );
}

#[test]
fn missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    match load_dir(&missing) {
        Err(LoadError::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(matches!(load_dir(&file), Err(LoadError::Io { .. })));
    assert!(matches!(load_dir(Path::new("")), Err(LoadError::Io { .. })));
}

// --- Validation: one snapshot per rule -------------------------------------

#[test]
fn missing_required_files() {
    assert_snapshot!(problems(&[]));
}

#[test]
fn empty_file_and_missing_columns() {
    assert_snapshot!(problems(&with(&[
        ("products.csv", b""),
        ("customers.csv", b"email,first_name\nann@example.com,Ann\n"),
        ("orders.csv", b"order_id,sku\nO1,A1\n"),
        ("product_daily.csv", b"sku\nA1\n"),
    ])));
}

#[test]
fn unknown_and_duplicate_columns() {
    assert_snapshot!(problems(&with(&[
        (
            "products.csv",
            b"sku,colour,title,title,x_color,Price,,x_color\nA1,red,Mug,Cup,blue,1,,green\n",
        ),
        // x_ columns are allowed in every file.
        (
            "orders.csv",
            b"order_id,ordered_at,sku,quantity,unit_price,x_note,coupon\n",
        ),
    ])));
}

#[test]
fn ragged_and_truncated_rows() {
    assert_snapshot!(problems(&with(&[
        (
            "products.csv",
            b"sku,title,price\nA1,Mug,1\nB2,Plate\nC3,Bowl,2,extra\nD4,\"Cup\n"
        ),
        (
            // A file cut off inside a quoted field: the rest of the file is
            // swallowed by the open quote.
            "customers.csv",
            b"customer_id,first_name\nC1,Ann\nC2,\"Bob\nC3,Cy\n",
        ),
    ])));
}

#[test]
fn latin1_bytes() {
    assert_snapshot!(problems(&with(&[
        (
            "products.csv",
            b"sku,title,brand\nA1,Caf\xe9 cr\xe8me,Acme\nB2,Plate,M\xfcller\n",
        ),
        (
            "customers.csv",
            b"customer_id,first_name\nC1,Ren\xe9e\nC2,Bob\n"
        ),
        // Rows with bad bytes still count: their ids are known.
        (
            "orders.csv",
            b"order_id,ordered_at,customer_id,sku,quantity,unit_price\nO1,2024-01-01,C1,A1,1,1\n",
        ),
    ])));
}

#[test]
fn duplicate_ids() {
    assert_snapshot!(problems(&with(&[
        ("products.csv", b"sku\nA1\nB2\nA1\n\nB2\n"),
        ("customers.csv", b"customer_id\nC1\nC1\n"),
        (
            "product_daily.csv",
            b"date,sku,sessions\n2024-03-01,A1,1\n2024-03-02,A1,1\n 2024-03-01 ,A1,2\n2024-03-01,B2,1\n",
        ),
    ])));
}

#[test]
fn unknown_references() {
    assert_snapshot!(problems(&with(&[
        (
            "orders.csv",
            b"order_id,ordered_at,customer_id,sku,quantity,unit_price
O1,2024-01-01,C9,A1,1,1
O2,2024-01-01,,Z9,1,1
O2,2024-01-01,,a1,1,1
O3,2024-01-01, C1,A1,1,1
",
        ),
        ("product_daily.csv", b"date,sku\n2024-01-01,Z9\n"),
    ])));
}

#[test]
fn order_level_columns_must_agree() {
    assert_snapshot!(problems(&with(&[(
        "orders.csv",
        b"order_id,ordered_at,customer_id,sku,quantity,unit_price,status,marketplace
O1,2024-03-01T10:00:00Z,C1,A1,1,1,,US
O1,2024-03-01T11:00:00+01:00,C1,B2,1,1,shipped,US
O1,2024-03-01T10:00:01Z,C2,A1,1,1,cancelled,DE
O2,2024-03-01,,A1,1,1,shipped,
O1,2024-03-01T10:00:00Z,,A1,1,1,Shipped,
O2,2024-03-01,C1,A1,1,1,shipped,US
",
    )])));
}

#[test]
fn numbers_out_of_bounds_and_malformed() {
    assert_snapshot!(problems(&with(&[
        (
            "products.csv",
            b"sku,price,cost,inventory\nA1,-1,1e3,-5\nB2,$12,\"1,50\",2.0\n",
        ),
        (
            "orders.csv",
            b"order_id,ordered_at,sku,quantity,unit_price,discount,fees
O1,2024-01-01,A1,-2,-0.01,-1,-0.5
O2,2024-01-01,A1,0,1,abc,1 000
O3,2024-01-01,A1,4294967296,99999999999999999999999999999,,
O4,2024-01-01,A1,1.5,1,,
O5,2024-01-01,A1,,,,
",
        ),
        (
            "product_daily.csv",
            b"date,sku,sessions,bsr,reviews,rating\n2024-01-01,A1,-1,x,1.5,5.5\n2024-01-02,A1,,,,-0.1\n",
        ),
    ])));
}

#[test]
fn malformed_dates_booleans_and_missing_values() {
    assert_snapshot!(problems(&with(&[
        (
            "customers.csv",
            b"customer_id,accepts_marketing,created_at\nC1,yes,2024-02-30\nC2,1,03/01/2024\n,true,\nC3,,2024-03-01T10:00:00\n",
        ),
        (
            "orders.csv",
            b"order_id,ordered_at,sku,quantity,unit_price
,2024-01-01T00:00:00+0200,A1,1,1
O2,,,1,1
O3,1600-01-01,A1,1,1
O4,2300-01-01T00:00:00Z,A1,1,1
",
        ),
        (
            "product_daily.csv",
            b"date,sku\n2024-01-01T00:00:00Z,A1\n2024-13-01,A1\n,A1\n",
        ),
    ])));
}

#[test]
fn more_than_a_hundred_problems() {
    let mut orders = String::from("order_id,ordered_at,sku,quantity,unit_price\n");
    for i in 0..150 {
        orders.push_str(&format!("O{i},2024-01-01,A1,0,1\n"));
    }
    let text = problems(&with(&[("orders.csv", orders.as_bytes())]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(
        lines[0],
        "orders.csv:2: quantity: must be at least 1 (got '0')"
    );
    assert_eq!(
        lines[99],
        "orders.csv:101: quantity: must be at least 1 (got '0')"
    );
    assert_eq!(lines[100], "... and 50 more problems");

    let dir = write(&with(&[("orders.csv", orders.as_bytes())]));
    let Err(LoadError::Invalid(problems)) = load_dir(dir.path()) else {
        panic!("expected problems");
    };
    assert_eq!(problems.total(), 150);
    assert_eq!(problems.shown().len(), strata_data::PROBLEM_LIMIT);
    assert_eq!(problems.shown()[0].line, Some(2));
    assert_eq!(problems.shown()[0].column.as_deref(), Some("quantity"));
}

#[test]
fn large_files_keep_orders_and_line_numbers_across_batches() {
    // Files are read in batches of about a thousand records; orders and
    // line numbers must not notice.
    let mut orders = String::from("order_id,ordered_at,sku,quantity,unit_price\r\n");
    for i in 0..2500 {
        // Every order has two lines, the second far from the first.
        let order = i % 1250;
        let quantity = if i == 2100 { "0" } else { "1" };
        orders.push_str(&format!("O{order},2024-01-01,A1,{quantity},2\r\n"));
        if i == 1500 {
            orders.push_str("\r\n");
        }
    }
    orders.push_str("O7,2024-01-02,A1,1,2\r\n");
    let text = problems(&with(&[("orders.csv", orders.as_bytes())]));
    // Record 2100 is on line 2103: after the header and the blank line.
    assert_eq!(
        text,
        "orders.csv:2103: quantity: must be at least 1 (got '0')\n\
         orders.csv:2503: ordered_at: disagrees with line 9 of order 'O7', \
         where it is '2024-01-01T00:00:00Z' (got '2024-01-02')"
    );

    let valid = orders
        .replace(",0,2", ",1,2")
        .replace("O7,2024-01-02", "O7,2024-01-01");
    let data = load(&with(&[("orders.csv", valid.as_bytes())]));
    assert_eq!(data.orders.len(), 1250);
    assert_eq!(data.lines.len(), 2501);
    assert_eq!(data.lines.order[1250], 0);
    assert_eq!(data.lines.order[2499], 1249);
    assert_eq!(data.lines.order[2500], 7);
    assert_eq!(data.orders.order_id.get(1249), "O1249");
}

#[test]
fn invalid_settings() {
    assert_snapshot!(problems(&with(&[(
        "settings.json",
        br#"{"timezone": "Mars/Olympus", "currency": 978, "locale": "de"}"#,
    )])));
}

#[test]
fn invalid_json_syntax() {
    assert_snapshot!(problems(&with(&[
        ("settings.json", b"[1, 2]"),
        ("tiers.json", b"[{\"metric\": \"orders\",}]"),
        ("segments.json", b"{\"name\": \"x\"}"),
    ])));
}

#[test]
fn invalid_tiers() {
    assert_snapshot!(problems(&with(&[(
        "tiers.json",
        br#"[
  {"marketplace": "US", "metric": "sales", "tiers": [{"name": "Gold", "threshold": 1}]},
  {"marketplace": "US", "metric": "revenue", "tiers": []},
  {"metric": "orders", "tiers": [
    {"name": "A", "threshold": 1}, {"name": "B", "threshold": 2}, {"name": "C", "threshold": 3},
    {"name": "D", "threshold": 4}, {"name": "E", "threshold": 5}, {"name": "F", "threshold": 6},
    {"name": "G", "threshold": 7}, {"name": "H", "threshold": 8}, {"name": "I", "threshold": 9},
    {"name": "J", "threshold": 10}, {"name": "K", "threshold": 11}
  ]},
  {"marketplace": null, "metric": "units", "tiers": [
    {"name": "Gold", "threshold": "100"},
    {"name": "Gold", "threshold": 50},
    {"name": "Silver", "threshold": 100.00},
    {"name": "", "threshold": "lots"},
    {"name": "Bronze", "threshold": true},
    {"name": "Tin"},
    {"name": "Iron", "threshold": "1e3", "colour": "grey"},
    "Lead"
  ]},
  {"marketplace": "", "tiers": {"name": "Gold"}},
  {"marketplace": "DE", "metric": "profit", "tiers": [{"name": "Big", "threshold": 1e400}]},
  17
]"#,
    )])));
}

#[test]
fn tiers_with_a_number_exponent_are_exact() {
    let data = load(&with(&[(
        "tiers.json",
        br#"[{"metric": "revenue", "tiers": [
            {"name": "Big", "threshold": 1.5e3},
            {"name": "Precise", "threshold": 0.1000000000000000000000000001},
            {"name": "Text", "threshold": " -7.25 "}
        ]}]"#,
    )]));
    let thresholds: Vec<String> = data.tiers[0]
        .tiers
        .iter()
        .map(|t| t.threshold.to_string())
        .collect();
    assert_eq!(
        thresholds,
        ["1500", "0.1000000000000000000000000001", "-7.25"]
    );
}

#[test]
fn invalid_segments() {
    assert_snapshot!(problems(&with(&[(
        "segments.json",
        br#"[
  {"name": "vip", "kind": "customer", "rule": "tags CONTAINS 'vip'"},
  {"name": "vip", "kind": "product", "rule": {"field": "price", "op": ">", "value": 1}},
  {"name": "", "kind": "order", "rule": 42},
  {"kind": "customer", "description": 5, "owner": "me"},
  "x"
]"#,
    )])));
}

#[test]
fn combined_bad_dataset() {
    // Problems from every file, in load order, with physical line numbers
    // (a quoted newline makes the following record start a line later).
    assert_snapshot!(problems(&[
        ("settings.json", br#"{"timezone": "Europe/Berlin"}"#),
        (
            "products.csv",
            b"sku,title,price,colour\nA1,\"Mug\nlarge\",abc,red\nA1,Plate,1,blue\n",
        ),
        (
            "customers.csv",
            b"customer_id,accepts_marketing\nC1,maybe\nC2\n",
        ),
        (
            "orders.csv",
            b"order_id,ordered_at,customer_id,sku,quantity,unit_price,status
O1,2024-03-01,C1,A1,1,9.99,
O1,2024-03-01T00:00:00+01:00,C1,A1,2,9.99,shipped
O1,2024-03-01T00:00:00Z,C1,A1,2,9.99,
O2,yesterday,C7,B9,-1,-9.99,
",
        ),
        (
            "tiers.json",
            br#"[{"metric": "orders", "tiers": [{"name": "X", "threshold": "ten"}]}]"#
        ),
        ("segments.json", br#"[{"name": "s", "kind": "customer"}]"#),
    ]));
}

/// Every row of `data`, through a [`DatasetBuilder`].
fn rebuilt(data: &Dataset) -> Dataset {
    let mut builder = DatasetBuilder::new(data.settings.clone());
    for p in 0..data.products.len() {
        builder.product(data.product_row(p)).unwrap();
    }
    for c in 0..data.customers.len() {
        builder.customer(data.customer_row(c)).unwrap();
    }
    for l in 0..data.lines.len() {
        builder.line(data.line_row(l)).unwrap();
    }
    for r in 0..data.daily.len() {
        builder.daily(data.daily_row(r)).unwrap();
    }
    data.tiers
        .iter()
        .for_each(|t| builder.tier_scheme(t.clone()));
    data.segments
        .iter()
        .for_each(|s| builder.segment(s.clone()));
    builder.finish()
}

#[test]
fn rows_rebuild_the_dataset_they_came_from() {
    let shop = shop();
    assert_eq!(format!("{:?}", rebuilt(&shop)), format!("{shop:?}"));
    let dir = TempDir::new().unwrap();
    strata_demo::generate(
        dir.path(),
        &strata_demo::DemoOptions {
            customers: 300,
            ..strata_demo::DemoOptions::default()
        },
    )
    .unwrap();
    let demo = strata_data::load_dir(dir.path()).unwrap();
    assert!(demo.lines.len() > 300 && demo.daily.len() > 300);
    assert_eq!(format!("{:?}", rebuilt(&demo)), format!("{demo:?}"));
}

#[test]
fn the_builder_refuses_what_a_file_may_not_hold() {
    let shop = shop();
    let check = |edit: &dyn Fn(&mut DatasetBuilder) -> Result<(), strata_data::RowError>,
                 expect: &str| {
        let mut builder = DatasetBuilder::new(shop.settings.clone());
        builder.product(shop.product_row(0)).unwrap();
        builder.customer(shop.customer_row(0)).unwrap();
        builder.line(shop.line_row(0)).unwrap();
        assert_eq!(edit(&mut builder).unwrap_err().to_string(), expect);
    };
    check(
        &|b| b.product(shop.product_row(0)),
        "product 'A1' given twice",
    );
    check(
        &|b| b.customer(shop.customer_row(0)),
        "customer 'C1' given twice",
    );
    check(
        &|b| b.line(shop.line_row(2)),
        "order 'O1': unknown product 'B2'",
    );
    check(
        &|b| {
            let mut line = shop.line_row(0);
            line.status = Some("refunded".into());
            b.line(line)
        },
        "order 'O1': its lines disagree on the order's columns",
    );
    check(
        &|b| {
            let mut line = shop.line_row(0);
            line.customer_id = Some("C9".into());
            b.line(line)
        },
        "order 'O1': unknown customer 'C9'",
    );
    check(
        &|b| {
            b.daily(shop.daily_row(0))?;
            b.daily(shop.daily_row(0))
        },
        "daily row of 'A1' on 2024-03-01 given twice",
    );
}
