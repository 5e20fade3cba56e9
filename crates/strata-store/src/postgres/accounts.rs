//! Accounts and rights on PostgreSQL (see [`crate::accounts`]). A call of
//! several statements runs in one transaction; inserts that could collide
//! with another session's use `ON CONFLICT DO NOTHING`, so that a race
//! ends in `Conflict`, not in a database error.

use postgres::{GenericClient, Row};
use strata_data::Nanos;

use super::{PgStore, tenant_in};
use crate::accounts::{
    self, Accounts, ApiToken, ModuleRights, SegmentMeta, SegmentShare, User, UserId,
};
use crate::{StoreError, TenantId};

/// The columns [`user_of`] reads, from `users AS u`.
const USER_COLUMNS: &str = "u.id, u.email, u.admin, u.created_at";

fn user_of(row: &Row) -> User {
    User {
        id: UserId(row.get(0)),
        email: row.get(1),
        admin: row.get(2),
        created_at: row.get(3),
    }
}

/// The columns [`rights_of`] reads at `at`, from `store_access`.
const RIGHTS_COLUMNS: &str = "product_segments, customer_segments, tiers";

fn rights_of(row: &Row, at: usize) -> Result<ModuleRights, StoreError> {
    Ok(ModuleRights {
        product_segments: accounts::right_of(row.get(at))?,
        customer_segments: accounts::right_of(row.get(at + 1))?,
        tiers: accounts::right_of(row.get(at + 2))?,
    })
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, revoked_at";

fn token_of(row: &Row) -> ApiToken {
    ApiToken {
        id: row.get(0),
        user: UserId(row.get(1)),
        name: row.get(2),
        prefix: row.get(3),
        created_at: row.get(4),
        revoked_at: row.get(5),
    }
}

const SHARE_COLUMNS: &str = "tenant_id, segment, user_id, can_read, can_edit, can_delete, expires_at, granted_by, granted_at";

fn share_of(row: &Row) -> SegmentShare {
    SegmentShare {
        tenant: TenantId(row.get(0)),
        segment: row.get(1),
        user: UserId(row.get(2)),
        read: row.get(3),
        edit: row.get(4),
        delete: row.get(5),
        expires_at: row.get(6),
        granted_by: UserId(row.get(7)),
        granted_at: row.get(8),
    }
}

/// `Invalid` unless the user exists.
pub(super) fn known_user(client: &mut impl GenericClient, id: UserId) -> Result<(), StoreError> {
    match client.query_opt("SELECT 1 FROM users WHERE id = $1", &[&id.0])? {
        Some(_) => Ok(()),
        None => Err(accounts::unknown_user(id)),
    }
}

impl Accounts for PgStore {
    fn create_user(
        &mut self,
        email: &str,
        password_hash: &str,
        admin: bool,
        now: Nanos,
    ) -> Result<User, StoreError> {
        let email = accounts::email_key(email);
        let row = self.conn.query_opt(
            "INSERT INTO users (email, password_hash, admin, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&email, &password_hash, &admin, &now],
        )?;
        match row {
            Some(row) => Ok(User {
                id: UserId(row.get(0)),
                email,
                admin,
                created_at: now,
            }),
            None => Err(accounts::email_taken(&email)),
        }
    }

    fn user_by_email(&mut self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = self.conn.query_opt(
            &format!("SELECT {USER_COLUMNS}, u.password_hash FROM users AS u WHERE u.email = $1"),
            &[&accounts::email_key(email)],
        )?;
        Ok(row.map(|row| (user_of(&row), row.get(4))))
    }

    fn user(&mut self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = self.conn.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users AS u WHERE u.id = $1"),
            &[&id.0],
        )?;
        Ok(row.as_ref().map(user_of))
    }

    fn users(&mut self) -> Result<Vec<User>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {USER_COLUMNS} FROM users AS u ORDER BY u.id"),
            &[],
        )?;
        Ok(rows.iter().map(user_of).collect())
    }

    fn create_session(
        &mut self,
        token_hash: &str,
        user: UserId,
        now: Nanos,
        expires_at: Nanos,
    ) -> Result<(), StoreError> {
        let mut tx = self.conn.transaction()?;
        known_user(&mut tx, user)?;
        let inserted = tx.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (token_hash) DO NOTHING",
            &[&token_hash, &user.0, &now, &expires_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::Conflict(
                "a session with that token exists".into(),
            ));
        }
        tx.commit()?;
        Ok(())
    }

    fn session_user(&mut self, token_hash: &str, now: Nanos) -> Result<Option<User>, StoreError> {
        let row = self.conn.query_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM sessions AS s JOIN users AS u ON u.id = s.user_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2"
            ),
            &[&token_hash, &now],
        )?;
        Ok(row.as_ref().map(user_of))
    }

    fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn
            .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token_hash])?;
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
        let mut tx = self.conn.transaction()?;
        known_user(&mut tx, user)?;
        let row = tx.query_opt(
            "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
            &[&user.0, &name, &prefix, &token_hash, &now],
        )?;
        let Some(row) = row else {
            return Err(StoreError::Conflict("a token with that hash exists".into()));
        };
        tx.commit()?;
        Ok(ApiToken {
            id: row.get(0),
            user,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            created_at: now,
            revoked_at: None,
        })
    }

    fn tokens(&mut self, user: UserId) -> Result<Vec<ApiToken>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id"),
            &[&user.0],
        )?;
        Ok(rows.iter().map(token_of).collect())
    }

    fn revoke_token(&mut self, user: UserId, id: i64, now: Nanos) -> Result<bool, StoreError> {
        let revoked = self.conn.execute(
            "UPDATE api_tokens SET revoked_at = $3
             WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL",
            &[&user.0, &id, &now],
        )?;
        Ok(revoked > 0)
    }

    fn token_user(&mut self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let row = self.conn.query_opt(
            &format!(
                "SELECT {USER_COLUMNS} FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL"
            ),
            &[&token_hash],
        )?;
        Ok(row.as_ref().map(user_of))
    }

    fn set_access(
        &mut self,
        tenant: TenantId,
        user: UserId,
        rights: ModuleRights,
    ) -> Result<(), StoreError> {
        let mut tx = self.conn.transaction()?;
        // Not locked: an import's merge holds the tenant's row for minutes,
        // and tenants are never deleted.
        tenant_in(&mut tx, tenant, false)?;
        known_user(&mut tx, user)?;
        tx.execute(
            "INSERT INTO store_access (tenant_id, user_id, product_segments, customer_segments,
                 tiers)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET
                 product_segments = EXCLUDED.product_segments,
                 customer_segments = EXCLUDED.customer_segments, tiers = EXCLUDED.tiers",
            &[
                &tenant.0,
                &user.0,
                &rights.product_segments.as_str(),
                &rights.customer_segments.as_str(),
                &rights.tiers.as_str(),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn remove_access(&mut self, tenant: TenantId, user: UserId) -> Result<bool, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let removed = tx.execute(
            "DELETE FROM store_access WHERE tenant_id = $1 AND user_id = $2",
            &[&tenant.0, &user.0],
        )?;
        tx.commit()?;
        Ok(removed > 0)
    }

    fn access(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Option<ModuleRights>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let row = tx.query_opt(
            &format!(
                "SELECT {RIGHTS_COLUMNS} FROM store_access WHERE tenant_id = $1 AND user_id = $2"
            ),
            &[&tenant.0, &user.0],
        )?;
        tx.commit()?;
        row.map(|row| rights_of(&row, 0)).transpose()
    }

    fn accesses(&mut self, tenant: TenantId) -> Result<Vec<(User, ModuleRights)>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let rows = tx.query(
            &format!(
                "SELECT {USER_COLUMNS}, {RIGHTS_COLUMNS}
                 FROM store_access AS a JOIN users AS u ON u.id = a.user_id
                 WHERE a.tenant_id = $1 ORDER BY u.id"
            ),
            &[&tenant.0],
        )?;
        tx.commit()?;
        rows.iter()
            .map(|row| Ok((user_of(row), rights_of(row, 4)?)))
            .collect()
    }

    fn tenants_of(&mut self, user: UserId) -> Result<Vec<(TenantId, ModuleRights)>, StoreError> {
        let rows = self.conn.query(
            &format!(
                "SELECT tenant_id, {RIGHTS_COLUMNS} FROM store_access WHERE user_id = $1
                 ORDER BY tenant_id"
            ),
            &[&user.0],
        )?;
        rows.iter()
            .map(|row| Ok((TenantId(row.get(0)), rights_of(row, 1)?)))
            .collect()
    }

    fn put_share(&mut self, share: &SegmentShare) -> Result<(), StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, share.tenant, false)?;
        let segment = tx.query_opt(
            "SELECT 1 FROM segments WHERE tenant_id = $1 AND name = $2",
            &[&share.tenant.0, &share.segment],
        )?;
        if segment.is_none() {
            return Err(accounts::unknown_segment(&share.segment));
        }
        known_user(&mut tx, share.user)?;
        known_user(&mut tx, share.granted_by)?;
        tx.execute(
            "INSERT INTO segment_shares (tenant_id, segment, user_id, can_read, can_edit,
                 can_delete, expires_at, granted_by, granted_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, segment, user_id) DO UPDATE SET
                 can_read = EXCLUDED.can_read, can_edit = EXCLUDED.can_edit,
                 can_delete = EXCLUDED.can_delete, expires_at = EXCLUDED.expires_at,
                 granted_by = EXCLUDED.granted_by, granted_at = EXCLUDED.granted_at",
            &[
                &share.tenant.0,
                &share.segment,
                &share.user.0,
                &share.read,
                &share.edit,
                &share.delete,
                &share.expires_at,
                &share.granted_by.0,
                &share.granted_at,
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn revoke_share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let removed = tx.execute(
            "DELETE FROM segment_shares WHERE tenant_id = $1 AND segment = $2 AND user_id = $3",
            &[&tenant.0, &segment, &user.0],
        )?;
        tx.commit()?;
        Ok(removed > 0)
    }

    fn share(
        &mut self,
        tenant: TenantId,
        segment: &str,
        user: UserId,
    ) -> Result<Option<SegmentShare>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let row = tx.query_opt(
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares
                 WHERE tenant_id = $1 AND segment = $2 AND user_id = $3"
            ),
            &[&tenant.0, &segment, &user.0],
        )?;
        tx.commit()?;
        Ok(row.as_ref().map(share_of))
    }

    fn shares(&mut self, tenant: TenantId, segment: &str) -> Result<Vec<SegmentShare>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        let rows = tx.query(
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares WHERE tenant_id = $1 AND segment = $2
                 ORDER BY user_id"
            ),
            &[&tenant.0, &segment],
        )?;
        tx.commit()?;
        Ok(rows.iter().map(share_of).collect())
    }

    fn shares_of(
        &mut self,
        tenant: TenantId,
        user: UserId,
    ) -> Result<Vec<SegmentShare>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        // `segment` is COLLATE "C": byte order, as `str` has it.
        let rows = tx.query(
            &format!(
                "SELECT {SHARE_COLUMNS} FROM segment_shares WHERE tenant_id = $1 AND user_id = $2
                 ORDER BY segment"
            ),
            &[&tenant.0, &user.0],
        )?;
        tx.commit()?;
        Ok(rows.iter().map(share_of).collect())
    }

    fn segment_metas(&mut self, tenant: TenantId) -> Result<Vec<SegmentMeta>, StoreError> {
        let mut tx = self.conn.transaction()?;
        tenant_in(&mut tx, tenant, false)?;
        // `name` is COLLATE "C": byte order, as `str` has it.
        let rows = tx.query(
            "SELECT name, description, owner_id, created_at, updated_at FROM segments
             WHERE tenant_id = $1 ORDER BY name",
            &[&tenant.0],
        )?;
        tx.commit()?;
        Ok(rows
            .iter()
            .map(|row| SegmentMeta {
                name: row.get(0),
                description: row.get(1),
                owner: row.get::<_, Option<i64>>(2).map(UserId),
                created_at: row.get(3),
                updated_at: row.get(4),
            })
            .collect())
    }
}
