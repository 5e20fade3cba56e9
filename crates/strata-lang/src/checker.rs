//! The type checker: names, operators, values and function arguments against
//! a [`Schema`] (language.md, "Types and operators" and "Function
//! arguments").
//!
//! Segment names are not resolved here: which segments exist, and whether
//! references form a cycle, is the engine's knowledge; [`segment_refs`] hands
//! it the references to resolve.

use crate::ast::{
    Arg, ArgValue, Call, CmpOp, Condition, Expr, Ident, Literal, Operand, Span, Test, TextOp, Value,
};
use crate::catalog::{ArgKind, FunctionDef, Kind, Schema, Type};
use crate::diagnostic::Diagnostic;
use crate::limits::{MAX_CONDITIONS, Nesting, NodeKind, too_deep_message, too_many_message};
use crate::print::text_op_name;

/// Checks a parsed rule against the fields and functions of its kind.
pub fn check(expr: &Expr, schema: &Schema) -> Result<(), Diagnostic> {
    let mut conditions = 0;
    check_expr(
        expr,
        schema,
        Nesting::root(NodeKind::of(expr)),
        &mut conditions,
    )
}

// Recursive, but the nesting is checked before each step down, so a tree
// built by hand cannot take the stack with it.
fn check_expr(
    expr: &Expr,
    schema: &Schema,
    at: Nesting,
    conditions: &mut usize,
) -> Result<(), Diagnostic> {
    if at.too_deep() {
        return Err(Diagnostic::new(first_span(expr), too_deep_message()));
    }
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            for item in items {
                check_expr(item, schema, at.child(NodeKind::of(item)), conditions)?;
            }
            Ok(())
        }
        Expr::Not(inner) => check_expr(inner, schema, at.child(NodeKind::of(inner)), conditions),
        Expr::Cond(c) => {
            *conditions += 1;
            if *conditions > MAX_CONDITIONS {
                return Err(Diagnostic::new(c.span, too_many_message()));
            }
            check_condition(c, schema)
        }
    }
}

/// The span of the leftmost condition, to point at something.
fn first_span(mut expr: &Expr) -> Span {
    loop {
        match expr {
            Expr::And(items) | Expr::Or(items) => match items.first() {
                Some(first) => expr = first,
                None => return Span::default(),
            },
            Expr::Not(inner) => expr = inner,
            Expr::Cond(c) => return c.span,
        }
    }
}

/// How the messages name an operand: `'amount_spent'`, `'orders(..)'`.
fn label(operand: &Operand) -> String {
    match operand {
        Operand::Field(id) => format!("'{}'", id.name),
        Operand::Call(call) => format!("'{}(..)'", call.name.name),
    }
}

fn operand_span(operand: &Operand) -> Span {
    match operand {
        Operand::Field(id) => id.span,
        Operand::Call(call) => call.span,
    }
}

fn check_condition(c: &Condition, schema: &Schema) -> Result<(), Diagnostic> {
    let ty = match &c.operand {
        Operand::Field(id) => field_type(id, schema)?,
        Operand::Call(call) => {
            let def = function(call, schema)?;
            check_args(call, &def)?;
            def.ty
        }
    };
    check_test(c, ty)
}

fn field_type(id: &Ident, schema: &Schema) -> Result<Type, Diagnostic> {
    if let Some(ty) = schema.field_type(&id.name) {
        return Ok(ty);
    }
    if let Some(def) = schema.function(&id.name) {
        let example = if def.positional.is_some() {
            format!("{}('segment-name')", def.name)
        } else {
            format!("{}()", def.name)
        };
        return Err(Diagnostic::new(
            id.span,
            format!(
                "'{}' is a function; call it with parentheses: {example}",
                id.name
            ),
        ));
    }
    Err(unknown("field", id, schema))
}

fn function(call: &Call, schema: &Schema) -> Result<FunctionDef, Diagnostic> {
    if let Some(def) = schema.function(&call.name.name) {
        return Ok(def);
    }
    if schema.field_type(&call.name.name).is_some() {
        return Err(Diagnostic::new(
            call.span,
            format!(
                "'{}' is a field, not a function; write it without parentheses",
                call.name.name
            ),
        ));
    }
    Err(unknown("function", &call.name, schema))
}

