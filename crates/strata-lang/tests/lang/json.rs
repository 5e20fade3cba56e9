//! The JSON form: its shape, exact numbers, round trips, reader errors.

use serde_json::json;
use strata_lang::catalog::Kind;
use strata_lang::{from_json, parse_rule, to_json, to_text};

use crate::{EXAMPLES, schema};

fn json_of(kind: Kind, input: &str) -> serde_json::Value {
    to_json(&parse_rule(input, &schema(kind)).unwrap())
}

#[test]
fn examples() {
    let mut out = String::new();
    for (kind, input) in EXAMPLES {
        let v = json_of(*kind, input);
        out.push_str(&format!(
            "[{kind}] {input}\n{}\n\n",
            serde_json::to_string(&v).unwrap()
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn every_operator_and_value() {
    let cases: &[(Kind, &str)] = &[
        (Kind::Customer, "accepts_marketing"),
        (Kind::Customer, "purchased()"),
        (Kind::Customer, "NOT NOT accepts_marketing = false"),
        (Kind::Customer, "amount_spent BETWEEN 10 AND 49.990"),
        (Kind::Customer, "number_of_orders NOT IN (1, -2.50)"),
        (Kind::Customer, "country IN ('US')"),
        (Kind::Customer, "tags NOT CONTAINS 'it''s'"),
        (
            Kind::Customer,
            "city STARTS WITH 'a' OR city NOT STARTS WITH 'b' OR city ENDS WITH 'c' OR city NOT ENDS WITH 'd'",
        ),
        (
            Kind::Customer,
            "country IS NULL OR country IS NOT NULL OR tags IS EMPTY OR tags IS NOT EMPTY",
        ),
        (
            Kind::Customer,
            "created_at > 2024-01-31 AND created_at < 2024-01-01T10:00:00.250-05:30 AND created_at != +12h AND created_at <= today",
        ),
        (
            Kind::Customer,
            "orders(sku: ('A', 'B'), since: -30d, until: 2024-01-31) >= 2",
        ),
        (Kind::Customer, "in_segment(segment: 'x')"),
        (Kind::Product, "sales > 5 AND sales(since: -1w) > 5"),
    ];
    let mut out = String::new();
    for (kind, input) in cases {
        let v = json_of(*kind, input);
        out.push_str(&format!(
            "[{kind}] {input}\n{}\n\n",
            serde_json::to_string_pretty(&v).unwrap()
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn shape_is_the_documented_one() {
    assert_eq!(
        json_of(Kind::Customer, "amount_spent > 500"),
        json!({"field": "amount_spent", "op": ">", "value": 500})
    );
    assert_eq!(
        json_of(Kind::Customer, "orders(sku: 'SOCK', since: -30d) >= 2"),
        json!({"call": "orders", "args": {"sku": "SOCK", "since": {"relative": "-30d"}}, "op": ">=", "value": 2})
    );
    assert_eq!(
        json_of(Kind::Customer, "accepts_marketing"),
        json!({"field": "accepts_marketing"})
    );
    assert_eq!(
        json_of(Kind::Customer, "purchased()"),
        json!({"call": "purchased", "args": {}})
    );
    assert_eq!(
        json_of(Kind::Product, "in_segment('best-sellers')"),
        json!({"call": "in_segment", "args": {"segment": "best-sellers"}})
    );
    assert_eq!(
        json_of(Kind::Customer, "created_at < today"),
        json!({"field": "created_at", "op": "<", "value": {"today": true}})
    );
}

#[test]
fn numbers_keep_their_text() {
    let v = json_of(Kind::Product, "price = 49.990");
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"field":"price","op":"=","value":49.990}"#
    );
    let back: serde_json::Value =
        serde_json::from_str(r#"{"field":"price","op":"=","value":49.990}"#).unwrap();
    assert_eq!(to_text(&from_json(&back).unwrap()), "price = 49.990");
    // An exponent is read exactly too.
    let v: serde_json::Value =
        serde_json::from_str(r#"{"field": "price", "op": "=", "value": 1.5e2}"#).unwrap();
    assert_eq!(to_text(&from_json(&v).unwrap()), "price = 150");
}

#[test]
fn text_json_text_round_trip() {
    for (kind, input) in EXAMPLES {
        let expr = parse_rule(input, &schema(*kind)).unwrap();
        let text = to_text(&expr);
        let wire = serde_json::to_string(&to_json(&expr)).unwrap();
        let back = from_json(&serde_json::from_str(&wire).unwrap()).unwrap();
        assert_eq!(to_text(&back), text);
        assert_eq!(to_json(&back), to_json(&expr));
    }
}

#[test]
fn lenient_reading() {
    // A group of one is its member; operators in any case; args optional.
    let e =
        from_json(&json!({"and": [{"field": "tier", "op": "not in", "value": ["a"]}]})).unwrap();
    assert_eq!(to_text(&e), "tier NOT IN ('a')");
    let e = from_json(&json!({"call": "purchased"})).unwrap();
    assert_eq!(to_text(&e), "purchased()");
}

#[test]
fn reader_errors() {
    let cases = [
        json!([1]),
        json!({}),
        json!({"and": [{"field": "a"}], "or": []}),
        json!({"and": {"field": "a"}}),
        json!({"and": []}),
        json!({"and": [{"field": "a"}, {"field": "b", "op": "LIKE", "value": "x"}]}),
        json!({"or": [{"field": "a"}, {"not": {"field": "b", "op": ">"}}]}),
        json!({"field": "a", "op": "IS NULL", "value": 1}),
        json!({"field": "a", "value": 1}),
        json!({"field": "a", "op": "BETWEEN", "value": [1]}),
        json!({"field": "a", "op": "IN", "value": []}),
        json!({"field": "a", "op": "IN", "value": 1}),
        json!({"field": "a", "op": "=", "value": null}),
        json!({"field": "a", "op": "=", "value": [1]}),
        json!({"field": "a", "op": "=", "value": {"date": "2024-02-30"}}),
        json!({"field": "a", "op": "=", "value": {"timestamp": "2024-01-01"}}),
        json!({"field": "a", "op": "=", "value": {"relative": "30d"}}),
        json!({"field": "a", "op": "=", "value": {"today": false}}),
        json!({"field": "a", "op": "=", "value": {"when": "now"}}),
        json!({"field": "a", "op": "=", "value": {"date": 20240101}}),
        json!({"field": "a b", "op": "=", "value": 1}),
        json!({"field": "AND", "op": "=", "value": 1}),
        json!({"field": 5}),
        json!({"field": "a", "colour": "red"}),
        json!({"call": "orders", "args": [1], "op": ">", "value": 1}),
        json!({"call": "orders", "args": {"sku": []}, "op": ">", "value": 1}),
        json!({"call": "orders", "args": {"a/b~": 1}, "op": ">", "value": 1}),
        json!({"field": "a", "op": 5, "value": 1}),
        serde_json::from_str(r#"{"field": "a", "op": "=", "value": 1e400}"#).unwrap(),
        serde_json::from_str(
            r#"{"field": "a", "op": "=", "value": 123456789012345678901234567890}"#,
        )
        .unwrap(),
    ];
    let mut out = String::new();
    for v in cases {
        let err = from_json(&v).unwrap_err();
        out.push_str(&format!("{v}\n  {err}\n"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn reader_limits() {
    let leaf = json!({"field": "accepts_marketing"});
    let mut nots = leaf.clone();
    for _ in 0..64 {
        nots = json!({ "not": nots });
    }
    assert!(from_json(&nots).is_ok());
    let too_deep = json!({ "not": nots });
    let err = from_json(&too_deep).unwrap_err();
    assert!(err.message.contains("nests too deeply"), "{err}");
    assert_eq!(err.pointer, format!("{}/not", "/not".repeat(63)));
    // Or inside or costs no level in the text, but is still capped. (Not
    // much deeper than the cap: serde_json's own drop of a Value recurses.)
    let mut chain = leaf.clone();
    for _ in 0..300 {
        chain = json!({ "or": [chain, leaf.clone()] });
    }
    assert!(
        from_json(&chain)
            .unwrap_err()
            .message
            .contains("nests too deeply")
    );
    // An OR in an AND in an OR ... is one level per OR, as in the text.
    let mut alternating = leaf.clone();
    for i in 0..64 {
        alternating = if i % 2 == 0 {
            json!({ "and": [leaf.clone(), { "or": [leaf.clone(), alternating] }] })
        } else {
            json!({ "or": [leaf.clone(), alternating] })
        };
    }
    let e = from_json(&alternating).unwrap();
    let text = to_text(&e);
    assert_eq!(text.matches('(').count(), 32);
    assert!(parse_rule(&text, &schema(Kind::Customer)).is_ok());
    let many = json!({ "or": vec![leaf; 1_001] });
    assert!(
        from_json(&many)
            .unwrap_err()
            .message
            .contains("too many conditions")
    );
}
