//! The crate's one integration-test binary: normal forms, errors, the JSON
//! form and property tests. Submodules live in `tests/lang/`.

#[path = "lang/errors.rs"]
mod errors;
#[path = "lang/json.rs"]
mod json;
#[path = "lang/props.rs"]
mod props;

use strata_lang::ast::{Expr, Operand, Test};
use strata_lang::catalog::{Kind, Schema};
use strata_lang::{parse, parse_rule, to_text};

pub fn schema(kind: Kind) -> Schema {
    Schema::with_custom(kind, ["x_color".to_string(), "x_Season".to_string()])
}

/// The normalised text of a rule that must be accepted.
pub fn norm(kind: Kind, input: &str) -> String {
    match parse_rule(input, &schema(kind)) {
        Ok(expr) => to_text(&expr),
        Err(e) => panic!("{input:?} refused:\n{}", e.render(input)),
    }
}

/// The rendered error of a rule that must be refused.
pub fn refused(kind: Kind, input: &str) -> String {
    match parse_rule(input, &schema(kind)) {
        Ok(expr) => panic!("{input:?} accepted as {}", to_text(&expr)),
        Err(e) => e.render(input),
    }
}

/// Asserts the normalised text, and that it is a fixpoint.
fn check_norm(kind: Kind, input: &str, expected: &str) {
    let got = norm(kind, input);
    assert_eq!(got, expected, "normal form of {input:?}");
    assert_eq!(
        norm(kind, &got),
        got,
        "normal form of {got:?} is not a fixpoint"
    );
}

/// A fully parenthesised picture of the tree, to test grouping itself
/// rather than its printed form.
fn shape(e: &Expr) -> String {
    match e {
        Expr::And(items) => format!(
            "(and {})",
            items.iter().map(shape).collect::<Vec<_>>().join(" ")
        ),
        Expr::Or(items) => format!(
            "(or {})",
            items.iter().map(shape).collect::<Vec<_>>().join(" ")
        ),
        Expr::Not(inner) => format!("(not {})", shape(inner)),
        Expr::Cond(c) => c.operand.name().name.clone(),
    }
}

fn parsed_shape(input: &str) -> String {
    shape(&parse(input).unwrap_or_else(|e| panic!("{}", e.render(input))))
}

/// Every example of language.md, with the kind it is written for.
pub const EXAMPLES: &[(Kind, &str)] = &[
    (
        Kind::Customer,
        "amount_spent > 500 AND number_of_orders >= 3",
    ),
    (
        Kind::Customer,
        "last_order_date < -180d AND amount_spent > 200",
    ),
    (
        Kind::Customer,
        "purchased(category: 'Socks', since: 2016-10-01, until: 2017-02-28)",
    ),
    (
        Kind::Customer,
        "tags CONTAINS 'vip' OR tier IN ('Gold', 'Platinum')",
    ),
    (
        Kind::Customer,
        "NOT purchased(since: -90d) AND number_of_orders >= 1",
    ),
    (
        Kind::Customer,
        "email_domain = 'example.com' AND NOT (country IN ('US', 'CA'))",
    ),
    (
        Kind::Customer,
        "orders(sku: 'SOCK-RED-M', since: -30d) >= 2",
    ),
    (
        Kind::Customer,
        "purchased(in_segment: 'low-stock') AND accepts_marketing = true",
    ),
    (
        Kind::Product,
        "title IS NOT EMPTY AND inventory IS NOT EMPTY",
    ),
    (Kind::Product, "days_of_stock < 14 AND units_30d > 0"),
    (
        Kind::Product,
        "brand = 'Acme' OR (price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home')",
    ),
    (
        Kind::Product,
        "in_segment('best-sellers') AND NOT in_segment('discontinued')",
    ),
    (
        Kind::Customer,
        "in_segment('best-sellers') AND NOT in_segment('discontinued')",
    ),
];

