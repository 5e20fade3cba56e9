//! Reading a tenant's rows back into a `Dataset`.
//!
//! Two threads: one streams every table with binary `COPY ... TO STDOUT`
//! and decodes the rows, the other feeds them to the `DatasetBuilder`;
//! batches of rows pass between them over a bounded channel, so memory
//! holds the dataset being built and a few batches. The client, not the
//! server, is what takes the time, and the two halves cost about the same.
//! Lines are joined to their orders by the reading thread, from a table of
//! the orders in memory: having the server join ten million lines and sort
//! them back into id order takes it twice as long as reading both tables.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use postgres::binary_copy::{BinaryCopyOutIter, BinaryCopyOutRow};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{FromSql, Type};
use postgres::{Client, IsolationLevel, Transaction};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use strata_data::{
    CustomerRow, DailyRow, Dataset, DatasetBuilder, LineRow, Nanos, ProductRow, SavedSegment,
    Settings, TierScheme,
};

use super::{tenant_in, u64_of};
use crate::rows_json::{self, RuleForms};
use crate::{StoreError, TenantId};

/// Rows per batch handed from the reading thread to the building one.
const BATCH: usize = 4096;

/// What the reading thread hands over, in the order the builder needs it
/// (settings first; a line after its product and customer, and after the
/// text of its order).
enum Batch {
    Settings(Settings),
    Products(Vec<ProductRow>),
    Customers(Vec<CustomerRow>),
    /// The customers, statuses and marketplaces of the orders, by code.
    OrderText([Vec<Arc<str>>; 3]),
    Lines(LineBatch),
    Daily(Vec<DailyRow>),
    Tiers(Vec<TierScheme>),
    Segments(Vec<SavedSegment>),
}

/// Order lines as the reading thread decodes them: their own text in one
/// buffer, their order's as codes. The building thread makes the
/// `LineRow`s, so each of their strings is allocated and freed by the same
/// thread, which malloc does much faster than freeing another thread's;
/// with the reader's work per line lighter too, the load of ten million
/// lines took a quarter less time than with `LineRow`s sent whole.
#[derive(Default)]
struct LineBatch {
    text: String,
    lines: Vec<PackedLine>,
}

struct PackedLine {
    /// Ends of `order_id`, `sku` and `seller_account` in the batch's text,
    /// one after the other.
    ends: [u32; 3],
    has_seller: bool,
    ordered_at: Nanos,
    /// Codes into [`Batch::OrderText`]; [`Interner::NONE`] for null.
    customer: u32,
    status: u32,
    marketplace: u32,
    quantity: u32,
    unit_price: Decimal,
    discount: Decimal,
    fees: Decimal,
}

impl LineBatch {
    fn rows<'a>(&'a self, text: &'a [Vec<Arc<str>>; 3]) -> impl Iterator<Item = LineRow> + 'a {
        let owned =
            |values: &[Arc<str>], code: u32| values.get(code as usize).map(|v| v.to_string());
        let mut start = 0;
        self.lines.iter().map(move |l| {
            let [order_end, sku_end, seller_end] = l.ends.map(|e| e as usize);
            let row = LineRow {
                order_id: self.text[start..order_end].to_owned(),
                ordered_at: l.ordered_at,
                customer_id: owned(&text[0], l.customer),
                sku: self.text[order_end..sku_end].to_owned(),
                quantity: l.quantity,
                unit_price: l.unit_price,
                discount: l.discount,
                fees: l.fees,
                status: owned(&text[1], l.status),
                marketplace: owned(&text[2], l.marketplace),
                seller_account: l
                    .has_seller
                    .then(|| self.text[sku_end..seller_end].to_owned()),
            };
            start = seller_end;
            row
        })
    }
}

