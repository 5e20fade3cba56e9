//! The JSON form the web builder edits (language.md, "JSON form").
//!
//! ```json
//! {"and": [
//!   {"field": "amount_spent", "op": ">", "value": 500},
//!   {"call": "orders", "args": {"sku": "SOCK", "since": {"relative": "-30d"}}, "op": ">=", "value": 2},
//!   {"not": {"call": "in_segment", "args": {"segment": "best-sellers"}}}
//! ]}
//! ```
//!
//! Values keep their literal text and type: numbers are JSON numbers with
//! their exact text (`49.990` stays `49.990`), dates, timestamps and
//! relative times are one-key objects holding their text. The reader
//! enforces the text form's limits, so the two forms accept the same rules.

use serde_json::{Map, Number, Value as Json};

use crate::ast::{
    Arg, ArgValue, Call, CmpOp, Condition, Expr, Ident, Literal, Operand, Span, Test, TextOp, Value,
};
use crate::catalog::{CUSTOMER_FUNCTIONS, PRODUCT_FUNCTIONS};
use crate::lexer::{date_from_text, number_from_text, relative_from_text, timestamp_from_text};
use crate::limits::{MAX_CONDITIONS, Nesting, NodeKind, too_deep_message, too_many_message};
use crate::parser::is_keyword;
use crate::print::{relative_text, text_op_name};

/// A JSON tree that is not a rule: where (a JSON pointer such as
/// `/and/1/op`; empty for the root) and what.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {})", shown_pointer(.pointer))]
pub struct JsonError {
    pub pointer: String,
    pub message: String,
}

fn shown_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the root"
    } else {
        pointer
    }
}

fn err(pointer: &str, message: impl Into<String>) -> JsonError {
    JsonError {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}

/// The JSON form of a rule.
///
/// Recursive; trees from [`crate::parse`] and [`from_json`] are bounded by
/// their depth limits.
pub fn to_json(expr: &Expr) -> Json {
    let mut obj = Map::new();
    match expr {
        Expr::And(items) => {
            obj.insert(
                "and".into(),
                Json::Array(items.iter().map(to_json).collect()),
            );
        }
        Expr::Or(items) => {
            obj.insert(
                "or".into(),
                Json::Array(items.iter().map(to_json).collect()),
            );
        }
        Expr::Not(inner) => {
            obj.insert("not".into(), to_json(inner));
        }
        Expr::Cond(c) => write_condition(&mut obj, c),
    }
    Json::Object(obj)
}

fn write_condition(obj: &mut Map<String, Json>, c: &Condition) {
    match &c.operand {
        Operand::Field(id) => {
            obj.insert("field".into(), Json::String(id.name.clone()));
        }
        Operand::Call(call) => {
            obj.insert("call".into(), Json::String(call.name.name.clone()));
            let key = positional_key(&call.name.name);
            let mut args = Map::new();
            for arg in &call.args {
                let name = arg.name.as_ref().map_or(key, |n| n.name.as_str());
                let value = match &arg.value {
                    ArgValue::One(lit) => value_json(&lit.value),
                    ArgValue::List(list) => list_json(list),
                };
                args.insert(name.to_string(), value);
            }
            obj.insert("args".into(), Json::Object(args));
        }
    }
    let (op, value) = match &c.test {
        Test::Cmp(op, lit) => (op.as_str().to_string(), Some(value_json(&lit.value))),
        Test::Between(low, high) => (
            "BETWEEN".into(),
            Some(Json::Array(vec![
                value_json(&low.value),
                value_json(&high.value),
            ])),
        ),
        Test::In { negated, values } => (
            if *negated { "NOT IN" } else { "IN" }.into(),
            Some(list_json(values)),
        ),
        Test::Text { op, negated, value } => {
            (text_op_name(*op, *negated), Some(value_json(&value.value)))
        }
        Test::IsNull { negated } => (
            if *negated { "IS NOT NULL" } else { "IS NULL" }.into(),
            None,
        ),
        Test::IsEmpty { negated } => (
            if *negated { "IS NOT EMPTY" } else { "IS EMPTY" }.into(),
            None,
        ),
        Test::Truth => return,
    };
    obj.insert("op".into(), Json::String(op));
    if let Some(value) = value {
        obj.insert("value".into(), value);
    }
}

/// The JSON key of a function's positional argument (`segment` for
/// `in_segment`); the catalogue knows it for both kinds alike.
fn positional_key(function: &str) -> &'static str {
    CUSTOMER_FUNCTIONS
        .iter()
        .chain(PRODUCT_FUNCTIONS)
        .find(|f| f.name == function)
        .and_then(|f| f.positional)
        .unwrap_or("segment")
}

