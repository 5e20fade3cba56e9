//! Recursive descent over the token list.
//!
//! Hand-written rather than combinators so that each decision point can say
//! exactly what it expected there, and so that nesting is counted and capped
//! before every recursive step (the cap, not the machine stack, bounds the
//! recursion).

use crate::ast::{
    Arg, ArgValue, Call, Condition, Expr, Ident, Literal, Operand, Span, Test, TextOp, Value,
};
use crate::diagnostic::Diagnostic;
use crate::lexer::{Tok, Token, lex};
use crate::limits::{MAX_CONDITIONS, MAX_DEPTH, too_deep_message, too_many_message};

/// Words with a meaning of their own; none of them can name a field.
pub(crate) const KEYWORDS: &[&str] = &[
    "AND", "OR", "NOT", "IN", "BETWEEN", "CONTAINS", "STARTS", "ENDS", "WITH", "IS", "NULL",
    "EMPTY", "TRUE", "FALSE", "TODAY",
];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

const EXPECTED_VALUE: &str =
    "a value (string, number, date, timestamp, relative time, true, false or today)";
const EXPECTED_OPERATOR: &str = "an operator (=, !=, <, <=, >, >=, BETWEEN, IN, NOT IN, CONTAINS, STARTS WITH, ENDS WITH or IS)";

