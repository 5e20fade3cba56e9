//! Login and logout, personal tokens, users, stores and who may open them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use strata_store::{ModuleRights, Right, User, UserId};
use utoipa::ToSchema;

use super::{Body, instant};
use crate::auth::{self, Caller, SESSION_COOKIE, TOKEN_PREFIX};
use crate::error::{ApiError, ApiResult, Problem};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema, Clone)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub admin: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id.0,
            email: u.email.clone(),
            admin: u.admin,
            created_at: instant(u.created_at),
        }
    }
}

/// Logs in: sets an HttpOnly session cookie and returns the user. After
/// 5 failed logins for an e-mail within 15 minutes, its logins are
/// refused (429, with `Retry-After`) until the first of them is 15
/// minutes old.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = Login,
    responses((status = 200, body = UserView), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<Arc<AppState>>,
    Body(body): Body<Login>,
) -> ApiResult<Response> {
    if let Err(wait) = state.logins.attempt(&body.email, state.now()) {
        return Ok(too_many_attempts(wait));
    }
    let email = body.email.clone();
    let found = state.pool.run(move |s| s.user_by_email(&email)).await?;
    let password = body.password;
    // Verify even for an unknown e-mail, so timing does not tell which
    // e-mails have accounts.
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, DUMMY_HASH.to_owned()),
    };
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .map_err(ApiError::internal)?;
    if ok {
        state.logins.succeeded(&body.email);
    }
    let Some(user) = user.filter(|_| ok) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "unknown e-mail or wrong password",
        ));
    };
    let secret = auth::new_secret();
    let hash = auth::secret_hash(&secret);
    let now = state.now();
    let lifetime = state.config.session_lifetime;
    let expires = now.saturating_add(i64::try_from(lifetime.as_nanos()).unwrap_or(i64::MAX));
    let id = user.id;
    state
        .pool
        .run(move |s| s.create_session(&hash, id, now, expires))
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        lifetime.as_secs(),
        if state.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    let mut res = Json(UserView::from(&user)).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// 429 for an e-mail with too many failed logins; `Retry-After` in whole
/// seconds, rounded up.
fn too_many_attempts(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut res = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed logins for this e-mail; try again in {secs} s"),
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    res
}

/// An argon2 hash of nothing anyone types, verified against when the
/// e-mail is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Wq0ZTSdDeTCXQ9QdVYHx+PpyYKAkYzO1Ivm8hLqSKxs";

/// Ends the session of the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    if let Some(hash) = caller.session {
        state.pool.run(move |s| s.delete_session(&hash)).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("strata_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(res)
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn me(caller: Caller) -> Json<UserView> {
    Json(UserView::from(&caller.user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for ("nightly sync").
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// The first characters of the token.
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub view: TokenView,
    /// The token itself: shown this once, stored only as a hash.
    pub token: String,
}

fn token_view(t: &strata_store::ApiToken) -> TokenView {
    TokenView {
        id: t.id,
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        created_at: instant(t.created_at),
        revoked_at: t.revoked_at.map(instant),
    }
}

/// The caller's API tokens, revoked ones included.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = Problem)))]
pub async fn list_tokens(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<TokenView>>> {
    let id = caller.user.id;
    let tokens = state.pool.run(move |s| s.tokens(id)).await?;
    Ok(Json(tokens.iter().map(token_view).collect()))
}

/// Creates a personal API token; the response is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = Problem)))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a token needs a name of 1 to 200 bytes",
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", auth::new_secret());
    let prefix: String = token.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let hash = auth::secret_hash(&token);
    let (id, now) = (caller.user.id, state.now());
    let p = prefix.clone();
    let created = state
        .pool
        .run(move |s| s.create_token(id, &name, &p, &hash, now))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            view: token_view(&created),
            token,
        }),
    ))
}

