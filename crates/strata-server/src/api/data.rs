//! Data in: products, customers, orders with their lines, order status,
//! daily product rows; one at a time or as an NDJSON batch. Every change
//! goes through the tenant's live engine and is committed before the
//! response, so segments and tiers are current when it arrives.
//!
//! Idempotent by ids: a product or customer upsert replaces the entity; an
//! order's lines are identified by their position (a repeated post adds
//! nothing); a daily row by `(sku, date)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use strata_lang::catalog::Kind;
use strata_live::{Change, CustomerRow, DailyRow, LineRow, ProductRow, ProductValue};
use strata_store::Right;
use utoipa::ToSchema;

use super::{Body, instant, parse_instant};
use crate::auth::{Caller, Scope, scope};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;
use crate::tenant::Intent;
use crate::view::{Row, entity_row};

/// Money or another exact decimal: a JSON number or a string (`"19.90"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Money {
    Text(String),
    Number(serde_json::Number),
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("an exact decimal, as a string or a JSON number"))
            .examples([serde_json::json!("19.90")])
            .into()
    }
}

impl utoipa::ToSchema for Money {}

impl Money {
    pub(crate) fn decimal(&self, what: &str) -> ApiResult<Decimal> {
        let text = match self {
            Money::Text(s) => s.trim().to_owned(),
            Money::Number(n) => n.to_string(),
        };
        Decimal::from_str_exact(&text)
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(|_| {
                ApiError::unprocessable(
                    "invalid_number",
                    format!("{what}: '{text}' is not an exact decimal"),
                )
            })
    }
}

fn money(m: &Option<Money>, what: &str) -> ApiResult<Option<Decimal>> {
    m.as_ref().map(|m| m.decimal(what)).transpose()
}

fn time(t: &Option<String>, what: &str) -> ApiResult<Option<strata_data::Nanos>> {
    t.as_deref().map(|t| parse_instant(t, what)).transpose()
}

fn custom(map: BTreeMap<String, Option<String>>) -> ApiResult<Vec<(String, Option<String>)>> {
    for k in map.keys() {
        if !k.starts_with("x_") || k.len() < 3 {
            return Err(ApiError::unprocessable(
                "invalid_attribute",
                format!("custom attribute '{k}': names start with 'x_'"),
            ));
        }
    }
    Ok(map.into_iter().collect())
}

