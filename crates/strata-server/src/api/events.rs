//! Enter/exit and tier-change events: the log, paged by cursor (the
//! event's id), and Server-Sent Events that resume from `Last-Event-ID`.
//! Both read the store's event log, which a change joins in the same
//! transaction as its rows: what a client has seen is durable, and a
//! client that reconnects with its last id misses nothing.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use strata_live::{Cause, Event};
use strata_store::{Right, StoredEvent};
use utoipa::ToSchema;

use super::segments::{visible, visible_names};
use super::{Params, instant, kind_name};
use crate::auth::{self, Caller, Scope, scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

#[derive(Serialize, ToSchema, Clone)]
pub struct EventView {
    /// The cursor: increasing, unique within the store.
    pub id: i64,
    pub at: String,
    /// `enter`, `exit` or `tier`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The change's sequence number, or `null` when time caused it.
    pub change: Option<u64>,
    pub segment: Option<String>,
    /// `customer` or `product`.
    pub entity_kind: String,
    pub entity: String,
    /// For a tier event: the tiers before and after.
    pub from: Option<String>,
    pub to: Option<String>,
}

fn event_view(e: &StoredEvent) -> EventView {
    let change = match e.event.cause() {
        Cause::Change(n) => Some(n),
        Cause::Time => None,
    };
    match &e.event {
        Event::Member {
            at,
            kind,
            segment,
            entity,
            enter,
            ..
        } => EventView {
            id: e.id,
            at: instant(*at),
            kind: if *enter { "enter" } else { "exit" }.to_owned(),
            change,
            segment: Some(segment.to_string()),
            entity_kind: kind_name(*kind).to_owned(),
            entity: entity.to_string(),
            from: None,
            to: None,
        },
        Event::Tier {
            at,
            customer,
            from,
            to,
            ..
        } => EventView {
            id: e.id,
            at: instant(*at),
            kind: "tier".to_owned(),
            change,
            segment: None,
            entity_kind: "customer".to_owned(),
            entity: customer.to_string(),
            from: from.as_ref().map(|s| s.to_string()),
            to: to.as_ref().map(|s| s.to_string()),
        },
    }
}

/// Which events a caller may see.
#[derive(Clone)]
enum Filter {
    /// One segment's.
    Segment(String),
    /// The store's: segments the caller can read, tiers if allowed. An
    /// administrator (`every_segment`) also sees the events of segments
    /// deleted since: nobody else has a right left to read them by.
    Store {
        segments: Arc<HashSet<String>>,
        every_segment: bool,
        tiers: bool,
    },
}

impl Filter {
    fn pass(&self, e: &StoredEvent) -> bool {
        match (&e.event, self) {
            (Event::Member { segment, .. }, _) => self.shows_segment(segment),
            (Event::Tier { .. }, Filter::Store { tiers, .. }) => *tiers,
            (Event::Tier { .. }, Filter::Segment(_)) => false,
        }
    }

    /// Whether the filter shows a segment's events.
    fn shows_segment(&self, name: &str) -> bool {
        match self {
            Filter::Segment(s) => s == name,
            Filter::Store {
                segments,
                every_segment,
                ..
            } => *every_segment || segments.contains(name),
        }
    }

    /// [`Filter::pass`], for an event already read.
    fn shows(&self, e: &EventView) -> bool {
        match (&e.segment, self) {
            (Some(segment), _) => self.shows_segment(segment),
            (None, Filter::Store { tiers, .. }) => *tiers,
            (None, Filter::Segment(_)) => false,
        }
    }
}

async fn store_filter(scope: &Scope) -> ApiResult<Filter> {
    let names: HashSet<String> = visible_names(scope).await?.into_iter().collect();
    Ok(Filter::Store {
        segments: Arc::new(names),
        every_segment: scope.caller.user.admin,
        tiers: scope.rights.tiers >= Right::Read,
    })
}

/// The caller's scope and filter as they stand now, or `None` if the
/// caller may no longer read the stream: token revoked or session ended,
/// access to the store taken away, the segment's share expired or revoked
/// (or the segment deleted). Rights that changed narrow or widen the
/// store's filter.
async fn recheck(scope: &Scope, filter: &Filter) -> ApiResult<Option<(Scope, Filter)>> {
    let Some(caller) = scope.caller.refreshed(&scope.state).await? else {
        return Ok(None);
    };
    let fresh = match auth::scope(&scope.state, caller, &scope.tenant.name).await {
        Ok(s) => s,
        Err(e) if e.status().is_client_error() => return Ok(None),
        Err(e) => return Err(e),
    };
    let filter = match filter {
        Filter::Segment(name) => match visible(&fresh, name).await {
            Ok(_) => Filter::Segment(name.clone()),
            Err(e) if e.status().is_client_error() => return Ok(None),
            Err(e) => return Err(e),
        },
        Filter::Store { .. } => store_filter(&fresh).await?,
    };
    Ok(Some((fresh, filter)))
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct LogQuery {
    /// Events after this id (default: from the start).
    pub after: Option<i64>,
    /// At most this many (default 100, at most the page cap, 1000).
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct LogPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page (the same value when there is
    /// nothing newer yet).
    pub next_after: i64,
}

async fn page(scope: &Scope, filter: Filter, after: i64, limit: usize) -> ApiResult<LogPage> {
    let tenant = scope.tenant.id;
    let (events, next_after) = scope
        .state
        .pool
        .run(move |s| {
            let mut out = Vec::new();
            let mut cursor = after;
            // Read on until the page is full or the log ends, so that a
            // filter that passes few events still gives full pages.
            loop {
                let chunk = s.events(tenant, cursor, 1000)?;
                let Some(last) = chunk.last() else { break };
                let end = last.id;
                for e in chunk.iter() {
                    if filter.pass(e) {
                        out.push(event_view(e));
                        if out.len() == limit {
                            return Ok((out, e.id));
                        }
                    }
                }
                cursor = end;
                if chunk.len() < 1000 {
                    break;
                }
            }
            Ok((out, cursor))
        })
        .await?;
    Ok(LogPage { events, next_after })
}

fn limit(state: &AppState, l: Option<usize>) -> ApiResult<usize> {
    let cap = state.config.limits.page_size;
    match l.unwrap_or(100) {
        n if (1..=cap).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_page_size",
            format!("limit is 1 to {cap}"),
        )),
    }
}

/// The store's events, oldest first, from a cursor: those of the segments
/// the caller can read and, with tiers read, tier changes. An administrator
/// also sees the events of segments deleted since.
#[utoipa::path(get, path = "/api/v1/stores/{store}/events", tag = "events",
    params(("store" = String, Path), LogQuery),
    responses((status = 200, body = LogPage), (status = 404, body = Problem)))]
