//! Reading a tenant's rows back into a `Dataset`.

use rusqlite::{Connection, Row, params};
use rust_decimal::Decimal;
use strata_data::{
    CustomerRow, DailyRow, Dataset, DatasetBuilder, LineRow, Nanos, ProductRow, RowError,
    SavedSegment, Settings, TierScheme,
};

use super::{opt_str_at, str_at, tenant_in, u64_of};
use crate::rows_json::{self, RuleForms};
use crate::{StoreError, TenantId};

fn corrupt(e: RowError) -> StoreError {
    StoreError::Corrupt(e.0)
}

fn text(row: &Row<'_>, i: usize) -> Result<Option<String>, StoreError> {
    Ok(opt_str_at(row, i)?.map(str::to_owned))
}

fn required(row: &Row<'_>, i: usize) -> Result<String, StoreError> {
    Ok(str_at(row, i)?.to_owned())
}

fn decimal(row: &Row<'_>, i: usize) -> Result<Option<Decimal>, StoreError> {
    opt_str_at(row, i)?.map(rows_json::decimal).transpose()
}

fn required_decimal(row: &Row<'_>, i: usize) -> Result<Decimal, StoreError> {
    rows_json::decimal(str_at(row, i)?)
}

fn count(row: &Row<'_>, i: usize, what: &str) -> Result<Option<u64>, StoreError> {
    row.get::<_, Option<i64>>(i)?
        .map(|v| u64_of(v, what))
        .transpose()
}

/// An order's own columns, which its lines repeat.
struct Order {
    order_id: String,
    ordered_at: Nanos,
    customer_id: Option<String>,
    status: Option<String>,
    marketplace: Option<String>,
}

const ORDER_COLUMNS: &str = "order_id, ordered_at, customer_id, status, marketplace";

fn order(r: &Row<'_>) -> Result<Order, StoreError> {
    Ok(Order {
        order_id: required(r, 0)?,
        ordered_at: r.get(1)?,
        customer_id: text(r, 2)?,
        status: text(r, 3)?,
        marketplace: text(r, 4)?,
    })
}

/// The order lines with their orders' columns, in line id order.
///
/// Rather than a join (two index searches per line), orders are read in
/// id order beside the lines: an order is created with its first line, in
/// the same transaction, so orders come in the order of their first lines,
/// and each new order a line names is the next one. An order met out of
/// that order (not expected, but not forbidden either) is looked up by key.
fn lines(tx: &Connection, tenant: TenantId, b: &mut DatasetBuilder) -> Result<(), StoreError> {
    let mut in_order = tx.prepare(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders INDEXED BY orders_tenant WHERE tenant_id = ?1
         ORDER BY id"
    ))?;
    let mut by_key = tx.prepare(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = ?1 AND order_id = ?2"
    ))?;
    let mut orders = in_order.query([tenant.0])?;
    let mut next = orders.next()?.map(order).transpose()?;
    let mut current: Option<Order> = None;
    each_row(
        tx,
        "SELECT order_id, sku, quantity, unit_price, discount, fees, seller_account
         FROM order_lines INDEXED BY order_lines_tenant WHERE tenant_id = ?1 ORDER BY id",
        tenant,
        |r| {
            let order_id = str_at(r, 0)?;
            if current.as_ref().is_none_or(|o| o.order_id != order_id) {
                current = Some(match next.take() {
                    Some(o) if o.order_id == order_id => {
                        next = orders.next()?.map(order).transpose()?;
                        o
                    }
                    other => {
                        next = other;
                        let mut rows = by_key.query(params![tenant.0, order_id])?;
                        match rows.next()? {
                            Some(row) => order(row)?,
                            None => {
                                return Err(StoreError::Corrupt(format!(
                                    "order lines of the unknown order '{order_id}'"
                                )));
                            }
                        }
                    }
                });
            }
            let o = current.as_ref().expect("set above");
            let quantity: i64 = r.get(2)?;
            b.line(LineRow {
                order_id: o.order_id.clone(),
                ordered_at: o.ordered_at,
                customer_id: o.customer_id.clone(),
                status: o.status.clone(),
                marketplace: o.marketplace.clone(),
                sku: required(r, 1)?,
                quantity: u32::try_from(quantity)
                    .map_err(|_| StoreError::Corrupt(format!("a line with quantity {quantity}")))?,
                unit_price: required_decimal(r, 3)?,
                discount: required_decimal(r, 4)?,
                fees: required_decimal(r, 5)?,
                seller_account: text(r, 6)?,
            })
            .map_err(corrupt)
        },
    )
}

