//! Rendered errors: message, position, carets, hint.

use strata_lang::catalog::Kind;

use crate::{norm, refused};

const C: Kind = Kind::Customer;
const P: Kind = Kind::Product;

/// All the cases' renderings, separated, as one reviewable snapshot.
fn rendered(cases: &[(Kind, &str)]) -> String {
    let mut out = String::new();
    for (kind, input) in cases {
        out.push_str(&format!(
            "[{kind}] {input:?}\n{}\n\n",
            refused(*kind, input)
        ));
    }
    out
}

#[test]
fn names() {
    insta::assert_snapshot!(rendered(&[
        (C, "amount_spend > 500"),
        (C, "Amount_Spent > 500"),
        (C, "price > 5"),
        (P, "number_of_orders > 5"),
        (C, "zzz = 1"),
        (C, "purchased"),
        (C, "in_segment AND accepts_marketing"),
        (C, "amount_spent() > 5"),
        (C, "purchase(since: -30d)"),
        (P, "x_colour = 'red'"),
    ]));
}

#[test]
fn operators() {
    insta::assert_snapshot!(rendered(&[
        (C, "country < 'US'"),
        (C, "tags = 'vip'"),
        (C, "accepts_marketing > true"),
        (C, "last_order_date IN (2024-01-01)"),
        (C, "tags STARTS WITH 'v'"),
        (C, "accepts_marketing IS NULL"),
        (C, "created_at IS EMPTY"),
        (C, "tags IS NOT NULL"),
        (C, "country BETWEEN 'a' AND 'b'"),
        (C, "amount_spent CONTAINS '5'"),
        (C, "amount_spent"),
        (C, "orders(since: -30d)"),
        (C, "tags"),
    ]));
}

#[test]
fn values() {
    insta::assert_snapshot!(rendered(&[
        (C, "amount_spent > '500'"),
        (C, "country = 5"),
        (C, "last_order_date < 30"),
        (C, "accepts_marketing = 'yes'"),
        (P, "price BETWEEN 1 AND '5'"),
        (C, "tier IN ('Gold', 3)"),
        (C, "country CONTAINS 5"),
        (C, "tags CONTAINS today"),
        (C, "created_at > true"),
    ]));
}

#[test]
fn arguments() {
    insta::assert_snapshot!(rendered(&[
        (C, "orders('x') > 1"),
        (C, "orders(foo: 1) > 1"),
        (C, "orders(sinc: -30d) > 1"),
        (C, "orders(since: -30d, since: -7d) > 1"),
        (C, "orders(since: 'yesterday') > 1"),
        (C, "orders(since: (-30d, -7d)) > 1"),
        (C, "orders(sku: 5) > 1"),
        (C, "orders(sku: ('A', 5)) > 1"),
        (C, "purchased(in_segment: ('a', 'b'))"),
        (C, "in_segment()"),
        (C, "in_segment('a', 'b')"),
        (C, "in_segment(name: 'x')"),
        (C, "in_segment(5)"),
        (C, "in_segment(('a'))"),
        (P, "sales(sku: 'x') > 1"),
        (C, "in_segment(best_sellers)"),
    ]));
}

#[test]
fn syntax() {
    insta::assert_snapshot!(rendered(&[
        (C, "country = 'abc"),
        (C, "created_at > 2024-02-30"),
        (C, "created_at > 2024-13-01"),
        (C, "created_at > 2024-1-5"),
        (C, "created_at > 2024-01-01T25:00:00Z"),
        (C, "created_at > 2024-01-01T10:00:00"),
        (C, "amount_spent > 500 500"),
        (C, "amount_spent > )"),
        (C, "(amount_spent > 5 AND tier = 'x'"),
        (C, "(amount_spent > 5 AND tier = 'x' tier"),
        (C, "in_segment('x'"),
        (C, "tier IN ('a', 'b'"),
        (C, "tier IN ('a' 'b')"),
        (C, "tier IN 'a'"),
        (C, "tier IN ()"),
        (C, ""),
        (C, "   "),
        (C, "AND tier = 'a'"),
        (C, "tier = 'a' AND"),
        (C, "tier = 'a' )"),
        (C, "amount_spent 500"),
        (C, "amount_spent NOT BETWEEN 1 AND 2"),
        (C, "amount_spent IS 5"),
        (C, "amount_spent IS NOT 5"),
        (P, "title STARTS 'a'"),
        (P, "price BETWEEN 1 5"),
        (C, "country = \"US\""),
        (C, "amount_spent == 1"),
        (C, "amount_spent <> 1"),
        (C, "amount_spent > 1 && tier = 'a'"),
        (C, "amount_spent ! = 1"),
        (C, "amount_spent > 1e5"),
        (C, "amount_spent > 1.5.5"),
        (C, "created_at > -30x"),
        (C, "created_at > +5"),
        (C, "created_at > - 5"),
        (C, "amount_spent > 99999999999999999999999999999999"),
        (C, "amount_spent > 0.00000000000000000000000000001"),
        (C, "created_at > -99999999999d"),
        (C, "tags CONTAINS vip"),
        (C, "city = 'Zürich' AND país = 'x'"),
        (C, "orders(since -30d) > 1"),
        (C, "orders(since: -30d,) > 1"),
        (C, "orders(sku: ()) > 1"),
        (C, "NOT"),
        (C, "()"),
        (C, "tier = 'a' OR OR tier = 'b'"),
        (C, "tier = NULL"),
        (C, "tier = 'a' 'b'"),
    ]));
}

