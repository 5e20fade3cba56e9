//! The syntax tree of a rule.
//!
//! The tree is the one shared form: the parser builds it from text, the JSON
//! reader builds it from the builder's tree, the printer and the JSON writer
//! read it, the checker validates it against a [`crate::catalog::Schema`],
//! and the engine compiles it. Spans are byte offsets into the source text;
//! a tree read from JSON carries empty spans.

use rust_decimal::Decimal;

/// Half-open byte range `start..end` in the rule text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A boolean expression over conditions.
///
/// `And` and `Or` always hold at least two children after parsing; the
/// normaliser flattens nested groups of the same operator.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

/// One test of one operand, e.g. `amount_spent > 500`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub operand: Operand,
    pub test: Test,
    /// The whole condition, operand through value.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Field(Ident),
    Call(Call),
}

impl Operand {
    pub fn name(&self) -> &Ident {
        match self {
            Operand::Field(id) => id,
            Operand::Call(call) => &call.name,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `name(arg, ...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    /// From the name through the closing parenthesis.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `None` for the one positional argument (`in_segment('x')`).
    pub name: Option<Ident>,
    pub value: ArgValue,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    One(Literal),
    /// `('A', 'B')`: any of them.
    List(Vec<Literal>),
}

impl ArgValue {
    pub fn literals(&self) -> &[Literal] {
        match self {
            ArgValue::One(lit) => std::slice::from_ref(lit),
            ArgValue::List(list) => list,
        }
    }
}

/// A value with the place it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Literal {
    pub value: Value,
    pub span: Span,
}

/// A literal value. Values keep their written form: a number keeps its
/// scale (`49.990`), a timestamp its text and offset.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The unescaped text (`'it''s'` holds `it's`).
    String(String),
    /// Exact decimal, never a float.
    Number(Decimal),
    /// A calendar day in the store's time zone.
    Date(jiff::civil::Date),
    /// An exact instant, with the text it was written as (kept so printing
    /// gives back the same offset and fraction).
    Timestamp {
        instant: jiff::Timestamp,
        text: String,
    },
    /// `now ± amount × unit`.
    Relative(Relative),
    Bool(bool),
    /// The date of `now` in the store's time zone.
    Today,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Relative {
    /// `true` for `-` (the past), `false` for `+`.
    pub negative: bool,
    pub amount: u32,
    pub unit: RelUnit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelUnit {
    Hours,
    Days,
    Weeks,
}

impl Relative {
    /// The signed offset from `now` in seconds.
    pub fn offset_seconds(&self) -> i64 {
        let unit: i64 = match self.unit {
            RelUnit::Hours => 3_600,
            RelUnit::Days => 86_400,
            RelUnit::Weeks => 7 * 86_400,
        };
        let magnitude = i64::from(self.amount) * unit;
        if self.negative { -magnitude } else { magnitude }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// Which text-matching operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// What is tested of the operand.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// `operand cmp value`
    Cmp(CmpOp, Literal),
    /// `operand BETWEEN low AND high`, both ends included.
    Between(Literal, Literal),
    /// `operand [NOT] IN (v, ...)`
    In { negated: bool, values: Vec<Literal> },
    /// `operand [NOT] CONTAINS|STARTS WITH|ENDS WITH 'text'`
    Text {
        op: TextOp,
        negated: bool,
        value: Literal,
    },
    /// `operand IS [NOT] NULL`
    IsNull { negated: bool },
    /// `operand IS [NOT] EMPTY`
    IsEmpty { negated: bool },
    /// A boolean field or call standing alone: true when it is true.
    Truth,
}