fn need_id(id: &str, what: &str) -> ApiResult<()> {
    if id.trim().is_empty() || id.len() > 512 {
        return Err(ApiError::unprocessable(
            "invalid_id",
            format!("{what} must be 1 to 512 bytes"),
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductIn {
    pub sku: String,
    pub parent_sku: Option<String>,
    pub asin: Option<String>,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub seller_account: Option<String>,
    pub marketplace: Option<String>,
    pub price: Option<Money>,
    pub cost: Option<Money>,
    pub inventory: Option<u64>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// `x_...` attributes.
    #[serde(default)]
    pub custom: BTreeMap<String, Option<String>>,
}

impl ProductIn {
    fn row(self) -> ApiResult<ProductRow> {
        need_id(&self.sku, "sku")?;
        Ok(ProductRow {
            price: money(&self.price, "price")?,
            cost: money(&self.cost, "cost")?,
            created_at: time(&self.created_at, "created_at")?,
            custom: custom(self.custom)?,
            sku: self.sku,
            parent_sku: self.parent_sku,
            asin: self.asin,
            title: self.title,
            brand: self.brand,
            category: self.category,
            tags: self.tags,
            seller_account: self.seller_account,
            marketplace: self.marketplace,
            inventory: self.inventory,
        })
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    pub customer_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub marketplace: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub accepts_marketing: Option<bool>,
    pub created_at: Option<String>,
    #[serde(default)]
    pub custom: BTreeMap<String, Option<String>>,
}

impl CustomerIn {
    fn row(self) -> ApiResult<CustomerRow> {
        need_id(&self.customer_id, "customer_id")?;
        Ok(CustomerRow {
            created_at: time(&self.created_at, "created_at")?,
            custom: custom(self.custom)?,
            customer_id: self.customer_id,
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            country: self.country,
            city: self.city,
            marketplace: self.marketplace,
            tags: self.tags,
            accepts_marketing: self.accepts_marketing,
        })
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineIn {
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub discount: Option<Money>,
    pub fees: Option<Money>,
    pub seller_account: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    pub order_id: String,
    /// RFC 3339.
    pub ordered_at: String,
    pub customer_id: Option<String>,
    /// `shipped` when absent; `cancelled` and `refunded` do not count.
    pub status: Option<String>,
    pub marketplace: Option<String>,
    pub lines: Vec<LineIn>,
}

impl OrderIn {
    fn intent(self) -> ApiResult<Intent> {
        need_id(&self.order_id, "order_id")?;
        let at = parse_instant(&self.ordered_at, "ordered_at")?;
        let status = self.status.unwrap_or_else(|| "shipped".to_owned());
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.into_iter().enumerate() {
            let what = |f: &str| format!("lines[{i}].{f}");
            let row = LineRow {
                order_id: self.order_id.clone(),
                ordered_at: at,
                customer_id: self.customer_id.clone(),
                sku: l.sku,
                quantity: l.quantity,
                unit_price: l.unit_price.decimal(&what("unit_price"))?,
                discount: money(&l.discount, &what("discount"))?.unwrap_or_default(),
                fees: money(&l.fees, &what("fees"))?.unwrap_or_default(),
                status: Some(status.clone()),
                marketplace: self.marketplace.clone(),
                seller_account: l.seller_account,
            };
            row.checked_revenue().map_err(|e| {
                ApiError::unprocessable("invalid_line", format!("{}: {e}", what("quantity")))
            })?;
            lines.push(row);
        }
        Ok(Intent::Order {
            order_id: self.order_id,
            lines,
            status,
        })
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusIn {
    pub status: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyIn {
    pub sku: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub sessions: Option<u64>,
    pub bsr: Option<u64>,
    pub reviews: Option<u64>,
    pub rating: Option<Money>,
}

impl DailyIn {
    fn row(self) -> ApiResult<DailyRow> {
        let date = self.date.parse().map_err(|e| {
            ApiError::unprocessable("invalid_date", format!("date: '{}': {e}", self.date))
        })?;
        Ok(DailyRow {
            rating: money(&self.rating, "rating")?,
            sku: self.sku,
            date,
            sessions: self.sessions,
            bsr: self.bsr,
            reviews: self.reviews,
        })
    }
}

/// The fields of a product that change on their own; a key present with
/// `null` clears the value.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub price: Option<Option<Money>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>)]
    pub cost: Option<Option<Money>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<u64>)]
    pub inventory: Option<Option<u64>>,
}

impl ProductPatch {
    fn changes(self, sku: &str) -> ApiResult<Vec<Change>> {
        let mut out = Vec::new();
        let set = |value| Change::SetProductValue {
            sku: sku.to_owned(),
            value,
        };
        if let Some(p) = self.price {
            out.push(set(ProductValue::Price(money(&p, "price")?)));
        }
        if let Some(c) = self.cost {
            out.push(set(ProductValue::Cost(money(&c, "cost")?)));
        }
        if let Some(i) = self.inventory {
            out.push(set(ProductValue::Inventory(i)));
        }
        if out.is_empty() {
            return Err(ApiError::unprocessable(
                "empty_patch",
                "give price, cost and/or inventory",
            ));
        }
        Ok(out)
    }
}

/// What a change did.
#[derive(Serialize, ToSchema)]
pub struct Applied {
    /// Segment entries and exits and tier moves it caused.
    pub events: usize,
}

async fn apply(scope: &Scope, intents: Vec<Intent>) -> ApiResult<Json<Applied>> {
    let engine = scope.engine().await?;
    let mut events = 0;
    for r in engine.apply(intents).await? {
        events += r?.len();
    }
    Ok(Json(Applied { events }))
}

/// Creates or replaces a product.
#[utoipa::path(post, path = "/api/v1/stores/{store}/products", tag = "data",
    params(("store" = String, Path)), request_body = ProductIn,
    responses((status = 200, body = Applied), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn upsert_product(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<ProductIn>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Product, Right::Edit)?;
    apply(
        &scope,
        vec![Intent::Change(Change::UpsertProduct(body.row()?), None)],
    )
    .await
}

/// A product with every field of the product table.
#[utoipa::path(get, path = "/api/v1/stores/{store}/products/{sku}", tag = "data",
    params(("store" = String, Path), ("sku" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_product(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, sku)): Path<(String, String)>,
) -> ApiResult<Json<Row>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Product, Right::Read)?;
    entity_row(&scope, Kind::Product, &sku).await.map(Json)
}

/// Deletes a product (refused while order lines name it).
#[utoipa::path(delete, path = "/api/v1/stores/{store}/products/{sku}", tag = "data",
    params(("store" = String, Path), ("sku" = String, Path)),
    responses((status = 200, body = Applied), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn delete_product(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, sku)): Path<(String, String)>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Product, Right::Edit)?;
    exists(&scope, Kind::Product, &sku).await?;
    apply(
        &scope,
        vec![Intent::Change(Change::DeleteProduct(sku), None)],
    )
    .await
}

/// Changes a product's price, cost and/or inventory.
#[utoipa::path(patch, path = "/api/v1/stores/{store}/products/{sku}", tag = "data",
    params(("store" = String, Path), ("sku" = String, Path)), request_body = ProductPatch,
    responses((status = 200, body = Applied), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_product(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, sku)): Path<(String, String)>,
    Body(body): Body<ProductPatch>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Product, Right::Edit)?;
    exists(&scope, Kind::Product, &sku).await?;
    let intents = body
        .changes(&sku)?
        .into_iter()
        .map(|c| Intent::Change(c, None))
        .collect();
    apply(&scope, intents).await
}

async fn exists(scope: &Scope, kind: Kind, id: &str) -> ApiResult<()> {
    let engine = scope.engine().await?;
    let id2 = id.to_owned();
    if engine
        .with(move |live| live.engine().has_entity(kind, &id2))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no {kind} '{id}'")))
    }
}

