//! Who is calling, and what they may do.
//!
//! A caller is identified by a session cookie (the web UI) or a personal
//! API token (`Authorization: Bearer`). Both secrets are random 256-bit
//! values; the store holds only their SHA-256, which is enough for secrets
//! that cannot be guessed (passwords, which can, get argon2).
//!
//! # The rights model
//!
//! - An **administrator** may do everything in every store.
//! - Anyone else sees a store only with an access grant; without one, the
//!   store does not exist for them (404, never 403, so its name leaks
//!   nothing).
//! - A grant carries **module rights**: product segments, customer
//!   segments, tiers, each `none`, `read` or `edit`. A module right
//!   missing is 403. Data writes need `edit` on the module they feed
//!   (products and daily rows: product segments; customers: customer
//!   segments; orders: either), reads `read` (an order: either, and its
//!   customer and their tier are shown only with customer segments).
//! - A **segment** is private to its owner unless shared. Imported
//!   segments (no owner) belong to the store: everyone with the module
//!   right reads them, and `edit` changes or deletes them.
//! - A **share** gives another user `read`, `edit` and/or `delete` on one
//!   segment, until an optional expiry. Any share lets its holder read the
//!   segment; an expired or revoked share is no share (the segment is 404
//!   again). Edit and delete also need the module's `edit`.
//! - What one cannot see, one cannot reach another way: a rule or members
//!   filter naming a segment the caller cannot see is refused as naming an
//!   unknown segment (a rule being changed keeps the names it had), lists
//!   of uses and refusals to delete leave it out, and an open event stream
//!   ends once the token, the session, the access or the share behind it
//!   is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use strata_data::Nanos;
use strata_lang::catalog::Kind;
use strata_store::{ModuleRights, Right, SegmentShare, Tenant, User};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tenant::TenantHandle;

pub const SESSION_COOKIE: &str = "strata_session";
/// API tokens start with this, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "strata_";

pub fn hash_password(password: &str) -> ApiResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A new random secret, URL-safe.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// How many e-mails [`LoginThrottle`] keeps failures of: beyond, the one
/// that failed longest ago is forgotten first.
pub const LOGIN_ENTRIES: usize = 10_000;

/// Failed logins per e-mail (trimmed, lower-cased), to make guessing a
/// password slow: after `limit` failures within `window` of the server
/// clock, the e-mail's logins are refused until the oldest of those
/// failures is `window` old. A login counts as failed from the moment it
/// is let through until its password proves right, so that concurrent
/// guesses cannot all pass the check before the first fails; a successful
/// login forgets the e-mail's failures. Unknown e-mails are counted alike,
/// so a refusal tells nothing of which e-mails have accounts.
pub struct LoginThrottle {
    limit: usize,
    window: Nanos,
    capacity: usize,
    /// Per e-mail, its last `limit` failures, oldest first.
    failures: Mutex<HashMap<String, VecDeque<Nanos>>>,
}

