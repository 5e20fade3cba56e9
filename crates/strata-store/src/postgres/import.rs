//! Imports: binary `COPY` into staging tables in committed batches, then
//! one merging transaction.

use std::fmt::Write as _;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};
use strata_data::{Dataset, NO_CUSTOMER};

use super::{i64_of, tenant_in, wall_clock};
use crate::rows_json::{self, RuleForms, text};
use crate::staging::Staging;
use crate::{Counts, ImportReport, Phase, Progress, StoreError, TenantId};

/// Rows per committed staging batch.
const BATCH: usize = 100_000;

const STAGE_TABLES: [&str; 4] = [
    "stage_products",
    "stage_customers",
    "stage_lines",
    "stage_daily",
];

/// The advisory lock an import holds while it runs, with `$1` its id:
/// two int4 keys, the `imports` table's oid (advisory locks are
/// database-wide, and every schema counts its imports from 1) and the id.
/// Ids past 2^31 wrap: a clash only makes a dead import look alive until
/// the other one ends.
macro_rules! import_lock {
    ($function:literal) => {
        concat!(
            "SELECT ",
            $function,
            "(('imports'::regclass::oid::int8 - 2147483648)::int4, ($1::int8 & 2147483647)::int4)"
        )
    };
}

fn unlock(conn: &mut Client, import_id: i64) -> Result<(), StoreError> {
    conn.execute(import_lock!("pg_advisory_unlock"), &[&import_id])?;
    Ok(())
}

pub(super) fn import(
    conn: &mut Client,
    tenant: TenantId,
    data: &Dataset,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, StoreError> {
    clean_abandoned(conn)?;
    tenant_in(conn, tenant, false)?;
    let import_id = begin(conn, tenant)?;
    let result = stage(conn, import_id, data, progress)
        .and_then(|total| merge(conn, tenant, import_id, data, total, progress));
    if result.is_err() {
        // A failure the process survived: clean up now rather than at the
        // next import. If this fails too (the connection is gone, say), the
        // lock went with the connection and `clean_abandoned` will do it.
        let _ = abandon(conn, import_id);
    }
    let unlocked = unlock(conn, import_id);
    let report = result?;
    unlocked?;
    Ok(report)
}

/// Records a running import with its lock taken in the same transaction:
/// no cleaner can see the import running without its lock held.
fn begin(conn: &mut Client, tenant: TenantId) -> Result<i64, StoreError> {
    let mut tx = conn.transaction()?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO imports (tenant_id, state, started_at) VALUES ($1, 'running', $2)
             RETURNING id",
            &[&tenant.0, &wall_clock()],
        )?
        .get(0);
    tx.execute(import_lock!("pg_advisory_lock"), &[&id])?;
    tx.commit()?;
    Ok(id)
}