pub(super) fn load(conn: &mut Client, tenant: TenantId) -> Result<Dataset, StoreError> {
    std::thread::scope(|scope| {
        let (send, receive) = sync_channel(8);
        let reader = scope.spawn(move || read(conn, tenant, &send));
        let built = build(receive);
        match reader.join() {
            Ok(read) => read.and(built),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Feeds the batches to a builder. After a refusal the rest is still
/// received, so that the reader finishes its transaction normally.
fn build(batches: Receiver<Batch>) -> Result<Dataset, StoreError> {
    let mut builder: Option<DatasetBuilder> = None;
    let mut refused: Option<StoreError> = None;
    let mut order_text: [Vec<Arc<str>>; 3] = Default::default();
    for batch in batches {
        if refused.is_some() {
            continue;
        }
        let result = match (batch, builder.as_mut()) {
            (Batch::Settings(settings), _) => {
                builder = Some(DatasetBuilder::new(settings));
                Ok(())
            }
            (Batch::OrderText(text), _) => {
                order_text = text;
                Ok(())
            }
            (_, None) => unreachable!("the reader sends the settings first"),
            (Batch::Products(rows), Some(b)) => rows.into_iter().try_for_each(|r| b.product(r)),
            (Batch::Customers(rows), Some(b)) => rows.into_iter().try_for_each(|r| b.customer(r)),
            (Batch::Lines(batch), Some(b)) => batch.rows(&order_text).try_for_each(|r| b.line(r)),
            (Batch::Daily(rows), Some(b)) => rows.into_iter().try_for_each(|r| b.daily(r)),
            (Batch::Tiers(rows), Some(b)) => {
                rows.into_iter().for_each(|t| b.tier_scheme(t));
                Ok(())
            }
            (Batch::Segments(rows), Some(b)) => {
                rows.into_iter().for_each(|s| b.segment(s));
                Ok(())
            }
        };
        if let Err(e) = result {
            refused = Some(StoreError::Corrupt(e.0));
        }
    }
    match (refused, builder) {
        (Some(e), _) => Err(e),
        (None, Some(b)) => Ok(b.finish()),
        // The reader failed before the settings; its error is returned.
        (None, None) => Err(StoreError::Corrupt("no rows were read".into())),
    }
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

/// The reading side of the channel; `send` fails only when the building
/// side is gone, which happens only if it panicked.
struct Sender<'a>(&'a SyncSender<Batch>);

impl Sender<'_> {
    fn send(&self, batch: Batch) -> Result<(), StoreError> {
        self.0
            .send(batch)
            .map_err(|_| StoreError::Corrupt("the dataset builder stopped".into()))
    }
}

/// Streams the rows of `select`, `types` naming its columns' types, turns
/// each into a row value with `row`, and sends them in batches made by
/// `batch`. After a row is refused the rest is drained, so that the
/// connection stays usable.
fn stream<T>(
    tx: &mut Transaction<'_>,
    select: &str,
    types: &[Type],
    send: &Sender<'_>,
    batch: fn(Vec<T>) -> Batch,
    mut row: impl FnMut(&BinaryCopyOutRow) -> Result<T, StoreError>,
) -> Result<(), StoreError> {
    let reader = tx.copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))?;
    let mut rows = BinaryCopyOutIter::new(reader, types);
    let mut refused = None;
    let mut rows_out = Vec::with_capacity(BATCH);
    while let Some(r) = rows.next()? {
        if refused.is_some() {
            continue;
        }
        match row(&r) {
            Ok(value) => rows_out.push(value),
            Err(e) => refused = Some(e),
        }
        if rows_out.len() == BATCH {
            send.send(batch(std::mem::replace(
                &mut rows_out,
                Vec::with_capacity(BATCH),
            )))?;
        }
    }
    if let Some(e) = refused {
        return Err(e);
    }
    if !rows_out.is_empty() {
        send.send(batch(rows_out))?;
    }
    Ok(())
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

    fn into_values(self) -> Vec<Arc<str>> {
        self.values
    }
}

/// An order's columns, their text interned.
struct Order {
    ordered_at: Nanos,
    customer: u32,
    status: u32,
    marketplace: u32,
}

/// Reads every row of the tenant, in one snapshot (even while an import
/// or a commit goes on), and sends them to the builder.
fn read(conn: &mut Client, tenant: TenantId, send: &SyncSender<Batch>) -> Result<(), StoreError> {
    let send = &Sender(send);
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
    send.send(Batch::Settings(Settings {
        timezone,
        timezone_name: stored.timezone,
        currency: stored.currency,
    }))?;
    // COPY takes no parameters; the id is a number.
    let t = tenant.0;
    stream(
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
        send,
        Batch::Products,
        |r| {
            Ok(ProductRow {
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
        },
    )?;
    stream(
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
        send,
        Batch::Customers,
        |r| {
            Ok(CustomerRow {
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
        },
    )?;
    // Sized from the table's estimate (every tenant's), capped: growing a
    // map of millions rehashes it several times over.
    let estimate: f32 = tx
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'orders'::regclass",
            &[],
        )?
        .get(0);
    let mut orders: FxHashMap<Box<str>, Order> = FxHashMap::default();
    orders.reserve((estimate.max(0.0) as usize).min(50_000_000));
    let mut customers = Interner::default();
    let mut statuses = Interner::default();
    let mut markets = Interner::default();
    {
        let reader = tx.copy_out(&format!(
            "COPY (SELECT order_id, ordered_at, customer_id, status, marketplace
                   FROM orders WHERE tenant_id = {t}) TO STDOUT (FORMAT binary)"
        ))?;
        let mut rows = BinaryCopyOutIter::new(
            reader,
            &[Type::TEXT, Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT],
        );
        while let Some(r) = rows.next()? {
            let order = Order {
                ordered_at: get(&r, 1)?,
                customer: customers.code(get(&r, 2)?),
                status: statuses.code(Some(get(&r, 3)?)),
                marketplace: markets.code(get(&r, 4)?),
            };
            orders.insert(get::<&str>(&r, 0)?.into(), order);
        }
    }
    send.send(Batch::OrderText([
        customers.into_values(),
        statuses.into_values(),
        markets.into_values(),
    ]))?;
    {
        let reader = tx.copy_out(&format!(
            "COPY (SELECT order_id, sku, quantity, unit_price, discount, fees, seller_account
                   FROM order_lines WHERE tenant_id = {t} ORDER BY id) TO STDOUT (FORMAT binary)"
        ))?;
        let mut rows = BinaryCopyOutIter::new(
            reader,
            &[
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::NUMERIC,
                Type::NUMERIC,
                Type::NUMERIC,
                Type::TEXT,
            ],
        );
        let mut batch = LineBatch::default();
        while let Some(r) = rows.next()? {
            let order_id: &str = get(&r, 0)?;
            let order = orders.get(order_id).ok_or_else(|| {
                StoreError::Corrupt(format!("a line of order '{order_id}', which is not stored"))
            })?;
            let quantity: i64 = get(&r, 2)?;
            let seller: Option<&str> = get(&r, 6)?;
            let text = &mut batch.text;
            let mut end = |part: &str| {
                text.push_str(part);
                u32::try_from(text.len()).map_err(|_| StoreError::Corrupt("a huge line".into()))
            };
            batch.lines.push(PackedLine {
                ends: [
                    end(order_id)?,
                    end(get(&r, 1)?)?,
                    end(seller.unwrap_or_default())?,
                ],
                has_seller: seller.is_some(),
                ordered_at: order.ordered_at,
                customer: order.customer,
                status: order.status,
                marketplace: order.marketplace,
                quantity: u32::try_from(quantity).map_err(|_| {
                    StoreError::Corrupt(format!("order '{order_id}': quantity {quantity}"))
                })?,
                unit_price: get(&r, 3)?,
                discount: get(&r, 4)?,
                fees: get(&r, 5)?,
            });
            if batch.lines.len() == BATCH {
                send.send(Batch::Lines(std::mem::take(&mut batch)))?;
            }
        }
        if !batch.lines.is_empty() {
            send.send(Batch::Lines(batch))?;
        }
    }
    drop(orders);
    stream(
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
        send,
        Batch::Daily,
        |r| {
            Ok(DailyRow {
                sku: get(r, 0)?,
                date: get(r, 1)?,
                sessions: count(r, 2, "sessions")?,
                bsr: count(r, 3, "bsr")?,
                reviews: count(r, 4, "reviews")?,
                rating: get(r, 5)?,
            })
        },
    )?;
    let tiers = tx
        .query(
            "SELECT marketplace, metric, tiers::text FROM tier_schemes WHERE tenant_id = $1
             ORDER BY id",
            &[&t],
        )?
        .iter()
        .map(|row| {
            Ok(TierScheme {
                marketplace: rows_json::marketplace_from_key(row.get(0)),
                metric: rows_json::metric_from_name(row.get(1))?,
                tiers: rows_json::tiers_from_json(row.get(2))?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    send.send(Batch::Tiers(tiers))?;
    let segments = tx
        .query(
            "SELECT name, kind, rule_source, rule_text, rule_json::text, description
             FROM segments WHERE tenant_id = $1 ORDER BY id",
            &[&t],
        )?
        .iter()
        .map(|row| {
            Ok(SavedSegment {
                name: row.get(0),
                kind: rows_json::segment_kind_from_name(row.get(1))?,
                rule: RuleForms::rule(row.get(2), row.get(3), row.get(4))?,
                description: row.get(5),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    send.send(Batch::Segments(segments))?;
    tx.commit()?;
    Ok(())
}
