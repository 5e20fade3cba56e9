//! Segments: create, change, delete, list, get; preview of an unsaved
//! rule; uses; stats; sharing; templates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_data::{Nanos, RuleSource};
use strata_lang::catalog::Kind;
use strata_live::Change;
use strata_store::{Right, SegmentInfo, SegmentMeta, SegmentShare, UserId};
use utoipa::ToSchema;

use super::{Body, Params, instant, kind_name, parse_instant};
use crate::auth::{Caller, Scope, SegmentRights, lacking, scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::templates::{self, TemplateView};
use crate::tenant::Intent;
use crate::view::{Row, row};

pub fn parse_kind(s: &str) -> ApiResult<Kind> {
    match s {
        "customer" | "customers" => Ok(Kind::Customer),
        "product" | "products" => Ok(Kind::Product),
        _ => Err(ApiError::unprocessable(
            "invalid_kind",
            format!("kind '{s}': expected customer or product"),
        )),
    }
}

/// A rule as text (a JSON string) or as its JSON tree (an object).
pub fn rule_source(scope: &Scope, rule: Value) -> ApiResult<RuleSource> {
    let limit = scope.state.config.limits.rule_bytes;
    match rule {
        Value::String(text) => {
            if text.len() > limit {
                return Err(too_large(limit));
            }
            Ok(RuleSource::Text(text))
        }
        v @ Value::Object(_) => {
            if v.to_string().len() > limit {
                return Err(too_large(limit));
            }
            Ok(RuleSource::Json(v))
        }
        _ => Err(ApiError::unprocessable(
            "invalid_rule",
            "a rule is a text (JSON string) or a rule tree (JSON object)",
        )),
    }
}

/// A rule (or members filter) over the size limit: 413, as a body over
/// its limit is.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "rule_too_large",
        format!("a rule takes at most {limit} bytes"),
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentIn {
    pub name: String,
    pub description: Option<String>,
    /// `customer` or `product`.
    pub kind: String,
    /// Text (`"amount_spent > 500"`) or the JSON tree.
    #[schema(value_type = Object)]
    pub rule: Value,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentUpdate {
    /// A new description (`null` clears it; absent keeps it).
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub rule: Option<Value>,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct OwnerView {
    pub id: i64,
    pub email: String,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
pub struct RightsOnSegment {
    pub read: bool,
    pub edit: bool,
    pub delete: bool,
    /// May share it and see who has it.
    pub manage: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    pub name: String,
    pub description: Option<String>,
    pub kind: String,
    /// The normalised text form.
    pub rule: String,
    #[schema(value_type = Object)]
    pub rule_json: Value,
    pub owner: Option<OwnerView>,
    /// Members now.
    pub members: u64,
    /// Seller accounts the rule names (empty: all).
    pub seller_accounts: Vec<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub rights: RightsOnSegment,
}

/// What the engine knows of a segment.
struct Live {
    kind: Kind,
    text: String,
    json: Value,
    count: u64,
}

fn seller_accounts(json: &Value, out: &mut BTreeSet<String>) {
    match json {
        Value::Object(m) => {
            if m.get("field").and_then(Value::as_str) == Some("seller_account") {
                for key in ["value", "values"] {
                    match m.get(key) {
                        Some(Value::String(s)) => {
                            out.insert(s.clone());
                        }
                        Some(Value::Array(xs)) => {
                            out.extend(xs.iter().filter_map(Value::as_str).map(str::to_owned));
                        }
                        _ => {}
                    }
                }
            }
            m.values().for_each(|v| seller_accounts(v, out));
        }
        Value::Array(xs) => xs.iter().for_each(|v| seller_accounts(v, out)),
        _ => {}
    }
}

/// The engine's segments (`only`: that one, if it exists), with their
/// rules in both forms and member counts.
async fn live_segments(scope: &Scope, only: Option<&str>) -> ApiResult<BTreeMap<String, Live>> {
    let only = only.map(str::to_owned);
    let engine = scope.engine().await?;
    engine
        .with(move |live| {
            let e = live.engine();
            e.segments()
                .filter(|(name, _, _)| only.as_deref().is_none_or(|o| o == *name))
                .map(|(name, kind, text)| {
                    let json = e
                        .segment_rule(name)
                        .map_or(Value::Null, |(_, expr)| strata_lang::json::to_json(expr));
                    let info = Live {
                        kind,
                        text: text.to_owned(),
                        json,
                        count: e.count(name).unwrap_or(0),
                    };
                    (name.to_owned(), info)
                })
                .collect()
        })
        .await
}

/// Everything needed to decide on and show segments: metas, the caller's
/// shares, user e-mails.
struct Facts {
    metas: HashMap<String, SegmentMeta>,
    shares: HashMap<String, SegmentShare>,
    emails: HashMap<UserId, String>,
}

async fn facts(scope: &Scope) -> ApiResult<Facts> {
    let (tenant, user) = (scope.tenant.id, scope.caller.user.id);
    scope
        .state
        .pool
        .run(move |s| {
            let metas = s.segment_metas(tenant)?;
            let shares = s.shares_of(tenant, user)?;
            let users = s.users()?;
            Ok(Facts {
                metas: metas.into_iter().map(|m| (m.name.clone(), m)).collect(),
                shares: shares.into_iter().map(|s| (s.segment.clone(), s)).collect(),
                emails: users.into_iter().map(|u| (u.id, u.email)).collect(),
            })
        })
        .await
}

fn view(name: &str, live: &Live, facts: &Facts, rights: SegmentRights) -> SegmentView {
    let meta = facts.metas.get(name);
    let owner = meta.and_then(|m| m.owner);
    let mut accounts = BTreeSet::new();
    seller_accounts(&live.json, &mut accounts);
    SegmentView {
        name: name.to_owned(),
        description: meta.and_then(|m| m.description.clone()),
        kind: kind_name(live.kind).to_owned(),
        rule: live.text.clone(),
        rule_json: live.json.clone(),
        owner: owner.map(|id| OwnerView {
            id: id.0,
            email: facts.emails.get(&id).cloned().unwrap_or_default(),
        }),
        members: live.count,
        seller_accounts: accounts.into_iter().collect(),
        created_at: meta.map(|m| instant(m.created_at)),
        updated_at: meta.map(|m| instant(m.updated_at)),
        rights: RightsOnSegment {
            read: rights.read,
            edit: rights.edit,
            delete: rights.delete,
            manage: rights.manage,
        },
    }
}

fn rights_of(
    scope: &Scope,
    name: &str,
    kind: Kind,
    facts: &Facts,
    now: Nanos,
) -> Option<SegmentRights> {
    let owner = facts.metas.get(name).and_then(|m| m.owner);
    scope.segment_rights(kind, owner, facts.shares.get(name), now)
}

/// The segments the caller can see, with their kinds.
async fn visible_kinds(scope: &Scope) -> ApiResult<BTreeMap<String, Kind>> {
    // Names and kinds only: no rule needs printing here.
    let all: Vec<(String, Kind)> = scope
        .engine()
        .await?
        .with(|live| {
            let e = live.engine();
            e.segments()
                .map(|(name, kind, _)| (name.to_owned(), kind))
                .collect()
        })
        .await?;
    let facts = facts(scope).await?;
    let now = scope.state.now();
    Ok(all
        .into_iter()
        .filter(|(name, kind)| rights_of(scope, name, *kind, &facts, now).is_some())
        .collect())
}

/// The names of the segments the caller can see.
pub async fn visible_names(scope: &Scope) -> ApiResult<BTreeSet<String>> {
    Ok(visible_kinds(scope).await?.into_keys().collect())
}

/// The segments a rule of `kind` names, with the text their spans point
/// into; none if it does not parse (the engine then says why).
fn named_segments(kind: Kind, rule: &RuleSource) -> (Vec<strata_lang::SegmentRef>, String) {
    let parsed = match rule {
        RuleSource::Text(text) => strata_lang::parse(text).map(|e| (e, text.clone())).ok(),
        RuleSource::Json(v) => strata_lang::from_json(v).ok().and_then(|e| {
            // Spans into the printed text, as the engine's messages have.
            let text = strata_lang::to_text(&e);
            strata_lang::parse(&text).ok().map(|e| (e, text))
        }),
    };
    match parsed {
        Some((expr, text)) => (strata_lang::segment_refs(&expr, kind), text),
        None => (Vec::new(), String::new()),
    }
}

/// Refuses a rule that names a segment the caller cannot see exactly as
/// one naming no segment (422, the engine's message, suggestions only
/// among the segments the caller sees): a preview, a members filter or a
/// segment of one's own made of `in_segment('x')` would otherwise show the
/// members of a segment not shared with the caller, or whose share
/// expired or was revoked, and a suggestion would tell its name. Names in
/// `known` (the rule being replaced names them already) pass.
pub async fn check_named(
    scope: &Scope,
    kind: Kind,
    rule: &RuleSource,
    known: &[String],
) -> ApiResult<()> {
    let (refs, text) = named_segments(kind, rule);
    if refs.iter().all(|r| known.contains(&r.name)) {
        return Ok(());
    }
    let seen = visible_kinds(scope).await?;
    let Some(r) = refs
        .into_iter()
        .find(|r| !seen.contains_key(&r.name) && !known.contains(&r.name))
    else {
        return Ok(());
    };
    // As the engine words it (strata_engine's segment directory).
    let suggestion = seen
        .iter()
        .filter(|(_, k)| **k == r.kind)
        .map(|(n, _)| (strsim::jaro_winkler(n, &r.name), n))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| format!("did you mean '{n}'?"));
    let message = match suggestion {
        Some(s) => format!("unknown {} segment '{}'; {s}", r.kind, r.name),
        None => format!("unknown {} segment '{}'", r.kind, r.name),
    };
    Err(ApiError::rule(&strata_engine::RuleError {
        diagnostic: strata_lang::Diagnostic {
            span: r.span,
            message,
            help: None,
        },
        source: text,
        segment: None,
    }))
}

/// A segment the caller can see, with their rights: 404 if it does not
/// exist or is not visible, 403 if the caller lacks the module right.
pub async fn visible(scope: &Scope, name: &str) -> ApiResult<(SegmentView, SegmentRights)> {
    let mut all = live_segments(scope, Some(name)).await?;
    let live = all
        .remove(name)
        .ok_or_else(|| ApiError::not_found(format!("no segment '{name}'")))?;
    scope.need_module(live.kind, Right::Read)?;
    let facts = facts(scope).await?;
    let rights = rights_of(scope, name, live.kind, &facts, scope.state.now())
        .ok_or_else(|| ApiError::not_found(format!("no segment '{name}'")))?;
    Ok((view(name, &live, &facts, rights), rights))
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct ListQuery {
    /// `customer` or `product`; both when absent.
    pub kind: Option<String>,
}

/// The segments the caller can see, with member counts.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments", tag = "segments",
    params(("store" = String, Path), ListQuery),
    responses((status = 200, body = Vec<SegmentView>), (status = 404, body = Problem)))]
pub async fn list_segments(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Params(q): Params<ListQuery>,
) -> ApiResult<Json<Vec<SegmentView>>> {
    let scope = scope(&state, caller, &store).await?;
    let want = q.kind.as_deref().map(parse_kind).transpose()?;
    if let Some(k) = want {
        scope.need_module(k, Right::Read)?;
    }
    let all = live_segments(&scope, None).await?;
    let facts = facts(&scope).await?;
    let now = state.now();
    Ok(Json(
        all.iter()
            .filter(|(_, l)| want.is_none_or(|k| k == l.kind))
            .filter_map(|(name, l)| {
                let rights = rights_of(&scope, name, l.kind, &facts, now)?;
                Some(view(name, l, &facts, rights))
            })
            .collect(),
    ))
}

/// Creates a segment; the caller owns it.
#[utoipa::path(post, path = "/api/v1/stores/{store}/segments", tag = "segments",
    params(("store" = String, Path)), request_body = SegmentIn,
    responses((status = 201, body = SegmentView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn create_segment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<SegmentIn>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let scope = scope(&state, caller, &store).await?;
    let kind = parse_kind(&body.kind)?;
    create(&scope, kind, body.name, body.description, body.rule).await
}

pub async fn create(
    scope: &Scope,
    kind: Kind,
    name: String,
    description: Option<String>,
    rule: Value,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    scope.need_module(kind, Right::Edit)?;
    check_name(&name)?;
    check_description(description.as_deref())?;
    let rule = rule_source(scope, rule)?;
    check_named(scope, kind, &rule, &[]).await?;
    let engine = scope.engine().await?;
    let n = name.clone();
    if engine
        .with(move |live| live.engine().count(&n).is_some())
        .await?
    {
        return Err(ApiError::conflict(
            "segment_exists",
            format!(
                "the name '{name}' is taken in this store (segment names are what rules \
                 refer to, so they are unique per store); choose another"
            ),
        ));
    }
    let info = SegmentInfo {
        description,
        owner: Some(scope.caller.user.id),
    };
    engine
        .apply_one(
            Change::PutSegment {
                name: name.clone(),
                kind,
                rule,
            },
            Some(info),
        )
        .await?;
    let (view, _) = visible(scope, &name).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

fn check_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a segment name is 1 to 200 bytes without control characters",
        ));
    }
    Ok(())
}

