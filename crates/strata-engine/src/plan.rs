//! Compiling a checked rule into a plan: names resolved to columns or
//! functions, literals resolved against `now`, segment names to indexes.

use jiff::civil::Date;
use strata_lang::Diagnostic;
use strata_lang::ast::{Arg, Call, Condition, Expr, Literal, Operand, Value};
use strata_lang::catalog::{Kind, Schema, Type};

use crate::clock::AsOf;
use crate::error::Internal;
use crate::pred::{self, BoolPred, I64Pred, NumPred, SetPred, TextPred};

#[derive(Clone, Debug)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Leaf(Box<Leaf>),
}

impl Node {
    /// A rough rank of how much a node reads: a column (0), a saved
    /// segment (1), a product's lines (2), customers' lines (3).
    fn cost(&self) -> u8 {
        match self {
            Node::And(xs) | Node::Or(xs) => xs.iter().map(Node::cost).max().unwrap_or(0),
            Node::Not(x) => x.cost(),
            Node::Leaf(leaf) => match leaf.source {
                Source::Field(_) => 0,
                Source::InSegment(_) => 1,
                Source::ProductFn { .. } => 2,
                Source::CustomerFn { .. } => 3,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub struct Leaf {
    pub source: Source,
    pub pred: Pred,
}

#[derive(Clone, Debug)]
pub enum Source {
    /// A field of the rule's kind (built-in or custom), by name.
    Field(String),
    CustomerFn {
        func: CustomerFn,
        filter: LineFilter,
    },
    ProductFn {
        func: ProductFn,
        bounds: Bounds,
    },
    /// Membership in the saved segment with this index.
    InSegment(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerFn {
    Orders,
    Units,
    Spent,
    Purchased,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductFn {
    UnitsSold,
    Sales,
    Sessions,
}

/// `since:` / `until:` resolved: line instants `lo ..= hi` (with `hi <= now`)
/// and, for daily rows, dates `first ..= last` (with `last <= today`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub lo: i64,
    pub hi: i64,
    pub first_day: Date,
    pub last_day: Date,
}

/// Which order lines a customer function looks at.
#[derive(Clone, Debug)]
pub struct LineFilter {
    pub bounds: Bounds,
    /// Each entry narrows the products further (arguments are ANDed; the
    /// values of one list are ORed).
    pub products: Vec<ProductFilter>,
    /// Lower-cased marketplaces, any of which the order must be in.
    pub marketplaces: Option<Vec<String>>,
}

impl LineFilter {
    /// No argument but the bounds that every line already satisfies.
    pub fn is_unfiltered(&self, as_of: &AsOf) -> bool {
        self.products.is_empty()
            && self.marketplaces.is_none()
            && self.bounds.lo == i64::MIN
            && self.bounds.hi >= as_of.now
    }
}

#[derive(Clone, Debug)]
pub enum ProductFilter {
    /// A product text field (`sku`, `category`, `brand`) equal, ignoring
    /// case, to one of the lower-cased values.
    Field {
        field: &'static str,
        values: Vec<String>,
    },
    /// Member of the saved product segment with this index.
    Segment(usize),
}

#[derive(Clone, Debug)]
pub enum Pred {
    Num(NumPred),
    Time(I64Pred),
    Text(TextPred),
    Bool(BoolPred),
    Set(SetPred),
}

/// Resolves segment names while compiling.
pub trait SegmentLookup {
    /// The index of the saved segment of this kind with this name, or a
    /// diagnostic (unknown name, with a suggestion; wrong kind).
    fn lookup(&self, kind: Kind, name: &Literal) -> Result<usize, Diagnostic>;
}

pub struct Compiler<'a> {
    pub schema: &'a Schema,
    pub as_of: &'a AsOf,
    pub segments: &'a dyn SegmentLookup,
}

/// A compile failure: the user's (a segment name) or ours.
pub enum CompileError {
    User(Diagnostic),
    Internal(Internal),
}

impl From<Internal> for CompileError {
    fn from(e: Internal) -> Self {
        CompileError::Internal(e)
    }
}

impl From<Diagnostic> for CompileError {
    fn from(d: Diagnostic) -> Self {
        CompileError::User(d)
    }
}

impl Compiler<'_> {
    pub fn compile(&self, expr: &Expr) -> Result<Node, CompileError> {
        Ok(match expr {
            Expr::And(xs) => {
                let mut children: Vec<Node> = xs
                    .iter()
                    .map(|x| self.compile(x))
                    .collect::<Result<_, _>>()?;
                // Cheap tests first: each child only sees what the earlier
                // ones kept, so the costly ones (reading order lines) then
                // run on fewer candidates. The result is the same in any
                // order.
                children.sort_by_key(Node::cost);
                Node::And(children)
            }
            Expr::Or(xs) => Node::Or(
                xs.iter()
                    .map(|x| self.compile(x))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(x) => Node::Not(Box::new(self.compile(x)?)),
            Expr::Cond(c) => Node::Leaf(Box::new(self.condition(c)?)),
        })
    }

    fn condition(&self, cond: &Condition) -> Result<Leaf, CompileError> {
        let kind = self.schema.kind;
        let (source, ty) = match &cond.operand {
            Operand::Field(id) => {
                let ty = self
                    .schema
                    .field_type(&id.name)
                    .ok_or_else(|| Internal::new(format!("unchecked field {}", id.name)))?;
                (Source::Field(id.name.clone()), ty)
            }
            Operand::Call(call) => self.call(kind, call)?,
        };
        let pred = match ty {
            Type::Number | Type::Money => Pred::Num(pred::num_pred(&cond.test)?),
            Type::Timestamp => Pred::Time(pred::time_pred(&cond.test, self.as_of)?),
            Type::Text => Pred::Text(pred::text_pred(&cond.test)?),
            Type::Boolean => Pred::Bool(pred::bool_pred(&cond.test)?),
            Type::TextSet => Pred::Set(pred::set_pred(&cond.test)?),
        };
        Ok(Leaf { source, pred })
    }

    fn call(&self, kind: Kind, call: &Call) -> Result<(Source, Type), CompileError> {
        let name = call.name.name.as_str();
        let def = self
            .schema
            .function(name)
            .ok_or_else(|| Internal::new(format!("unchecked function {name}")))?;
        if name == "in_segment" {
            let arg = call
                .args
                .first()
                .ok_or_else(|| Internal::new("in_segment without a name"))?;
            let lit = single(arg)?;
            let index = self.segments.lookup(kind, lit)?;
            return Ok((Source::InSegment(index), def.ty));
        }
        let bounds = self.bounds(&call.args)?;
        let source = match (kind, name) {
            (Kind::Customer, _) => {
                let func = match name {
                    "orders" => CustomerFn::Orders,
                    "units" => CustomerFn::Units,
                    "spent" => CustomerFn::Spent,
                    "purchased" => CustomerFn::Purchased,
                    other => {
                        return Err(
                            Internal::new(format!("unknown customer function {other}")).into()
                        );
                    }
                };
                let mut filter = LineFilter {
                    bounds,
                    products: Vec::new(),
                    marketplaces: None,
                };
                for arg in &call.args {
                    let Some(arg_name) = &arg.name else {
                        return Err(
                            Internal::new("positional argument to a behaviour function").into()
                        );
                    };
                    let texts = || -> Result<Vec<String>, Internal> {
                        arg.value
                            .literals()
                            .iter()
                            .map(|l| match &l.value {
                                Value::String(s) => Ok(s.to_lowercase()),
                                other => {
                                    Err(Internal::new(format!("expected a string, got {other:?}")))
                                }
                            })
                            .collect()
                    };
                    match arg_name.name.as_str() {
                        "since" | "until" => {}
                        "sku" => filter.products.push(ProductFilter::Field {
                            field: "sku",
                            values: texts()?,
                        }),
                        "category" => filter.products.push(ProductFilter::Field {
                            field: "category",
                            values: texts()?,
                        }),
                        "brand" => filter.products.push(ProductFilter::Field {
                            field: "brand",
                            values: texts()?,
                        }),
                        "in_segment" => {
                            let index = self.segments.lookup(Kind::Product, single(arg)?)?;
                            filter.products.push(ProductFilter::Segment(index));
                        }
                        "marketplace" => {
                            let mut list = filter.marketplaces.take().unwrap_or_default();
                            list.extend(texts()?);
                            filter.marketplaces = Some(list);
                        }
                        other => {
                            return Err(Internal::new(format!("unknown argument {other}")).into());
                        }
                    }
                }
                Source::CustomerFn { func, filter }
            }
            (Kind::Product, _) => {
                let func = match name {
                    "units_sold" => ProductFn::UnitsSold,
                    "sales" => ProductFn::Sales,
                    "sessions" => ProductFn::Sessions,
                    other => {
                        return Err(
                            Internal::new(format!("unknown product function {other}")).into()
                        );
                    }
                };
                Source::ProductFn { func, bounds }
            }
        };
        Ok((source, def.ty))
    }

    /// `since:` is inclusive from its instant (a date: from the start of that
    /// day); `until:` inclusive to its instant (a date: through the end of
    /// that day); nothing after `now` ever counts.
    fn bounds(&self, args: &[Arg]) -> Result<Bounds, CompileError> {
        let as_of = self.as_of;
        let mut b = Bounds {
            lo: i64::MIN,
            hi: as_of.now,
            first_day: Date::MIN,
            last_day: as_of.today,
        };
        for arg in args {
            let Some(name) = &arg.name else { continue };
            match name.name.as_str() {
                "since" => {
                    let lit = single(arg)?;
                    let (lo, _) = pred::instant_range(lit, as_of)?;
                    b.lo = lo;
                    b.first_day = calendar_day(lit, as_of)?;
                }
                "until" => {
                    let lit = single(arg)?;
                    let (_, hi) = pred::instant_range(lit, as_of)?;
                    b.hi = b.hi.min(hi);
                    b.last_day = b.last_day.min(calendar_day(lit, as_of)?);
                }
                _ => {}
            }
        }
        Ok(b)
    }
}

/// The calendar day a bound names: a date itself, or the day its instant
/// falls on ("relative bounds taken by their calendar day").
fn calendar_day(lit: &Literal, as_of: &AsOf) -> Result<Date, Internal> {
    match &lit.value {
        Value::Date(d) => Ok(*d),
        Value::Today => Ok(as_of.today),
        Value::Timestamp { .. } | Value::Relative(_) => {
            let (t, _) = pred::instant_range(lit, as_of)?;
            Ok(as_of.date_of(t))
        }
        other => Err(Internal::new(format!(
            "expected a time bound, got {other:?}"
        ))),
    }
}

fn single(arg: &Arg) -> Result<&Literal, Internal> {
    match arg.value.literals() {
        [one] => Ok(one),
        _ => Err(Internal::new("expected one value")),
    }
}