#[test]
fn positions() {
    insta::assert_snapshot!(rendered(&[
        // The right line of a multi-line rule.
        (C, "amount_spent > 500\nAND\n  amount_spend > 3"),
        (C, "amount_spent > 500\r\nAND amount_spend > 3"),
        (C, "zzz = 1\r\nAND tier = 'a'"),
        // Tabs are shown as four spaces, carets follow them.
        (C, "\tamount_spend > 1"),
        (C, "tier = 'a' AND\t\tcountry < 'b'"),
        // Columns count characters, not bytes.
        (C, "city = 'Zürich' AND zzz = 1"),
        (C, "city = '東京' AND city < 'x'"),
        // At the end: one caret just past the last token.
        (C, "amount_spent >"),
        (C, "amount_spent >   \n\n"),
        (C, "(tier = 'a'\n"),
        // Line numbers of two digits widen the gutter.
        (C, &format!("{}zzz = 1", "tier = 'a' AND\n".repeat(11))),
    ]));
}

#[test]
fn limits() {
    let nested = |n: usize| format!("{}accepts_marketing{}", "(".repeat(n), ")".repeat(n));
    let many = |n: usize| vec!["accepts_marketing"; n].join(" OR ");
    let nots = format!("{}accepts_marketing", "NOT ".repeat(65));
    let long = many(1001);
    insta::assert_snapshot!(rendered(&[(C, &nested(65)), (C, &nots)]));
    // One condition per line: the 1001st line is shown.
    let lines = vec!["accepts_marketing"; 1001].join("\nOR ");
    insta::assert_snapshot!("too_many_conditions", refused(C, &lines));
    // The offending condition is the 1001st; "accepts_marketing OR " is 21
    // characters.
    let err = strata_lang::parse(&long).unwrap_err();
    assert_eq!(err.line_col(&long), (1, 21 * 1000 + 1));
    assert_eq!(err.message, "rule has too many conditions; at most 1,000");
}

#[test]
fn exact_messages() {
    // The forms the brief and language.md quote, word for word.
    let first_line = |kind, input: &str| refused(kind, input).lines().next().unwrap().to_string();
    assert_eq!(
        first_line(C, "amount_spend > 500"),
        "error: unknown field 'amount_spend'; did you mean 'amount_spent'?"
    );
    assert_eq!(
        refused(C, "amount_spend > 500"),
        "error: unknown field 'amount_spend'; did you mean 'amount_spent'?\n --> 1:1\n  |\n1 | amount_spend > 500\n  | ^^^^^^^^^^^^"
    );
    assert_eq!(
        first_line(C, "amount_spent > '5'"),
        "error: 'amount_spent' is money; it takes a number, got a string"
    );
    assert_eq!(
        first_line(C, "tier IN (1, )"),
        "error: expected a value (string, number, date, timestamp, relative time, true, false or today), found ')'"
    );
    assert_eq!(
        first_line(C, "tier IN (tier = 1"),
        "error: expected a value (string, number, date, timestamp, relative time, true, false or today), found 'tier'"
    );
    assert_eq!(
        first_line(C, "tier = 'a' AND (tier = 'b'"),
        "error: unexpected end of rule; expected ')' to close '(' at 1:16"
    );
    assert_eq!(
        first_line(C, "(\ntier = 'a' AND (tier = 'b' x"),
        "error: expected ')' to close '(' at 2:16, found 'x'"
    );
    // Accepted forms that look close to refused ones.
    norm(P, "title CONTAINS 'a'");
    norm(C, "country NOT CONTAINS 'U'");
}

#[test]
fn first_error_wins() {
    // A syntax error before a bad character is the one reported...
    let e = strata_lang::parse("tier = = 'x' €").unwrap_err();
    assert!(e.message.starts_with("expected a value"), "{}", e.message);
    // ... and a bad character before a syntax error.
    let e = strata_lang::parse("tier = 'x' € AND AND").unwrap_err();
    assert!(
        e.message.contains("unexpected character '€'"),
        "{}",
        e.message
    );
    // A boolean alone followed by a bad character is not accepted.
    let e = strata_lang::parse("accepts_marketing €").unwrap_err();
    assert!(e.message.contains("unexpected character"), "{}", e.message);
    // The checker reports the first problem in text order.
    let e = strata_lang::parse_rule("zzz = 1 AND yyy = 2", &crate::schema(C)).unwrap_err();
    assert!(e.message.contains("'zzz'"));
}
