//! Imports: staging in committed batches, then one merging transaction.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::path::PathBuf;

use rusqlite::{Connection, Statement, Transaction, TransactionBehavior, params};
use strata_data::{Dataset, TierScheme};

use super::{CACHE_KIB, SqliteStore, i64_of, lock_path, tenant_in, wall_clock};
use crate::rows_json::{self, RuleForms, text};
use crate::staging::Staging;
use crate::{Counts, ImportReport, Phase, Progress, StoreError, TenantId};

/// Rows per staging transaction: large enough that commits (each an
/// fsync) do not dominate, small enough that a batch's WAL stays modest.
const BATCH: usize = 50_000;

/// Page cache while merging, in KiB. The merge inserts into every index
/// at random places in one transaction; pages that do not fit are spilled
/// to the WAL and read back from it, which is what makes a large import
/// slow. SQLite takes only the memory it uses.
const MERGE_CACHE_KIB: u32 = 1024 * 1024;

const STAGE_TABLES: [&str; 4] = [
    "stage_products",
    "stage_customers",
    "stage_lines",
    "stage_daily",
];

/// The file lock that proves an import's process is alive. Dropping it
/// (normally, by unwinding, or by the process dying) releases the lock.
struct ImportLock {
    file: Option<File>,
    path: PathBuf,
}