fn check_description(d: Option<&str>) -> ApiResult<()> {
    if d.is_some_and(|d| d.len() > 4000) {
        return Err(ApiError::unprocessable(
            "invalid_description",
            "a description takes at most 4000 bytes",
        ));
    }
    Ok(())
}

/// A segment.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SegmentView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_segment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
) -> ApiResult<Json<SegmentView>> {
    let scope = scope(&state, caller, &store).await?;
    Ok(Json(visible(&scope, &name).await?.0))
}

/// Changes a segment's rule and/or description (members follow at once,
/// with enter and exit events).
#[utoipa::path(put, path = "/api/v1/stores/{store}/segments/{name}", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path)), request_body = SegmentUpdate,
    responses((status = 200, body = SegmentView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn update_segment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Body(body): Body<SegmentUpdate>,
) -> ApiResult<Json<SegmentView>> {
    let scope = scope(&state, caller, &store).await?;
    let (current, rights) = visible(&scope, &name).await?;
    if !rights.edit {
        return Err(lacking("edit"));
    }
    let kind = parse_kind(&current.kind)?;
    let description = match body.description {
        Some(d) => d,
        None => current.description.clone(),
    };
    check_description(description.as_deref())?;
    let rule = match body.rule {
        Some(r) => {
            let rule = rule_source(&scope, r)?;
            // What the rule names already stays nameable: the segment is
            // the caller's to change, whoever can see those.
            let current_rule = RuleSource::Text(current.rule.clone());
            let (known, _) = named_segments(kind, &current_rule);
            let known: Vec<String> = known.into_iter().map(|r| r.name).collect();
            check_named(&scope, kind, &rule, &known).await?;
            rule
        }
        None => RuleSource::Text(current.rule.clone()),
    };
    let info = SegmentInfo {
        description,
        owner: None,
    };
    scope
        .engine()
        .await?
        .apply_one(
            Change::PutSegment {
                name: name.clone(),
                kind,
                rule,
            },
            Some(info),
        )
        .await?;
    Ok(Json(visible(&scope, &name).await?.0))
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct DeleteQuery {
    /// Also delete the segments that refer to it (their own dependents
    /// too); the caller needs the right to delete each.
    #[serde(default)]
    pub force: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    /// Every segment deleted, dependents first.
    pub deleted: Vec<String>,
}

/// Deletes a segment. Refused with 409 and the list of uses while other
/// segments refer to it, unless `force`.
#[utoipa::path(delete, path = "/api/v1/stores/{store}/segments/{name}", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), DeleteQuery),
    responses((status = 200, body = Deleted), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_segment(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Params(q): Params<DeleteQuery>,
) -> ApiResult<Json<Deleted>> {
    let scope = scope(&state, caller, &store).await?;
    let (_, rights) = visible(&scope, &name).await?;
    if !rights.delete {
        return Err(lacking("delete"));
    }
    let engine = scope.engine().await?;
    let n = name.clone();
    // Dependents, transitively, in an order where each comes before what
    // it refers to.
    let order = engine
        .with(move |live| {
            let e = live.engine();
            let mut order: Vec<String> = Vec::new();
            fn visit(e: &strata_live::LiveEngine, name: &str, order: &mut Vec<String>) {
                if order.iter().any(|o| o == name) {
                    return;
                }
                for u in e.uses(name) {
                    visit(e, &u, order);
                }
                order.push(name.to_owned());
            }
            visit(e, &n, &mut order);
            order
        })
        .await?;
    let dependents = &order[..order.len() - 1];
    // Dependents the caller cannot see are counted, not named.
    let seen = if dependents.is_empty() {
        BTreeSet::new()
    } else {
        visible_names(&scope).await?
    };
    let hidden = dependents.iter().filter(|d| !seen.contains(*d)).count();
    let hidden_text = match hidden {
        0 => String::new(),
        1 => "a segment you cannot see".to_owned(),
        n => format!("{n} segments you cannot see"),
    };
    if !dependents.is_empty() && !q.force {
        let uses: Vec<String> = dependents
            .iter()
            .filter(|d| seen.contains(*d))
            .cloned()
            .collect();
        let mut by = uses.clone();
        if hidden > 0 {
            by.push(hidden_text);
        }
        return Err(ApiError::conflict(
            "segment_in_use",
            format!(
                "segment '{name}' is used by {}; delete with force=true to delete those too",
                by.join(", ")
            ),
        )
        .with_uses(uses));
    }
    if hidden > 0 {
        return Err(ApiError::forbidden(format!(
            "{hidden_text} refers to '{name}' and you may not delete it"
        )));
    }
    for dependent in dependents {
        let (_, r) = visible(&scope, dependent).await.map_err(|_| {
            ApiError::forbidden(format!(
                "segment '{dependent}' refers to '{name}' and you may not delete it"
            ))
        })?;
        if !r.delete {
            return Err(ApiError::forbidden(format!(
                "segment '{dependent}' refers to '{name}' and you may not delete it"
            )));
        }
    }
    let intents = order
        .iter()
        .map(|n| Intent::Change(Change::DeleteSegment(n.clone()), None))
        .collect();
    for r in engine.apply(intents).await? {
        r?;
    }
    Ok(Json(Deleted { deleted: order }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewIn {
    pub kind: String,
    #[schema(value_type = Object)]
    pub rule: Value,
    /// How many members to return (default 20, at most 100).
    pub limit: Option<usize>,
    /// Columns of the returned members (default: a few of the kind's).
    pub fields: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewOut {
    pub count: u64,
    #[schema(value_type = Vec<Object>)]
    pub members: Vec<Row>,
    /// The normalised rule.
    pub rule: String,
    /// The instant the answer is exact for.
    pub as_of: String,
    pub took_ms: f64,
}

pub fn default_fields(kind: Kind) -> Vec<String> {
    let names: &[&str] = match kind {
        Kind::Customer => &[
            "customer_id",
            "email",
            "first_name",
            "last_name",
            "number_of_orders",
            "amount_spent",
            "tier",
        ],
        Kind::Product => &[
            "sku",
            "title",
            "brand",
            "category",
            "inventory",
            "units_30d",
            "sales_30d",
            "days_of_stock",
        ],
    };
    names.iter().map(|s| (*s).to_owned()).collect()
}

pub fn check_fields(
    snap: &crate::tenant::Snapshot,
    kind: Kind,
    fields: &[String],
) -> ApiResult<()> {
    let known = snap.engine.field_names(kind);
    for f in fields {
        if !known.contains(f) {
            return Err(ApiError::unprocessable(
                "unknown_field",
                format!("no {kind} field '{f}'"),
            ));
        }
    }
    Ok(())
}

/// Count and first members of an unsaved rule (the builder's "Calculate").
#[utoipa::path(post, path = "/api/v1/stores/{store}/segments/preview", tag = "segments",
    params(("store" = String, Path)), request_body = PreviewIn,
    responses((status = 200, body = PreviewOut), (status = 403, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn preview(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<PreviewIn>,
) -> ApiResult<Json<PreviewOut>> {
    let scope = scope(&state, caller, &store).await?;
    let kind = parse_kind(&body.kind)?;
    scope.need_module(kind, Right::Read)?;
    let limit = body.limit.unwrap_or(20).min(100);
    let rule = rule_source(&scope, body.rule)?;
    check_named(&scope, kind, &rule, &[]).await?;
    let engine = scope.engine().await?;
    let snap = engine.snapshot().await?;
    let fields = body.fields.unwrap_or_else(|| default_fields(kind));
    check_fields(&snap, kind, &fields)?;
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let (members, text) = snap.evaluate(kind, rule)?;
        let rows = members
            .iter()
            .take(limit)
            .map(|r| row(&snap, kind, r, &fields))
            .collect();
        Ok(Json(PreviewOut {
            count: members.len(),
            members: rows,
            rule: text,
            as_of: instant(snap.at.clock),
            took_ms: started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await
    .map_err(ApiError::internal)?
}

#[derive(Serialize, ToSchema)]
pub struct UsesOut {
    pub segment: String,
    /// Segments whose rules refer to it.
    pub segments: Vec<String>,
}

/// What refers to a segment.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/uses", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = UsesOut), (status = 404, body = Problem)))]
pub async fn uses(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
) -> ApiResult<Json<UsesOut>> {
    let scope = scope(&state, caller, &store).await?;
    visible(&scope, &name).await?;
    let n = name.clone();
    let all = scope
        .engine()
        .await?
        .with(move |live| live.engine().uses(&n))
        .await?;
    // Segments the caller cannot see are not theirs to know of.
    let seen = visible_names(&scope).await?;
    let segments = all.into_iter().filter(|s| seen.contains(s)).collect();
    Ok(Json(UsesOut {
        segment: name,
        segments,
    }))
}

#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
pub struct StatsQuery {
    /// Days back from today (default 30, at most 366).
    pub days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DayCount {
    pub date: String,
    /// `null` for a day before anything recorded the segment's count (it
    /// did not exist yet, or existed only before an import brought it in).
    pub count: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct DaySales {
    pub date: String,
    pub units: u64,
    /// Exact decimal.
    pub revenue: String,
}

#[derive(Serialize, ToSchema)]
pub struct StatsOut {
    /// Member count at the end of each day.
    pub counts: Vec<DayCount>,
    /// For a product segment: its current members' daily units and revenue
    /// (counting lines), the "sales overview" chart.
    pub sales: Option<Vec<DaySales>>,
    pub as_of: String,
}

/// Member-count history and, for product segments, daily sales.
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/stats", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), StatsQuery),
    responses((status = 200, body = StatsOut), (status = 404, body = Problem)))]
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
    Params(q): Params<StatsQuery>,
) -> ApiResult<Json<StatsOut>> {
    let scope = scope(&state, caller, &store).await?;
    let (seg, _) = visible(&scope, &name).await?;
    let days = q.days.unwrap_or(30).clamp(1, 366);
    let engine = scope.engine().await?;
    let n = name.clone();
    let (history, engine_start, today) = engine
        .with(move |live| {
            let e = live.engine();
            let today = strata_engine::clock::date_of(e.now(), e.timezone());
            // From the day before the first shown, to tell whether the
            // engine's count changed on that one.
            let from = today.checked_sub(i64::from(days).days()).unwrap_or(today);
            let history = e.count_history(&n, from, today).unwrap_or_default();
            (history, e.history_start(&n), today)
        })
        .await?;
    // The engine's history starts when it was restored: a restart forgets
    // the days before. The store's holds the last count of every day a
    // commit changed it, and a stored count holds until the next one. The
    // engine's count wins where it changed without a commit (restored
    // after an import, say); days before either knew anything are unknown.
    let (tenant, n) = (scope.tenant.id, name.clone());
    let stored: BTreeMap<jiff::civil::Date, u64> = state
        .pool
        .run(move |s| s.count_history(tenant, &n))
        .await?
        .into_iter()
        .collect();
    let known_from = [engine_start, stored.keys().next().copied()]
        .into_iter()
        .flatten()
        .min();
    let first = history.len().saturating_sub(days as usize);
    let mut held = history
        .get(first)
        .and_then(|(from, _)| stored.range(..from).next_back())
        .map(|(_, &c)| c);
    let mut previous = first.checked_sub(1).map(|i| history[i].1);
    let counts = history[first..]
        .iter()
        .map(|&(d, c)| {
            if let Some(&s) = stored.get(&d) {
                held = Some(s);
            } else if previous.is_some_and(|p| p != c) {
                held = Some(c);
            }
            previous = Some(c);
            DayCount {
                date: d.to_string(),
                count: known_from
                    .is_some_and(|k| d >= k)
                    .then(|| held.unwrap_or(c)),
            }
        })
        .collect();
    let sales = if seg.kind == "product" {
        let snap = engine.snapshot().await?;
        let n = name.clone();
        Some(
            tokio::task::spawn_blocking(move || daily_sales(&snap, &n, today, days))
                .await
                .map_err(ApiError::internal)??,
        )
    } else {
        None
    };
    Ok(Json(StatsOut {
        counts,
        sales,
        as_of: instant(state.now()),
    }))
}

fn daily_sales(
    snap: &crate::tenant::Snapshot,
    name: &str,
    today: jiff::civil::Date,
    days: u32,
) -> ApiResult<Vec<DaySales>> {
    let (_, members) = snap
        .members_of(name)
        .ok_or_else(|| ApiError::not_found(format!("no segment '{name}' yet in the snapshot")))?;
    let d = snap.engine.data();
    let tz = &d.settings.timezone;
    let from = today
        .checked_sub((i64::from(days) - 1).days())
        .unwrap_or(today);
    let mut out: Vec<(u64, rust_decimal::Decimal)> = vec![Default::default(); days as usize];
    let now = snap.at.clock;
    for l in 0..d.lines.len() {
        if !members.contains(d.lines.product[l]) {
            continue;
        }
        let o = d.lines.order[l] as usize;
        let at = d.orders.ordered_at[o];
        if !d.orders.counting[o] || at > now {
            continue;
        }
        let date = strata_engine::clock::date_of(at, tz);
        if date < from || date > today {
            continue;
        }
        let i = (date - from).get_days() as usize;
        if let Some(slot) = out.get_mut(i) {
            slot.0 += u64::from(d.lines.quantity[l]);
            slot.1 += d.lines.revenue[l];
        }
    }
    Ok(out
        .into_iter()
        .enumerate()
        .map(|(i, (units, revenue))| DaySales {
            date: from
                .checked_add((i as i64).days())
                .unwrap_or(from)
                .to_string(),
            units,
            revenue: revenue.normalize().to_string(),
        })
        .collect())
}

#[derive(Serialize, ToSchema)]
pub struct ShareView {
    pub user: OwnerView,
    pub read: bool,
    pub edit: bool,
    pub delete: bool,
    pub expires_at: Option<String>,
    /// The expiry has passed: the share grants nothing.
    pub expired: bool,
    pub granted_by: i64,
    pub granted_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareIn {
    #[serde(default = "yes")]
    pub read: bool,
    #[serde(default)]
    pub edit: bool,
    #[serde(default)]
    pub delete: bool,
    /// RFC 3339 instant or `YYYY-MM-DD` (midnight UTC); none: never.
    pub expires_at: Option<String>,
}

fn yes() -> bool {
    true
}

async fn manageable(scope: &Scope, name: &str) -> ApiResult<()> {
    let (_, rights) = visible(scope, name).await?;
    if rights.manage {
        Ok(())
    } else {
        Err(lacking("manage the permissions of"))
    }
}

/// Who has which rights on the segment until when ("manage permissions";
/// the owner and administrators).
#[utoipa::path(get, path = "/api/v1/stores/{store}/segments/{name}/shares", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Vec<ShareView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_shares(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<ShareView>>> {
    let scope = scope(&state, caller, &store).await?;
    manageable(&scope, &name).await?;
    let tenant = scope.tenant.id;
    let (shares, users) = state
        .pool
        .run(move |s| Ok((s.shares(tenant, &name)?, s.users()?)))
        .await?;
    let emails: HashMap<UserId, String> = users.into_iter().map(|u| (u.id, u.email)).collect();
    let now = state.now();
    Ok(Json(
        shares.iter().map(|s| share_view(s, &emails, now)).collect(),
    ))
}

fn share_view(s: &SegmentShare, emails: &HashMap<UserId, String>, now: Nanos) -> ShareView {
    ShareView {
        user: OwnerView {
            id: s.user.0,
            email: emails.get(&s.user).cloned().unwrap_or_default(),
        },
        read: s.read || s.edit || s.delete,
        edit: s.edit,
        delete: s.delete,
        expires_at: s.expires_at.map(instant),
        expired: s.expires_at.is_some_and(|t| now >= t),
        granted_by: s.granted_by.0,
        granted_at: instant(s.granted_at),
    }
}

/// Shares the segment with a user, or changes their share.
#[utoipa::path(put, path = "/api/v1/stores/{store}/segments/{name}/shares/{user_id}", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), ("user_id" = i64, Path)), request_body = ShareIn,
    responses((status = 200, body = ShareView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_share(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name, user)): Path<(String, String, i64)>,
    Body(body): Body<ShareIn>,
) -> ApiResult<Json<ShareView>> {
    let scope = scope(&state, caller, &store).await?;
    manageable(&scope, &name).await?;
    let expires_at = body
        .expires_at
        .as_deref()
        .map(|t| parse_instant(t, "expires_at"))
        .transpose()?;
    let share = SegmentShare {
        tenant: scope.tenant.id,
        segment: name.clone(),
        user: UserId(user),
        read: body.read || body.edit || body.delete,
        edit: body.edit,
        delete: body.delete,
        expires_at,
        granted_by: scope.caller.user.id,
        granted_at: state.now(),
    };
    if share.user == scope.caller.user.id {
        return Err(ApiError::unprocessable(
            "share_with_self",
            "you cannot share a segment with yourself",
        ));
    }
    // Any share lets its holder read: one that would show as granting
    // nothing would still do that.
    if !share.read {
        return Err(ApiError::unprocessable(
            "empty_share",
            "a share gives read, edit and/or delete; to take it away, revoke it",
        ));
    }
    let s2 = share.clone();
    let users = state
        .pool
        .run(move |s| {
            if s.user(s2.user)?.is_none() {
                return Ok(None);
            }
            s.put_share(&s2)?;
            Ok(Some(s.users()?))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {user}")))?;
    let emails: HashMap<UserId, String> = users.into_iter().map(|u| (u.id, u.email)).collect();
    Ok(Json(share_view(&share, &emails, state.now())))
}

/// Revokes a user's share, with immediate effect.
#[utoipa::path(delete, path = "/api/v1/stores/{store}/segments/{name}/shares/{user_id}", tag = "segments",
    params(("store" = String, Path), ("name" = String, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_share(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, name, user)): Path<(String, String, i64)>,
) -> ApiResult<StatusCode> {
    let scope = scope(&state, caller, &store).await?;
    manageable(&scope, &name).await?;
    let tenant = scope.tenant.id;
    let n = name.clone();
    if state
        .pool
        .run(move |s| s.revoke_share(tenant, &n, UserId(user)))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "user {user} has no share of '{name}'"
        )))
    }
}

/// The built-in segment templates.
#[utoipa::path(get, path = "/api/v1/stores/{store}/templates", tag = "segments",
    params(("store" = String, Path)),
    responses((status = 200, body = Vec<TemplateView>), (status = 404, body = Problem)))]
pub async fn list_templates(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<Vec<TemplateView>>> {
    scope(&state, caller, &store).await?;
    Ok(Json(
        templates::all().iter().map(TemplateView::of).collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstantiateIn {
    /// The new segment's name (default: the template's name).
    pub name: Option<String>,
    pub description: Option<String>,
    /// Values for the template's parameters (defaults otherwise).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: BTreeMap<String, Value>,
}

/// Creates a segment from a template.
#[utoipa::path(post, path = "/api/v1/stores/{store}/templates/{id}", tag = "segments",
    params(("store" = String, Path), ("id" = String, Path)), request_body = InstantiateIn,
    responses((status = 201, body = SegmentView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn instantiate_template(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, id)): Path<(String, String)>,
    Body(body): Body<InstantiateIn>,
) -> ApiResult<(StatusCode, Json<SegmentView>)> {
    let scope = scope(&state, caller, &store).await?;
    let t = templates::all()
        .iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no template '{id}'")))?;
    let rule = t.instantiate(&body.params)?;
    let name = body.name.unwrap_or_else(|| t.name.to_owned());
    let description = body.description.or_else(|| Some(t.description.to_owned()));
    create(&scope, t.kind, name, description, Value::String(rule)).await
}