fn list_json(values: &[Literal]) -> Json {
    Json::Array(values.iter().map(|l| value_json(&l.value)).collect())
}

fn tagged(key: &str, value: Json) -> Json {
    let mut obj = Map::new();
    obj.insert(key.into(), value);
    Json::Object(obj)
}

/// One value in its JSON form.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            let text = n.to_string();
            // A Decimal prints as a plain JSON number; the fallback is
            // never taken but keeps this total.
            match text.parse::<Number>() {
                Ok(num) => Json::Number(num),
                Err(_) => Json::String(text),
            }
        }
        Value::Bool(b) => Json::Bool(*b),
        Value::Date(d) => tagged("date", Json::String(d.to_string())),
        Value::Timestamp { text, .. } => tagged("timestamp", Json::String(text.clone())),
        Value::Relative(r) => tagged("relative", Json::String(relative_text(r))),
        Value::Today => tagged("today", Json::Bool(true)),
    }
}

/// Reads a rule from its JSON form. The tree is not checked against a
/// schema (that is [`crate::check`]) and not normalised; spans are empty.
pub fn from_json(v: &Json) -> Result<Expr, JsonError> {
    Reader { conditions: 0 }.node(v, "", None)
}

struct Reader {
    conditions: usize,
}

const NODE_KEYS: [&str; 5] = ["and", "or", "not", "field", "call"];

/// RFC 6901 escaping of one pointer segment.
fn segment(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Reader {
    fn node(&mut self, v: &Json, at: &str, parent: Option<Nesting>) -> Result<Expr, JsonError> {
        let Some(obj) = v.as_object() else {
            return Err(err(
                at,
                "expected a node: an object with \"and\", \"or\", \"not\", \"field\" or \"call\"",
            ));
        };
        let mut keys = NODE_KEYS.iter().filter(|k| obj.contains_key(**k));
        let Some(&key) = keys.next() else {
            return Err(err(
                at,
                "expected a node: an object with \"and\", \"or\", \"not\", \"field\" or \"call\"",
            ));
        };
        if let Some(&second) = keys.next() {
            return Err(err(
                &format!("{at}/{second}"),
                format!(
                    "a node has one of \"and\", \"or\", \"not\", \"field\", \"call\"; this one also has \"{key}\""
                ),
            ));
        }
        let kind = match key {
            "and" => NodeKind::And,
            "or" => NodeKind::Or,
            "not" => NodeKind::Not,
            _ => NodeKind::Cond,
        };
        let here = parent.map_or(Nesting::root(kind), |p| p.child(kind));
        if here.too_deep() {
            return Err(err(at, too_deep_message()));
        }
        match key {
            "and" | "or" => {
                only_keys(obj, at, &[key])?;
                let inner_at = format!("{at}/{key}");
                let Some(items) = obj[key].as_array() else {
                    return Err(err(&inner_at, "expected an array of nodes"));
                };
                if items.is_empty() {
                    return Err(err(
                        &inner_at,
                        format!("an \"{key}\" needs at least one node"),
                    ));
                }
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.node(item, &format!("{inner_at}/{i}"), Some(here))?);
                }
                // A group of one is just its member: the builder makes those
                // while the user is still adding conditions.
                if out.len() == 1 {
                    return Ok(out.remove(0));
                }
                Ok(if key == "and" {
                    Expr::And(out)
                } else {
                    Expr::Or(out)
                })
            }
            "not" => {
                only_keys(obj, at, &["not"])?;
                let inner = self.node(&obj["not"], &format!("{at}/not"), Some(here))?;
                Ok(Expr::Not(Box::new(inner)))
            }
            _ => {
                self.conditions += 1;
                if self.conditions > MAX_CONDITIONS {
                    return Err(err(at, too_many_message()));
                }
                condition(obj, at, key).map(Expr::Cond)
            }
        }
    }
}