pub async fn log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Params(q): Params<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    let n = limit(&state, q.limit)?;
    let scope = scope(&state, caller, &store).await?;
    let filter = store_filter(&scope).await?;
    Ok(Json(page(&scope, filter, q.after.unwrap_or(0), n).await?))
}

/// One segment's events, oldest first, from a cursor.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/events", tag = "events",
    params(("store" = String, Path), ("name" = String, Path), LogQuery),
    responses((status = 200, body = LogPage), (status = 404, body = Problem)))]
pub async fn segment_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Params(q): Params<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    let n = limit(&state, q.limit)?;
    let scope = scope(&state, caller, &store).await?;
    visible(&scope, &name).await?;
    Ok(Json(
        page(&scope, Filter::Segment(name), q.after.unwrap_or(0), n).await?,
    ))
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct StreamQuery {
    /// Start after this id; `Last-Event-ID` takes precedence. Without
    /// either, the stream starts with the next event.
    pub after: Option<i64>,
}

fn start_after(headers: &HeaderMap, q: &StreamQuery) -> Option<i64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .or(q.after)
}

/// The store's events as Server-Sent Events (`id` is the cursor; event
/// name `enter`, `exit` or `tier`; data the event as JSON).
#[utoipa::path(get, path = "/api/v1/stores/{store}/events/stream", tag = "events",
    params(("store" = String, Path), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    headers: HeaderMap,
    Params(q): Params<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let scope = scope(&state, caller, &store).await?;
    let filter = store_filter(&scope).await?;
    sse(scope, filter, start_after(&headers, &q)).await
}

/// One segment's events as Server-Sent Events.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/events/stream", tag = "events",
    params(("store" = String, Path), ("name" = String, Path), StreamQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
pub async fn segment_stream(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    headers: HeaderMap,
    Params(q): Params<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let scope = scope(&state, caller, &store).await?;
    visible(&scope, &name).await?;
    sse(scope, Filter::Segment(name), start_after(&headers, &q)).await
}

async fn sse(
    scope: Scope,
    filter: Filter,
    after: Option<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let engine = scope.engine().await?;
    let tenant = scope.tenant.id;
    let after = match after {
        Some(a) => a,
        None => {
            scope
                .state
                .pool
                .run(move |s| s.last_event_id(tenant))
                .await?
        }
    };
    let position = engine.position.clone();
    let stream = futures_util::stream::unfold(
        (
            scope,
            filter,
            after,
            position,
            Vec::<EventView>::new(),
            false,
        ),
        |(mut scope, mut filter, mut after, mut position, mut pending, mut woken)| async move {
            loop {
                if !pending.is_empty() {
                    let e = pending.remove(0);
                    let sse = SseEvent::default()
                        .id(e.id.to_string())
                        .event(e.kind.clone())
                        .json_data(&e)
                        .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                    return Some((Ok(sse), (scope, filter, after, position, pending, woken)));
                }
                // Mark the position seen before reading, so a commit that
                // lands during the read wakes the next wait.
                position.borrow_and_update();
                // Rights are as they were when the stream opened until
                // something happens; then they are asked for again, so
                // that what was taken away is not streamed on.
                if woken {
                    match recheck(&scope, &filter).await {
                        Ok(Some((s, f))) => (scope, filter) = (s, f),
                        Ok(None) => return None,
                        Err(e) => {
                            tracing::warn!("event stream: {e}");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                }
                match page(&scope, filter.clone(), after, 500).await {
                    Ok(p) => {
                        let mut events = p.events;
                        // Rights taken away after the check above, and
                        // events committed after that, may both precede
                        // the read: asking again now means that whatever
                        // was committed after the rights went is not shown.
                        if !events.is_empty() {
                            match recheck(&scope, &filter).await {
                                Ok(Some((s, f))) => (scope, filter) = (s, f),
                                Ok(None) => return None,
                                Err(e) => {
                                    tracing::warn!("event stream: {e}");
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    continue;
                                }
                            }
                            events.retain(|e| filter.shows(e));
                        }
                        after = p.next_after;
                        pending = events;
                        if !pending.is_empty() {
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!("event stream: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
                if position.changed().await.is_err() {
                    return None;
                }
                woken = true;
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
