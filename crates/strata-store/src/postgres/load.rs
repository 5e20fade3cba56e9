//! Reading a tenant's rows back into a `Dataset`.
//!
//! Every table is streamed with binary `COPY ... TO STDOUT`, nothing held
//! but the dataset being built. Lines are joined to their orders here, from
//! a table of the orders in memory: having the server join ten million
//! lines and sort them back into id order costs far more.

use std::sync::Arc;

use postgres::binary_copy::{BinaryCopyOutIter, BinaryCopyOutRow};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, Type};
use postgres::{Client, IsolationLevel, Transaction};
use rustc_hash::FxHashMap;
use strata_data::{
    CustomerRow, DailyRow, Dataset, DatasetBuilder, LineRow, Nanos, ProductRow, RowError,
    SavedSegment, Settings, TierScheme,
};

use super::{tenant_in, u64_of};
use crate::rows_json::{self, RuleForms};
use crate::{StoreError, TenantId};

fn corrupt(e: RowError) -> StoreError {
    StoreError::Corrupt(e.0)
}

/// Column `i` of a streamed row.
fn get<'a, T: FromSql<'a>>(row: &'a BinaryCopyOutRow, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

fn count(row: &BinaryCopyOutRow, i: usize, what: &str) -> Result<Option<u64>, StoreError> {
    get::<Option<i64>>(row, i)?
        .map(|v| u64_of(v, what))
        .transpose()
}

/// Streams the rows of `select` (one tenant's, as `{t}` in it), `types`
/// naming its columns' types, into `each`. After a row `each` refuses, the
/// rest is drained so that the connection stays usable.
fn each_row(
    tx: &mut Transaction<'_>,
    select: &str,
    types: &[Type],
    mut each: impl FnMut(&BinaryCopyOutRow) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let reader = tx.copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))?;
    let mut rows = BinaryCopyOutIter::new(reader, types);
    let mut refused = None;
    while let Some(row) = rows.next()? {
        if refused.is_none()
            && let Err(e) = each(&row)
        {
            refused = Some(e);
        }
    }
    refused.map_or(Ok(()), Err)
}

/// Text that repeats across orders (customers, statuses, marketplaces),
/// kept once.
#[derive(Default)]
struct Interner {
    codes: FxHashMap<Arc<str>, u32>,
    values: Vec<Arc<str>>,
}

impl Interner {
    const NONE: u32 = u32::MAX;

    fn code(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else {
            return Interner::NONE;
        };
        if let Some(&code) = self.codes.get(value) {
            return code;
        }
        let code = self.values.len() as u32;
        let value: Arc<str> = Arc::from(value);
        self.values.push(value.clone());
        self.codes.insert(value, code);
        code
    }

    fn get(&self, code: u32) -> Option<String> {
        self.values.get(code as usize).map(|v| v.to_string())
    }
}

/// An order's columns, their text interned.
struct Order {
    ordered_at: Nanos,
    customer: u32,
    status: u32,
    marketplace: u32,
}

