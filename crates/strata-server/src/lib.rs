//! `strata serve`: Strata's HTTP API.
//!
//! Only this crate knows HTTP and the JSON wire types. It holds, per store
//! (tenant), one live engine on a thread of its own (`tenant.rs`), fed by
//! the data endpoints and read by the others; accounts, rights and the
//! event log are read from the store through a small connection pool
//! (`state.rs`). The OpenAPI document is generated from the handlers
//! (`utoipa`), and served with a browsable page at `/api/v1/docs`.
//!
//! Routes, rights and wire types: see `api/` and the OpenAPI document;
//! the rights model is in [`auth`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use utoipa_swagger_ui::SwaggerUi;

pub mod api;
pub mod auth;
pub mod demo;
pub mod error;
pub mod state;
pub mod templates;
pub mod tenant;
pub mod view;

pub use error::{ApiError, Problem};
pub use state::{AppState, Clock, Config, Limits, ManualClock, SystemClock};

/// The whole application: the API, its OpenAPI document and docs page.
pub fn app(state: Arc<AppState>) -> Router {
    let (api, openapi) = api::router();
    let limit = state.config.limits.body_bytes;
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", openapi))
        .route("/", get(|| async { Redirect::to("/api/v1/docs/") }))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_route",
                "no such endpoint; see /api/v1/docs",
            )
            .into_response()
        })
        // The NDJSON batch endpoint reads its body with its own, larger
        // limit; every other body is capped here.
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(error::problems_only))
        .with_state(state)
}

/// Serves until `shutdown` resolves; engines stop after the last request.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(Arc::clone(&state));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let s = Arc::clone(&state);
    let _ = tokio::task::spawn_blocking(move || s.shutdown()).await;
    served
}