/// Creates or replaces a customer.
#[utoipa::path(post, path = "/api/v1/stores/{store}/customers", tag = "data",
    params(("store" = String, Path)), request_body = CustomerIn,
    responses((status = 200, body = Applied), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn upsert_customer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<CustomerIn>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Customer, Right::Edit)?;
    apply(
        &scope,
        vec![Intent::Change(Change::UpsertCustomer(body.row()?), None)],
    )
    .await
}

/// A customer with every field, their current tier included.
#[utoipa::path(get, path = "/api/v1/stores/{store}/customers/{customer_id}", tag = "data",
    params(("store" = String, Path), ("customer_id" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn get_customer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, id)): Path<(String, String)>,
) -> ApiResult<Json<Row>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Customer, Right::Read)?;
    entity_row(&scope, Kind::Customer, &id).await.map(Json)
}

/// Deletes a customer; their orders stay, as an anonymous buyer's.
#[utoipa::path(delete, path = "/api/v1/stores/{store}/customers/{customer_id}", tag = "data",
    params(("store" = String, Path), ("customer_id" = String, Path)),
    responses((status = 200, body = Applied), (status = 404, body = Problem)))]
pub async fn delete_customer(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, id)): Path<(String, String)>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Customer, Right::Edit)?;
    exists(&scope, Kind::Customer, &id).await?;
    apply(
        &scope,
        vec![Intent::Change(Change::DeleteCustomer(id), None)],
    )
    .await
}

