//! The Strata segment language: parser, checker, normaliser, printer and
//! JSON form (the contract is `shared/spec/language.md`).
//!
//! ```
//! use strata_lang::catalog::{Kind, Schema};
//!
//! let rule = "amount_spent > 500 and (tags contains 'vip' or tier in ('Gold'))";
//! let expr = strata_lang::parse_rule(rule, &Schema::builtin(Kind::Customer)).unwrap();
//! assert_eq!(
//!     strata_lang::to_text(&expr),
//!     "amount_spent > 500 AND (tags CONTAINS 'vip' OR tier IN ('Gold'))"
//! );
//! let json = strata_lang::to_json(&expr);
//! assert_eq!(strata_lang::to_text(&strata_lang::from_json(&json).unwrap()), strata_lang::to_text(&expr));
//! ```
//!
//! # Grammar
//!
//! Keywords are case-insensitive; names are ASCII `snake_case`. `AND` binds
//! tighter than `OR`, `NOT` tightest. White space is free.
//!
//! ```text
//! rule       := or
//! or         := and ( "OR" and )*
//! and        := unary ( "AND" unary )*
//! unary      := "NOT" unary | "(" or ")" | condition
//! condition  := operand cmp value
//!             | operand "BETWEEN" value "AND" value
//!             | operand ["NOT"] "IN" "(" value ( "," value )* ")"
//!             | operand ["NOT"] "CONTAINS" value
//!             | operand ["NOT"] "STARTS" "WITH" value
//!             | operand ["NOT"] "ENDS" "WITH" value
//!             | operand "IS" ["NOT"] ( "NULL" | "EMPTY" )
//!             | operand                       -- a boolean field or call alone
//! cmp        := "=" | "!=" | "<" | "<=" | ">" | ">="
//! operand    := name | call
//! call       := name "(" [ arg ( "," arg )* ] ")"
//! arg        := name ":" ( value | list ) | value
//! list       := "(" value ( "," value )* ")"
//! value      := string | number | date | timestamp | relative | "true" | "false" | "today"
//! name       := ( letter | "_" ) ( letter | digit | "_" )*     -- not a keyword
//! string     := "'" ( any char but "'" | "''" )* "'"
//! number     := ["-"] digits [ "." digits ]
//! date       := YYYY-MM-DD
//! timestamp  := YYYY-MM-DD "T" hh:mm:ss[.fraction] ( "Z" | ±hh:mm )
//! relative   := ( "-" | "+" ) digits ( "h" | "d" | "w" )
//! ```
//!
//! Two departures from language.md's grammar, both wider, both settled by
//! the checker: a boolean *field* may stand alone (`accepts_marketing`), as
//! a call may; and `CONTAINS`/`STARTS WITH`/`ENDS WITH` read any value, so
//! that `title CONTAINS 5` gets the type error ("'title' is text; it takes a
//! string, got a number") rather than a bare syntax error.
//!
//! A rule nests at most [`limits::MAX_DEPTH`] levels (each `(` group and each
//! `NOT` opens one) and holds at most [`limits::MAX_CONDITIONS`] conditions;
//! the JSON reader and the checker refuse the same trees.
//!
//! # How it is built
//!
//! - The (private) lexer cuts tokens with `winnow` combinators; literals
//!   are read there, so a bad date or an oversized number is reported with
//!   its own span and reason.
//! - [`parser`] is a hand-written recursive descent over that token list.
//!   Combinators would do for the grammar, but written out each branch says
//!   exactly what it expected (`expected ')' to close '(' at 1:5`), and the
//!   nesting limit is checked before every recursive step.
//! - [`checker`] types the tree against a [`catalog::Schema`].
//! - [`normalise()`], [`print::to_text`] and [`json`] give the normal form,
//!   its text and its JSON tree.
//!
//! Nothing here panics on any input; errors are [`Diagnostic`]s (text) or
//! [`JsonError`]s (JSON).

pub mod ast;
pub mod catalog;
pub mod checker;
pub mod diagnostic;
pub mod json;
mod lexer;
pub mod limits;
pub mod normalise;
pub mod parser;
pub mod print;

pub use checker::{SegmentRef, check, segment_refs};
pub use diagnostic::Diagnostic;
pub use json::{JsonError, from_json, to_json};
pub use normalise::normalise;
pub use parser::parse;
pub use print::to_text;

/// Parses, checks and normalises a rule: what the engine and the command
/// line use.
pub fn parse_rule(text: &str, schema: &catalog::Schema) -> Result<ast::Expr, Diagnostic> {
    let expr = parse(text)?;
    check(&expr, schema)?;
    Ok(normalise(expr))
}
