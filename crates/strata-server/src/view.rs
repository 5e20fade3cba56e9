//! Entities as JSON rows: every field of the kind (fields.md), as the
//! member table and the entity endpoints show them.

use serde_json::{Map, Value};
use strata_engine::Cell;
use strata_lang::catalog::Kind;

use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::tenant::Snapshot;

pub type Row = Map<String, Value>;

pub fn cell_json(cell: &Cell<'_>) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Text(s) => Value::String((*s).to_owned()),
        Cell::Tags(t) => Value::Array(t.iter().map(|s| Value::String((*s).to_owned())).collect()),
        Cell::Bool(b) => Value::Bool(*b),
        // Exact: serde_json keeps the number's text (arbitrary_precision).
        Cell::Number(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
        Cell::Instant(_) => Value::String(cell.to_text()),
    }
}

/// One entity's row; `fields` selects columns (all when empty).
pub fn row(snap: &Snapshot, kind: Kind, r: u32, fields: &[String]) -> Row {
    let mut out = Map::with_capacity(fields.len());
    for f in fields {
        out.insert(f.clone(), cell_json(&snap.engine.cell(kind, r, f)));
    }
    out
}

/// An entity by id, with every field (and for a product, the figures the
/// product table shows beside its fields).
pub async fn entity_row(scope: &Scope, kind: Kind, id: &str) -> ApiResult<Row> {
    let engine = scope.engine().await?;
    let snap = engine.snapshot().await?;
    let r = snap
        .row(kind, id)
        .ok_or_else(|| ApiError::not_found(format!("no {kind} '{id}'")))?;
    let fields = snap.engine.field_names(kind);
    let mut out = row(&snap, kind, r, &fields);
    if kind == Kind::Customer {
        // The tier as of now, from the live engine.
        let id = id.to_owned();
        let tier = engine
            .with(move |live| live.engine().tier(&id).map(str::to_owned))
            .await?;
        out.insert("tier".to_owned(), tier.map_or(Value::Null, Value::String));
    }
    out.insert(
        "as_of".to_owned(),
        Value::String(crate::api::instant(snap.at.clock)),
    );
    Ok(out)
}
