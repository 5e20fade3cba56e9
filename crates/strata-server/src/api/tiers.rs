//! Tier schemes per marketplace, and how many customers each tier holds.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use strata_data::{Tier, TierMetric, TierScheme};
use strata_live::Change;
use strata_store::Right;
use utoipa::ToSchema;

use super::Body;
use super::data::Money;
use crate::auth::{Caller, scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::tenant::Intent;

/// The path name of the fallback scheme (`"marketplace": null`).
pub const FALLBACK: &str = "_default";

#[derive(Serialize, ToSchema)]
pub struct SchemeView {
    /// `null`: the fallback scheme.
    pub marketplace: Option<String>,
    /// `orders`, `units`, `revenue` or `profit`.
    pub metric: String,
    /// Highest threshold first.
    pub tiers: Vec<TierOut>,
}

#[derive(Serialize, ToSchema)]
pub struct TierOut {
    pub name: String,
    pub threshold: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemeIn {
    pub metric: String,
    pub tiers: Vec<TierIn>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierIn {
    pub name: String,
    pub threshold: Money,
}

fn metric_name(m: TierMetric) -> &'static str {
    match m {
        TierMetric::Orders => "orders",
        TierMetric::Units => "units",
        TierMetric::Revenue => "revenue",
        TierMetric::Profit => "profit",
    }
}

fn scheme_view(s: &TierScheme) -> SchemeView {
    SchemeView {
        marketplace: s.marketplace.clone(),
        metric: metric_name(s.metric).to_owned(),
        tiers: s
            .tiers
            .iter()
            .map(|t| TierOut {
                name: t.name.clone(),
                threshold: t.threshold.normalize().to_string(),
            })
            .collect(),
    }
}

fn marketplace(path: &str) -> Option<String> {
    (path != FALLBACK).then(|| path.to_owned())
}

/// Every tier scheme of the store.
#[utoipa::path(get, path = "/api/v1/stores/{store}/tiers", tag = "tiers",
    params(("store" = String, Path)),
    responses((status = 200, body = Vec<SchemeView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_tiers(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<Vec<SchemeView>>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_tiers(Right::Read)?;
    let engine = scope.engine().await?;
    let snap = engine.snapshot().await?;
    Ok(Json(
        snap.engine.data().tiers.iter().map(scheme_view).collect(),
    ))
}

/// Creates or replaces the scheme of a marketplace (`_default`: the
/// fallback scheme). Every customer's tier follows at once.
#[utoipa::path(put, path = "/api/v1/stores/{store}/tiers/{marketplace}", tag = "tiers",
    params(("store" = String, Path), ("marketplace" = String, Path)), request_body = SchemeIn,
    responses((status = 200, body = SchemeView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_tier(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, market)): Path<(String, String)>,
    Body(body): Body<SchemeIn>,
) -> ApiResult<Json<SchemeView>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_tiers(Right::Edit)?;
    let metric = match body.metric.as_str() {
        "orders" | "number_of_orders" => TierMetric::Orders,
        "units" | "units_purchased" => TierMetric::Units,
        "revenue" | "amount_spent" => TierMetric::Revenue,
        "profit" | "total_profit" => TierMetric::Profit,
        other => {
            return Err(ApiError::unprocessable(
                "invalid_metric",
                format!("metric '{other}': expected orders, units, revenue or profit"),
            ));
        }
    };
    let mut tiers = Vec::with_capacity(body.tiers.len());
    for (i, t) in body.tiers.into_iter().enumerate() {
        if t.name.trim().is_empty() {
            return Err(ApiError::unprocessable(
                "invalid_tier",
                format!("tiers[{i}].name is empty"),
            ));
        }
        tiers.push(Tier {
            threshold: t.threshold.decimal(&format!("tiers[{i}].threshold"))?,
            name: t.name,
        });
    }
    tiers.sort_by_key(|t| std::cmp::Reverse(t.threshold));
    let scheme = TierScheme {
        marketplace: marketplace(&market),
        metric,
        tiers,
    };
    let view = scheme_view(&scheme);
    scope
        .engine()
        .await?
        .apply(vec![Intent::Change(Change::PutTierScheme(scheme), None)])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("no result"))??;
    Ok(Json(view))
}

/// Deletes the scheme of a marketplace; its customers fall back to the
/// fallback scheme.
#[utoipa::path(delete, path = "/api/v1/stores/{store}/tiers/{marketplace}", tag = "tiers",
    params(("store" = String, Path), ("marketplace" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_tier(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, market)): Path<(String, String)>,
) -> ApiResult<axum::http::StatusCode> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_tiers(Right::Edit)?;
    let engine = scope.engine().await?;
    let m = marketplace(&market);
    let snap = engine.snapshot().await?;
    if !snap.engine.data().tiers.iter().any(|t| t.marketplace == m) {
        return Err(ApiError::not_found(format!(
            "no tier scheme for '{market}'"
        )));
    }
    engine.apply_one(Change::DeleteTierScheme(m), None).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct Slice {
    /// `null`: customers in no tier.
    pub tier: Option<String>,
    pub customers: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Distribution {
    pub total: u64,
    pub tiers: Vec<Slice>,
}

/// Customers per tier now (the pie chart).
#[utoipa::path(get, path = "/api/v1/stores/{store}/tiers/distribution", tag = "tiers",
    params(("store" = String, Path)),
    responses((status = 200, body = Distribution), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn distribution(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<Distribution>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_tiers(Right::Read)?;
    let tiers = scope
        .engine()
        .await?
        .with(|live| {
            live.engine()
                .tier_distribution()
                .into_iter()
                .map(|(t, n)| Slice {
                    tier: t.map(str::to_owned),
                    customers: n,
                })
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(Distribution {
        total: tiers.iter().map(|s| s.customers).sum(),
        tiers,
    }))
}