impl LoginThrottle {
    pub fn new(limit: usize, window: Duration, capacity: usize) -> LoginThrottle {
        LoginThrottle {
            limit: limit.max(1),
            window: i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
            capacity: capacity.max(1),
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// Lets a login for `email` through at `now`, counting it as failed
    /// until [`LoginThrottle::succeeded`]; or, while the e-mail is refused,
    /// how long until it may try again.
    pub fn attempt(&self, email: &str, now: Nanos) -> Result<(), Duration> {
        let key = LoginThrottle::key(email);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let since = now.saturating_sub(self.window);
        if let Some(times) = map.get_mut(&key) {
            times.retain(|&t| t > since);
            if times.len() >= self.limit {
                let until = times[0].saturating_add(self.window);
                let wait = u64::try_from(until.saturating_sub(now)).unwrap_or(0);
                return Err(Duration::from_nanos(wait));
            }
        } else if map.len() >= self.capacity {
            map.retain(|_, times| times.back().is_some_and(|&t| t > since));
            if map.len() >= self.capacity
                && let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, times)| times.back().copied())
                    .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        let times = map.entry(key).or_default();
        times.push_back(now);
        while times.len() > self.limit {
            times.pop_front();
        }
        Ok(())
    }

    /// The password was right: the e-mail's failures are forgotten.
    pub fn succeeded(&self, email: &str) {
        let key = LoginThrottle::key(email);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// How many e-mails have failures kept.
    pub fn len(&self) -> usize {
        self.failures.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The authenticated user of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    /// The session's secret hash, when the caller came by cookie.
    pub session: Option<String>,
    /// The API token's hash, when the caller came with one.
    pub token: Option<String>,
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> ApiResult<Caller> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer {
            let hash = secret_hash(token);
            let h = hash.clone();
            let user = state.pool.run(move |s| s.token_user(&h)).await?;
            return user
                .map(|user| Caller {
                    user,
                    session: None,
                    token: Some(hash),
                })
                .ok_or_else(ApiError::unauthenticated);
        }
        if let Some(secret) = cookie_value(parts, SESSION_COOKIE) {
            let hash = secret_hash(secret);
            let now = state.now();
            let h = hash.clone();
            let user = state.pool.run(move |s| s.session_user(&h, now)).await?;
            return user
                .map(|user| Caller {
                    user,
                    session: Some(hash),
                    token: None,
                })
                .ok_or_else(ApiError::unauthenticated);
        }
        Err(ApiError::unauthenticated())
    }
}

impl Caller {
    /// The caller as the store has them now, or `None` once the token is
    /// revoked, the session ended or the user gone: a long answer (an
    /// event stream) asks again as it goes, so that taking rights away
    /// takes effect at once there too.
    pub async fn refreshed(&self, state: &Arc<AppState>) -> ApiResult<Option<Caller>> {
        let (token, session) = (self.token.clone(), self.session.clone());
        let (id, now) = (self.user.id, state.now());
        let user = state
            .pool
            .run(move |s| match (&token, &session) {
                (Some(h), _) => s.token_user(h),
                (None, Some(h)) => s.session_user(h, now),
                (None, None) => Ok(None),
            })
            .await?;
        Ok(user.filter(|u| u.id == id).map(|user| Caller {
            user,
            session: self.session.clone(),
            token: self.token.clone(),
        }))
    }

    pub fn require_admin(&self) -> ApiResult<()> {
        if self.user.admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an administrator may do this"))
        }
    }
}

/// A caller inside one store, with their rights there.
#[derive(Clone)]
pub struct Scope {
    pub caller: Caller,
    pub tenant: Tenant,
    pub rights: ModuleRights,
    pub state: Arc<AppState>,
}

pub const ALL_RIGHTS: ModuleRights = ModuleRights {
    product_segments: Right::Edit,
    customer_segments: Right::Edit,
    tiers: Right::Edit,
};

/// The store named in a path, as the caller may see it: 404 if it does
/// not exist or the caller has no access to it.
pub async fn scope(state: &Arc<AppState>, caller: Caller, store: &str) -> ApiResult<Scope> {
    let name = store.to_owned();
    let user = caller.user.id;
    let admin = caller.user.admin;
    let found = state
        .pool
        .run(move |s| {
            let tenants = s.tenants()?;
            let Some(t) = tenants.into_iter().find(|t| t.name == name) else {
                return Ok(None);
            };
            let rights = if admin {
                Some(ALL_RIGHTS)
            } else {
                s.access(t.id, user)?
            };
            Ok(rights.map(|r| (t, r)))
        })
        .await?;
    match found {
        Some((tenant, rights)) => Ok(Scope {
            caller,
            tenant,
            rights,
            state: Arc::clone(state),
        }),
        None => Err(ApiError::not_found(format!("no store '{store}'"))),
    }
}

/// What a caller may do with one segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentRights {
    pub read: bool,
    pub edit: bool,
    pub delete: bool,
    /// Owner or administrator: may also share it.
    pub manage: bool,
}

impl Scope {
    pub fn module(&self, kind: Kind) -> Right {
        match kind {
            Kind::Customer => self.rights.customer_segments,
            Kind::Product => self.rights.product_segments,
        }
    }