impl ImportLock {
    fn acquire(path: PathBuf) -> Result<ImportLock, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(ImportLock {
                file: Some(file),
                path,
            }),
            // Import ids are never reused, so someone else holding this
            // file means something outside Strata does.
            Err(TryLockError::WouldBlock) => Err(StoreError::Invalid(format!(
                "{} is locked by another process",
                path.display()
            ))),
            Err(TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

impl Drop for ImportLock {
    fn drop(&mut self) {
        // Remove before unlocking: a cleaner that finds the file gone knows
        // the import is over, one that finds it locked waits.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

impl SqliteStore {
    pub(super) fn run_import(
        &mut self,
        tenant: TenantId,
        data: &Dataset,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<ImportReport, StoreError> {
        self.clean_abandoned_imports()?;
        tenant_in(&self.conn, tenant)?;
        let (import_id, lock) = self.begin_import(tenant)?;
        let result = stage(&mut self.conn, import_id, data, progress).and_then(|total| {
            self.conn
                .execute_batch(&format!("PRAGMA cache_size = -{MERGE_CACHE_KIB}"))?;
            let merged = merge(&mut self.conn, tenant, import_id, data, total, progress);
            // Gives the memory back (SQLite shrinks the cache to the limit).
            // Not an error of the import if it fails: that is committed or
            // rolled back already.
            let _ = self
                .conn
                .execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB}"));
            merged
        });
        if result.is_err() {
            // A failure the process survived: clean up now rather than at
            // the next import. If this fails too, the lock's release leaves
            // it to `clean_abandoned`.
            let _ = abandon(&mut self.conn, import_id);
        }
        drop(lock);
        result
    }

    /// Records a running import, with its lock taken before the row becomes
    /// visible: no cleaner can see a running import without its lock.
    fn begin_import(&mut self, tenant: TenantId) -> Result<(i64, ImportLock), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO imports (tenant_id, state, started_at) VALUES (?1, 'running', ?2)",
            params![tenant.0, wall_clock()],
        )?;
        let id = tx.last_insert_rowid();
        let lock = ImportLock::acquire(lock_path(&self.dir, id))?;
        tx.commit()?;
        Ok((id, lock))
    }

    pub(super) fn clean_abandoned_imports(&mut self) -> Result<u64, StoreError> {
        let running: Vec<i64> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT id FROM imports WHERE state = 'running' ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut cleaned = 0;
        for id in running {
            let path = self.lock_path(id);
            // Held while cleaning, so that the lock file cannot be taken
            // over in between.
            let _probe = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => match file.try_lock() {
                    Ok(()) => Some(file),
                    Err(TryLockError::WouldBlock) => continue,
                    Err(TryLockError::Error(e)) => return Err(e.into()),
                },
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            if abandon(&mut self.conn, id)? {
                cleaned += 1;
            }
            let _ = std::fs::remove_file(&path);
        }
        Ok(cleaned)
    }
}

/// Marks a running import abandoned and deletes its staging rows, in one
/// transaction. `false` if it was no longer running (it finished, or
/// another cleaner came first).
fn abandon(conn: &mut Connection, import_id: i64) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let marked = tx.execute(
        "UPDATE imports SET state = 'abandoned', finished_at = ?2
         WHERE id = ?1 AND state = 'running'",
        params![import_id, wall_clock()],
    )?;
    if marked > 0 {
        delete_staged(&tx, import_id)?;
    }
    tx.commit()?;
    Ok(marked > 0)
}

fn delete_staged(tx: &Transaction<'_>, import_id: i64) -> Result<(), StoreError> {
    for table in STAGE_TABLES {
        tx.execute(
            &format!("DELETE FROM {table} WHERE import_id = ?1"),
            [import_id],
        )?;
    }
    Ok(())
}

/// Counts rows through the staging batches of every kind.
/// Rows `0..n` of one kind, `bind` writing row `i` with its statement, in
/// committed batches.
fn rows(
    staging: &mut Staging<'_>,
    conn: &mut Connection,
    sql: &str,
    n: usize,
    mut bind: impl FnMut(&mut Statement<'_>, i64, usize) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let import_id = staging.import_id;
    staging.in_batches(n, BATCH, |range| {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(sql)?;
            for i in range {
                bind(&mut stmt, import_id, i)?;
            }
        }
        tx.commit()?;
        Ok(())
    })
}

/// Writes every row of `data` into the staging tables; returns how many.
fn stage(
    conn: &mut Connection,
    import_id: i64,
    data: &Dataset,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, StoreError> {
    let mut staging = Staging::new(import_id, data, progress);
    rows(
        &mut staging,
        conn,
        "INSERT INTO stage_products (import_id, seq, sku, parent_sku, asin, title, brand,
             category, tags, seller_account, marketplace, price, cost, inventory, created_at,
             custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        data.products.len(),
        |stmt, import_id, i| {
            let p = data.product_row(i);
            let inventory = p.inventory.map(|v| i64_of(v, "inventory")).transpose()?;
            stmt.execute(params![
                import_id,
                i as i64,
                p.sku,
                text(p.parent_sku.as_deref()),
                text(p.asin.as_deref()),
                text(p.title.as_deref()),
                text(p.brand.as_deref()),
                text(p.category.as_deref()),
                rows_json::tags_json(&p.tags),
                text(p.seller_account.as_deref()),
                text(p.marketplace.as_deref()),
                p.price.map(|d| d.to_string()),
                p.cost.map(|d| d.to_string()),
                inventory,
                p.created_at,
                rows_json::custom_json(&p.custom),
            ])?;
            Ok(())
        },
    )?;
    rows(
        &mut staging,
        conn,
        "INSERT INTO stage_customers (import_id, seq, customer_id, email, first_name,
             last_name, country, city, marketplace, tags, accepts_marketing, created_at, custom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        data.customers.len(),
        |stmt, import_id, i| {
            let c = data.customer_row(i);
            stmt.execute(params![
                import_id,
                i as i64,
                c.customer_id,
                text(c.email.as_deref()),
                text(c.first_name.as_deref()),
                text(c.last_name.as_deref()),
                text(c.country.as_deref()),
                text(c.city.as_deref()),
                text(c.marketplace.as_deref()),
                rows_json::tags_json(&c.tags),
                c.accepts_marketing,
                c.created_at,
                rows_json::custom_json(&c.custom),
            ])?;
            Ok(())
        },
    )?;
    // A line's number is its position among its order's lines in file
    // order, which is what makes re-importing a grown file idempotent.
    let mut numbered = vec![0u32; data.orders.len()];
    rows(
        &mut staging,
        conn,
        "INSERT INTO stage_lines (import_id, seq, order_id, line_no, ordered_at, customer_id,
             status, marketplace, sku, quantity, unit_price, discount, fees, seller_account)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        data.lines.len(),
        |stmt, import_id, i| {
            let n = &mut numbered[data.lines.order[i] as usize];
            *n += 1;
            let l = data.line_row(i);
            stmt.execute(params![
                import_id,
                i as i64,
                l.order_id,
                *n,
                l.ordered_at,
                text(l.customer_id.as_deref()),
                text(l.status.as_deref()).unwrap_or("shipped"),
                text(l.marketplace.as_deref()),
                l.sku,
                l.quantity,
                l.unit_price.to_string(),
                l.discount.to_string(),
                l.fees.to_string(),
                text(l.seller_account.as_deref()),
            ])?;
            Ok(())
        },
    )?;
    rows(
        &mut staging,
        conn,
        "INSERT INTO stage_daily (import_id, seq, sku, date, sessions, bsr, reviews, rating)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        data.daily.len(),
        |stmt, import_id, i| {
            let d = data.daily_row(i);
            let count = |v: Option<u64>, what| v.map(|v| i64_of(v, what)).transpose();
            stmt.execute(params![
                import_id,
                i as i64,
                d.sku,
                d.date.to_string(),
                count(d.sessions, "sessions")?,
                count(d.bsr, "bsr")?,
                count(d.reviews, "reviews")?,
                d.rating.map(|r| r.to_string()),
            ])?;
            Ok(())
        },
    )?;
    Ok(staging.done())
}

/// How staged rows of one kind become table rows.
struct Upsert {
    table: &'static str,
    stage: &'static str,
    /// Restricts the staged rows (orders: the first line of each).
    only: &'static str,
    keys: &'static [&'static str],
    values: &'static [&'static str],
}