/// Adds an order with its lines (a repeated post adds nothing; a longer
/// one adds the new lines; another status changes it).
#[utoipa::path(post, path = "/api/v1/stores/{store}/orders", tag = "data",
    params(("store" = String, Path)), request_body = OrderIn,
    responses((status = 200, body = Applied), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn add_order(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<OrderIn>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_order_writes()?;
    apply(&scope, vec![body.intent()?]).await
}

/// An order with its lines and, for a caller who may read customer
/// segments, its customer and their current tier.
#[utoipa::path(get, path = "/api/v1/stores/{store}/orders/{order_id}", tag = "data",
    params(("store" = String, Path), ("order_id" = String, Path)),
    responses((status = 200, body = Object), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_order(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, id)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_order_reads()?;
    // Who bought is customer data: a product reader sees what was sold.
    let customers = scope.module(Kind::Customer) >= Right::Read;
    let engine = scope.engine().await?;
    let snap = engine.snapshot().await?;
    let o = snap
        .order(&id)
        .ok_or_else(|| ApiError::not_found(format!("no order '{id}'")))?;
    let d = snap.engine.data();
    let oi = o as usize;
    let lines: Vec<serde_json::Value> = snap
        .lines_of(o)
        .iter()
        .map(|&l| {
            let row = d.line_row(l as usize);
            serde_json::json!({
                "sku": row.sku,
                "quantity": row.quantity,
                "unit_price": row.unit_price.to_string(),
                "discount": row.discount.to_string(),
                "fees": row.fees.to_string(),
                "revenue": d.lines.revenue[l as usize].to_string(),
                "seller_account": row.seller_account,
            })
        })
        .collect();
    let mut out = serde_json::json!({
        "order_id": id,
        "ordered_at": instant(d.orders.ordered_at[oi]),
        "status": d.orders.status.get(oi),
        "marketplace": d.orders.marketplace.get(oi),
        "lines": lines,
    });
    if customers {
        let customer = d.orders.customer[oi];
        let customer_id = (customer != strata_data::NO_CUSTOMER)
            .then(|| snap.engine.id(Kind::Customer, customer).to_owned());
        let tier = match &customer_id {
            Some(c) => {
                let c = c.clone();
                engine
                    .with(move |live| live.engine().tier(&c).map(str::to_owned))
                    .await?
            }
            None => None,
        };
        out["customer_id"] = serde_json::json!(customer_id);
        out["customer_tier"] = serde_json::json!(tier);
    }
    Ok(Json(out))
}

/// Changes an order's status (`cancelled` and `refunded` stop it counting).
#[utoipa::path(put, path = "/api/v1/stores/{store}/orders/{order_id}/status", tag = "data",
    params(("store" = String, Path), ("order_id" = String, Path)), request_body = StatusIn,
    responses((status = 200, body = Applied), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_order_status(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, order_id)): Path<(String, String)>,
    Body(body): Body<StatusIn>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_order_writes()?;
    let engine = scope.engine().await?;
    let id = order_id.clone();
    if !engine
        .with(move |live| live.engine().order_state(&id).is_some())
        .await?
    {
        return Err(ApiError::not_found(format!("no order '{order_id}'")));
    }
    apply(
        &scope,
        vec![Intent::Change(
            Change::SetOrderStatus {
                order_id,
                status: body.status,
            },
            None,
        )],
    )
    .await
}

/// Adds or replaces the daily row of a product and date.
#[utoipa::path(post, path = "/api/v1/stores/{store}/daily", tag = "data",
    params(("store" = String, Path)), request_body = DailyIn,
    responses((status = 200, body = Applied), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_daily(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body<DailyIn>,
) -> ApiResult<Json<Applied>> {
    let scope = scope(&state, caller, &store).await?;
    scope.need_module(Kind::Product, Right::Edit)?;
    apply(
        &scope,
        vec![Intent::Change(Change::PutDaily(body.row()?), None)],
    )
    .await
}

/// One line of an NDJSON batch.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchItem {
    Product(ProductIn),
    DeleteProduct {
        sku: String,
    },
    /// The fields of [`ProductPatch`], written out: a flattened struct
    /// would take unknown fields silently.
    ProductValues {
        sku: String,
        #[serde(default, deserialize_with = "super::present")]
        #[schema(value_type = Option<String>)]
        price: Option<Option<Money>>,
        #[serde(default, deserialize_with = "super::present")]
        #[schema(value_type = Option<String>)]
        cost: Option<Option<Money>>,
        #[serde(default, deserialize_with = "super::present")]
        #[schema(value_type = Option<u64>)]
        inventory: Option<Option<u64>>,
    },
    Customer(CustomerIn),
    DeleteCustomer {
        customer_id: String,
    },
    Order(OrderIn),
    OrderStatus {
        order_id: String,
        status: String,
    },
    Daily(DailyIn),
}

#[derive(Serialize, ToSchema)]
pub struct Refused {
    /// 1-based line of the body.
    pub line: usize,
    pub problem: Problem,
}