fn unknown(what: &str, id: &Ident, schema: &Schema) -> Diagnostic {
    let name = &id.name;
    let kind = schema.kind;
    let lower = name.to_lowercase();
    if lower != *name && schema.all_names().any(|n| n == lower) {
        return Diagnostic::new(
            id.span,
            format!("unknown {what} '{name}'; did you mean '{lower}'?"),
        )
        .with_help("field and function names are lower case");
    }
    let other = Schema::builtin(match kind {
        Kind::Customer => Kind::Product,
        Kind::Product => Kind::Customer,
    });
    if other.all_names().any(|n| n == lower) {
        return Diagnostic::new(
            id.span,
            format!(
                "unknown {what} '{name}': it belongs to {} rules, and this is a {kind} rule",
                other.kind
            ),
        );
    }
    match suggest(&lower, schema.all_names()) {
        Some(best) => Diagnostic::new(
            id.span,
            format!("unknown {what} '{name}'; did you mean '{best}'?"),
        ),
        None => {
            let names: Vec<&str> = schema.all_names().collect();
            Diagnostic::new(id.span, format!("unknown {what} '{name}'"))
                .with_help(format!("{kind} rules can use: {}", names.join(", ")))
        }
    }
}

/// The closest known name, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for cand in candidates {
        let distance = strsim::damerau_levenshtein(name, cand);
        let similar = strsim::jaro_winkler(name, cand);
        let close = distance <= (name.chars().count() / 3).max(1) || similar >= 0.9;
        if close && best.is_none_or(|(_, s)| similar > s) {
            best = Some((cand, similar));
        }
    }
    best.map(|(n, _)| n)
}

fn check_args(call: &Call, def: &FunctionDef) -> Result<(), Diagnostic> {
    let fname = def.name;
    if let Some(key) = def.positional {
        let example = format!("{fname}('best-sellers')");
        let arg = match call.args.as_slice() {
            [] => {
                return Err(Diagnostic::new(
                    call.span,
                    format!("'{fname}' takes one segment name, as in {example}"),
                ));
            }
            [arg] => arg,
            [_, extra, ..] => {
                return Err(Diagnostic::new(
                    extra.span,
                    format!("'{fname}' takes only one segment name, as in {example}"),
                ));
            }
        };
        if let Some(name) = arg.name.as_ref().filter(|n| n.name != key) {
            return Err(Diagnostic::new(
                name.span,
                format!(
                    "'{fname}' has no argument '{}'; it takes one segment name, as in {example}",
                    name.name
                ),
            ));
        }
        return match &arg.value {
            ArgValue::One(Literal {
                value: Value::String(_),
                ..
            }) => Ok(()),
            ArgValue::One(lit) => Err(Diagnostic::new(
                lit.span,
                format!(
                    "the segment name of '{fname}' is a string, got {}",
                    value_kind(&lit.value)
                ),
            )),
            ArgValue::List(_) => Err(Diagnostic::new(
                arg.span,
                format!("'{fname}' takes one segment name, not a list"),
            )),
        };
    }

    let all: Vec<&str> = def.params.iter().map(|p| p.name).collect();
    let mut seen: Vec<&str> = Vec::new();
    for arg in &call.args {
        let Some(name) = &arg.name else {
            return Err(Diagnostic::new(
                arg.span,
                format!("'{fname}' takes only named arguments, such as since: -30d"),
            )
            .with_help(format!("'{fname}' takes {}", all.join(", "))));
        };
        let Some(param) = def.params.iter().find(|p| p.name == name.name) else {
            let lower = name.name.to_lowercase();
            let msg = match suggest(&lower, all.iter().copied()) {
                Some(best) => format!(
                    "'{fname}' has no argument '{}'; did you mean '{best}'?",
                    name.name
                ),
                None => format!("'{fname}' has no argument '{}'", name.name),
            };
            return Err(Diagnostic::new(name.span, msg)
                .with_help(format!("'{fname}' takes {}", all.join(", "))));
        };
        if seen.contains(&param.name) {
            return Err(Diagnostic::new(
                name.span,
                format!("argument '{}' is given twice", name.name),
            ));
        }
        seen.push(param.name);
        check_arg_value(fname, param.name, param.kind, arg)?;
    }
    Ok(())
}

