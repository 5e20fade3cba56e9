//! The SQLite backend: one bundled SQLite file, `DIR/strata.db`.
//!
//! The file runs in WAL mode with `synchronous=FULL`, so a committed
//! transaction is on disk when the call returns, and readers in other
//! processes see the last commit while a writer works. Writers take the
//! write lock at `BEGIN` (`IMMEDIATE`): a transaction never fails half-way
//! for a lock another writer took after it began, it waits (busy timeout).
//!
//! Imports prove they are alive with a file lock on `DIR/imports/ID.lock`,
//! held for the whole import; the operating system drops it when the
//! process dies, which is how [`Store::clean_abandoned`] tells a dead
//! import from a slow one.

mod accounts;
mod commit;
mod import;
mod load;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Date;
use rusqlite::{Connection, Row, TransactionBehavior, params};
use strata_data::{Dataset, Nanos};
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
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "accounts",
        sql: include_str!("../migrations/sqlite/0002_accounts.sql"),
    },
    Migration {
        version: 3,
        name: "ingest",
        sql: include_str!("../migrations/sqlite/0003_ingest.sql"),
    },
];

/// Page cache per connection, in KiB; an import's merge takes more (see
/// `import::MERGE_CACHE_KIB`).
const CACHE_KIB: u32 = 64 * 1024;

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the SQLite store of a data directory.
pub struct SqliteStore {
    conn: Connection,
    dir: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The wall clock as nanoseconds (creation and import times only; nothing
/// the engine reads).
fn wall_clock() -> Nanos {
    let ns = jiff::Timestamp::now().as_nanosecond();
    Nanos::try_from(ns).unwrap_or(Nanos::MAX)
}

fn u64_of(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value} is negative")))
}

fn i64_of(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what} {value} is too large")))
}

/// Column `i` as text.
fn str_at<'r>(row: &'r Row<'_>, i: usize) -> Result<&'r str, StoreError> {
    Ok(row.get_ref(i)?.as_str().map_err(rusqlite::Error::from)?)
}

/// Column `i` as text or null.
fn opt_str_at<'r>(row: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    Ok(row
        .get_ref(i)?
        .as_str_or_null()
        .map_err(rusqlite::Error::from)?)
}

/// The file an import holds locked while it runs.
fn lock_path(dir: &Path, import_id: i64) -> PathBuf {
    dir.join("imports").join(format!("{import_id}.lock"))
}

const TENANT_COLUMNS: &str = "id, name, timezone, currency, clock, last_change, data_version, \
                              memberships_version";

fn tenant_of(row: &Row<'_>) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(row.get(0)?),
        name: row.get(1)?,
        timezone: row.get(2)?,
        currency: row.get(3)?,
        clock: row.get(4)?,
        last_change: u64_of(row.get(5)?, "last_change")?,
        data_version: u64_of(row.get(6)?, "data_version")?,
        memberships_version: u64_of(row.get(7)?, "memberships_version")?,
    })
}

/// The tenant `id` as seen by `conn` (inside a transaction: as of it).
fn tenant_in(conn: &Connection, id: TenantId) -> Result<Tenant, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id.0])?;
    match rows.next()? {
        Some(row) => tenant_of(row),
        None => Err(StoreError::Invalid(format!("no tenant with id {}", id.0))),
    }
}

fn tenant_named(conn: &Connection, name: &str) -> Result<Option<Tenant>, StoreError> {
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([name])?;
    rows.next()?.map(tenant_of).transpose()
}

fn schema_version_of(conn: &Connection) -> Result<i64, StoreError> {
    let recorded = conn
        .prepare_cached(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'strata_migrations'",
        )?
        .exists([])?;
    if !recorded {
        return Ok(0);
    }
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM strata_migrations",
        [],
        |r| r.get(0),
    )?)
}

