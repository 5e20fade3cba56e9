//! A segment's members as a table: every field of the kind as a column,
//! sorted by any field, filtered by a rule, paged with cursors, or
//! exported as CSV (streamed).
//!
//! Cursors are keys, not offsets: the last row's sort value and id. A
//! page after a change continues after that key, so no member is skipped
//! or repeated because rows came or went before it.
//!
//! A table's rows (filtered and sorted) are kept by the snapshot they
//! come from ([`Snapshot::table`]), so walking the pages of a big segment
//! sorts it once, not once per page.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use strata_engine::Cell;
use strata_lang::catalog::Kind;
use utoipa::ToSchema;

use super::segments::{check_fields, check_named, parse_kind, too_large, visible};
use super::{Params, instant};
use crate::auth::{Caller, scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::tenant::{Snapshot, TableKey};
use crate::view::{Row, row};

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct MembersQuery {
    /// Rows per page (default 50; at most the server's page cap, 1000).
    pub limit: Option<usize>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// A field to sort by (default: the order entities were added).
    pub sort: Option<String>,
    /// `asc` (default) or `desc`.
    pub order: Option<String>,
    /// A rule of the segment's kind the rows must also satisfy (at most
    /// the server's rule size, 64 KiB: 413 beyond).
    pub filter: Option<String>,
    /// Comma-separated columns (default: every field of the kind).
    pub fields: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MembersPage {
    /// Members that pass the filter.
    pub total: u64,
    #[schema(value_type = Vec<Object>)]
    pub members: Vec<Row>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
    pub columns: Vec<String>,
    /// The instant the rows are exact for.
    pub as_of: String,
}

struct Table {
    snap: Arc<Snapshot>,
    kind: Kind,
    /// Rows in page order (kept by the snapshot for the next page).
    rows: Arc<Vec<u32>>,
    columns: Vec<String>,
    sort: Option<String>,
    desc: bool,
}

/// A sort value, ordered with nulls last.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Key {
    Bool(bool),
    Number(rust_decimal::Decimal),
    Time(i64),
    Text(String),
    Null,
}

fn key(cell: &Cell<'_>) -> Key {
    match cell {
        Cell::Null => Key::Null,
        Cell::Bool(b) => Key::Bool(*b),
        Cell::Number(d) => Key::Number(*d),
        Cell::Instant(n) => Key::Time(*n),
        Cell::Text(s) => Key::Text((*s).to_owned()),
        Cell::Tags(_) => Key::Text(cell.to_text()),
    }
}

/// Sort order: by key (descending if asked, nulls last either way), then
/// by id.
fn compare(a: (&Key, &str), b: (&Key, &str), desc: bool) -> Ordering {
    let by_key = match (a.0, b.0) {
        (Key::Null, Key::Null) => Ordering::Equal,
        (Key::Null, _) => Ordering::Greater,
        (_, Key::Null) => Ordering::Less,
        (x, y) if desc => y.cmp(x),
        (x, y) => x.cmp(y),
    };
    by_key.then_with(|| a.1.cmp(b.1))
}

/// The cursor: the last row's entity id and, when sorted, its sort value.
#[derive(Serialize, Deserialize)]
struct Cursor {
    id: String,
    key: Option<Key>,
}

fn encode(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode(s: &str) -> ApiResult<Cursor> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this server gave")
        })
}

async fn table(
    state: &Arc<AppState>,
    caller: Caller,
    store: &str,
    name: &str,
    q: &MembersQuery,
) -> ApiResult<Table> {
    let scope = scope(state, caller, store).await?;
    let (seg, _) = visible(&scope, name).await?;
    let kind = parse_kind(&seg.kind)?;
    let engine = scope.engine().await?;
    let snap = engine.snapshot().await?;
    let columns = match &q.fields {
        Some(f) => f
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => snap.engine.field_names(kind),
    };
    check_fields(&snap, kind, &columns)?;
    if let Some(s) = &q.sort {
        check_fields(&snap, kind, std::slice::from_ref(s))?;
    }
    let desc = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("order '{o}': asc or desc"),
            ));
        }
    };
    if let Some(f) = &q.filter {
        let rule_limit = state.config.limits.rule_bytes;
        if f.len() > rule_limit {
            return Err(too_large(rule_limit));
        }
        check_named(&scope, kind, &strata_data::RuleSource::Text(f.clone()), &[]).await?;
    }
    let table = TableKey {
        segment: name.to_owned(),
        filter: q.filter.clone(),
        sort: q.sort.clone(),
        desc,
    };
    tokio::task::spawn_blocking(move || {
        let rows = snap.table(&table, || {
            let name = &table.segment;
            let (_, mut members) = snap
                .members_of(name)
                .ok_or_else(|| ApiError::not_found(format!("no segment '{name}'")))?;
            if let Some(f) = &table.filter {
                members &= snap
                    .evaluate(kind, strata_data::RuleSource::Text(f.clone()))?
                    .0;
            }
            Ok(match &table.sort {
                None => members.iter().collect(),
                Some(field) => {
                    let e = &snap.engine;
                    let mut keyed: Vec<(Key, u32)> = members
                        .iter()
                        .map(|r| (key(&e.cell(kind, r, field)), r))
                        .collect();
                    keyed.sort_by(|a, b| {
                        compare((&a.0, e.id(kind, a.1)), (&b.0, e.id(kind, b.1)), desc)
                    });
                    keyed.into_iter().map(|(_, r)| r).collect()
                }
            })
        })?;
        let sort = table.sort;
        Ok(Table {
            snap,
            kind,
            rows,
            columns,
            sort,
            desc,
        })
    })
    .await
    .map_err(ApiError::internal)?
}