/// Revokes one of the caller's tokens, with immediate effect.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(token): Path<i64>,
) -> ApiResult<StatusCode> {
    let (id, now) = (caller.user.id, state.now());
    if state
        .pool
        .run(move |s| s.revoke_token(id, token, now))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "you have no active token {token}"
        )))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

/// Every user (administrators only).
#[utoipa::path(get, path = "/api/v1/users", tag = "accounts",
    responses((status = 200, body = Vec<UserView>), (status = 403, body = Problem)))]
pub async fn list_users(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<UserView>>> {
    caller.require_admin()?;
    let users = state.pool.run(|s| s.users()).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// Creates a user (administrators only).
#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", request_body = NewUser,
    responses((status = 201, body = UserView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_user(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<NewUser>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    caller.require_admin()?;
    let user = create_user_now(&state, &body.email, &body.password, body.admin).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// Checks and creates a user (the CLI's `strata user create` too).
pub fn check_new_user(email: &str, password: &str) -> ApiResult<()> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'));
    if !valid {
        return Err(ApiError::unprocessable(
            "invalid_email",
            format!("'{email}' is not an e-mail address"),
        ));
    }
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(ApiError::unprocessable(
            "weak_password",
            "a password needs at least 8 characters (and at most 1024 bytes)",
        ));
    }
    Ok(())
}

pub async fn create_user_now(
    state: &Arc<AppState>,
    email: &str,
    password: &str,
    admin: bool,
) -> ApiResult<User> {
    check_new_user(email, password)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    let email = email.trim().to_lowercase();
    let now = state.now();
    state
        .pool
        .run(move |s| s.create_user(&email, &hash, admin, now))
        .await
        .map_err(|e| match e {
            ApiError::User {
                status: StatusCode::CONFLICT,
                detail,
                ..
            } => ApiError::conflict("email_taken", detail),
            other => other,
        })
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct RightsView {
    /// `none`, `read` or `edit`.
    pub product_segments: String,
    pub customer_segments: String,
    pub tiers: String,
}

impl RightsView {
    pub fn of(r: ModuleRights) -> RightsView {
        RightsView {
            product_segments: r.product_segments.as_str().to_owned(),
            customer_segments: r.customer_segments.as_str().to_owned(),
            tiers: r.tiers.as_str().to_owned(),
        }
    }

    fn parse(&self) -> ApiResult<ModuleRights> {
        let one = |s: &str, what: &str| {
            Right::parse(s).ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_right",
                    format!("{what}: '{s}' is not none, read or edit"),
                )
            })
        };
        Ok(ModuleRights {
            product_segments: one(&self.product_segments, "product_segments")?,
            customer_segments: one(&self.customer_segments, "customer_segments")?,
            tiers: one(&self.tiers, "tiers")?,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct StoreView {
    pub name: String,
    pub timezone: String,
    pub currency: String,
    /// The engine's clock.
    pub clock: Option<String>,
    /// The caller's rights there.
    pub rights: RightsView,
}

fn store_view(t: &strata_store::Tenant, rights: ModuleRights) -> StoreView {
    StoreView {
        name: t.name.clone(),
        timezone: t.timezone.clone(),
        currency: t.currency.clone(),
        clock: t.clock.map(instant),
        rights: RightsView::of(rights),
    }
}

/// The stores the caller may open.
#[utoipa::path(get, path = "/api/v1/stores", tag = "accounts",
    responses((status = 200, body = Vec<StoreView>), (status = 401, body = Problem)))]
pub async fn list_stores(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<StoreView>>> {
    let (id, admin) = (caller.user.id, caller.user.admin);
    let list = state
        .pool
        .run(move |s| {
            let tenants = s.tenants()?;
            if admin {
                return Ok(tenants
                    .into_iter()
                    .map(|t| (t, auth::ALL_RIGHTS))
                    .collect::<Vec<_>>());
            }
            let mine = s.tenants_of(id)?;
            Ok(tenants
                .into_iter()
                .filter_map(|t| mine.iter().find(|(i, _)| *i == t.id).map(|(_, r)| (t, *r)))
                .collect())
        })
        .await?;
    Ok(Json(list.iter().map(|(t, r)| store_view(t, *r)).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStore {
    /// Letters, digits, `-` and `_`.
    pub name: String,
}

/// Creates an empty store (administrators only).
#[utoipa::path(post, path = "/api/v1/stores", tag = "accounts", request_body = NewStore,
    responses((status = 201, body = StoreView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_store(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<NewStore>,
) -> ApiResult<(StatusCode, Json<StoreView>)> {
    caller.require_admin()?;
    let name = body.name;
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "a store name is 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    let n = name.clone();
    let tenant = state
        .pool
        .run(move |s| {
            if s.tenants()?.iter().any(|t| t.name == n) {
                return Ok(None);
            }
            s.tenant(&n).map(Some)
        })
        .await?
        .ok_or_else(|| ApiError::conflict("store_exists", format!("a store '{name}' exists")))?;
    Ok((
        StatusCode::CREATED,
        Json(store_view(&tenant, auth::ALL_RIGHTS)),
    ))
}

/// One store, with the caller's rights there.
#[utoipa::path(get, path = "/api/v1/stores/{store}", tag = "accounts",
    params(("store" = String, Path)),
    responses((status = 200, body = StoreView), (status = 404, body = Problem)))]
pub async fn get_store(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<StoreView>> {
    let scope = auth::scope(&state, caller, &store).await?;
    Ok(Json(store_view(&scope.tenant, scope.rights)))
}

#[derive(Serialize, ToSchema)]
pub struct AccessView {
    pub user: UserView,
    pub rights: RightsView,
}

/// Who may open the store, with which rights (administrators only).
#[utoipa::path(get, path = "/api/v1/stores/{store}/access", tag = "accounts",
    params(("store" = String, Path)),
    responses((status = 200, body = Vec<AccessView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_access(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<Vec<AccessView>>> {
    let scope = auth::scope(&state, caller, &store).await?;
    scope.caller.require_admin()?;
    let id = scope.tenant.id;
    let list = state.pool.run(move |s| s.accesses(id)).await?;
    Ok(Json(
        list.iter()
            .map(|(u, r)| AccessView {
                user: UserView::from(u),
                rights: RightsView::of(*r),
            })
            .collect(),
    ))
}

/// Grants or changes a user's rights in the store (administrators only).
#[utoipa::path(put, path = "/api/v1/stores/{store}/access/{user_id}", tag = "accounts",
    params(("store" = String, Path), ("user_id" = i64, Path)), request_body = RightsView,
    responses((status = 200, body = AccessView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn put_access(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, user)): Path<(String, i64)>,
    Body(body): Body<RightsView>,
) -> ApiResult<Json<AccessView>> {
    let scope = auth::scope(&state, caller, &store).await?;
    scope.caller.require_admin()?;
    let rights = body.parse()?;
    let id = scope.tenant.id;
    let user = state
        .pool
        .run(move |s| {
            let Some(u) = s.user(UserId(user))? else {
                return Ok(None);
            };
            s.set_access(id, u.id, rights)?;
            Ok(Some(u))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {user}")))?;
    Ok(Json(AccessView {
        user: UserView::from(&user),
        rights: RightsView::of(rights),
    }))
}

/// Takes a user's access to the store away (administrators only).
#[utoipa::path(delete, path = "/api/v1/stores/{store}/access/{user_id}", tag = "accounts",
    params(("store" = String, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_access(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((store, user)): Path<(String, i64)>,
) -> ApiResult<StatusCode> {
    let scope = auth::scope(&state, caller, &store).await?;
    scope.caller.require_admin()?;
    let id = scope.tenant.id;
    if state
        .pool
        .run(move |s| s.remove_access(id, UserId(user)))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "user {user} has no access to '{store}'"
        )))
    }
}
