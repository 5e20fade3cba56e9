//! One field value of one entity, for member tables.

use rust_decimal::Decimal;
use strata_data::Nanos;

use crate::columns::Col;
use crate::pred::I64Pred;

#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(&'a str),
    Tags(Vec<&'a str>),
    Bool(bool),
    Number(Decimal),
    Instant(Nanos),
}

impl<'a> Cell<'a> {
    pub fn read(col: Col<'a>, row: usize) -> Cell<'a> {
        match col {
            Col::Text(t) => t.get(row).map_or(Cell::Null, Cell::Text),
            Col::Tags(t) => Cell::Tags(t.get(row).collect()),
            Col::Bool(b) => b[row].map_or(Cell::Null, Cell::Bool),
            Col::Num(n) => n
                .get(row)
                .map_or(Cell::Null, |v| Cell::Number(v.to_decimal())),
            Col::Time(t) => match t[row] {
                I64Pred::NULL => Cell::Null,
                v => Cell::Instant(v),
            },
        }
    }

    /// The text form used in CSV output: empty for null, `;`-joined tags,
    /// RFC 3339 instants in UTC.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => (*s).to_owned(),
            Cell::Tags(t) => t.join(";"),
            Cell::Bool(b) => b.to_string(),
            Cell::Number(d) => d.to_string(),
            Cell::Instant(n) => format_instant(*n),
        }
    }
}

impl Cell<'_> {
    /// The JSON form of `strata members --format json` and the API: money
    /// and other numbers exact (serde_json keeps the number's text),
    /// instants as RFC 3339, tags as an array.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Text(s) => Value::String((*s).to_owned()),
            Cell::Tags(t) => {
                Value::Array(t.iter().map(|s| Value::String((*s).to_owned())).collect())
            }
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Number(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
            Cell::Instant(_) => Value::String(self.to_text()),
        }
    }
}

pub fn format_instant(n: Nanos) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(n)) {
        Ok(ts) => ts.to_string(),
        Err(_) => n.to_string(),
    }
}
