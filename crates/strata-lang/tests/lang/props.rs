//! Property tests: nothing panics, and the text and JSON forms round-trip.

use jiff::civil::Date;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use strata_lang::ast::{
    Arg, ArgValue, Call, CmpOp, Condition, Expr, Ident, Literal, Operand, RelUnit, Relative, Span,
    Test, TextOp, Value,
};
use strata_lang::catalog::{ArgKind, Kind, ParamDef, Schema, Type};
use strata_lang::{check, from_json, normalise, parse, parse_rule, to_json, to_text};

use crate::schema;

fn lit(value: Value) -> Literal {
    Literal {
        value,
        span: Span::default(),
    }
}

fn ident(name: &str) -> Ident {
    Ident {
        name: name.to_string(),
        span: Span::default(),
    }
}

fn string_value() -> BoxedStrategy<Value> {
    prop_oneof![
        "[a-zA-Z' é%_-]{0,8}",
        any::<String>(),
        Just("it's".to_string()),
    ]
    .prop_map(Value::String)
    .boxed()
}

fn number_value() -> BoxedStrategy<Value> {
    prop_oneof![
        (any::<i64>(), 0u32..=8).prop_map(|(m, s)| Decimal::new(m, s)),
        (any::<i32>(), 0u32..=3).prop_map(|(m, s)| Decimal::new(m.into(), s)),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
    ]
    .prop_map(Value::Number)
    .boxed()
}

fn date() -> impl Strategy<Value = Date> {
    (0i16..=9999, 1i8..=12, 1i8..=31)
        .prop_filter_map("a real day", |(y, m, d)| Date::new(y, m, d).ok())
}

fn timestamp_value() -> BoxedStrategy<Value> {
    let fraction = prop::option::of("[0-9]{1,9}");
    let offset = prop::option::of((any::<bool>(), 0u8..24, 0u8..60));
    (date(), 0u8..24, 0u8..60, 0u8..60, fraction, offset)
        .prop_filter_map("in jiff's range", |(d, h, mi, s, frac, off)| {
            let mut text = format!("{d}T{h:02}:{mi:02}:{s:02}");
            if let Some(f) = frac {
                text.push('.');
                text.push_str(&f);
            }
            match off {
                None => text.push('Z'),
                Some((neg, oh, om)) => {
                    text.push_str(&format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }))
                }
            }
            let instant = text.parse::<jiff::Timestamp>().ok()?;
            Some(Value::Timestamp { instant, text })
        })
        .boxed()
}

fn relative_value() -> BoxedStrategy<Value> {
    let unit = select(vec![RelUnit::Hours, RelUnit::Days, RelUnit::Weeks]);
    (any::<bool>(), prop_oneof![0u32..400, any::<u32>()], unit)
        .prop_map(|(negative, amount, unit)| {
            Value::Relative(Relative {
                negative,
                amount,
                unit,
            })
        })
        .boxed()
}

fn temporal_value() -> BoxedStrategy<Value> {
    prop_oneof![
        date().prop_map(Value::Date),
        timestamp_value(),
        relative_value(),
        Just(Value::Today),
    ]
    .boxed()
}

fn values_of(ty: Type) -> BoxedStrategy<Literal> {
    match ty {
        Type::Text | Type::TextSet => string_value(),
        Type::Number | Type::Money => number_value(),
        Type::Timestamp => temporal_value(),
        Type::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
    }
    .prop_map(lit)
    .boxed()
}

fn cmp_op(all: bool) -> BoxedStrategy<CmpOp> {
    let mut ops = vec![CmpOp::Eq, CmpOp::Ne];
    if all {
        ops.extend([CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]);
    }
    select(ops).boxed()
}

/// Every test language.md allows for the type, with fitting values.
fn test_for(ty: Type) -> BoxedStrategy<Test> {
    let v = values_of(ty);
    let null = any::<bool>().prop_map(|negated| Test::IsNull { negated });
    let empty = any::<bool>().prop_map(|negated| Test::IsEmpty { negated });
    let cmp = |all| (cmp_op(all), v.clone()).prop_map(|(op, l)| Test::Cmp(op, l));
    let between = (v.clone(), v.clone()).prop_map(|(a, b)| Test::Between(a, b));
    let within = (any::<bool>(), vec(v.clone(), 1..4))
        .prop_map(|(negated, values)| Test::In { negated, values });
    match ty {
        Type::Text => {
            let text_op = select(vec![TextOp::Contains, TextOp::StartsWith, TextOp::EndsWith]);
            let text = (text_op, any::<bool>(), v.clone())
                .prop_map(|(op, negated, value)| Test::Text { op, negated, value });
            prop_oneof![cmp(false), within, text, null, empty].boxed()
        }
        Type::Number | Type::Money => prop_oneof![cmp(true), between, within, null, empty].boxed(),
        Type::Timestamp => prop_oneof![cmp(true), between, null].boxed(),
        Type::Boolean => prop_oneof![cmp(false), Just(Test::Truth)].boxed(),
        Type::TextSet => {
            let contains = (any::<bool>(), v.clone()).prop_map(|(negated, value)| Test::Text {
                op: TextOp::Contains,
                negated,
                value,
            });
            prop_oneof![contains, empty].boxed()
        }
    }
}