/// Parses a rule into its syntax tree, without looking at names or types
/// (that is [`crate::check`]).
///
/// rule: rule := or
pub fn parse(text: &str) -> Result<Expr, Diagnostic> {
    let (tokens, lex_error) = lex(text);
    let mut p = Parser {
        src: text,
        tokens,
        pos: 0,
        depth: 0,
        conditions: 0,
        lex_error,
    };
    let expr = p.or()?;
    match p.peek().tok {
        Tok::End => match p.lex_error.take() {
            Some(e) => Err(e),
            None => Ok(expr),
        },
        Tok::RParen => Err(Diagnostic::new(
            p.peek().span,
            "unmatched ')'; there is no '(' open here",
        )),
        _ => Err(p.unexpected("AND, OR or the end of the rule")),
    }
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    /// Parentheses and NOTs open at this point.
    depth: usize,
    conditions: usize,
    /// The lexer's error, reported when the parser reaches the place where
    /// the lexer stopped (unless a syntax error comes before it).
    lex_error: Option<Diagnostic>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.pos + ahead).min(last)]
    }

    fn bump(&mut self) -> Token {
        let tok = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn text(&self, span: Span) -> &str {
        &self.src[span.start as usize..span.end as usize]
    }

    /// Is the next token this keyword (any case)?
    fn at_keyword(&self, ahead: usize, kw: &str) -> bool {
        let t = self.peek_at(ahead);
        t.tok == Tok::Word && self.text(t.span).eq_ignore_ascii_case(kw)
    }

    fn eat_keyword(&mut self, kw: &str) -> Option<Span> {
        self.at_keyword(0, kw).then(|| self.bump().span)
    }

    fn position(&self, span: Span) -> String {
        let (line, col) = Diagnostic::new(span, "").line_col(self.src);
        format!("{line}:{col}")
    }

    /// "expected X, found Y" at the next token; at the end of the usable
    /// input this is the lexer's error if it had one.
    fn unexpected(&mut self, expected: &str) -> Diagnostic {
        let t = self.peek().clone();
        if t.tok == Tok::End {
            if let Some(e) = self.lex_error.take() {
                return e;
            }
            return Diagnostic::new(
                t.span,
                format!("unexpected end of rule; expected {expected}"),
            );
        }
        Diagnostic::new(
            t.span,
            format!("expected {expected}, found {}", self.describe(&t)),
        )
    }

    fn describe(&self, t: &Token) -> String {
        let text = self.text(t.span);
        let shown = if text.chars().count() > 40 {
            let cut: String = text.chars().take(40).collect();
            format!("{cut}...")
        } else {
            text.to_string()
        };
        match t.tok {
            Tok::Str(_) => format!("the string {shown}"),
            Tok::Num(_) => format!("the number {shown}"),
            Tok::Date(_) => format!("the date {shown}"),
            Tok::Timestamp(_) => format!("the timestamp {shown}"),
            Tok::Relative(_) => format!("the relative time {shown}"),
            _ => format!("'{shown}'"),
        }
    }

    /// Enters one level of nesting (a `(` or a `NOT`), refusing to go past
    /// the limit before any recursion happens.
    fn enter(&mut self, at: Span) -> Result<(), Diagnostic> {
        if self.depth >= MAX_DEPTH {
            return Err(Diagnostic::new(at, too_deep_message()));
        }
        self.depth += 1;
        Ok(())
    }

    /// rule: or := and ( "OR" and )*
    fn or(&mut self) -> Result<Expr, Diagnostic> {
        let first = self.and()?;
        if !self.at_keyword(0, "OR") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_keyword("OR").is_some() {
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    /// rule: and := unary ( "AND" unary )*
    fn and(&mut self) -> Result<Expr, Diagnostic> {
        let first = self.unary()?;
        if !self.at_keyword(0, "AND") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_keyword("AND").is_some() {
            items.push(self.unary()?);
        }
        Ok(Expr::And(items))
    }

    /// rule: unary := "NOT" unary | "(" or ")" | condition
    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        if self.at_keyword(0, "NOT") {
            let span = self.bump().span;
            self.enter(span)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek().tok == Tok::LParen {
            let open = self.bump().span;
            self.enter(open)?;
            let inner = self.or()?;
            self.close(open)?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.condition().map(Expr::Cond)
    }

    fn close(&mut self, open: Span) -> Result<Span, Diagnostic> {
        if self.peek().tok == Tok::RParen {
            return Ok(self.bump().span);
        }
        let msg = format!("')' to close '(' at {}", self.position(open));
        Err(self.unexpected(&msg))
    }

    /// rule: condition := operand cmp value
    ///                  | operand "BETWEEN" value "AND" value
    ///                  | operand ["NOT"] "IN" "(" value ( "," value )* ")"
    ///                  | operand ["NOT"] ( "CONTAINS" | "STARTS" "WITH" | "ENDS" "WITH" ) string
    ///                  | operand "IS" ["NOT"] ( "NULL" | "EMPTY" )
    ///                  | operand                -- a boolean field or call alone
    fn condition(&mut self) -> Result<Condition, Diagnostic> {
        let operand = self.operand()?;
        let start = match &operand {
            Operand::Field(id) => id.span,
            Operand::Call(call) => call.span,
        };
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(Diagnostic::new(start, too_many_message()));
        }
        let (test, end) = self.test(&operand)?;
        Ok(Condition {
            operand,
            test,
            span: start.to(end),
        })
    }

    /// rule: operand := field | call
    fn operand(&mut self) -> Result<Operand, Diagnostic> {
        let t = self.peek().clone();
        if t.tok != Tok::Word || is_keyword(self.text(t.span)) {
            return Err(self.unexpected("a condition (a field, a function call, NOT or '(')"));
        }
        self.bump();
        let name = Ident {
            name: self.text(t.span).to_string(),
            span: t.span,
        };
        if self.peek().tok == Tok::LParen {
            return self.call(name).map(Operand::Call);
        }
        Ok(Operand::Field(name))
    }

    /// rule: call := name "(" [ arg ( "," arg )* ] ")"
    fn call(&mut self, name: Ident) -> Result<Call, Diagnostic> {
        let open = self.bump().span;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.arg()?);
                if self.peek().tok == Tok::Comma {
                    self.bump();
                    continue;
                }
                if self.peek().tok == Tok::RParen {
                    break;
                }
                let msg = format!("',' or ')' to close '(' at {}", self.position(open));
                return Err(self.unexpected(&msg));
            }
        }
        let close = self.bump().span;
        Ok(Call {
            span: name.span.to(close),
            name,
            args,
        })
    }

    /// rule: arg := name ":" ( value | list ) | value
    fn arg(&mut self) -> Result<Arg, Diagnostic> {
        let t = self.peek().clone();
        let word = self.text(t.span).to_string();
        if t.tok == Tok::Word && !is_keyword(&word) {
            if matches!(self.peek_at(1).tok, Tok::RParen | Tok::Comma) {
                // A bare word where a value goes: most likely unquoted text,
                // as in in_segment(best_sellers).
                return Err(self
                    .unexpected(EXPECTED_VALUE)
                    .with_help(format!("text values are quoted: '{word}'")));
            }
            let name = Ident {
                name: word,
                span: t.span,
            };
            self.bump();
            if self.peek().tok != Tok::Colon {
                let msg = format!("':' after the argument name '{}'", name.name);
                return Err(self
                    .unexpected(&msg)
                    .with_help("arguments are written name: value, as in since: -30d"));
            }
            self.bump();
            let (value, end) = if self.peek().tok == Tok::LParen {
                self.list()?
            } else {
                let lit = self.value()?;
                let end = lit.span;
                (ArgValue::One(lit), end)
            };
            return Ok(Arg {
                span: name.span.to(end),
                name: Some(name),
                value,
            });
        }
        if t.tok == Tok::RParen || t.tok == Tok::Comma || t.tok == Tok::End {
            return Err(self.unexpected("an argument (name: value, or a value)"));
        }
        let lit = self.value()?;
        Ok(Arg {
            name: None,
            span: lit.span,
            value: ArgValue::One(lit),
        })
    }

    /// rule: list := "(" value ( "," value )* ")"
    fn list(&mut self) -> Result<(ArgValue, Span), Diagnostic> {
        let (values, close) = self.values()?;
        Ok((ArgValue::List(values), close))
    }

    /// The parenthesised, comma-separated values of a list or of IN; the
    /// next token is the `(`.
    fn values(&mut self) -> Result<(Vec<Literal>, Span), Diagnostic> {
        let open = self.bump().span;
        let mut values = vec![self.value()?];
        loop {
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                    values.push(self.value()?);
                }
                Tok::RParen => return Ok((values, self.bump().span)),
                _ => {
                    let msg = format!("',' or ')' to close '(' at {}", self.position(open));
                    return Err(self.unexpected(&msg));
                }
            }
        }
    }

    /// The test after an operand, and where it ends.
    fn test(&mut self, operand: &Operand) -> Result<(Test, Span), Diagnostic> {
        let t = self.peek().clone();
        if let Tok::Cmp(op) = t.tok {
            self.bump();
            let lit = self.value()?;
            let end = lit.span;
            return Ok((Test::Cmp(op, lit), end));
        }
        if self.eat_keyword("BETWEEN").is_some() {
            let low = self.value()?;
            if self.eat_keyword("AND").is_none() {
                return Err(self.unexpected("AND between the two values of BETWEEN"));
            }
            let high = self.value()?;
            let end = high.span;
            return Ok((Test::Between(low, high), end));
        }
        if self.eat_keyword("IS").is_some() {
            let negated = self.eat_keyword("NOT").is_some();
            let expected = if negated {
                "NULL or EMPTY after IS NOT"
            } else {
                "NOT, NULL or EMPTY after IS"
            };
            if let Some(end) = self.eat_keyword("NULL") {
                return Ok((Test::IsNull { negated }, end));
            }
            if let Some(end) = self.eat_keyword("EMPTY") {
                return Ok((Test::IsEmpty { negated }, end));
            }
            return Err(self.unexpected(expected));
        }
        let negated = self.eat_keyword("NOT").is_some();
        if self.eat_keyword("IN").is_some() {
            if self.peek().tok != Tok::LParen {
                return Err(self.unexpected("'(' to start the list after IN"));
            }
            let (values, close) = self.values()?;
            return Ok((Test::In { negated, values }, close));
        }
        let text_op = if self.eat_keyword("CONTAINS").is_some() {
            Some(TextOp::Contains)
        } else if self.eat_keyword("STARTS").is_some() {
            if self.eat_keyword("WITH").is_none() {
                return Err(self.unexpected("WITH after STARTS"));
            }
            Some(TextOp::StartsWith)
        } else if self.eat_keyword("ENDS").is_some() {
            if self.eat_keyword("WITH").is_none() {
                return Err(self.unexpected("WITH after ENDS"));
            }
            Some(TextOp::EndsWith)
        } else {
            None
        };
        if let Some(op) = text_op {
            // Any value is read here; the checker says which type fits,
            // which makes a better message than a bare syntax error.
            let value = self.value()?;
            let end = value.span;
            return Ok((Test::Text { op, negated, value }, end));
        }
        if negated {
            return Err(self.unexpected("IN, CONTAINS, STARTS WITH or ENDS WITH after NOT"));
        }
        // Nothing that starts a test: the operand stands alone, which is
        // only right if the rule goes on (or ends) here.
        let ends_here = matches!(self.peek().tok, Tok::End | Tok::RParen)
            || self.at_keyword(0, "AND")
            || self.at_keyword(0, "OR");
        if ends_here && !(self.peek().tok == Tok::End && self.lex_error.is_some()) {
            let end = match operand {
                Operand::Field(id) => id.span,
                Operand::Call(call) => call.span,
            };
            return Ok((Test::Truth, end));
        }
        let name = &operand.name().name;
        let msg = format!("{EXPECTED_OPERATOR} after '{name}'");
        Err(self.unexpected(&msg))
    }

    /// rule: value := string | number | date | timestamp | relative | "true" | "false" | "today"
    fn value(&mut self) -> Result<Literal, Diagnostic> {
        let t = self.peek().clone();
        let value = match t.tok {
            Tok::Str(s) => Value::String(s),
            Tok::Num(n) => Value::Number(n),
            Tok::Date(d) => Value::Date(d),
            Tok::Timestamp(instant) => Value::Timestamp {
                instant,
                text: self.text(t.span).to_string(),
            },
            Tok::Relative(r) => Value::Relative(r),
            Tok::Word if self.at_keyword(0, "true") => Value::Bool(true),
            Tok::Word if self.at_keyword(0, "false") => Value::Bool(false),
            Tok::Word if self.at_keyword(0, "today") => Value::Today,
            Tok::Word if !is_keyword(self.text(t.span)) => {
                let word = self.text(t.span).to_string();
                return Err(self
                    .unexpected(EXPECTED_VALUE)
                    .with_help(format!("text values are quoted: '{word}'")));
            }
            Tok::Word if self.at_keyword(0, "NULL") || self.at_keyword(0, "EMPTY") => {
                let word = self.text(t.span).to_uppercase();
                return Err(self.unexpected(EXPECTED_VALUE).with_help(format!(
                    "to test for {word}, write IS {word} or IS NOT {word}"
                )));
            }
            _ => return Err(self.unexpected(EXPECTED_VALUE)),
        };
        self.bump();
        Ok(Literal {
            value,
            span: t.span,
        })
    }
}