/// Runs `sql` (with the tenant as `?1`) and hands each row to `each`.
fn each_row(
    conn: &Connection,
    sql: &str,
    tenant: TenantId,
    mut each: impl FnMut(&Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([tenant.0])?;
    while let Some(row) = rows.next()? {
        each(row)?;
    }
    Ok(())
}

pub(super) fn load(conn: &mut Connection, tenant: TenantId) -> Result<Dataset, StoreError> {
    // One read transaction: a snapshot, even while an import commits.
    let tx = conn.transaction()?;
    let t = tenant_in(&tx, tenant)?;
    let timezone = jiff::tz::TimeZone::get(&t.timezone).map_err(|e| {
        StoreError::Corrupt(format!("the time zone '{}' is unknown: {e}", t.timezone))
    })?;
    let mut b = DatasetBuilder::new(Settings {
        timezone,
        timezone_name: t.timezone,
        currency: t.currency,
    });
    each_row(
        &tx,
        "SELECT sku, parent_sku, asin, title, brand, category, tags, seller_account,
             marketplace, price, cost, inventory, created_at, custom
         FROM products INDEXED BY products_tenant WHERE tenant_id = ?1 ORDER BY id",
        tenant,
        |r| {
            b.product(ProductRow {
                sku: required(r, 0)?,
                parent_sku: text(r, 1)?,
                asin: text(r, 2)?,
                title: text(r, 3)?,
                brand: text(r, 4)?,
                category: text(r, 5)?,
                tags: rows_json::tags_from_json(str_at(r, 6)?)?,
                seller_account: text(r, 7)?,
                marketplace: text(r, 8)?,
                price: decimal(r, 9)?,
                cost: decimal(r, 10)?,
                inventory: count(r, 11, "inventory")?,
                created_at: r.get(12)?,
                custom: rows_json::custom_from_json(str_at(r, 13)?)?,
            })
            .map_err(corrupt)
        },
    )?;
    each_row(
        &tx,
        "SELECT customer_id, email, first_name, last_name, country, city, marketplace, tags,
             accepts_marketing, created_at, custom
         FROM customers INDEXED BY customers_tenant WHERE tenant_id = ?1 ORDER BY id",
        tenant,
        |r| {
            b.customer(CustomerRow {
                customer_id: required(r, 0)?,
                email: text(r, 1)?,
                first_name: text(r, 2)?,
                last_name: text(r, 3)?,
                country: text(r, 4)?,
                city: text(r, 5)?,
                marketplace: text(r, 6)?,
                tags: rows_json::tags_from_json(str_at(r, 7)?)?,
                accepts_marketing: r.get(8)?,
                created_at: r.get(9)?,
                custom: rows_json::custom_from_json(str_at(r, 10)?)?,
            })
            .map_err(corrupt)
        },
    )?;
    lines(&tx, tenant, &mut b)?;
    each_row(
        &tx,
        "SELECT sku, date, sessions, bsr, reviews, rating
         FROM product_daily INDEXED BY product_daily_tenant WHERE tenant_id = ?1
         ORDER BY id",
        tenant,
        |r| {
            b.daily(DailyRow {
                sku: required(r, 0)?,
                date: rows_json::date(str_at(r, 1)?)?,
                sessions: count(r, 2, "sessions")?,
                bsr: count(r, 3, "bsr")?,
                reviews: count(r, 4, "reviews")?,
                rating: decimal(r, 5)?,
            })
            .map_err(corrupt)
        },
    )?;
    each_row(
        &tx,
        "SELECT marketplace, metric, tiers FROM tier_schemes WHERE tenant_id = ?1 ORDER BY id",
        tenant,
        |r| {
            b.tier_scheme(TierScheme {
                marketplace: rows_json::marketplace_from_key(r.get(0)?),
                metric: rows_json::metric_from_name(str_at(r, 1)?)?,
                tiers: rows_json::tiers_from_json(str_at(r, 2)?)?,
            });
            Ok(())
        },
    )?;
    each_row(
        &tx,
        "SELECT name, kind, rule_source, rule_text, rule_json, description
         FROM segments WHERE tenant_id = ?1 ORDER BY id",
        tenant,
        |r| {
            b.segment(SavedSegment {
                name: r.get(0)?,
                kind: rows_json::segment_kind_from_name(str_at(r, 1)?)?,
                rule: RuleForms::rule(str_at(r, 2)?, r.get(3)?, str_at(r, 4)?)?,
                description: r.get(5)?,
            });
            Ok(())
        },
    )?;
    drop(tx);
    Ok(b.finish())
}