fn arg_for(p: ParamDef) -> BoxedStrategy<Arg> {
    let value = match p.kind {
        ArgKind::Bound => temporal_value().prop_map(|v| ArgValue::One(lit(v))).boxed(),
        ArgKind::ProductSegment => string_value().prop_map(|v| ArgValue::One(lit(v))).boxed(),
        ArgKind::TextFilter => prop_oneof![
            string_value().prop_map(|v| ArgValue::One(lit(v))),
            vec(string_value().prop_map(lit), 1..4).prop_map(ArgValue::List),
        ]
        .boxed(),
    };
    value
        .prop_map(move |value| Arg {
            name: Some(ident(p.name)),
            value,
            span: Span::default(),
        })
        .boxed()
}

fn call_for(
    name: &'static str,
    params: &'static [ParamDef],
    positional: bool,
) -> BoxedStrategy<Call> {
    if positional {
        return (string_value(), any::<bool>())
            .prop_map(move |(v, named)| Call {
                name: ident(name),
                args: vec![Arg {
                    name: named.then(|| ident("segment")),
                    value: ArgValue::One(lit(v)),
                    span: Span::default(),
                }],
                span: Span::default(),
            })
            .boxed();
    }
    subsequence(params.to_vec(), 0..=params.len())
        .prop_shuffle()
        .prop_flat_map(|ps| ps.into_iter().map(arg_for).collect::<Vec<_>>())
        .prop_map(move |args| Call {
            name: ident(name),
            args,
            span: Span::default(),
        })
        .boxed()
}

fn condition(kind: Kind) -> BoxedStrategy<Expr> {
    let s = schema(kind);
    let mut options: Vec<BoxedStrategy<Condition>> = Vec::new();
    let fields: Vec<(String, Type)> = s
        .fields()
        .iter()
        .map(|f| (f.name.to_string(), f.ty))
        .chain(s.custom.iter().map(|c| (c.clone(), Type::Text)))
        .collect();
    for (name, ty) in fields {
        options.push(
            test_for(ty)
                .prop_map(move |test| Condition {
                    operand: Operand::Field(ident(&name)),
                    test,
                    span: Span::default(),
                })
                .boxed(),
        );
    }
    for f in s.functions() {
        options.push(
            (
                call_for(f.name, f.params, f.positional.is_some()),
                test_for(f.ty),
            )
                .prop_map(|(call, test)| Condition {
                    operand: Operand::Call(call),
                    test,
                    span: Span::default(),
                })
                .boxed(),
        );
    }
    select((0..options.len()).collect::<Vec<_>>())
        .prop_flat_map(move |i| options[i].clone())
        .prop_map(Expr::Cond)
        .boxed()
}

fn rule(kind: Kind) -> BoxedStrategy<Expr> {
    condition(kind)
        .prop_recursive(5, 40, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 2..4).prop_map(Expr::And),
                vec(inner.clone(), 2..4).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
        .boxed()
}

fn kind() -> impl Strategy<Value = Kind> {
    select(vec![Kind::Customer, Kind::Product])
}

fn round_trips(kind: Kind, expr: &Expr) -> Result<(), TestCaseError> {
    let s = schema(kind);
    prop_assert!(check(expr, &s).is_ok(), "{:?}", check(expr, &s));
    let written = to_text(expr);
    let parsed = parse_rule(&written, &s)
        .map_err(|e| TestCaseError::fail(format!("{}\n{}", written, e.render(&written))))?;
    let text = to_text(&parsed);
    // The same tree came back (compared through JSON, which has no spans):
    // comparing printed texts alone would miss a printer that drops
    // needed parentheses.
    prop_assert_eq!(
        to_json(&parsed),
        to_json(&normalise(expr.clone())),
        "{}",
        written
    );
    prop_assert_eq!(&text, &to_text(&normalise(expr.clone())));
    // The normal text is a fixpoint.
    let again = parse_rule(&text, &s).map_err(|e| TestCaseError::fail(e.render(&text)))?;
    prop_assert_eq!(&to_text(&again), &text);
    // Text -> JSON (over the wire) -> text.
    let wire = serde_json::to_string(&to_json(&parsed)).unwrap();
    let back = from_json(&serde_json::from_str(&wire).unwrap())
        .map_err(|e| TestCaseError::fail(format!("{wire}: {e}")))?;
    prop_assert_eq!(&to_text(&back), &text);
    prop_assert!(check(&back, &s).is_ok());
    // The raw tree through JSON prints as its normal form.
    let raw = from_json(&to_json(expr)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&to_text(&raw), &text);
    Ok(())
}