impl SqliteStore {
    /// Opens the store in `dir` (created if missing), migrating its schema
    /// to this program's version.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("strata.db"))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Takes effect only on a new, empty file. Larger pages: fewer of
        // them for an import's one big transaction to track in the WAL, and
        // faster scans for `load`.
        conn.execute_batch("PRAGMA page_size = 16384")?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "{}: SQLite refused WAL mode (got '{mode}'); is the directory on a network file system?",
                dir.display()
            )));
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -{CACHE_KIB};"
        ))?;
        let mut store = SqliteStore {
            conn,
            dir: dir.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        // Only reads unless there is something to do: opening must not wait
        // for a writer (an import merging for minutes), let alone fail.
        if migrate::pending(MIGRATIONS, schema_version_of(&self.conn)?)?.is_empty() {
            return Ok(());
        }
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Read again under the write lock: another process may have
            // migrated while this one waited.
            let Some(step) = migrate::pending(MIGRATIONS, schema_version_of(&tx)?)?.first() else {
                return Ok(());
            };
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS strata_migrations (
                     version    INTEGER PRIMARY KEY,
                     name       TEXT NOT NULL,
                     applied_at INTEGER NOT NULL
                 )",
            )?;
            tx.execute_batch(step.sql)?;
            tx.execute(
                "INSERT INTO strata_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![step.version, step.name, wall_clock()],
            )?;
            tx.commit()?;
        }
    }

    fn lock_path(&self, import_id: i64) -> PathBuf {
        lock_path(&self.dir, import_id)
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn tenant(&mut self, name: &str) -> Result<Tenant, StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("a store name cannot be empty".into()));
        }
        // Looked up before it is created: a write would wait for a running
        // import's merge.
        if let Some(t) = tenant_named(&self.conn, name)? {
            return Ok(t);
        }
        self.conn.execute(
            "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![name, wall_clock()],
        )?;
        tenant_named(&self.conn, name)?
            .ok_or_else(|| StoreError::Corrupt(format!("tenant '{name}' vanished")))
    }

    fn tenant_by_id(&mut self, id: TenantId) -> Result<Tenant, StoreError> {
        tenant_in(&self.conn, id)
    }

    fn tenants(&mut self) -> Result<Vec<Tenant>, StoreError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(tenant_of(row)?);
        }
        Ok(out)
    }

    fn import(
        &mut self,
        tenant: TenantId,
        data: &Dataset,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        self.run_import(tenant, data, progress)
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
        let tx = self.conn.transaction()?;
        tenant_in(&tx, tenant)?;
        let mut out = Memberships::default();
        {
            // Segment names are unique across kinds, so the primary key's
            // (segment, entity) order is the promised (segment, kind,
            // entity) order; TEXT compares bytewise, like `str`.
            let mut stmt = tx.prepare_cached(
                "SELECT segment, kind, entity FROM memberships WHERE tenant_id = ?1
                 ORDER BY segment, entity",
            )?;
            let mut rows = stmt.query([tenant.0])?;
            while let Some(row) = rows.next()? {
                let kind = rows_json::segment_kind_from_name(str_at(row, 1)?)?;
                out.members.push((row.get(0)?, kind, row.get(2)?));
            }
            let mut stmt = tx.prepare_cached(
                "SELECT customer_id, tier FROM customer_tiers WHERE tenant_id = ?1
                 ORDER BY customer_id",
            )?;
            let mut rows = stmt.query([tenant.0])?;
            while let Some(row) = rows.next()? {
                out.tiers.push((row.get(0)?, row.get(1)?));
            }
        }
        tx.finish()?;
        Ok(out)
    }

    fn last_event_id(&mut self, tenant: TenantId) -> Result<i64, StoreError> {
        tenant_in(&self.conn, tenant)?;
        let id: Option<i64> = self.conn.query_row(
            "SELECT max(id) FROM events WHERE tenant_id = ?1",
            params![tenant.0],
            |r| r.get(0),
        )?;
        Ok(id.unwrap_or(0))
    }

    fn events(
        &mut self,
        tenant: TenantId,
        after: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        tenant_in(&self.conn, tenant)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, at, change_seq, type, kind, segment, entity, tier_from, tier_to
             FROM events WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![tenant.0, after, limit])?;
        // Events repeat a few names many times; share one allocation each.
        let mut names: HashMap<String, Arc<str>> = HashMap::new();
        let mut name = |text: &str| -> Arc<str> {
            if let Some(n) = names.get(text) {
                return n.clone();
            }
            let n: Arc<str> = Arc::from(text);
            names.insert(text.to_owned(), n.clone());
            n
        };
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let at: Nanos = row.get(1)?;
            let cause = match row.get::<_, Option<i64>>(2)? {
                None => Cause::Time,
                Some(seq) => Cause::Change(u64_of(seq, "change_seq")?),
            };
            let missing = |column: &str| StoreError::Corrupt(format!("event {id} has no {column}"));
            let kind: Option<String> = row.get(4)?;
            let segment: Option<String> = row.get(5)?;
            let entity: String = row.get(6)?;
            let event = match str_at(row, 3)? {
                t @ (ENTER | EXIT) => Event::Member {
                    at,
                    cause,
                    kind: rows_json::kind_from_name(&kind.ok_or_else(|| missing("kind"))?)?,
                    segment: name(&segment.ok_or_else(|| missing("segment"))?),
                    entity: Arc::from(entity),
                    enter: t == ENTER,
                },
                TIER => Event::Tier {
                    at,
                    cause,
                    customer: Arc::from(entity),
                    from: opt_str_at(row, 7)?.map(&mut name),
                    to: opt_str_at(row, 8)?.map(&mut name),
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
        tenant_in(&self.conn, tenant)?;
        // 'YYYY-MM-DD' text sorts as the dates do.
        let mut stmt = self.conn.prepare_cached(
            "SELECT day, count FROM count_history WHERE tenant_id = ?1 AND segment = ?2
             ORDER BY day",
        )?;
        let mut rows = stmt.query(params![tenant.0, segment])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let day = rows_json::date(str_at(row, 0)?)?;
            out.push((day, u64_of(row.get(1)?, "count")?));
        }
        Ok(out)
    }

    fn clean_abandoned(&mut self) -> Result<u64, StoreError> {
        self.clean_abandoned_imports()
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        schema_version_of(&self.conn)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_in_sequence() {
        crate::migrate::check_list(super::MIGRATIONS);
    }
}