#[derive(Serialize, ToSchema)]
pub struct BatchResult {
    /// Lines applied and committed.
    pub accepted: usize,
    /// Lines the engine refused; nothing of them was applied.
    pub refused: Vec<Refused>,
    pub events: usize,
}

/// Applies an NDJSON body, one change per line (`{"type": "order", ...}`;
/// types: product, delete_product, product_values, customer,
/// delete_customer, order, order_status, daily). The whole body is checked
/// first: a line that is not a valid item refuses the batch (400, naming
/// the line) with nothing applied. Then every line is applied in order and
/// committed in one transaction; a line the engine refuses is listed and
/// the others stand.
#[utoipa::path(post, path = "/api/v1/stores/{store}/batch", tag = "data",
    params(("store" = String, Path)),
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = BatchResult), (status = 400, body = Problem), (status = 413, body = Problem)))]
pub async fn batch(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
    body: axum::body::Body,
) -> ApiResult<Json<BatchResult>> {
    let scope = scope(&state, caller, &store).await?;
    let limits = &state.config.limits;
    let bytes: Bytes = axum::body::to_bytes(body, limits.batch_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("a batch takes at most {} bytes", limits.batch_bytes),
            )
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_ndjson", format!("the body is not UTF-8: {e}"))
    })?;
    let mut intents = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if intents.len() == limits.batch_lines {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch_too_long",
                format!("a batch takes at most {} lines", limits.batch_lines),
            ));
        }
        let n = i + 1;
        let item: BatchItem = serde_json::from_str(line).map_err(|e| {
            ApiError::bad_request("malformed_ndjson", format!("line {n}: {e}")).at_line(n)
        })?;
        let intent = item_intent(&scope, item).map_err(|e| e.at_line(n))?;
        intents.push(intent);
        lines.push(n);
    }
    let engine = scope.engine().await?;
    let results = engine.apply(intents).await?;
    let mut out = BatchResult {
        accepted: 0,
        refused: Vec::new(),
        events: 0,
    };
    for (r, line) in results.into_iter().zip(lines) {
        match r {
            Ok(events) => {
                out.accepted += 1;
                out.events += events.len();
            }
            Err(e) => out.refused.push(Refused {
                line,
                problem: ApiError::from(e).problem(),
            }),
        }
    }
    Ok(Json(out))
}

fn item_intent(scope: &Scope, item: BatchItem) -> ApiResult<Intent> {
    let change = |c| Ok(Intent::Change(c, None));
    match item {
        BatchItem::Product(p) => {
            scope.need_module(Kind::Product, Right::Edit)?;
            change(Change::UpsertProduct(p.row()?))
        }
        BatchItem::DeleteProduct { sku } => {
            scope.need_module(Kind::Product, Right::Edit)?;
            change(Change::DeleteProduct(sku))
        }
        BatchItem::ProductValues {
            sku,
            price,
            cost,
            inventory,
        } => {
            scope.need_module(Kind::Product, Right::Edit)?;
            let patch = ProductPatch {
                price,
                cost,
                inventory,
            };
            let mut changes = patch.changes(&sku)?;
            if changes.len() != 1 {
                return Err(ApiError::unprocessable(
                    "one_value_per_line",
                    "a product_values line changes one of price, cost, inventory",
                ));
            }
            change(changes.remove(0))
        }
        BatchItem::Customer(c) => {
            scope.need_module(Kind::Customer, Right::Edit)?;
            change(Change::UpsertCustomer(c.row()?))
        }
        BatchItem::DeleteCustomer { customer_id } => {
            scope.need_module(Kind::Customer, Right::Edit)?;
            change(Change::DeleteCustomer(customer_id))
        }
        BatchItem::Order(o) => {
            scope.need_order_writes()?;
            o.intent()
        }
        BatchItem::OrderStatus { order_id, status } => {
            scope.need_order_writes()?;
            change(Change::SetOrderStatus { order_id, status })
        }
        BatchItem::Daily(d) => {
            scope.need_module(Kind::Product, Right::Edit)?;
            change(Change::PutDaily(d.row()?))
        }
    }
}