impl Table {
    /// Index of the first row after the cursor.
    fn start(&self, cursor: &Cursor) -> ApiResult<usize> {
        let e = &self.snap.engine;
        Ok(match &self.sort {
            // Rows are in slot order, which the entities that stay keep.
            None => match self.snap.row(self.kind, &cursor.id) {
                Some(r) => self.rows.partition_point(|&x| x <= r),
                None => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::GONE,
                        "cursor_expired",
                        "the cursor's entity was deleted; start again, or page sorted by a field",
                    ));
                }
            },
            Some(field) => {
                let at = cursor.key.clone().unwrap_or(Key::Null);
                self.rows.partition_point(|&x| {
                    let k = key(&e.cell(self.kind, x, field));
                    compare((&k, e.id(self.kind, x)), (&at, &cursor.id), self.desc)
                        != Ordering::Greater
                })
            }
        })
    }
}

/// A page of a segment's members.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/members", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), MembersQuery),
    responses((status = 200, body = MembersPage), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn members(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Params(q): Params<MembersQuery>,
) -> ApiResult<Json<MembersPage>> {
    let cap = state.config.limits.page_size;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > cap {
        return Err(ApiError::bad_request(
            "invalid_page_size",
            format!("limit is 1 to {cap}"),
        ));
    }
    let cursor = q.cursor.as_deref().map(decode).transpose()?;
    let t = table(&state, caller, &store, &name, &q).await?;
    let start = match &cursor {
        Some(c) => t.start(c)?,
        None => 0,
    };
    let page = &t.rows[start.min(t.rows.len())..(start + limit).min(t.rows.len())];
    let members = page
        .iter()
        .map(|&r| row(&t.snap, t.kind, r, &t.columns))
        .collect();
    let next_cursor = (start + limit < t.rows.len()).then(|| {
        let last = page[page.len() - 1];
        encode(&Cursor {
            id: t.snap.engine.id(t.kind, last).to_owned(),
            key: t
                .sort
                .as_ref()
                .map(|f| key(&t.snap.engine.cell(t.kind, last, f))),
        })
    });
    Ok(Json(MembersPage {
        total: t.rows.len() as u64,
        members,
        next_cursor,
        columns: t.columns.clone(),
        as_of: instant(t.snap.at.clock),
    }))
}

/// Every member as CSV (streamed), same columns, sort and filter as the
/// table.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/members.csv", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), MembersQuery),
    responses((status = 200, content_type = "text/csv", body = String), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn members_csv(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Params(q): Params<MembersQuery>,
) -> ApiResult<Response> {
    let t = table(&state, caller, &store, &name, &q).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = csv::Writer::from_writer(Chunks {
            buf: Vec::with_capacity(CHUNK),
            tx,
        });
        let mut record: Vec<String> = Vec::with_capacity(t.columns.len());
        // A write fails when the client went away: the export stops.
        if w.write_record(&t.columns).is_err() {
            return;
        }
        for &r in t.rows.iter() {
            record.clear();
            record.extend(
                t.columns
                    .iter()
                    .map(|f| t.snap.engine.cell(t.kind, r, f).to_text()),
            );
            if w.write_record(&record).is_err() {
                return;
            }
        }
        if let Ok(mut chunks) = w.into_inner() {
            let _ = chunks.send();
        }
    });
    let body = axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let file = format!(
        "attachment; filename=\"{}.csv\"",
        name.replace(['"', '\\', '\r', '\n'], "_")
    );
    if let Ok(v) = HeaderValue::from_str(&file) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

const CHUNK: usize = 64 << 10;

/// Sends the CSV to the response body in chunks.
struct Chunks {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