pub(super) fn clean_abandoned(conn: &mut Client) -> Result<u64, StoreError> {
    let running: Vec<i64> = conn
        .query(
            "SELECT id FROM imports WHERE state = 'running' ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut cleaned = 0;
    for id in running {
        let free: bool = conn
            .query_one(import_lock!("pg_try_advisory_lock"), &[&id])?
            .get(0);
        if !free {
            continue;
        }
        // Kept until the import is marked: the lock is the proof that its
        // process is gone.
        let abandoned = abandon(conn, id);
        let unlocked = unlock(conn, id);
        if abandoned? {
            cleaned += 1;
        }
        unlocked?;
    }
    Ok(cleaned)
}

/// Marks a running import abandoned and deletes its staging rows, in one
/// transaction. `false` if it was no longer running (it finished, or
/// another cleaner came first).
fn abandon(conn: &mut Client, import_id: i64) -> Result<bool, StoreError> {
    let mut tx = conn.transaction()?;
    let marked = tx.execute(
        "UPDATE imports SET state = 'abandoned', finished_at = $2
         WHERE id = $1 AND state = 'running'",
        &[&import_id, &wall_clock()],
    )?;
    if marked > 0 {
        for table in STAGE_TABLES {
            tx.execute(
                &format!("DELETE FROM {table} WHERE import_id = $1"),
                &[&import_id],
            )?;
        }
    }
    tx.commit()?;
    Ok(marked > 0)
}

/// Counts rows through the staging batches of every kind.
/// Rows `0..n` into `table` through binary `COPY`, `write` writing row `i`,
/// one committed batch at a time.
fn rows(
    staging: &mut Staging<'_>,
    conn: &mut Client,
    table: &str,
    columns: &[(&str, Type)],
    n: usize,
    mut write: impl FnMut(&mut BinaryCopyInWriter<'_>, i64, usize) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let types: Vec<Type> = columns.iter().map(|c| c.1.clone()).collect();
    let sql = format!(
        "COPY {table} ({}) FROM STDIN (FORMAT binary)",
        names.join(", ")
    );
    let import_id = staging.import_id;
    staging.in_batches(n, BATCH, |range| {
        // Outside a transaction each COPY commits on its own.
        let mut writer = BinaryCopyInWriter::new(conn.copy_in(&sql)?, &types);
        for i in range {
            write(&mut writer, import_id, i)?;
        }
        writer.finish()?;
        Ok(())
    })
}

/// Writes every row of `data` into the staging tables; returns how many.
fn stage(
    conn: &mut Client,
    import_id: i64,
    data: &Dataset,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, StoreError> {
    let mut staging = Staging::new(import_id, data, progress);
    rows(
        &mut staging,
        conn,
        "stage_products",
        &[
            ("import_id", Type::INT8),
            ("seq", Type::INT8),
            ("sku", Type::TEXT),
            ("parent_sku", Type::TEXT),
            ("asin", Type::TEXT),
            ("title", Type::TEXT),
            ("brand", Type::TEXT),
            ("category", Type::TEXT),
            ("tags", Type::TEXT),
            ("seller_account", Type::TEXT),
            ("marketplace", Type::TEXT),
            ("price", Type::TEXT),
            ("cost", Type::TEXT),
            ("inventory", Type::INT8),
            ("created_at", Type::INT8),
            ("custom", Type::TEXT),
        ],
        data.products.len(),
        |w, import_id, i| {
            let p = data.product_row(i);
            let inventory = p.inventory.map(|v| i64_of(v, "inventory")).transpose()?;
            w.write(&[
                &import_id,
                &(i as i64),
                &p.sku,
                &text(p.parent_sku.as_deref()),
                &text(p.asin.as_deref()),
                &text(p.title.as_deref()),
                &text(p.brand.as_deref()),
                &text(p.category.as_deref()),
                &rows_json::tags_json(&p.tags),
                &text(p.seller_account.as_deref()),
                &text(p.marketplace.as_deref()),
                &p.price.map(|d| d.to_string()),
                &p.cost.map(|d| d.to_string()),
                &inventory,
                &p.created_at,
                &rows_json::custom_json(&p.custom),
            ])?;
            Ok(())
        },
    )?;
    rows(
        &mut staging,
        conn,
        "stage_customers",
        &[
            ("import_id", Type::INT8),
            ("seq", Type::INT8),
            ("customer_id", Type::TEXT),
            ("email", Type::TEXT),
            ("first_name", Type::TEXT),
            ("last_name", Type::TEXT),
            ("country", Type::TEXT),
            ("city", Type::TEXT),
            ("marketplace", Type::TEXT),
            ("tags", Type::TEXT),
            ("accepts_marketing", Type::BOOL),
            ("created_at", Type::INT8),
            ("custom", Type::TEXT),
        ],
        data.customers.len(),
        |w, import_id, i| {
            let c = data.customer_row(i);
            w.write(&[
                &import_id,
                &(i as i64),
                &c.customer_id,
                &text(c.email.as_deref()),
                &text(c.first_name.as_deref()),
                &text(c.last_name.as_deref()),
                &text(c.country.as_deref()),
                &text(c.city.as_deref()),
                &text(c.marketplace.as_deref()),
                &rows_json::tags_json(&c.tags),
                &c.accepts_marketing,
                &c.created_at,
                &rows_json::custom_json(&c.custom),
            ])?;
            Ok(())
        },
    )?;
    // Straight from the columns rather than through `line_row`: this is the
    // big table, and borrowed text costs no allocation. A line's number is
    // its position among its order's lines in file order, which is what
    // makes re-importing a grown file idempotent.
    let (lines, orders) = (&data.lines, &data.orders);
    let mut numbered = vec![0i32; orders.len()];
    let mut amounts: [String; 3] = Default::default();
    rows(
        &mut staging,
        conn,
        "stage_lines",
        &[
            ("import_id", Type::INT8),
            ("seq", Type::INT8),
            ("order_id", Type::TEXT),
            ("line_no", Type::INT4),
            ("ordered_at", Type::INT8),
            ("customer_id", Type::TEXT),
            ("status", Type::TEXT),
            ("marketplace", Type::TEXT),
            ("sku", Type::TEXT),
            ("quantity", Type::INT8),
            ("unit_price", Type::TEXT),
            ("discount", Type::TEXT),
            ("fees", Type::TEXT),
            ("seller_account", Type::TEXT),
        ],
        lines.len(),
        |w, import_id, i| {
            let o = lines.order[i] as usize;
            let n = &mut numbered[o];
            *n += 1;
            let customer = match orders.customer[o] {
                NO_CUSTOMER => None,
                c => data.customers.customer_id.get(c as usize),
            };
            let sku = data.products.sku.get(lines.product[i] as usize);
            for (text, amount) in
                amounts
                    .iter_mut()
                    .zip([lines.unit_price[i], lines.discount[i], lines.fees[i]])
            {
                text.clear();
                write!(text, "{amount}").expect("writing to a string");
            }
            let [unit_price, discount, fees] = &amounts;
            w.write(&[
                &import_id,
                &(i as i64),
                &orders.order_id.get(o),
                &*n,
                &orders.ordered_at[o],
                &text(customer),
                &text(orders.status.get(o)).unwrap_or("shipped"),
                &text(orders.marketplace.get(o)),
                &sku.unwrap_or_default(),
                &i64::from(lines.quantity[i]),
                unit_price,
                discount,
                fees,
                &text(lines.seller_account.get(i)),
            ])?;
            Ok(())
        },
    )?;
    rows(
        &mut staging,
        conn,
        "stage_daily",
        &[
            ("import_id", Type::INT8),
            ("seq", Type::INT8),
            ("sku", Type::TEXT),
            ("date", Type::DATE),
            ("sessions", Type::INT8),
            ("bsr", Type::INT8),
            ("reviews", Type::INT8),
            ("rating", Type::TEXT),
        ],
        data.daily.len(),
        |w, import_id, i| {
            let d = data.daily_row(i);
            let count = |v: Option<u64>, what| v.map(|v| i64_of(v, what)).transpose();
            w.write(&[
                &import_id,
                &(i as i64),
                &d.sku,
                &d.date,
                &count(d.sessions, "sessions")?,
                &count(d.bsr, "bsr")?,
                &count(d.reviews, "reviews")?,
                &d.rating.map(|r| r.to_string()),
            ])?;
            Ok(())
        },
    )?;
    Ok(staging.done())
}

/// How a column is moved and compared.
#[derive(Clone, Copy)]
enum Col {
    Plain,
    /// Staged as text, stored as `numeric`; compared as text, since
    /// `1.0 = 1.00` but the written scale is part of the value.
    Decimal,
    /// Staged as JSON text, stored as `jsonb`.
    Json,
}

/// How staged rows of one kind become table rows.
struct Upsert {
    table: &'static str,
    stage: &'static str,
    /// Restricts the staged rows (orders: the first line of each).
    only: &'static str,
    keys: &'static [&'static str],
    values: &'static [(&'static str, Col)],
}