/// `input\n=> output` for each case, as one reviewable snapshot.
fn table(cases: &[(Kind, &str)]) -> String {
    let mut out = String::new();
    for (kind, input) in cases {
        out.push_str(&format!("[{kind}] {input}\n=> {}\n\n", norm(*kind, input)));
    }
    out
}

#[test]
fn examples_normal_form() {
    insta::assert_snapshot!("examples", table(EXAMPLES));
}

#[test]
fn examples_are_already_normal() {
    // language.md writes its examples in the normal form, except for two
    // pairs of parentheses that precedence does not need.
    for (kind, input) in EXAMPLES {
        let expected = input
            .replace(
                "NOT (country IN ('US', 'CA'))",
                "NOT country IN ('US', 'CA')",
            )
            .replace(
                "OR (price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home')",
                "OR price BETWEEN 10 AND 49.99 AND category STARTS WITH 'Home'",
            );
        check_norm(*kind, input, &expected);
    }
}

const C: Kind = Kind::Customer;
const P: Kind = Kind::Product;

#[test]
fn edge_cases_normal_form() {
    let cases: &[(Kind, &str)] = &[
        // Keywords in any case, white space of any kind.
        (
            C,
            "amount_spent>500 and not tags contains 'x' Or tier In ('a')",
        ),
        (C, "  amount_spent\t>\n500  "),
        (C, "tags NoT CoNtAiNs 'vip'"),
        (
            P,
            "title not starts with 'a' AND title ENDS with 'z' AND title not ends WITH 'q'",
        ),
        (
            C,
            "country is null OR city IS NOT NULL OR email is empty OR tier is not EMPTY",
        ),
        (C, "country not in ('US','CA') AND tier in ('Gold')"),
        // Grouping: only the parentheses precedence needs are kept.
        (C, "accepts_marketing OR country = 'US' AND city = 'Paris'"),
        (
            C,
            "(accepts_marketing OR country = 'US') AND city = 'Paris'",
        ),
        (C, "((((accepts_marketing))))"),
        (C, "(country = 'US' AND city = 'Paris') AND tier = 'Gold'"),
        (C, "country = 'US' OR (city = 'Paris' OR (tier = 'Gold'))"),
        (C, "NOT (country = 'US')"),
        (C, "NOT (country = 'US' OR city = 'Paris')"),
        (C, "NOT (country = 'US' AND city = 'Paris')"),
        (C, "NOT NOT accepts_marketing"),
        (C, "NOT (NOT accepts_marketing)"),
        (C, "NOT accepts_marketing AND accepts_marketing = FALSE"),
        (
            C,
            "NOT (NOT (amount_spent = 1 OR x_color = 'red') AND NOT x_Season = 'summer')",
        ),
        // Values keep their written form.
        (
            P,
            "price = 49.990 OR price = -0 OR price = 007 OR price = -5.50",
        ),
        (P, "price < 7922816251426433759354395033.5"),
        (P, "price > 0.0000000000000000000000000001"),
        (
            C,
            "country = 'it''s' OR country = '' OR city = 'Zürich' OR city = '東京'",
        ),
        (C, "city = 'two\nlines'"),
        (
            C,
            "created_at = 2024-02-29 OR created_at >= 2024-01-01T10:00:00.5+02:00 OR created_at < 1999-12-31T23:59:59Z",
        ),
        (
            C,
            "created_at > -12h AND created_at < +7d AND created_at != -2w AND created_at <= -0d AND created_at >= -007d",
        ),
        (
            C,
            "created_at BETWEEN 2024-01-01 AND today AND last_order_date BETWEEN -30d AND TODAY",
        ),
        (C, "accepts_marketing = TRUE AND accepts_marketing != False"),
        // Calls and arguments, in the order written.
        (C, "purchased()"),
        (C, "purchased( )"),
        (C, "orders(until: today, sku: ('A','B'), since: -30d) >= 2"),
        (C, "spent(brand:'Acme',marketplace:'amazon.de')>=100.00"),
        (
            C,
            "units(category: ('Socks'), in_segment: 'low-stock') BETWEEN 1 AND 10",
        ),
        (C, "in_segment(segment: 'vip') OR in_segment('other')"),
        (
            C,
            "orders() IS NULL OR spent() IS NOT EMPTY OR orders() NOT IN (1, 2)",
        ),
        (
            P,
            "sales > 5 AND sales(since: -7d) > 5 AND units_sold(until: 2024-01-31) >= 1",
        ),
        (P, "sessions(since: 2024-01-01T00:00:00Z, until: +1w) > 100"),
        (
            P,
            "tags CONTAINS 'x' AND tags IS EMPTY AND tags IS NOT EMPTY AND tags NOT CONTAINS 'y'",
        ),
        // Custom attributes are text fields.
        (P, "x_color = 'red' AND x_Season STARTS WITH 'su'"),
    ];
    insta::assert_snapshot!("edge_cases", table(cases));
    for (kind, input) in cases {
        let once = norm(*kind, input);
        assert_eq!(norm(*kind, &once), once);
    }
}