fn only_keys(obj: &Map<String, Json>, at: &str, allowed: &[&str]) -> Result<(), JsonError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            &format!("{at}/{}", segment(k)),
            format!("unknown key \"{k}\"; expected {}", quoted_list(allowed)),
        )),
        None => Ok(()),
    }
}

fn quoted_list(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    quoted.join(", ")
}

fn name(v: &Json, at: &str, what: &str) -> Result<Ident, JsonError> {
    let Some(s) = v.as_str() else {
        return Err(err(at, format!("expected the {what} name as a string")));
    };
    let mut chars = s.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed || is_keyword(s) {
        return Err(err(at, format!("'{s}' is not a valid {what} name")));
    }
    Ok(Ident {
        name: s.to_string(),
        span: Span::default(),
    })
}

fn condition(obj: &Map<String, Json>, at: &str, key: &str) -> Result<Condition, JsonError> {
    let operand = if key == "field" {
        only_keys(obj, at, &["field", "op", "value"])?;
        Operand::Field(name(&obj["field"], &format!("{at}/field"), "field")?)
    } else {
        only_keys(obj, at, &["call", "args", "op", "value"])?;
        let fname = name(&obj["call"], &format!("{at}/call"), "function")?;
        let positional = positional_key(&fname.name);
        let mut args = Vec::new();
        if let Some(raw) = obj.get("args") {
            let args_at = format!("{at}/args");
            let Some(map) = raw.as_object() else {
                return Err(err(&args_at, "expected an object of arguments"));
            };
            for (k, v) in map {
                let arg_at = format!("{args_at}/{}", segment(k));
                let arg_name = name(&Json::String(k.clone()), &arg_at, "argument")?;
                let value = match v {
                    Json::Array(items) => ArgValue::List(list(items, &arg_at)?),
                    other => ArgValue::One(literal(other, &arg_at)?),
                };
                let is_positional = fname.name == "in_segment" && k == positional;
                args.push(Arg {
                    name: (!is_positional).then_some(arg_name),
                    value,
                    span: Span::default(),
                });
            }
        }
        Operand::Call(Call {
            name: fname,
            args,
            span: Span::default(),
        })
    };
    let test = test(obj, at)?;
    Ok(Condition {
        operand,
        test,
        span: Span::default(),
    })
}