const PRODUCTS: Upsert = Upsert {
    table: "products",
    stage: "stage_products",
    only: "",
    keys: &["sku"],
    values: &[
        ("parent_sku", Col::Plain),
        ("asin", Col::Plain),
        ("title", Col::Plain),
        ("brand", Col::Plain),
        ("category", Col::Plain),
        ("tags", Col::Json),
        ("seller_account", Col::Plain),
        ("marketplace", Col::Plain),
        ("price", Col::Decimal),
        ("cost", Col::Decimal),
        ("inventory", Col::Plain),
        ("created_at", Col::Plain),
        ("custom", Col::Json),
    ],
};

const CUSTOMERS: Upsert = Upsert {
    table: "customers",
    stage: "stage_customers",
    only: "",
    keys: &["customer_id"],
    values: &[
        ("email", Col::Plain),
        ("first_name", Col::Plain),
        ("last_name", Col::Plain),
        ("country", Col::Plain),
        ("city", Col::Plain),
        ("marketplace", Col::Plain),
        ("tags", Col::Json),
        ("accepts_marketing", Col::Plain),
        ("created_at", Col::Plain),
        ("custom", Col::Json),
    ],
};

const ORDERS: Upsert = Upsert {
    table: "orders",
    stage: "stage_lines",
    only: "AND s.line_no = 1",
    keys: &["order_id"],
    values: &[
        ("ordered_at", Col::Plain),
        ("customer_id", Col::Plain),
        ("status", Col::Plain),
        ("marketplace", Col::Plain),
    ],
};