    pub fn need_module(&self, kind: Kind, right: Right) -> ApiResult<()> {
        if self.module(kind) >= right {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "you need the '{}' right on {kind} segments in this store",
                right.as_str()
            )))
        }
    }

    pub fn need_tiers(&self, right: Right) -> ApiResult<()> {
        if self.rights.tiers >= right {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "you need the '{}' right on tiers in this store",
                right.as_str()
            )))
        }
    }

    /// Orders feed both modules: editing either lets one post them.
    pub fn need_order_writes(&self) -> ApiResult<()> {
        if self.rights.customer_segments == Right::Edit
            || self.rights.product_segments == Right::Edit
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "you need the 'edit' right on customer or product segments in this store",
            ))
        }
    }

    /// Orders belong to both modules: reading either lets one read them
    /// (their customer, only with customer segments: see `get_order`).
    pub fn need_order_reads(&self) -> ApiResult<()> {
        if self.rights.customer_segments >= Right::Read
            || self.rights.product_segments >= Right::Read
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "you need the 'read' right on customer or product segments in this store",
            ))
        }
    }

    pub async fn engine(&self) -> ApiResult<Arc<TenantHandle>> {
        self.state.tenant(&self.tenant).await
    }

    /// The caller's rights on a segment of `kind` owned by `owner`, given
    /// the caller's share on it (if any). `None`: the segment is not
    /// visible to the caller (report it as missing).
    pub fn segment_rights(
        &self,
        kind: Kind,
        owner: Option<strata_store::UserId>,
        share: Option<&SegmentShare>,
        now: strata_data::Nanos,
    ) -> Option<SegmentRights> {
        let module = self.module(kind);
        if self.caller.user.admin {
            return Some(SegmentRights {
                read: true,
                edit: true,
                delete: true,
                manage: true,
            });
        }
        if module == Right::None {
            return None;
        }
        let can_edit = module == Right::Edit;
        let me = self.caller.user.id;
        if owner == Some(me) || owner.is_none() {
            let mine = owner == Some(me);
            return Some(SegmentRights {
                read: true,
                edit: can_edit,
                delete: can_edit,
                manage: mine,
            });
        }
        let share = share.filter(|s| s.user == me && s.expires_at.is_none_or(|t| now < t))?;
        Some(SegmentRights {
            read: true,
            edit: share.edit && can_edit,
            delete: share.delete && can_edit,
            manage: false,
        })
    }
}

/// 403 with a reason for a right the caller lacks on a visible segment.
pub fn lacking(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("you may not {what} this segment"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::LoginThrottle;

    const MINUTE: i64 = 60_000_000_000;

    #[test]
    fn failures_within_the_window_refuse_until_the_oldest_leaves_it() {
        let t = LoginThrottle::new(3, Duration::from_secs(15 * 60), 100);
        for i in 0..3 {
            assert_eq!(t.attempt("Ann@Example.com ", i * MINUTE), Ok(()));
        }
        assert_eq!(
            t.attempt("ann@example.com", 3 * MINUTE),
            Err(Duration::from_secs(12 * 60))
        );
        assert_eq!(t.attempt("bob@example.com", 3 * MINUTE), Ok(()));
        // The first failure leaves the window at 15 minutes: one more try.
        assert_eq!(
            t.attempt("ann@example.com", 15 * MINUTE - 1),
            Err(Duration::from_nanos(1))
        );
        assert_eq!(t.attempt("ann@example.com", 15 * MINUTE), Ok(()));
        assert_eq!(
            t.attempt("ann@example.com", 15 * MINUTE),
            Err(Duration::from_secs(60))
        );
        t.succeeded("ANN@example.com");
        assert_eq!(t.attempt("ann@example.com", 15 * MINUTE), Ok(()));
    }

    #[test]
    fn the_e_mail_that_failed_longest_ago_is_forgotten_first() {
        let t = LoginThrottle::new(1, Duration::from_secs(15 * 60), 3);
        for (i, email) in ["a@x", "b@x", "c@x"].iter().enumerate() {
            assert_eq!(t.attempt(email, i as i64), Ok(()));
        }
        assert_eq!(t.len(), 3);
        // A fourth e-mail pushes out a@x, the oldest, and no other.
        assert_eq!(t.attempt("d@x", 10), Ok(()));
        assert_eq!(t.len(), 3);
        assert_eq!(t.attempt("a@x", 11), Ok(()));
        assert_eq!(t.len(), 3);
        assert!(t.attempt("c@x", 12).is_err());
        assert!(t.attempt("d@x", 12).is_err());
        // Failures out of the window go before any in it.
        let late = 16 * MINUTE;
        assert_eq!(t.attempt("e@x", late), Ok(()));
        assert_eq!(t.attempt("f@x", late), Ok(()));
        assert_eq!(t.len(), 2);
        assert!(t.attempt("e@x", late).is_err());
    }
}