#[test]
fn precedence() {
    let cases = [
        ("a = 1 OR b = 1 AND c = 1", "(or a (and b c))"),
        ("a = 1 AND b = 1 OR c = 1", "(or (and a b) c)"),
        ("NOT a = 1 AND b = 2", "(and (not a) b)"),
        ("NOT a = 1 OR b = 2", "(or (not a) b)"),
        ("NOT (a = 1 OR b = 2)", "(not (or a b))"),
        ("NOT NOT a", "(not (not a))"),
        (
            "a AND NOT b OR NOT c AND d",
            "(or (and a (not b)) (and (not c) d))",
        ),
        ("(a OR b) AND (c OR d)", "(and (or a b) (or c d))"),
        (
            "price BETWEEN 10 AND 49.99 AND category = 'x'",
            "(and price category)",
        ),
        ("a OR b OR c", "(or a b c)"),
        ("(a AND b) AND c", "(and (and a b) c)"),
    ];
    for (input, expected) in cases {
        assert_eq!(parsed_shape(input), expected, "{input}");
    }
    // The normaliser flattens what the parser nests.
    let e = strata_lang::normalise(parse("(a AND b) AND (c AND (d OR e OR (f OR g)))").unwrap());
    assert_eq!(shape(&e), "(and a b c (or d e f g))");
}