const PRODUCTS: Upsert = Upsert {
    table: "products",
    stage: "stage_products",
    only: "",
    keys: &["sku"],
    values: &[
        "parent_sku",
        "asin",
        "title",
        "brand",
        "category",
        "tags",
        "seller_account",
        "marketplace",
        "price",
        "cost",
        "inventory",
        "created_at",
        "custom",
    ],
};

const CUSTOMERS: Upsert = Upsert {
    table: "customers",
    stage: "stage_customers",
    only: "",
    keys: &["customer_id"],
    values: &[
        "email",
        "first_name",
        "last_name",
        "country",
        "city",
        "marketplace",
        "tags",
        "accepts_marketing",
        "created_at",
        "custom",
    ],
};

const ORDERS: Upsert = Upsert {
    table: "orders",
    stage: "stage_lines",
    only: "AND s.line_no = 1",
    keys: &["order_id"],
    values: &["ordered_at", "customer_id", "status", "marketplace"],
};

const LINES: Upsert = Upsert {
    table: "order_lines",
    stage: "stage_lines",
    only: "",
    keys: &["order_id", "line_no"],
    values: &[
        "sku",
        "quantity",
        "unit_price",
        "discount",
        "fees",
        "seller_account",
    ],
};

const DAILY: Upsert = Upsert {
    table: "product_daily",
    stage: "stage_daily",
    only: "",
    keys: &["sku", "date"],
    values: &["sessions", "bsr", "reviews", "rating"],
};