const LINES: Upsert = Upsert {
    table: "order_lines",
    stage: "stage_lines",
    only: "",
    keys: &["order_id", "line_no"],
    values: &[
        ("sku", Col::Plain),
        ("quantity", Col::Plain),
        ("unit_price", Col::Decimal),
        ("discount", Col::Decimal),
        ("fees", Col::Decimal),
        ("seller_account", Col::Plain),
    ],
};

const DAILY: Upsert = Upsert {
    table: "product_daily",
    stage: "stage_daily",
    only: "",
    keys: &["sku", "date"],
    values: &[
        ("sessions", Col::Plain),
        ("bsr", Col::Plain),
        ("reviews", Col::Plain),
        ("rating", Col::Decimal),
    ],
};

impl Upsert {
    /// A staged column as the table holds it.
    fn staged(v: &str, col: Col) -> String {
        match col {
            Col::Json => format!("s.{v}::jsonb"),
            Col::Decimal => format!("s.{v}::numeric"),
            Col::Plain => format!("s.{v}"),
        }
    }

    /// Inserts the staged rows whose key the tenant lacks (`all`: every
    /// staged row), in file order: new rows get ids in file order, which
    /// `load` keeps.
    fn insert_sql(&self, all: bool) -> String {
        let Upsert {
            table,
            stage,
            only,
            keys,
            values,
        } = self;
        let names: Vec<&str> = keys
            .iter()
            .copied()
            .chain(values.iter().map(|v| v.0))
            .collect();
        let selected: Vec<String> = keys
            .iter()
            .map(|k| format!("s.{k}"))
            .chain(values.iter().map(|&(v, col)| Upsert::staged(v, col)))
            .collect();
        let missing = if all {
            String::new()
        } else {
            let same: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
            format!(
                "AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.tenant_id = $1 AND {})",
                same.join(" AND ")
            )
        };
        format!(
            "INSERT INTO {table} (tenant_id, {names})
             SELECT $1, {selected} FROM {stage} s WHERE s.import_id = $2 {only} {missing}
             ORDER BY s.seq",
            names = names.join(", "),
            selected = selected.join(", "),
        )
    }

    /// Updates the rows whose staged values differ.
    fn update_sql(&self) -> String {
        let Upsert {
            table,
            stage,
            only,
            keys,
            values,
        } = self;
        let set: Vec<String> = values
            .iter()
            .map(|&(v, col)| format!("{v} = {}", Upsert::staged(v, col)))
            .collect();
        let same: Vec<String> = keys.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        // Decimals compare as text: `1.0 = 1.00`, but the written scale is
        // part of the value.
        let (old, new): (Vec<String>, Vec<String>) = values
            .iter()
            .map(|&(v, col)| match col {
                Col::Decimal => (format!("t.{v}::text"), format!("s.{v}::numeric::text")),
                Col::Json | Col::Plain => (format!("t.{v}"), Upsert::staged(v, col)),
            })
            .unzip();
        format!(
            "UPDATE {table} t SET {set} FROM {stage} s
             WHERE s.import_id = $2 {only} AND t.tenant_id = $1 AND {same}
                 AND ({old}) IS DISTINCT FROM ({new})",
            set = set.join(", "),
            same = same.join(" AND "),
            old = old.join(", "),
            new = new.join(", "),
        )
    }

    /// Moves the staged rows into the table, updating only rows that
    /// differ; `staged` is how many rows the kind has.
    ///
    /// Set-wise rather than `INSERT ... ON CONFLICT`: that probes the key
    /// index once per row and locks (so writes) every conflicting row, even
    /// one it leaves as it was, which made re-importing an unchanged file
    /// as slow as the first import. No other writer can add a key meanwhile:
    /// merges take turns, and the merge holds the tenant's row.
    fn run(
        &self,
        tx: &mut Transaction<'_>,
        tenant: TenantId,
        import_id: i64,
        staged: usize,
    ) -> Result<Counts, StoreError> {
        let ids: [&(dyn ToSql + Sync); 2] = [&tenant.0, &import_id];
        let empty = tx
            .query_opt(
                &format!("SELECT 1 FROM {} WHERE tenant_id = $1 LIMIT 1", self.table),
                &[&tenant.0],
            )?
            .is_none();
        let updated = if empty {
            0
        } else {
            tx.execute(&self.update_sql(), &ids)?
        };
        let inserted = tx.execute(&self.insert_sql(empty), &ids)?;
        let unchanged = (staged as u64)
            .checked_sub(inserted + updated)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{}: staged rows with the same key", self.table))
            })?;
        Ok(Counts {
            inserted,
            updated,
            unchanged,
        })
    }
}