fn check_arg_value(fname: &str, pname: &str, kind: ArgKind, arg: &Arg) -> Result<(), Diagnostic> {
    let (fits, list_ok): (fn(&Value) -> bool, bool) = match kind {
        ArgKind::Bound => (is_temporal, false),
        ArgKind::TextFilter => (is_string, true),
        ArgKind::ProductSegment => (is_string, false),
    };
    let wanted = match kind {
        ArgKind::Bound => "a date, timestamp, relative time or today",
        ArgKind::TextFilter => "a string or a list of strings",
        ArgKind::ProductSegment => "one product segment name (a string)",
    };
    if matches!(arg.value, ArgValue::List(_)) && !list_ok {
        return Err(Diagnostic::new(
            arg.span,
            format!("argument '{pname}' of '{fname}' takes {wanted}, not a list"),
        ));
    }
    for lit in arg.value.literals() {
        if !fits(&lit.value) {
            return Err(Diagnostic::new(
                lit.span,
                format!(
                    "argument '{pname}' of '{fname}' takes {wanted}, got {}",
                    value_kind(&lit.value)
                ),
            ));
        }
    }
    Ok(())
}

fn is_temporal(v: &Value) -> bool {
    matches!(
        v,
        Value::Date(_) | Value::Timestamp { .. } | Value::Relative(_) | Value::Today
    )
}

fn is_string(v: &Value) -> bool {
    matches!(v, Value::String(_))
}

fn is_number(v: &Value) -> bool {
    matches!(v, Value::Number(_))
}

fn is_bool(v: &Value) -> bool {
    matches!(v, Value::Bool(_))
}

/// How messages name the type of a value.
fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Date(_) => "a date",
        Value::Timestamp { .. } => "a timestamp",
        Value::Relative(_) => "a relative time",
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Today => "today",
    }
}

/// `'x' is ...`: how messages name a type.
fn type_phrase(ty: Type) -> &'static str {
    match ty {
        Type::Text => "text",
        Type::Number => "a number",
        Type::Money => "money",
        Type::Timestamp => "a timestamp",
        Type::Boolean => "a boolean",
        Type::TextSet => "a text set",
    }
}

/// The values a type takes, and the test for them.
fn type_values(ty: Type) -> (&'static str, fn(&Value) -> bool) {
    match ty {
        Type::Text | Type::TextSet => ("a string", is_string),
        Type::Number | Type::Money => ("a number", is_number),
        Type::Timestamp => ("a date, timestamp, relative time or today", is_temporal),
        Type::Boolean => ("true or false", is_bool),
    }
}

/// The operators of a type, as language.md lists them.
fn type_operators(ty: Type) -> &'static str {
    match ty {
        Type::Text => {
            "=, !=, IN, NOT IN, CONTAINS, STARTS WITH, ENDS WITH (each also with NOT), \
             IS [NOT] NULL, IS [NOT] EMPTY"
        }
        Type::Number | Type::Money => {
            "=, !=, <, <=, >, >=, BETWEEN, IN, NOT IN, IS [NOT] NULL, IS [NOT] EMPTY"
        }
        Type::Timestamp => "=, !=, <, <=, >, >=, BETWEEN, IS [NOT] NULL",
        Type::Boolean => "= and != with true or false, or the name alone",
        Type::TextSet => "CONTAINS, NOT CONTAINS, IS [NOT] EMPTY",
    }
}

fn operator_allowed(ty: Type, test: &Test) -> bool {
    use Type::*;
    match test {
        Test::Cmp(op, _) => match ty {
            Text | Boolean => matches!(op, CmpOp::Eq | CmpOp::Ne),
            Number | Money | Timestamp => true,
            TextSet => false,
        },
        Test::Between(..) => matches!(ty, Number | Money | Timestamp),
        Test::In { .. } => matches!(ty, Text | Number | Money),
        Test::Text { op, .. } => match ty {
            Text => true,
            TextSet => *op == TextOp::Contains,
            _ => false,
        },
        Test::IsNull { .. } => matches!(ty, Text | Number | Money | Timestamp),
        Test::IsEmpty { .. } => matches!(ty, Text | Number | Money | TextSet),
        Test::Truth => ty == Boolean,
    }
}

