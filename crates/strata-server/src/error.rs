//! Errors as `application/problem+json` (RFC 9457), each with a stable
//! `code` a client can branch on. This is the one place errors become
//! statuses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Where in a rule a problem is, for the builder to underline it.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct RulePosition {
    /// Byte offsets into the rule text, end exclusive.
    pub start: u32,
    pub end: u32,
    /// 1-based line and column of `start`.
    pub line: usize,
    pub column: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// The body of every error response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `https://strata.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable, machine-readable.
    pub code: String,
    /// For a refused rule: where and what.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RulePosition>,
    /// For a segment that cannot be deleted: what refers to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<Vec<String>>,
    /// For a batch: the 1-based line of the request body at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    User {
        status: StatusCode,
        code: &'static str,
        detail: String,
        rule: Option<Box<RulePosition>>,
        uses: Option<Vec<String>>,
        line: Option<usize>,
    },
    /// A failure of ours or of the database: logged, shown without detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::User {
            status,
            code,
            detail: detail.into(),
            rule: None,
            uses: None,
            line: None,
        }
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in, or send an API token as 'Authorization: Bearer <token>'",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    /// A rule that does not parse or check, pointing into its text.
    pub fn rule(err: &strata_engine::RuleError) -> ApiError {
        let d = &err.diagnostic;
        let (line, column) = d.line_col(&err.source);
        ApiError::User {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_rule",
            detail: d.message.clone(),
            rule: Some(Box::new(RulePosition {
                start: d.span.start,
                end: d.span.end,
                line,
                column,
                message: d.message.clone(),
                help: d.help.clone(),
            })),
            uses: None,
            line: None,
        }
    }

    pub fn at_line(mut self, n: usize) -> ApiError {
        if let ApiError::User { line, .. } = &mut self {
            *line = Some(n);
        }
        self
    }

    pub fn with_uses(mut self, list: Vec<String>) -> ApiError {
        if let ApiError::User { uses, .. } = &mut self {
            *uses = Some(list);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::User { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn problem(&self) -> Problem {
        match self {
            ApiError::User {
                status,
                code,
                detail,
                rule,
                uses,
                line,
            } => Problem {
                kind: format!("https://strata.dev/problems/{code}"),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: detail.clone(),
                code: (*code).to_owned(),
                rule: rule.as_deref().cloned(),
                uses: uses.clone(),
                line: *line,
            },
            ApiError::Internal(_) => Problem {
                kind: "https://strata.dev/problems/internal".to_owned(),
                title: "Internal Server Error".to_owned(),
                status: 500,
                detail: "the server failed; the error is in its log".to_owned(),
                code: "internal".to_owned(),
                rule: None,
                uses: None,
                line: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!("{e}");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

/// Makes an error response that is not a problem document into one:
/// axum answers some requests itself (a method the route does not take, a
/// path parameter that does not parse) with plain text or nothing, and
/// every error is to be `application/problem+json` with a `code`.
pub async fn problems_only(res: Response) -> Response {
    let status = res.status();
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    // The text of a refusal says what was wrong; a failure's stays in the
    // server.
    let text = if status.is_client_error() {
        axum::body::to_bytes(body, 4096)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = ApiError::new(status, code, detail).into_response();
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}

impl From<strata_store::StoreError> for ApiError {
    fn from(e: strata_store::StoreError) -> ApiError {
        use strata_store::StoreError;
        match e {
            StoreError::Invalid(m) => ApiError::unprocessable("invalid", m),
            StoreError::Conflict(m) => ApiError::conflict("conflict", m),
            other => ApiError::internal(other),
        }
    }
}

impl From<strata_live::LiveError> for ApiError {
    fn from(e: strata_live::LiveError) -> ApiError {
        use strata_live::LiveError;
        match e {
            LiveError::Rule(r) => ApiError::rule(&r),
            LiveError::Invalid(m) => ApiError::unprocessable("invalid_change", m),
            LiveError::InUse { name, users } => ApiError::conflict(
                "segment_in_use",
                format!("segment '{name}' is used by {}", users.join(", ")),
            )
            .with_uses(users),
            LiveError::Engine(strata_engine::EngineError::Rule(r)) => ApiError::rule(&r),
            LiveError::Engine(strata_engine::EngineError::OutOfRange(m)) => {
                ApiError::unprocessable("out_of_range", m)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<strata_store::live::LiveStoreError> for ApiError {
    fn from(e: strata_store::live::LiveStoreError) -> ApiError {
        use strata_store::live::LiveStoreError;
        match e {
            LiveStoreError::Refused(e) => e.into(),
            LiveStoreError::Store(e) => e.into(),
            LiveStoreError::Broken(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_failed",
                format!("{m}; restart the server"),
            ),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
