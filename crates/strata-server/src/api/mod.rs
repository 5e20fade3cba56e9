//! The `/api/v1` routes. Each module holds its handlers, labelled for the
//! OpenAPI document, and the wire types they speak.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

pub mod accounts;
pub mod data;
pub mod events;
pub mod members;
pub mod segments;
pub mod tiers;

/// A JSON body whose refusal is a problem document, not axum's text.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the server takes",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as 'Content-Type: application/json'",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => ApiError::unprocessable("invalid_body", e.body_text()),
        _ => ApiError::bad_request("malformed_json", e.body_text()),
    }
}

/// Query parameters whose refusal is a problem document.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Strata",
        description = "Segments of customers and products that stay current in real time.\n\n\
            Log in with `POST /api/v1/auth/login` (the session cookie then authenticates \
            the docs page's requests), or create a personal token with `POST /api/v1/tokens` \
            and send it as `Authorization: Bearer <token>`. Every error is \
            `application/problem+json` with a stable `code`."
    ),
    modifiers(&Security),
    tags(
        (name = "accounts", description = "Login, tokens, users, stores and access"),
        (name = "data", description = "Products, customers, orders and daily rows in"),
        (name = "segments", description = "Segments, previews, members, stats, sharing, templates"),
        (name = "tiers", description = "Tier schemes and distribution"),
        (name = "events", description = "Enter/exit and tier events: log and live streams"),
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// Every route, with the OpenAPI document built from the same handlers.
pub fn router() -> (axum::Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::login))
        .routes(routes!(accounts::logout))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::list_tokens, accounts::create_token))
        .routes(routes!(accounts::revoke_token))
        .routes(routes!(accounts::list_users, accounts::create_user))
        .routes(routes!(accounts::list_stores, accounts::create_store))
        .routes(routes!(accounts::get_store))
        .routes(routes!(accounts::list_access))
        .routes(routes!(accounts::put_access, accounts::remove_access))
        .routes(routes!(data::upsert_product))
        .routes(routes!(
            data::get_product,
            data::delete_product,
            data::patch_product
        ))
        .routes(routes!(data::upsert_customer))
        .routes(routes!(data::get_customer, data::delete_customer))
        .routes(routes!(data::add_order))
        .routes(routes!(data::get_order))
        .routes(routes!(data::set_order_status))
        .routes(routes!(data::put_daily))
        .routes(routes!(data::batch))
        .routes(routes!(segments::list_segments, segments::create_segment))
        .routes(routes!(segments::preview))
        .routes(routes!(
            segments::get_segment,
            segments::update_segment,
            segments::delete_segment
        ))
        .routes(routes!(segments::uses))
        .routes(routes!(segments::stats))
        .routes(routes!(segments::list_shares))
        .routes(routes!(segments::put_share, segments::revoke_share))
        .routes(routes!(segments::list_templates))
        .routes(routes!(segments::instantiate_template))
        .routes(routes!(members::members))
        .routes(routes!(members::members_csv))
        .routes(routes!(tiers::list_tiers))
        .routes(routes!(tiers::put_tier, tiers::delete_tier))
        .routes(routes!(tiers::distribution))
        .routes(routes!(events::log))
        .routes(routes!(events::stream))
        .routes(routes!(events::segment_log))
        .routes(routes!(events::segment_stream))
        .split_for_parts()
}

/// An instant as RFC 3339, UTC (as member tables print it).
pub use strata_engine::cell::format_instant as instant;

/// For `Option<Option<T>>` fields: a key absent is `None`, a key with
/// `null` is `Some(None)` (clear the value).
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// An instant from RFC 3339 (or a date, meaning its midnight UTC).
pub fn parse_instant(s: &str, what: &str) -> Result<strata_data::Nanos, ApiError> {
    let ts = s
        .parse::<jiff::Timestamp>()
        .or_else(|_| {
            s.parse::<jiff::civil::Date>()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()))
        })
        .map_err(|e| ApiError::unprocessable("invalid_instant", format!("{what}: '{s}': {e}")))?;
    i64::try_from(ts.as_nanosecond()).map_err(|_| {
        ApiError::unprocessable("invalid_instant", format!("{what}: '{s}' is out of range"))
    })
}

pub fn kind_name(kind: strata_lang::catalog::Kind) -> &'static str {
    match kind {
        strata_lang::catalog::Kind::Customer => "customer",
        strata_lang::catalog::Kind::Product => "product",
    }
}
