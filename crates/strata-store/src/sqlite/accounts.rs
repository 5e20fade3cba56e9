//! Accounts and rights on SQLite (see [`crate::accounts`]). A call that
//! checks before it writes runs in one `IMMEDIATE` transaction, so that
//! what it checked still holds when it writes; a call of one statement is
//! one transaction by itself.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use strata_data::Nanos;

use super::{SqliteStore, str_at, tenant_in};
use crate::accounts::{
    self, Accounts, ApiToken, ModuleRights, SegmentMeta, SegmentShare, User, UserId,
};
use crate::{StoreError, TenantId};

/// The columns [`user_of`] reads, from `users AS u`.
const USER_COLUMNS: &str = "u.id, u.email, u.admin, u.created_at";

fn user_of(row: &Row<'_>) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(row.get(0)?),
        email: row.get(1)?,
        admin: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// The columns [`rights_of`] reads at `at`, from `store_access`.
const RIGHTS_COLUMNS: &str = "product_segments, customer_segments, tiers";

fn rights_of(row: &Row<'_>, at: usize) -> Result<ModuleRights, StoreError> {
    Ok(ModuleRights {
        product_segments: accounts::right_of(str_at(row, at)?)?,
        customer_segments: accounts::right_of(str_at(row, at + 1)?)?,
        tiers: accounts::right_of(str_at(row, at + 2)?)?,
    })
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, revoked_at";

fn token_of(row: &Row<'_>) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        id: row.get(0)?,
        user: UserId(row.get(1)?),
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

const SHARE_COLUMNS: &str = "tenant_id, segment, user_id, can_read, can_edit, can_delete, expires_at, granted_by, granted_at";

fn share_of(row: &Row<'_>) -> Result<SegmentShare, StoreError> {
    Ok(SegmentShare {
        tenant: TenantId(row.get(0)?),
        segment: row.get(1)?,
        user: UserId(row.get(2)?),
        read: row.get(3)?,
        edit: row.get(4)?,
        delete: row.get(5)?,
        expires_at: row.get(6)?,
        granted_by: UserId(row.get(7)?),
        granted_at: row.get(8)?,
    })
}

/// `Invalid` unless the user exists.
pub(super) fn known_user(conn: &Connection, id: UserId) -> Result<(), StoreError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([id.0])?;
    if found {
        Ok(())
    } else {
        Err(accounts::unknown_user(id))
    }
}

/// Every row of a query, each read by `read`.
fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// The first row of a query, read by `read`.
fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(read).transpose()
}

impl Accounts for SqliteStore {
    fn create_user(
        &mut self,
        email: &str,
        password_hash: &str,
        admin: bool,
        now: Nanos,
    ) -> Result<User, StoreError> {
        let email = accounts::email_key(email);
        let id: Option<i64> = self
            .conn
            .prepare_cached(
                "INSERT INTO users (email, password_hash, admin, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (email) DO NOTHING RETURNING id",
            )?
            .query_row(params![email, password_hash, admin, now], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) => Ok(User {
                id: UserId(id),
                email,
                admin,
                created_at: now,
            }),
            None => Err(accounts::email_taken(&email)),
        }
    }

    fn user_by_email(&mut self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        first(
            &self.conn,
            &format!("SELECT {USER_COLUMNS}, u.password_hash FROM users AS u WHERE u.email = ?1"),
            [accounts::email_key(email)],
            |row| Ok((user_of(row)?, row.get(4)?)),
        )
    }

    fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError> {
        first(
            &self.conn,
            &format!("SELECT {USER_COLUMNS} FROM users AS u WHERE u.id = ?1"),
            [id.0],
            user_of,
        )
    }

    fn users(&mut self) -> Result<Vec<User>, StoreError> {
        collect(
            &self.conn,
            &format!("SELECT {USER_COLUMNS} FROM users AS u ORDER BY u.id"),
            [],
            user_of,
        )
    }

    fn create_session(
        &mut self,
        token_hash: &str,
        user: UserId,
        now: Nanos,
        expires_at: Nanos,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        known_user(&tx, user)?;
        let inserted = tx
            .prepare_cached(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (token_hash) DO NOTHING",
            )?
            .execute(params![token_hash, user.0, now, expires_at])?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "a session with that token exists".into(),
            ));
        }
        tx.commit()?;
        Ok(())
    }

    fn session_user(&mut self, token_hash: &str, now: Nanos) -> Result<Option<User>, StoreError> {
        first(
            &self.conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM sessions AS s JOIN users AS u ON u.id = s.user_id
                 WHERE s.token_hash = ?1 AND s.expires_at > ?2"
            ),
            params![token_hash, now],
            user_of,
        )
    }

    fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn
            .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
            .execute([token_hash])?;
        Ok(deleted > 0)
    }

    fn create_token(
        &mut self,
        user: UserId,
        name: &str,
        prefix: &str,
        token_hash: &str,
        now: Nanos,
    ) -> Result<ApiToken, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        known_user(&tx, user)?;
        let id: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
            )?
            .query_row(params![user.0, name, prefix, token_hash, now], |r| r.get(0))
            .optional()?;
        let Some(id) = id else {
            return Err(StoreError::Conflict("a token with that hash exists".into()));
        };
        tx.commit()?;
        Ok(ApiToken {
            id,
            user,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            created_at: now,
            revoked_at: None,
        })
    }

    fn tokens(&mut self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        collect(
            &self.conn,
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ?1 ORDER BY id"),
            [user.0],
            token_of,
        )
    }

    fn revoke_token(&mut self, user: UserId, id: i64, now: Nanos) -> Result<bool, StoreError> {
        let revoked = self
            .conn
            .prepare_cached(
                "UPDATE api_tokens SET revoked_at = ?3
                 WHERE id = ?2 AND user_id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![user.0, id, now])?;
        Ok(revoked > 0)
    }

    fn token_user(&mut self, token_hash: &str) -> Result<Option<User>, StoreError> {
        first(
            &self.conn,
            &format!(
                "SELECT {USER_COLUMNS} FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id
                 WHERE t.token_hash = ?1 AND t.revoked_at IS NULL"
            ),
            [token_hash],
            user_of,
        )
    }

    fn set_access(
        &mut self,
        tenant: TenantId,
        user: UserId,
        rights: ModuleRights,
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tenant_in(&tx, tenant)?;
        known_user(&tx, user)?;
        tx.prepare_cached(
            "INSERT INTO store_access (tenant_id, user_id, product_segments, customer_segments,
                 tiers)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET
                 product_segments = excluded.product_segments,
                 customer_segments = excluded.customer_segments, tiers = excluded.tiers",
        )?
        .execute(params![
            tenant.0,
            user.0,
            rights.product_segments.as_str(),
            rights.customer_segments.as_str(),
            rights.tiers.as_str(),
        ])?;
        tx.commit()?;
        Ok(())
    }

    fn remove_access(&mut self, tenant: TenantId, user: UserId) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tenant_in(&tx, tenant)?;
        let removed = tx
            .prepare_cached("DELETE FROM store_access WHERE tenant_id = ?1 AND user_id = ?2")?
            .execute(params![tenant.0, user.0])?;
        tx.commit()?;
        Ok(removed > 0)
    }

    fn access(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ModuleRights>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let rights = first(
            &tx,
            &format!(
                "SELECT {RIGHTS_COLUMNS} FROM store_access WHERE tenant_id = ?1 AND user_id = ?2"
            ),
            params![tenant.0, user.0],
            |row| rights_of(row, 0),
        )?;
        tx.finish()?;
        Ok(rights)
    }

    fn accesses(&mut self, tenant: TenantId) -> Result<Vec<(User, ModuleRights)>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let out = collect(
            &tx,
            &format!(
                "SELECT {USER_COLUMNS}, {RIGHTS_COLUMNS}
                 FROM store_access AS a JOIN users AS u ON u.id = a.user_id
                 WHERE a.tenant_id = ?1 ORDER BY u.id"
            ),
            [tenant.0],
            |row| Ok((user_of(row)?, rights_of(row, 4)?)),
        )?;
        tx.finish()?;
        Ok(out)
    }

    fn tenants_of(&mut self, user: UserId) -> Result<Vec<(TenantId, ModuleRights)>, StoreError> {
        collect(
            &self.conn,
            &format!(
                "SELECT tenant_id, {RIGHTS_COLUMNS} FROM store_access WHERE user_id = ?1
                 ORDER BY tenant_id"
            ),
            [user.0],
            |row| Ok((TenantId(row.get(0)?), rights_of(row, 1)?)),
        )
    }

    fn put_share(&mut self, share: &SegmentShare) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tenant_in(&tx, share.tenant)?;
        let segment_exists = tx
            .prepare_cached("SELECT 1 FROM segments WHERE tenant_id = ?1 AND name = ?2")?
            .exists(params![share.tenant.0, share.segment])?;
        if !segment_exists {
            return Err(accounts::unknown_segment(&share.segment));
        }
        known_user(&tx, share.user)?;
        known_user(&tx, share.granted_by)?;
        tx.prepare_cached(
            "INSERT INTO segment_shares (tenant_id, segment, user_id, can_read, can_edit,
                 can_delete, expires_at, granted_by, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (tenant_id, segment, user_id) DO UPDATE SET
                 can_read = excluded.can_read, can_edit = excluded.can_edit,
                 can_delete = excluded.can_delete, expires_at = excluded.expires_at,
                 granted_by = excluded.granted_by, granted_at = excluded.granted_at",
        )?
        .execute(params![
            share.tenant.0,
            share.segment,
            share.user.0,
            share.read,
            share.edit,
            share.delete,
            share.expires_at,
            share.granted_by.0,
            share.granted_at,
        ])?;
        tx.commit()?;
        Ok(())
    }

    fn revoke_share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tenant_in(&tx, tenant)?;
        let removed = tx
            .prepare_cached(
                "DELETE FROM segment_shares WHERE tenant_id = ?1 AND segment = ?2 AND user_id = ?3",
            )?
            .execute(params![tenant.0, segment, user.0])?;
        tx.commit()?;
        Ok(removed > 0)
    }

    fn share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<Option<SegmentShare>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let share = first(
            &tx,
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares
                 WHERE tenant_id = ?1 AND segment = ?2 AND user_id = ?3"
            ),
            params![tenant.0, segment, user.0],
            share_of,
        )?;
        tx.finish()?;
        Ok(share)
    }

    fn shares(&mut self, tenant: TenantId, segment: &str) -> Result<Vec<SegmentShare>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let out = collect(
            &tx,
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares WHERE tenant_id = ?1 AND segment = ?2
                 ORDER BY user_id"
            ),
            params![tenant.0, segment],
            share_of,
        )?;
        tx.finish()?;
        Ok(out)
    }

    fn shares_of(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<SegmentShare>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        // TEXT compares bytewise: segment order as `str` has it.
        let out = collect(
            &tx,
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares WHERE tenant_id = ?1 AND user_id = ?2
                 ORDER BY segment"
            ),
            params![tenant.0, user.0],
            share_of,
        )?;
        tx.finish()?;
        Ok(out)
    }

    fn segment_metas(&mut self, tenant: TenantId) -> Result<Vec<SegmentMeta>, StoreError> {
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let out = collect(
            &tx,
            "SELECT name, description, owner_id, created_at, updated_at FROM segments
             WHERE tenant_id = ?1 ORDER BY name",
            [tenant.0],
            |row| {
                Ok(SegmentMeta {
                    name: row.get(0)?,
                    description: row.get(1)?,
                    owner: row.get::<_, Option<i64>>(2)?.map(UserId),
                    created_at: row.get(3)?,
                    updated_at: row.get(4)?,
                })
            },
        )?;
        tx.finish()?;
        Ok(out)
    }
}