impl Upsert {
    /// Moves the staged rows into the table in file order (so new rows get
    /// ids in file order), updating only rows that differ.
    fn run(
        &self,
        tx: &Transaction<'_>,
        tenant: TenantId,
        import_id: i64,
    ) -> Result<Counts, StoreError> {
        let Upsert {
            table,
            stage,
            only,
            keys,
            values,
        } = self;
        let staged: i64 = tx.query_row(
            &format!("SELECT COUNT(*) FROM {stage} s WHERE s.import_id = ?1 {only}"),
            [import_id],
            |r| r.get(0),
        )?;
        // New rows get ids above every id there is (the write lock keeps
        // other writers out meanwhile), so they can be counted after the
        // fact, by a range of ids, instead of a key lookup per staged row.
        let last_id: i64 = tx.query_row(
            &format!("SELECT COALESCE(MAX(id), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )?;
        let columns = keys.iter().chain(values.iter());
        let list: Vec<&str> = columns.clone().copied().collect();
        let list = list.join(", ");
        let staged_list: Vec<String> = columns.map(|c| format!("s.{c}")).collect();
        let staged_list = staged_list.join(", ");
        let set: Vec<String> = values
            .iter()
            .map(|v| format!("{v} = excluded.{v}"))
            .collect();
        let differs: Vec<String> = values
            .iter()
            .map(|v| format!("{table}.{v} IS NOT excluded.{v}"))
            .collect();
        // The WHERE of the SELECT also settles SQLite's parsing ambiguity
        // between a join's ON and the upsert's ON CONFLICT.
        let sql = format!(
            "INSERT INTO {table} (tenant_id, {list})
             SELECT ?2, {staged_list} FROM {stage} s WHERE s.import_id = ?1 {only} ORDER BY s.seq
             ON CONFLICT (tenant_id, {keys}) DO UPDATE SET {set} WHERE {differs}",
            keys = keys.join(", "),
            set = set.join(", "),
            differs = differs.join(" OR "),
        );
        // Inserted and actually updated rows; rows the WHERE kept are not
        // counted by SQLite.
        let written = tx.execute(&sql, params![import_id, tenant.0])? as i64;
        let inserted: i64 = tx.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE id > ?1"),
            [last_id],
            |r| r.get(0),
        )?;
        let updated = written - inserted;
        let counts = |n: i64| {
            u64::try_from(n)
                .map_err(|_| StoreError::Corrupt(format!("{table}: staged rows with the same key")))
        };
        Ok(Counts {
            inserted: counts(inserted)?,
            updated: counts(updated)?,
            unchanged: counts(staged - written)?,
        })
    }
}

/// Moves an import's staged rows (and its segments, tier schemes and
/// settings) into the tables in one transaction.
fn merge(
    conn: &mut Connection,
    tenant: TenantId,
    import_id: i64,
    data: &Dataset,
    total: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut report = ImportReport {
        import_id,
        ..ImportReport::default()
    };
    let mut done = 0;
    let mut step = |rows: usize| {
        done += rows as u64;
        progress(Progress {
            phase: Phase::Merging,
            done,
            total,
        });
    };
    step(0);
    report.products = PRODUCTS.run(&tx, tenant, import_id)?;
    step(data.products.len());
    report.customers = CUSTOMERS.run(&tx, tenant, import_id)?;
    step(data.customers.len());
    report.orders = ORDERS.run(&tx, tenant, import_id)?;
    report.lines = LINES.run(&tx, tenant, import_id)?;
    if report.lines.inserted + report.lines.updated > 0 {
        mark_named_products(&tx, tenant)?;
    }
    step(data.lines.len());
    report.daily = DAILY.run(&tx, tenant, import_id)?;
    report.segments = merge_segments(&tx, tenant, data)?;
    report.tier_schemes = merge_tier_schemes(&tx, tenant, &data.tiers)?;
    let settings = tx.execute(
        "UPDATE tenants SET timezone = ?2, currency = ?3
         WHERE id = ?1 AND (timezone IS NOT ?2 OR currency IS NOT ?3)",
        params![
            tenant.0,
            data.settings.timezone_name,
            data.settings.currency
        ],
    )?;
    record_names(&tx, tenant, import_id, &data.tiers)?;
    delete_staged(&tx, import_id)?;
    tx.execute(
        "UPDATE imports SET state = 'done', finished_at = ?2, report = ?3 WHERE id = ?1",
        params![import_id, wall_clock(), rows_json::report_json(&report)],
    )?;
    let kinds = [
        &report.products,
        &report.customers,
        &report.orders,
        &report.lines,
        &report.daily,
        &report.segments,
        &report.tier_schemes,
    ];
    if settings > 0 || kinds.iter().any(|c| c.inserted + c.updated > 0) {
        tx.execute(
            "UPDATE tenants SET data_version = data_version + 1 WHERE id = ?1",
            [tenant.0],
        )?;
    }
    tx.commit()?;
    step(data.daily.len());
    Ok(report)
}

/// Marks the products lines name (`products.has_lines`, which a product
/// delete checks) after lines came in or moved.
fn mark_named_products(tx: &Transaction<'_>, tenant: TenantId) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE products SET has_lines = 1 - has_lines
         WHERE tenant_id = ?1
           AND has_lines <> (sku IN (SELECT sku FROM order_lines WHERE tenant_id = ?1))",
        [tenant.0],
    )?;
    Ok(())
}

