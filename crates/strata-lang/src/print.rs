//! The normalised text form.
//!
//! Keywords in upper case, `true`/`false`/`today` in lower case, one space
//! around operators, and parentheses only where precedence needs them, so
//! that printing, parsing and printing again gives the same text.

use std::fmt::Write;

use crate::ast::{
    Arg, ArgValue, Condition, Expr, Literal, Operand, RelUnit, Relative, Test, TextOp, Value,
};

/// The normalised text of a rule.
///
/// Works with an explicit stack rather than recursion, so any tree prints,
/// however deep (trees built by hand are not bound by the parser's limits).
pub fn to_text(expr: &Expr) -> String {
    enum Job<'a> {
        Node(&'a Expr, Within),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack = vec![Job::Node(expr, Within::Top)];
    while let Some(job) = stack.pop() {
        let (node, within) = match job {
            Job::Text(s) => {
                out.push_str(s);
                continue;
            }
            Job::Node(node, within) => (node, within),
        };
        match node {
            Expr::Cond(c) => write_condition(&mut out, c),
            Expr::Not(inner) => {
                out.push_str("NOT ");
                stack.push(Job::Node(inner, Within::Not));
            }
            Expr::And(items) | Expr::Or(items) => {
                let is_or = matches!(node, Expr::Or(_));
                if let [only] = items.as_slice() {
                    stack.push(Job::Node(only, within));
                    continue;
                }
                // AND binds tighter than OR, NOT tighter than both: an OR
                // inside an AND and any group under NOT need parentheses.
                let parens = match within {
                    Within::Not => true,
                    Within::And => is_or,
                    Within::Top | Within::Or => false,
                };
                let (sep, child) = if is_or {
                    (" OR ", Within::Or)
                } else {
                    (" AND ", Within::And)
                };
                if parens {
                    out.push('(');
                    stack.push(Job::Text(")"));
                }
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Job::Node(item, child));
                    if i > 0 {
                        stack.push(Job::Text(sep));
                    }
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Within {
    Top,
    And,
    Or,
    Not,
}

fn write_condition(out: &mut String, c: &Condition) {
    write_operand(out, &c.operand);
    match &c.test {
        Test::Cmp(op, lit) => {
            let _ = write!(out, " {} ", op.as_str());
            write_literal(out, lit);
        }
        Test::Between(low, high) => {
            out.push_str(" BETWEEN ");
            write_literal(out, low);
            out.push_str(" AND ");
            write_literal(out, high);
        }
        Test::In { negated, values } => {
            out.push_str(if *negated { " NOT IN " } else { " IN " });
            write_list(out, values);
        }
        Test::Text { op, negated, value } => {
            out.push(' ');
            out.push_str(&text_op_name(*op, *negated));
            out.push(' ');
            write_literal(out, value);
        }
        Test::IsNull { negated } => {
            out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" })
        }
        Test::IsEmpty { negated } => out.push_str(if *negated {
            " IS NOT EMPTY"
        } else {
            " IS EMPTY"
        }),
        Test::Truth => {}
    }
}

/// `CONTAINS`, `NOT STARTS WITH`, ... as the text and the JSON form spell it.
pub(crate) fn text_op_name(op: TextOp, negated: bool) -> String {
    let name = match op {
        TextOp::Contains => "CONTAINS",
        TextOp::StartsWith => "STARTS WITH",
        TextOp::EndsWith => "ENDS WITH",
    };
    if negated {
        format!("NOT {name}")
    } else {
        name.to_string()
    }
}

fn write_operand(out: &mut String, operand: &Operand) {
    match operand {
        Operand::Field(id) => out.push_str(&id.name),
        Operand::Call(call) => {
            out.push_str(&call.name.name);
            out.push('(');
            for (i, arg) in call.args.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_arg(out, arg);
            }
            out.push(')');
        }
    }
}

fn write_arg(out: &mut String, arg: &Arg) {
    if let Some(name) = &arg.name {
        out.push_str(&name.name);
        out.push_str(": ");
    }
    match &arg.value {
        ArgValue::One(lit) => write_literal(out, lit),
        ArgValue::List(list) => write_list(out, list),
    }
}

fn write_list(out: &mut String, values: &[Literal]) {
    out.push('(');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_literal(out, v);
    }
    out.push(')');
}

fn write_literal(out: &mut String, lit: &Literal) {
    out.push_str(&value_text(&lit.value));
}

/// A value as the normalised text writes it: `'it''s'`, `49.990`,
/// `2024-01-31`, the timestamp as written, `-30d`, `true`, `today`.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        Value::Number(n) => n.to_string(),
        Value::Date(d) => d.to_string(),
        Value::Timestamp { text, .. } => text.clone(),
        Value::Relative(r) => relative_text(r),
        Value::Bool(b) => b.to_string(),
        Value::Today => "today".to_string(),
    }
}

/// `-30d`, `+12h`, `-2w`.
pub fn relative_text(r: &Relative) -> String {
    let sign = if r.negative { '-' } else { '+' };
    let unit = match r.unit {
        RelUnit::Hours => 'h',
        RelUnit::Days => 'd',
        RelUnit::Weeks => 'w',
    };
    format!("{sign}{}{unit}", r.amount)
}