#[test]
fn tests_parse_to_the_right_variant() {
    let cond = |input: &str| match parse(input).unwrap() {
        Expr::Cond(c) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(cond("accepts_marketing").test, Test::Truth);
    assert!(matches!(cond("purchased()").operand, Operand::Call(_)));
    assert!(matches!(cond("purchased").operand, Operand::Field(_)));
    assert!(matches!(
        cond("x NOT IN (1)").test,
        Test::In { negated: true, .. }
    ));
    assert!(matches!(
        cond("x IS NOT EMPTY").test,
        Test::IsEmpty { negated: true }
    ));
    assert!(matches!(
        cond("x IS NULL").test,
        Test::IsNull { negated: false }
    ));
    // The condition's span runs from the operand through the value.
    let c = cond("  orders(since: -30d) >= 2  ");
    assert_eq!((c.span.start, c.span.end), (2, 26));
}

#[test]
fn literal_values() {
    use rust_decimal::Decimal;
    use strata_lang::ast::{RelUnit, Relative, Value};
    let value = |input: &str| match parse(&format!("x = {input}")).unwrap() {
        Expr::Cond(c) => match c.test {
            Test::Cmp(_, lit) => lit.value,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    assert_eq!(value("49.990"), Value::Number(Decimal::new(49990, 3)));
    assert_eq!(
        value("49.990").to_owned(),
        Value::Number("49.990".parse().unwrap())
    );
    assert!(matches!(value("49.990"), Value::Number(n) if n.scale() == 3));
    assert_eq!(value("'it''s'"), Value::String("it's".into()));
    assert_eq!(
        value("-2w"),
        Value::Relative(Relative {
            negative: true,
            amount: 2,
            unit: RelUnit::Weeks
        })
    );
    assert_eq!(value("TODAY"), Value::Today);
    assert_eq!(
        value("2024-01-31"),
        Value::Date(jiff::civil::date(2024, 1, 31))
    );
    match value("2024-01-01T10:00:00.5+02:00") {
        Value::Timestamp { instant, text } => {
            assert_eq!(text, "2024-01-01T10:00:00.5+02:00");
            assert_eq!(
                instant,
                "2024-01-01T08:00:00.5Z".parse::<jiff::Timestamp>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn segment_references() {
    use strata_lang::SegmentRef;
    let input = "in_segment('a') AND (purchased(in_segment: 'b') OR NOT in_segment(segment: 'c'))";
    let e = parse(input).unwrap();
    let refs: Vec<(Kind, String, &str)> = strata_lang::segment_refs(&e, Kind::Customer)
        .into_iter()
        .map(|SegmentRef { kind, name, span }| {
            (kind, name, &input[span.start as usize..span.end as usize])
        })
        .collect();
    assert_eq!(
        refs,
        vec![
            (Kind::Customer, "a".to_string(), "'a'"),
            (Kind::Product, "b".to_string(), "'b'"),
            (Kind::Customer, "c".to_string(), "'c'"),
        ]
    );
    let e = parse("in_segment('p')").unwrap();
    assert_eq!(
        strata_lang::segment_refs(&e, Kind::Product)[0].kind,
        Kind::Product
    );
}

#[test]
fn limits_are_exact() {
    let nested = |n: usize| format!("{}accepts_marketing{}", "(".repeat(n), ")".repeat(n));
    norm(C, &nested(64));
    assert!(refused(C, &nested(65)).contains("nests too deeply"));
    let nots = |n: usize| format!("{}accepts_marketing", "NOT ".repeat(n));
    norm(C, &nots(64));
    assert!(refused(C, &nots(65)).contains("nests too deeply"));
    let many = |n: usize| vec!["accepts_marketing"; n].join(" OR ");
    norm(C, &many(1000));
    assert!(refused(C, &many(1001)).contains("too many conditions"));
    // Far past the limits: an error, not a stack overflow.
    assert!(refused(C, &nested(200_000)).contains("nests too deeply"));
    assert!(refused(C, &nots(200_000)).contains("nests too deeply"));
    assert!(refused(C, &format!("{}a = 1", "(NOT ".repeat(100_000))).contains("nests too deeply"));
    assert!(refused(C, &many(100_000)).contains("too many conditions"));
}

#[test]
fn checker_enforces_limits_on_built_trees() {
    let leaf = parse("accepts_marketing").unwrap();
    let mut deep = leaf.clone();
    for _ in 0..65 {
        deep = Expr::Not(Box::new(deep));
    }
    let err = strata_lang::check(&deep, &schema(C)).unwrap_err();
    assert!(err.message.contains("nests too deeply"), "{}", err.message);
    // Groups that cost no level in the text are capped by raw depth.
    let mut chain = leaf.clone();
    for _ in 0..1_000 {
        chain = Expr::Or(vec![chain, leaf.clone()]);
    }
    assert!(strata_lang::check(&chain, &schema(C)).is_err());
    // The printer does not recurse at all.
    assert_eq!(to_text(&chain).matches(" OR ").count(), 1_000);
    let many = Expr::Or(vec![leaf; 1_001]);
    let err = strata_lang::check(&many, &schema(C)).unwrap_err();
    assert!(err.message.contains("too many conditions"));
}

#[test]
fn parse_rule_normalises() {
    assert_eq!(
        norm(
            C,
            "(in_segment(segment: 'x') AND accepts_marketing) AND tier = 'a'"
        ),
        "in_segment('x') AND accepts_marketing AND tier = 'a'"
    );
    // The raw parse keeps what was written.
    assert_eq!(
        to_text(&parse("in_segment(segment: 'x')").unwrap()),
        "in_segment(segment: 'x')"
    );
}