/// Moves an import's staged rows (and its segments, tier schemes and
/// settings) into the tables in one transaction.
fn merge(
    conn: &mut Client,
    tenant: TenantId,
    import_id: i64,
    data: &Dataset,
    total: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, StoreError> {
    let mut tx = conn.transaction()?;
    // One merge at a time, and no staging meanwhile (a `COPY` waits): then
    // `clear_staging` may truncate. Taken first, as taking it after reading
    // the staging tables would deadlock two merges upgrading their locks.
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
        STAGE_TABLES.join(", ")
    ))?;
    // Commits of this tenant wait for the merge, and it for them.
    tenant_in(&mut tx, tenant, true)?;
    // Statistics of what was just staged, and room for the joins against
    // the tables to hash in memory.
    tx.batch_execute(&format!(
        "ANALYZE {}; SET LOCAL work_mem = '256MB'",
        STAGE_TABLES.join(", ")
    ))?;
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
    report.products = PRODUCTS.run(&mut tx, tenant, import_id, data.products.len())?;
    step(data.products.len());
    report.customers = CUSTOMERS.run(&mut tx, tenant, import_id, data.customers.len())?;
    step(data.customers.len());
    report.orders = ORDERS.run(&mut tx, tenant, import_id, data.orders.len())?;
    report.lines = LINES.run(&mut tx, tenant, import_id, data.lines.len())?;
    if report.lines.inserted + report.lines.updated > 0 {
        mark_named_products(&mut tx, tenant)?;
    }
    step(data.lines.len());
    report.daily = DAILY.run(&mut tx, tenant, import_id, data.daily.len())?;
    report.segments = merge_segments(&mut tx, tenant, data)?;
    report.tier_schemes = merge_tier_schemes(&mut tx, tenant, data)?;
    let settings = tx.execute(
        "UPDATE tenants SET timezone = $2, currency = $3
         WHERE id = $1 AND (timezone, currency) IS DISTINCT FROM ($2, $3)",
        &[
            &tenant.0,
            &data.settings.timezone_name,
            &data.settings.currency,
        ],
    )?;
    record_names(&mut tx, tenant, data)?;
    clear_staging(&mut tx, import_id)?;
    tx.execute(
        "UPDATE imports SET state = 'done', finished_at = $2, report = $3::text::jsonb
         WHERE id = $1",
        &[&import_id, &wall_clock(), &rows_json::report_json(&report)],
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
            "UPDATE tenants SET data_version = data_version + 1 WHERE id = $1",
            &[&tenant.0],
        )?;
    }
    tx.commit()?;
    if kinds.iter().any(|c| c.inserted > 0) {
        // Fresh statistics, or the planner takes a table grown from nothing
        // for a small one and sorts millions of rows for `load` rather than
        // reading the primary key in order. Best effort: the import is in.
        let _ =
            conn.batch_execute("ANALYZE products, customers, orders, order_lines, product_daily");
    }
    step(data.daily.len());
    Ok(report)
}

/// Counts one upserted row by what `RETURNING xmax = 0` gave: no row when
/// the WHERE found nothing to change.
fn count_one(counts: &mut Counts, returned: Option<bool>) {
    match returned {
        Some(true) => counts.inserted += 1,
        Some(false) => counts.updated += 1,
        None => counts.unchanged += 1,
    }
}

/// Marks the products lines name (`products.has_lines`, which a product
/// delete checks) after lines came in or moved.
fn mark_named_products(tx: &mut Transaction<'_>, tenant: TenantId) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE products p SET has_lines = (n.sku IS NOT NULL)
         FROM products q
         LEFT JOIN (SELECT DISTINCT sku FROM order_lines WHERE tenant_id = $1) n ON n.sku = q.sku
         WHERE q.tenant_id = $1 AND p.tenant_id = $1 AND p.id = q.id
           AND p.has_lines <> (n.sku IS NOT NULL)",
        &[&tenant.0],
    )?;
    Ok(())
}

