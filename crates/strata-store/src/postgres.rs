//! The PostgreSQL backend: [`PgStore`], one connection of the synchronous
//! `postgres` client.
//!
//! - **Migrations** (`migrations/postgres/NNNN_name.sql`, embedded) run at
//!   connect, each in its own transaction under a transaction-level
//!   advisory lock, so two processes starting at once do not both migrate.
//! - **Imports** stage rows with binary `COPY` in committed batches, then
//!   move them into the tables in one transaction: an `UPDATE` of the rows
//!   that differ and an `INSERT` of the missing ones, set-wise. An import
//!   holds a session-level advisory lock keyed by its id while it runs; the
//!   server drops it with the connection, so a `running` import whose lock
//!   can be taken belongs to a process that is gone. Merges take turns (they
//!   lock the staging tables) and hold their tenant's row, so a live commit
//!   of that tenant waits for the merge.
//! - **Loads** stream every table with binary `COPY ... TO STDOUT` inside
//!   one read-only repeatable-read transaction (one snapshot), decoding on
//!   one thread and building the dataset on another.
//! - **Commits** lock the tenant's row first, so commits of one tenant are
//!   serialised and event ids increase in commit order; events are logged
//!   with one `COPY` and folded into the memberships a segment at a time.
//! - Decimals are sent as text and cast by the server: the client library's
//!   binary `NUMERIC` drops the scale of a zero (`0.00` would come back as
//!   `0`). Reading them in binary is exact. PostgreSQL has no negative zero:
//!   `-0.00` comes back as `0.00`.
//!
//! The tables live in the first schema of the session's `search_path`:
//! [`PgStore::connect_in_schema`] sets it, or a URL can
//! (`?options=-c%20search_path%3Dshop`).

mod accounts;
mod commit;
mod import;
mod load;

use std::sync::Arc;

use jiff::civil::Date;
use postgres::{Client, NoTls, Row};
use rustc_hash::FxHashMap;
use strata_data::{Dataset, Nanos, SegmentKind};
use strata_live::{Cause, Event};

use crate::migrate::{self, Migration};
use crate::rows_json::{self, ENTER, EXIT, TIER};
use crate::{
    Commit, ImportReport, Memberships, Progress, Store, StoreError, StoredEvent, Tenant, TenantId,
};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "accounts",
        sql: include_str!("../migrations/postgres/0002_accounts.sql"),
    },
    Migration {
        version: 3,
        name: "ingest",
        sql: include_str!("../migrations/postgres/0003_ingest.sql"),
    },
];

/// Advisory lock (one bigint key) serialising migrations database-wide.
const MIGRATION_LOCK: i64 = 0x5354_5241_5441_0001;

/// A Strata store in a PostgreSQL database.
pub struct PgStore {
    conn: Client,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// The wall clock as nanoseconds (creation and import times only; nothing
/// the engine reads).
fn wall_clock() -> Nanos {
    Nanos::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(Nanos::MAX)
}

fn u64_of(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} is negative")))
}

fn i64_of(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

const TENANT_COLUMNS: &str = "id, name, timezone, currency, clock, last_change, data_version, \
                              memberships_version";

fn tenant_of(row: &Row) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(row.get(0)),
        name: row.get(1),
        timezone: row.get(2),
        currency: row.get(3),
        clock: row.get(4),
        last_change: u64_of(row.get(5), "last_change")?,
        data_version: u64_of(row.get(6), "data_version")?,
        memberships_version: u64_of(row.get(7), "memberships_version")?,
    })
}

fn unknown_tenant(id: TenantId) -> StoreError {
    StoreError::Invalid(format!("no tenant with id {}", id.0))
}

/// The tenant `id` as `client` sees it (inside a transaction: as of it);
/// `lock` takes its row for update.
fn tenant_in(
    client: &mut impl postgres::GenericClient,
    id: TenantId,
    lock: bool,
) -> Result<Tenant, StoreError> {
    let sql = format!(
        "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    match client.query_opt(&sql, &[&id.0])? {
        Some(row) => tenant_of(&row),
        None => Err(unknown_tenant(id)),
    }
}

