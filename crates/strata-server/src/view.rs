//! Entities as JSON rows: every field of the kind (fields.md), as the
//! member table and the entity endpoints show them.

use serde_json::{Map, Value};
use strata_lang::catalog::Kind;

use crate::auth::Scope;
use crate::error::{ApiError, ApiResult};
use crate::tenant::Snapshot;

pub type Row = Map<String, Value>;

/// One entity's row; `fields` selects columns (all when empty).
pub fn row(snap: &Snapshot, kind: Kind, r: u32, fields: &[String]) -> Row {
    let mut out = Map::with_capacity(fields.len());
    for f in fields {
        out.insert(f.clone(), snap.engine.cell(kind, r, f).to_json());
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
