//! Accounts and rights: users, login sessions, personal API tokens, which
//! stores (tenants) a user may open with which module rights, segment
//! ownership and segment shares.
//!
//! The store keeps what it is given: passwords arrive as argon2 PHC
//! strings and session and API tokens as hashes (the server hashes them; a
//! stolen database gives no way in). Deciding what a request may do is the
//! server's job; these calls only read and write the facts it decides on.

use strata_data::Nanos;

use crate::{StoreError, TenantId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// Stored lower-cased; unique.
    pub email: String,
    /// An administrator may do everything in every store.
    pub admin: bool,
    pub created_at: Nanos,
}

/// What a user may do in one module of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Right {
    #[default]
    None,
    Read,
    /// Read, create, change and delete.
    Edit,
}

impl Right {
    pub fn as_str(self) -> &'static str {
        match self {
            Right::None => "none",
            Right::Read => "read",
            Right::Edit => "edit",
        }
    }

    pub fn parse(s: &str) -> Option<Right> {
        match s {
            "none" => Some(Right::None),
            "read" => Some(Right::Read),
            "edit" => Some(Right::Edit),
            _ => None,
        }
    }
}

/// A user's rights in one store, per module.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModuleRights {
    pub product_segments: Right,
    pub customer_segments: Right,
    pub tiers: Right,
}

/// A personal API token as listed (the secret itself is never stored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub user: UserId,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart in a list.
    pub prefix: String,
    pub created_at: Nanos,
    /// `Some` once revoked; a revoked token authenticates nothing.
    pub revoked_at: Option<Nanos>,
}

/// One user's rights on one segment, granted by someone who may share it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentShare {
    pub tenant: TenantId,
    pub segment: String,
    pub user: UserId,
    pub read: bool,
    pub edit: bool,
    pub delete: bool,
    /// The share stops counting at this instant (`None`: never).
    pub expires_at: Option<Nanos>,
    pub granted_by: UserId,
    pub granted_at: Nanos,
}

/// What the store knows of a segment beyond its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentMeta {
    pub name: String,
    pub description: Option<String>,
    /// The user who created it (`None`: imported, or made before accounts).
    pub owner: Option<UserId>,
    pub created_at: Nanos,
    pub updated_at: Nanos,
}

/// Accounts and rights, kept in the same database as the data. Every call
/// is one transaction.
pub trait Accounts {
    /// `Err(StoreError::Conflict)` if the e-mail is taken (compared
    /// lower-cased).
    fn create_user(
        &mut self,
        email: &str,
        password_hash: &str,
        admin: bool,
        now: Nanos,
    ) -> Result<User, StoreError>;

    /// The user and their password hash (`email` compared lower-cased).
    fn user_by_email(&mut self, email: &str) -> Result<Option<(User, String)>, StoreError>;

    fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Every user, by id.
    fn users(&mut self) -> Result<Vec<User>, StoreError>;

    /// Creates a login session; `token_hash` is the hash of the cookie's
    /// secret.
    fn create_session(
        &mut self,
        token_hash: &str,
        user: UserId,
        now: Nanos,
        expires_at: Nanos,
    ) -> Result<(), StoreError>;

    /// The user of a session that exists and has not expired at `now`.
    fn session_user(&mut self, token_hash: &str, now: Nanos) -> Result<Option<User>, StoreError>;

    /// Ends a session (logout). `false` if there was none.
    fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError>;

    fn create_token(
        &mut self,
        user: UserId,
        name: &str,
        prefix: &str,
        token_hash: &str,
        now: Nanos,
    ) -> Result<ApiToken, StoreError>;

    /// A user's tokens, revoked ones included, by id.
    fn tokens(&mut self, user: UserId) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes one of `user`'s tokens. `false` if `user` has no such token
    /// or it was already revoked.
    fn revoke_token(&mut self, user: UserId, id: i64, now: Nanos) -> Result<bool, StoreError>;

    /// The user of a token that exists and is not revoked.
    fn token_user(&mut self, token_hash: &str) -> Result<Option<User>, StoreError>;

    /// Grants or replaces a user's rights in a store.
    fn set_access(
        &mut self,
        tenant: TenantId,
        user: UserId,
        rights: ModuleRights,
    ) -> Result<(), StoreError>;

    /// Takes a user's access to a store away (their shares there stay
    /// stored but grant nothing without access). `false` if there was none.
    fn remove_access(&mut self, tenant: TenantId, user: UserId) -> Result<bool, StoreError>;

    /// `None`: the user has no access to the store.
    fn access(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ModuleRights>, StoreError>;

    /// Everyone with access to a store, by user id.
    fn accesses(&mut self, tenant: TenantId) -> Result<Vec<(User, ModuleRights)>, StoreError>;

    /// The stores a user has access to, by tenant id.
    fn tenants_of(&mut self, user: UserId) -> Result<Vec<(TenantId, ModuleRights)>, StoreError>;

    /// Creates or replaces the share of `(tenant, segment, user)`.
    fn put_share(&mut self, share: &SegmentShare) -> Result<(), StoreError>;

    /// Removes a share at once. `false` if there was none.
    fn revoke_share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<bool, StoreError>;

    /// The share of one user on one segment, expired or not.
    fn share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<Option<SegmentShare>, StoreError>;

    /// A segment's shares, expired ones included, by user id.
    fn shares(&mut self, tenant: TenantId, segment: &str) -> Result<Vec<SegmentShare>, StoreError>;

    /// The shares a user holds in a store, expired ones included, by
    /// segment name.
    fn shares_of(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<SegmentShare>, StoreError>;

    /// Every stored segment's description, owner and times, by name.
    fn segment_metas(&mut self, tenant: TenantId) -> Result<Vec<SegmentMeta>, StoreError>;
}

/// The form an e-mail address is stored and looked up in. Lower-cased here
/// rather than by the database: SQLite's `lower()` knows only ASCII.
pub(crate) fn email_key(email: &str) -> String {
    email.to_lowercase()
}

pub(crate) fn email_taken(email: &str) -> StoreError {
    StoreError::Conflict(format!("the e-mail address '{email}' is taken"))
}

pub(crate) fn unknown_user(id: UserId) -> StoreError {
    StoreError::Invalid(format!("no user with id {}", id.0))
}

pub(crate) fn unknown_segment(name: &str) -> StoreError {
    StoreError::Invalid(format!("unknown segment '{name}'"))
}

/// A right as stored.
pub(crate) fn right_of(text: &str) -> Result<Right, StoreError> {
    Right::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown right '{text}'")))
}