/// Pieces of the grammar, glued at random.
const TOKENS: &[&str] = &[
    "(",
    ")",
    ",",
    ":",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "AND",
    "or",
    "NOT",
    "IN",
    "BETWEEN",
    "CONTAINS",
    "STARTS",
    "WITH",
    "ENDS",
    "IS",
    "NULL",
    "EMPTY",
    "true",
    "FALSE",
    "today",
    "amount_spent",
    "tags",
    "accepts_marketing",
    "country",
    "created_at",
    "purchased",
    "orders",
    "in_segment",
    "since",
    "sku",
    "in_segment:",
    "sales",
    "price",
    "x_color",
    "'x'",
    "'it''s'",
    "''",
    "5",
    "-5.50",
    "49.990",
    "2024-01-31",
    "2024-02-30",
    "2024-01-01T00:00:00Z",
    "2024-01-01T10:00:00.5+02:00",
    "-30d",
    "+2w",
    "-0h",
    "é",
    "東",
    "'",
    "\"",
    "\t",
    "\n",
    "\r\n",
    "x_a",
    "-",
    "+",
    ".",
    "!",
    "==",
];

fn token_soup() -> impl Strategy<Value = String> {
    vec((select(TOKENS), select(vec!["", " ", " ", "  "])), 0..40).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(t, sep)| format!("{t}{sep}"))
            .collect()
    })
}

/// Parses, checks, prints and renders; panics are what is tested for.
fn survive(input: &str) -> Result<(), TestCaseError> {
    match parse(input) {
        Ok(expr) => {
            let mut valid = false;
            for kind in [Kind::Customer, Kind::Product] {
                match check(&expr, &Schema::builtin(kind)) {
                    Ok(()) => valid = true,
                    Err(e) => {
                        let _ = e.render(input);
                        let _ = e.line_col(input);
                    }
                }
            }
            let text = to_text(&expr);
            // Whatever parses prints to text that parses to the same text.
            let again = parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(to_text(&again), text);
            let back = from_json(&to_json(&expr));
            if valid {
                let back = back.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(to_text(&back), to_text(&normalise(expr)));
            }
        }
        Err(e) => {
            let shown = e.render(input);
            prop_assert!(shown.starts_with("error: "));
            prop_assert!(shown.contains('^'));
            let _ = e.line_col(input);
        }
    }
    Ok(())
}

fn arb_json() -> impl Strategy<Value = Json> {
    let words = vec![
        "and",
        "or",
        "not",
        "field",
        "call",
        "op",
        "value",
        "args",
        "date",
        "timestamp",
        "relative",
        "today",
        "segment",
        "since",
        "sku",
        "IN",
        "NOT IN",
        "BETWEEN",
        "IS NULL",
        "=",
        "-30d",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "tier",
        "in_segment",
        "orders",
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        "[a-z_ <=>!]{0,8}".prop_map(Json::from),
        select(words.clone()).prop_map(Json::from),
    ];
    leaf.prop_recursive(5, 64, 4, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Json::Array),
            vec((select(words.clone()), inner), 0..4).prop_map(|kv| {
                Json::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

proptest! {
    // 512 cases unless PROPTEST_CASES says otherwise; no regression files
    // (the test binary is not at a path proptest knows how to place them).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn valid_rules_round_trip((k, expr) in kind().prop_flat_map(|k| (Just(k), rule(k)))) {
        round_trips(k, &expr)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        survive(&input)?;
    }

    #[test]
    fn printable_strings_never_panic(input in "[ -~é\t\n]{0,60}") {
        survive(&input)?;
    }

    #[test]
    fn token_soup_never_panics(input in token_soup()) {
        survive(&input)?;
    }

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        if let Ok(expr) = from_json(&v) {
            let text = to_text(&expr);
            let parsed = parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
            prop_assert_eq!(to_text(&parsed), text.clone());
            let again = from_json(&to_json(&expr)).unwrap();
            prop_assert_eq!(to_text(&again), text);
            let _ = check(&expr, &Schema::builtin(Kind::Customer));
        }
    }
}