fn operator_name(test: &Test) -> String {
    match test {
        Test::Cmp(op, _) => op.as_str().to_string(),
        Test::Between(..) => "BETWEEN".into(),
        Test::In { negated, .. } => if *negated { "NOT IN" } else { "IN" }.into(),
        Test::Text { op, negated, .. } => text_op_name(*op, *negated),
        Test::IsNull { negated } => if *negated { "IS NOT NULL" } else { "IS NULL" }.into(),
        Test::IsEmpty { negated } => if *negated { "IS NOT EMPTY" } else { "IS EMPTY" }.into(),
        Test::Truth => String::new(),
    }
}

fn test_values(test: &Test) -> &[Literal] {
    match test {
        Test::Cmp(_, lit) | Test::Text { value: lit, .. } => std::slice::from_ref(lit),
        Test::Between(low, _) => std::slice::from_ref(low),
        Test::In { values, .. } => values,
        Test::IsNull { .. } | Test::IsEmpty { .. } | Test::Truth => &[],
    }
}

fn check_test(c: &Condition, ty: Type) -> Result<(), Diagnostic> {
    let who = label(&c.operand);
    let what = type_phrase(ty);
    let operand_end = operand_span(&c.operand).end;
    if c.test == Test::Truth {
        if ty == Type::Boolean {
            return Ok(());
        }
        return Err(Diagnostic::new(
            operand_span(&c.operand),
            format!("{who} is {what}, not a boolean, so it cannot stand alone; expected an operator and a value after it"),
        )
        .with_help(format!("{ty} takes {}", type_operators(ty))));
    }
    if !operator_allowed(ty, &c.test) {
        // The AST keeps no span for the operator: it is what lies between
        // the operand and the value (the renderer trims the blanks).
        let op_end = test_values(&c.test)
            .first()
            .map_or(c.span.end, |lit| lit.span.start);
        let span = Span {
            start: operand_end,
            end: op_end.max(operand_end),
        };
        return Err(Diagnostic::new(
            span,
            format!(
                "operator '{}' does not apply to {who}, which is {what}; {ty} takes {}",
                operator_name(&c.test),
                type_operators(ty)
            ),
        ));
    }
    let (wanted, fits) = type_values(ty);
    let values: Vec<&Literal> = match &c.test {
        Test::Between(low, high) => vec![low, high],
        other => test_values(other).iter().collect(),
    };
    for lit in values {
        if !fits(&lit.value) {
            return Err(Diagnostic::new(
                lit.span,
                format!(
                    "{who} is {what}; it takes {wanted}, got {}",
                    value_kind(&lit.value)
                ),
            ));
        }
    }
    Ok(())
}

/// A reference to a saved segment, for the engine to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    /// The kind of the segment referred to.
    pub kind: Kind,
    pub name: String,
    /// The segment name's literal in the rule.
    pub span: Span,
}

/// Every segment a rule of `kind` refers to, in text order:
/// `in_segment('x')` names a segment of the same kind,
/// `purchased(in_segment: 'x')` (and the other behaviour functions) a
/// product segment.
pub fn segment_refs(expr: &Expr, kind: Kind) -> Vec<SegmentRef> {
    let mut out = Vec::new();
    // An explicit stack, children pushed in reverse so refs come in order.
    let mut stack = vec![expr];
    while let Some(node) = stack.pop() {
        match node {
            Expr::And(items) | Expr::Or(items) => stack.extend(items.iter().rev()),
            Expr::Not(inner) => stack.push(inner),
            Expr::Cond(Condition {
                operand: Operand::Call(call),
                ..
            }) => {
                let positional = call.name.name == "in_segment";
                for arg in &call.args {
                    let arg_name = arg.name.as_ref().map(|n| n.name.as_str());
                    let target = match arg_name {
                        None | Some("segment") if positional => kind,
                        Some("in_segment") if !positional => Kind::Product,
                        _ => continue,
                    };
                    for lit in arg.value.literals() {
                        if let Value::String(name) = &lit.value {
                            out.push(SegmentRef {
                                kind: target,
                                name: name.clone(),
                                span: lit.span,
                            });
                        }
                    }
                }
            }
            Expr::Cond(_) => {}
        }
    }
    out
}