pub(super) fn load(conn: &mut Client, tenant: TenantId) -> Result<Dataset, StoreError> {
    // One snapshot, even while an import or a commit goes on.
    let mut tx = conn
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let stored = tenant_in(&mut tx, tenant, false)?;
    let timezone = jiff::tz::TimeZone::get(&stored.timezone).map_err(|e| {
        StoreError::Corrupt(format!(
            "the time zone '{}' is unknown: {e}",
            stored.timezone
        ))
    })?;
    let mut b = DatasetBuilder::new(Settings {
        timezone,
        timezone_name: stored.timezone,
        currency: stored.currency,
    });
    // COPY takes no parameters; the id is a number.
    let t = tenant.0;
    each_row(
        &mut tx,
        &format!(
            "SELECT sku, parent_sku, asin, title, brand, category, tags::text, seller_account,
                 marketplace, price, cost, inventory, created_at, custom::text
             FROM products WHERE tenant_id = {t} ORDER BY id"
        ),
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
        ],
        |r| {
            b.product(ProductRow {
                sku: get(r, 0)?,
                parent_sku: get(r, 1)?,
                asin: get(r, 2)?,
                title: get(r, 3)?,
                brand: get(r, 4)?,
                category: get(r, 5)?,
                tags: rows_json::tags_from_json(get(r, 6)?)?,
                seller_account: get(r, 7)?,
                marketplace: get(r, 8)?,
                price: get(r, 9)?,
                cost: get(r, 10)?,
                inventory: count(r, 11, "inventory")?,
                created_at: get(r, 12)?,
                custom: rows_json::custom_from_json(get(r, 13)?)?,
            })
            .map_err(corrupt)
        },
    )?;
    each_row(
        &mut tx,
        &format!(
            "SELECT customer_id, email, first_name, last_name, country, city, marketplace,
                 tags::text, accepts_marketing, created_at, custom::text
             FROM customers WHERE tenant_id = {t} ORDER BY id"
        ),
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::BOOL,
            Type::INT8,
            Type::TEXT,
        ],
        |r| {
            b.customer(CustomerRow {
                customer_id: get(r, 0)?,
                email: get(r, 1)?,
                first_name: get(r, 2)?,
                last_name: get(r, 3)?,
                country: get(r, 4)?,
                city: get(r, 5)?,
                marketplace: get(r, 6)?,
                tags: rows_json::tags_from_json(get(r, 7)?)?,
                accepts_marketing: get(r, 8)?,
                created_at: get(r, 9)?,
                custom: rows_json::custom_from_json(get(r, 10)?)?,
            })
            .map_err(corrupt)
        },
    )?;
    let mut orders: FxHashMap<Box<str>, Order> = FxHashMap::default();
    let mut customers = Interner::default();
    let mut statuses = Interner::default();
    let mut markets = Interner::default();
    each_row(
        &mut tx,
        &format!(
            "SELECT order_id, ordered_at, customer_id, status, marketplace
             FROM orders WHERE tenant_id = {t}"
        ),
        &[Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT],
        |r| {
            let order = Order {
                ordered_at: get(r, 1)?,
                customer: customers.code(get(r, 2)?),
                status: statuses.code(Some(get(r, 3)?)),
                marketplace: markets.code(get(r, 4)?),
            };
            orders.insert(get::<&str>(r, 0)?.into(), order);
            Ok(())
        },
    )?;
    each_row(
        &mut tx,
        &format!(
            "SELECT order_id, sku, quantity, unit_price, discount, fees, seller_account
             FROM order_lines WHERE tenant_id = {t} ORDER BY id"
        ),
        &[
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::NUMERIC,
            Type::TEXT,
        ],
        |r| {
            let order_id: &str = get(r, 0)?;
            let order = orders.get(order_id).ok_or_else(|| {
                StoreError::Corrupt(format!("a line of order '{order_id}', which is not stored"))
            })?;
            let quantity: i64 = get(r, 2)?;
            b.line(LineRow {
                order_id: order_id.to_owned(),
                ordered_at: order.ordered_at,
                customer_id: customers.get(order.customer),
                sku: get(r, 1)?,
                quantity: u32::try_from(quantity).map_err(|_| {
                    StoreError::Corrupt(format!("order '{order_id}': quantity {quantity}"))
                })?,
                unit_price: get(r, 3)?,
                discount: get(r, 4)?,
                fees: get(r, 5)?,
                status: statuses.get(order.status),
                marketplace: markets.get(order.marketplace),
                seller_account: get(r, 6)?,
            })
            .map_err(corrupt)
        },
    )?;
    drop(orders);
    each_row(
        &mut tx,
        &format!(
            "SELECT sku, date, sessions, bsr, reviews, rating
             FROM product_daily WHERE tenant_id = {t} ORDER BY id"
        ),
        &[
            Type::TEXT,
            Type::DATE,
            Type::INT8,
            Type::INT8,
            Type::INT8,
            Type::NUMERIC,
        ],
        |r| {
            b.daily(DailyRow {
                sku: get(r, 0)?,
                date: get(r, 1)?,
                sessions: count(r, 2, "sessions")?,
                bsr: count(r, 3, "bsr")?,
                reviews: count(r, 4, "reviews")?,
                rating: get(r, 5)?,
            })
            .map_err(corrupt)
        },
    )?;
    for row in tx.query(
        "SELECT marketplace, metric, tiers::text FROM tier_schemes WHERE tenant_id = $1
         ORDER BY id",
        &[&t],
    )? {
        b.tier_scheme(TierScheme {
            marketplace: rows_json::marketplace_from_key(row.get(0)),
            metric: rows_json::metric_from_name(row.get(1))?,
            tiers: rows_json::tiers_from_json(row.get(2))?,
        });
    }
    for row in tx.query(
        "SELECT name, kind, rule_source, rule_text, rule_json::text FROM segments
         WHERE tenant_id = $1 ORDER BY id",
        &[&t],
    )? {
        b.segment(SavedSegment {
            name: row.get(0),
            kind: rows_json::segment_kind_from_name(row.get(1))?,
            rule: RuleForms::rule(row.get(2), row.get(3), row.get(4))?,
        });
    }
    tx.commit()?;
    Ok(b.finish())
}