fn schema_version_of(client: &mut impl postgres::GenericClient) -> Result<i64, StoreError> {
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::int8 FROM strata_migrations",
            &[],
        )?
        .get(0))
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`) and migrates the schema to
    /// this program's version.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let conn = Client::connect(url, NoTls)?;
        PgStore::start(conn)
    }

    /// [`PgStore::connect`], keeping the tables in `schema` (created if
    /// missing): several stores in one database.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        let mut conn = Client::connect(url, NoTls)?;
        let quoted = quote_ident(schema);
        // Under the migration lock: concurrent `IF NOT EXISTS` can collide.
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))?;
        tx.commit()?;
        conn.batch_execute(&format!("SET search_path TO {quoted}"))?;
        PgStore::start(conn)
    }

    fn start(conn: Client) -> Result<PgStore, StoreError> {
        let mut store = PgStore { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        loop {
            let mut tx = self.conn.transaction()?;
            // Taken before the table is created: concurrent `CREATE TABLE IF
            // NOT EXISTS` can collide.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS strata_migrations (
                     version    BIGINT PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at BIGINT NOT NULL
                 )",
            )?;
            let Some(step) = migrate::pending(MIGRATIONS, schema_version_of(&mut tx)?)?.first()
            else {
                tx.commit()?;
                return Ok(());
            };
            tx.batch_execute(step.sql)?;
            tx.execute(
                "INSERT INTO strata_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&step.version, &step.name, &wall_clock()],
            )?;
            tx.commit()?;
        }
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn tenant(&mut self, name: &str) -> Result<Tenant, StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("a store name cannot be empty".into()));
        }
        self.conn.execute(
            "INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &wall_clock()],
        )?;
        let row = self.conn.query_opt(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1"),
            &[&name],
        )?;
        match row {
            Some(row) => tenant_of(&row),
            None => Err(StoreError::Corrupt(format!("tenant '{name}' vanished"))),
        }
    }

    fn tenant_by_id(&mut self, id: TenantId) -> Result<Tenant, StoreError> {
        tenant_in(&mut self.conn, id, false)
    }

    fn tenants(&mut self) -> Result<Vec<Tenant>, StoreError> {
        let rows = self.conn.query(
            &format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"),
            &[],
        )?;
        rows.iter().map(tenant_of).collect()
    }

    fn import(
        &mut self,
        tenant: TenantId,
        data: &Dataset,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        import::import(&mut self.conn, tenant, data, progress)
    }

    fn load(&mut self, tenant: TenantId) -> Result<Dataset, StoreError> {
        load::load(&mut self.conn, tenant)
    }

    fn commit_batch(&mut self, tenant: TenantId, commits: &[Commit<'_>]) -> Result<(), StoreError> {
        commit::commit_batch(&mut self.conn, tenant, commits)
    }

    fn reset_memberships(
        &mut self,
        tenant: TenantId,
        memberships: &Memberships,
        clock: Nanos,
        data_version: u64,
    ) -> Result<(), StoreError> {
        commit::reset_memberships(&mut self.conn, tenant, memberships, clock, data_version)
    }

    fn memberships(&mut self, tenant: TenantId) -> Result<Memberships, StoreError> {
        let mut tx = self
            .conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        tenant_in(&mut tx, tenant, false)?;
        let mut members = Vec::new();
        for row in tx.query(
            "SELECT segment, kind, entity FROM memberships WHERE tenant_id = $1",
            &[&tenant.0],
        )? {
            let kind: SegmentKind = rows_json::segment_kind_from_name(row.get(1))?;
            members.push((row.get::<_, String>(0), kind, row.get::<_, String>(2)));
        }
        let mut tiers: Vec<(String, String)> = tx
            .query(
                "SELECT customer_id, tier FROM customer_tiers WHERE tenant_id = $1",
                &[&tenant.0],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        tx.commit()?;
        // Sorted here rather than by the server, whose collation need not
        // be byte order. Segment names are unique across kinds, so (segment,
        // entity) order is the promised (segment, kind, entity) order.
        members.sort_unstable_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
        tiers.sort_unstable();
        Ok(Memberships { members, tiers })
    }

    fn last_event_id(&mut self, tenant: TenantId) -> Result<i64, StoreError> {
        tenant_in(&mut self.conn, tenant, false)?;
        let row = self.conn.query_one(
            "SELECT max(id) FROM events WHERE tenant_id = $1",
            &[&tenant.0],
        )?;
        let id: Option<i64> = row.get(0);
        Ok(id.unwrap_or(0))
    }

    fn events(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        tenant_in(&mut self.conn, tenant, false)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.conn.query(
            "SELECT id, at, change_seq, type, kind, segment, entity, tier_from, tier_to
             FROM events WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&tenant.0, &after, &limit],
        )?;
        // Events repeat a few names many times; share one allocation each.
        let mut names: FxHashMap<String, Arc<str>> = FxHashMap::default();
        let mut name = |text: &str| -> Arc<str> {
            if let Some(n) = names.get(text) {
                return n.clone();
            }
            let n: Arc<str> = Arc::from(text);
            names.insert(text.to_owned(), n.clone());
            n
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get(0);
            let at: Nanos = row.get(1);
            let cause = match row.get::<_, Option<i64>>(2) {
                None => Cause::Time,
                Some(seq) => Cause::Change(u64_of(seq, "change_seq")?),
            };
            let missing = |column: &str| StoreError::Corrupt(format!("event {id} has no {column}"));
            let kind: Option<&str> = row.get(4);
            let segment: Option<&str> = row.get(5);
            let entity: &str = row.get(6);
            let event = match row.get::<_, &str>(3) {
                t @ (ENTER | EXIT) => Event::Member {
                    at,
                    cause,
                    kind: rows_json::kind_from_name(kind.ok_or_else(|| missing("kind"))?)?,
                    segment: name(segment.ok_or_else(|| missing("segment"))?),
                    entity: Arc::from(entity),
                    enter: t == ENTER,
                },
                TIER => Event::Tier {
                    at,
                    cause,
                    customer: Arc::from(entity),
                    from: row.get::<_, Option<&str>>(7).map(&mut name),
                    to: row.get::<_, Option<&str>>(8).map(&mut name),
                },
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "event {id} has the unknown type '{other}'"
                    )));
                }
            };
            out.push(StoredEvent { id, event });
        }
        Ok(out)
    }

    fn count_history(
        &mut self,
        tenant: TenantId,
        segment: &str,
    ) -> Result<Vec<(Date, u64)>, StoreError> {
        tenant_in(&mut self.conn, tenant, false)?;
        let rows = self.conn.query(
            "SELECT day, count FROM count_history WHERE tenant_id = $1 AND segment = $2
             ORDER BY day",
            &[&tenant.0, &segment],
        )?;
        rows.iter()
            .map(|r| Ok((r.get(0), u64_of(r.get(1), "count")?)))
            .collect()
    }

    fn clean_abandoned(&mut self) -> Result<u64, StoreError> {
        import::clean_abandoned(&mut self.conn)
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        schema_version_of(&mut self.conn)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_in_sequence() {
        crate::migrate::check_list(super::MIGRATIONS);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_ident("shop"), "\"shop\"");
        assert_eq!(super::quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