fn merge_segments(
    tx: &Transaction<'_>,
    tenant: TenantId,
    data: &Dataset,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    let now = wall_clock();
    for segment in &data.segments {
        let forms = RuleForms::of(&segment.name, &segment.rule)?;
        let kind = rows_json::segment_kind_name(segment.kind);
        let existed = tx
            .prepare_cached("SELECT 1 FROM segments WHERE tenant_id = ?1 AND name = ?2")?
            .exists(params![tenant.0, segment.name])?;
        let written = tx.execute(
            "INSERT INTO segments (tenant_id, name, kind, rule_source, rule_text, rule_json,
                 created_at, updated_at, description)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
             ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind,
                 rule_source = excluded.rule_source, rule_text = excluded.rule_text,
                 rule_json = excluded.rule_json, updated_at = excluded.updated_at,
                 description = excluded.description
             WHERE segments.kind IS NOT excluded.kind
                OR segments.rule_source IS NOT excluded.rule_source
                OR segments.rule_text IS NOT excluded.rule_text
                OR segments.rule_json IS NOT excluded.rule_json
                OR segments.description IS NOT excluded.description",
            params![
                tenant.0,
                segment.name,
                kind,
                forms.source,
                forms.text,
                forms.json,
                now,
                segment.description
            ],
        )?;
        count_one(&mut counts, existed, written);
    }
    Ok(counts)
}

fn merge_tier_schemes(
    tx: &Transaction<'_>,
    tenant: TenantId,
    schemes: &[TierScheme],
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    for scheme in schemes {
        let marketplace = rows_json::marketplace_key(scheme.marketplace.as_deref());
        let existed = tx
            .prepare_cached("SELECT 1 FROM tier_schemes WHERE tenant_id = ?1 AND marketplace = ?2")?
            .exists(params![tenant.0, marketplace])?;
        let written = tx.execute(
            "INSERT INTO tier_schemes (tenant_id, marketplace, metric, tiers) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, marketplace) DO UPDATE SET metric = excluded.metric,
                 tiers = excluded.tiers
             WHERE tier_schemes.metric IS NOT excluded.metric
                OR tier_schemes.tiers IS NOT excluded.tiers",
            params![
                tenant.0,
                marketplace,
                rows_json::metric_name(scheme.metric),
                rows_json::tiers_json(&scheme.tiers),
            ],
        )?;
        count_one(&mut counts, existed, written);
    }
    Ok(counts)
}

/// Counts one upserted row, by whether its key was there before and
/// whether the upsert wrote.
fn count_one(counts: &mut Counts, existed: bool, written: usize) {
    match (existed, written) {
        (false, _) => counts.inserted += 1,
        (true, 0) => counts.unchanged += 1,
        (true, _) => counts.updated += 1,
    }
}

/// Seller accounts and marketplaces named anywhere in the import.
fn record_names(
    tx: &Transaction<'_>,
    tenant: TenantId,
    import_id: i64,
    schemes: &[TierScheme],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO seller_accounts (tenant_id, name)
         SELECT ?2, seller_account FROM stage_products
             WHERE import_id = ?1 AND seller_account IS NOT NULL
         UNION SELECT ?2, seller_account FROM stage_lines
             WHERE import_id = ?1 AND seller_account IS NOT NULL",
        params![import_id, tenant.0],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO marketplaces (tenant_id, name)
         SELECT ?2, marketplace FROM stage_products
             WHERE import_id = ?1 AND marketplace IS NOT NULL
         UNION SELECT ?2, marketplace FROM stage_customers
             WHERE import_id = ?1 AND marketplace IS NOT NULL
         UNION SELECT ?2, marketplace FROM stage_lines
             WHERE import_id = ?1 AND marketplace IS NOT NULL",
        params![import_id, tenant.0],
    )?;
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO marketplaces (tenant_id, name) VALUES (?1, ?2)")?;
    for scheme in schemes {
        if let Some(m) = text(scheme.marketplace.as_deref()) {
            stmt.execute(params![tenant.0, m])?;
        }
    }
    Ok(())
}