fn test(obj: &Map<String, Json>, at: &str) -> Result<Test, JsonError> {
    let value_at = format!("{at}/value");
    let Some(op) = obj.get("op") else {
        if obj.contains_key("value") {
            return Err(err(&value_at, "a value needs an \"op\""));
        }
        return Ok(Test::Truth);
    };
    let op_at = format!("{at}/op");
    let Some(op_text) = op.as_str() else {
        return Err(err(
            &op_at,
            "expected the operator as a string, such as \">=\"",
        ));
    };
    let op_norm = op_text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    let value = obj.get("value");
    let needs_value =
        || value.ok_or_else(|| err(at, format!("operator \"{op_norm}\" needs a \"value\"")));
    let cmp =
        |op| -> Result<Test, JsonError> { Ok(Test::Cmp(op, literal(needs_value()?, &value_at)?)) };
    let text = |op, negated| -> Result<Test, JsonError> {
        Ok(Test::Text {
            op,
            negated,
            value: literal(needs_value()?, &value_at)?,
        })
    };
    let no_value = |t: Test| -> Result<Test, JsonError> {
        match value {
            Some(_) => Err(err(
                &value_at,
                format!("operator \"{op_norm}\" takes no value"),
            )),
            None => Ok(t),
        }
    };
    match op_norm.as_str() {
        "=" => cmp(CmpOp::Eq),
        "!=" => cmp(CmpOp::Ne),
        "<" => cmp(CmpOp::Lt),
        "<=" => cmp(CmpOp::Le),
        ">" => cmp(CmpOp::Gt),
        ">=" => cmp(CmpOp::Ge),
        "BETWEEN" => match needs_value()? {
            Json::Array(pair) if pair.len() == 2 => Ok(Test::Between(
                literal(&pair[0], &format!("{value_at}/0"))?,
                literal(&pair[1], &format!("{value_at}/1"))?,
            )),
            _ => Err(err(
                &value_at,
                "BETWEEN takes an array of two values [low, high]",
            )),
        },
        "IN" | "NOT IN" => match needs_value()? {
            Json::Array(items) => Ok(Test::In {
                negated: op_norm == "NOT IN",
                values: list(items, &value_at)?,
            }),
            _ => Err(err(
                &value_at,
                format!("{op_norm} takes an array of values"),
            )),
        },
        "CONTAINS" => text(TextOp::Contains, false),
        "NOT CONTAINS" => text(TextOp::Contains, true),
        "STARTS WITH" => text(TextOp::StartsWith, false),
        "NOT STARTS WITH" => text(TextOp::StartsWith, true),
        "ENDS WITH" => text(TextOp::EndsWith, false),
        "NOT ENDS WITH" => text(TextOp::EndsWith, true),
        "IS NULL" => no_value(Test::IsNull { negated: false }),
        "IS NOT NULL" => no_value(Test::IsNull { negated: true }),
        "IS EMPTY" => no_value(Test::IsEmpty { negated: false }),
        "IS NOT EMPTY" => no_value(Test::IsEmpty { negated: true }),
        _ => Err(err(
            &op_at,
            format!(
                "unknown operator \"{op_text}\"; expected one of =, !=, <, <=, >, >=, BETWEEN, IN, \
                 NOT IN, CONTAINS, NOT CONTAINS, STARTS WITH, NOT STARTS WITH, ENDS WITH, \
                 NOT ENDS WITH, IS NULL, IS NOT NULL, IS EMPTY, IS NOT EMPTY"
            ),
        )),
    }
}

fn list(items: &[Json], at: &str) -> Result<Vec<Literal>, JsonError> {
    if items.is_empty() {
        return Err(err(at, "a list needs at least one value"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| literal(v, &format!("{at}/{i}")))
        .collect()
}

const VALUE_FORMS: &str = "expected a value: a string, a number, true, false, \
     {\"date\": \"YYYY-MM-DD\"}, {\"timestamp\": \"...\"}, {\"relative\": \"-30d\"} or {\"today\": true}";

fn literal(v: &Json, at: &str) -> Result<Literal, JsonError> {
    let value = match v {
        Json::String(s) => Value::String(s.clone()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            let text = n.as_str();
            let parsed = if text.contains(['e', 'E']) {
                rust_decimal::Decimal::from_scientific(text)
                    .map_err(|_| format!("number '{text}' cannot be held exactly"))
            } else {
                number_from_text(text)
            };
            Value::Number(parsed.map_err(|m| err(at, m))?)
        }
        Json::Null => {
            return Err(err(
                at,
                "null is not a value; test for null with the operator \"IS NULL\"",
            ));
        }
        Json::Object(obj) if obj.len() == 1 => {
            let Some((k, inner)) = obj.iter().next() else {
                return Err(err(at, VALUE_FORMS));
            };
            let inner_at = format!("{at}/{}", segment(k));
            let text = || {
                inner
                    .as_str()
                    .ok_or_else(|| err(&inner_at, format!("expected the {k} as a string")))
            };
            match k.as_str() {
                "date" => Value::Date(date_from_text(text()?).map_err(|m| err(&inner_at, m))?),
                "timestamp" => {
                    let t = text()?;
                    Value::Timestamp {
                        instant: timestamp_from_text(t).map_err(|m| err(&inner_at, m))?,
                        text: t.to_string(),
                    }
                }
                "relative" => {
                    Value::Relative(relative_from_text(text()?).map_err(|m| err(&inner_at, m))?)
                }
                "today" if inner == &Json::Bool(true) => Value::Today,
                "today" => return Err(err(&inner_at, "expected {\"today\": true}")),
                _ => return Err(err(at, VALUE_FORMS)),
            }
        }
        _ => return Err(err(at, VALUE_FORMS)),
    };
    Ok(Literal {
        value,
        span: Span::default(),
    })
}