fn merge_segments(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    data: &Dataset,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    let now = wall_clock();
    for segment in &data.segments {
        let forms = RuleForms::of(&segment.name, &segment.rule)?;
        let kind = rows_json::segment_kind_name(segment.kind);
        // `json` has no equality: compared as text, which is what it keeps.
        let row = tx.query_opt(
            "INSERT INTO segments AS t (tenant_id, name, kind, rule_source, rule_text, rule_json,
                 created_at, updated_at, description)
             VALUES ($1, $2, $3, $4, $5, $6::text::json, $7, $7, $8)
             ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind,
                 rule_source = EXCLUDED.rule_source, rule_text = EXCLUDED.rule_text,
                 rule_json = EXCLUDED.rule_json, updated_at = EXCLUDED.updated_at,
                 description = EXCLUDED.description
             WHERE (t.kind, t.rule_source, t.rule_text, t.rule_json::text, t.description)
                 IS DISTINCT FROM
                 (EXCLUDED.kind, EXCLUDED.rule_source, EXCLUDED.rule_text,
                  EXCLUDED.rule_json::text, EXCLUDED.description)
             RETURNING t.xmax = 0",
            &[
                &tenant.0,
                &segment.name,
                &kind,
                &forms.source,
                &forms.text,
                &forms.json,
                &now,
                &segment.description,
            ],
        )?;
        count_one(&mut counts, row.map(|r| r.get(0)));
    }
    Ok(counts)
}

fn merge_tier_schemes(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    data: &Dataset,
) -> Result<Counts, StoreError> {
    let mut counts = Counts::default();
    for scheme in &data.tiers {
        let row = tx.query_opt(
            "INSERT INTO tier_schemes AS t (tenant_id, marketplace, metric, tiers)
             VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (tenant_id, marketplace) DO UPDATE SET metric = EXCLUDED.metric,
                 tiers = EXCLUDED.tiers
             WHERE (t.metric, t.tiers) IS DISTINCT FROM (EXCLUDED.metric, EXCLUDED.tiers)
             RETURNING t.xmax = 0",
            &[
                &tenant.0,
                &rows_json::marketplace_key(scheme.marketplace.as_deref()),
                &rows_json::metric_name(scheme.metric),
                &rows_json::tiers_json(&scheme.tiers),
            ],
        )?;
        count_one(&mut counts, row.map(|r| r.get(0)));
    }
    Ok(counts)
}

/// Seller accounts and marketplaces named anywhere in the import. The
/// columns' dictionaries hold exactly their distinct values, which saves
/// scanning millions of staged lines.
fn record_names(
    tx: &mut Transaction<'_>,
    tenant: TenantId,
    data: &Dataset,
) -> Result<(), StoreError> {
    let mut sellers: Vec<&str> = data
        .products
        .seller_account
        .dict
        .iter()
        .chain(&data.lines.seller_account.dict)
        .map(|s| &**s)
        .collect();
    let mut markets: Vec<&str> = data
        .products
        .marketplace
        .dict
        .iter()
        .chain(&data.customers.marketplace.dict)
        .chain(&data.orders.marketplace.dict)
        .map(|s| &**s)
        .chain(data.tiers.iter().filter_map(|s| s.marketplace.as_deref()))
        .collect();
    for (table, names) in [
        ("seller_accounts", &mut sellers),
        ("marketplaces", &mut markets),
    ] {
        names.retain(|n| !n.is_empty());
        names.sort_unstable();
        names.dedup();
        let names: &(dyn ToSql + Sync) = names;
        tx.execute(
            &format!(
                "INSERT INTO {table} (tenant_id, name) SELECT $1, unnest($2::text[])
                 ON CONFLICT DO NOTHING"
            ),
            &[&tenant.0, names],
        )?;
    }
    Ok(())
}

/// Removes this import's staging rows, with the staging tables locked by
/// `merge`. With no other import running the tables are truncated instead:
/// deleting ten million rows takes long and leaves them all for vacuum. An
/// import that starts meanwhile waits for the lock and stages after the
/// truncation.
fn clear_staging(tx: &mut Transaction<'_>, import_id: i64) -> Result<(), StoreError> {
    let others: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM imports WHERE state = 'running' AND id <> $1",
            &[&import_id],
        )?
        .get(0);
    if others == 0 {
        tx.batch_execute(&format!("TRUNCATE {}", STAGE_TABLES.join(", ")))?;
    } else {
        for table in STAGE_TABLES {
            tx.execute(
                &format!("DELETE FROM {table} WHERE import_id = $1"),
                &[&import_id],
            )?;
        }
    }
    Ok(())
}
