//! The loader: reads the files of a dataset directory in dependency order
//! and fills the store, collecting every problem on the way.

use std::collections::hash_map::Entry;
use std::io;
use std::path::Path;

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::csv_table::{Batch, Column, Row, Table};
use crate::error::{LoadError, Problems};
use crate::intern::{IdTable, Interner, TagBuilder, hash};
use crate::json_files;
use crate::keys::KeyIndex;
use crate::parse::{self, TimestampParser};
use crate::store::{
    CustomColumn, Customers, Daily, Dataset, Lines, NO_CUSTOMER, NULL_CODE, Nanos, Orders,
    Products, StrColumn, TextColumn,
};

/// Dense ids by key (sku → product, customer_id → customer). `None` where the
/// file or its key column is missing: references into it are then not
/// checked, as every one would fail for the same, already reported, reason.
type Keys<'a> = Option<&'a KeyIndex>;

/// Placeholder for a reference that could not be resolved. Only ever stored
/// in a dataset that is refused.
const UNRESOLVED: u32 = u32::MAX;

/// Loads and validates the dataset in `dir` (dataset.md).
///
/// Every file is read to the end even after a problem, so that the error
/// lists all problems (up to [`crate::PROBLEM_LIMIT`]); a dataset with any
/// problem is refused as a whole.
pub fn load_dir(dir: &Path) -> Result<Dataset, LoadError> {
    let io_error = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    if !std::fs::metadata(dir).map_err(io_error)?.is_dir() {
        return Err(io_error(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    let mut problems = Problems::default();
    // First: bare dates in every other file mean midnight in its time zone.
    let settings = json_files::load_settings(dir, &mut problems)?;
    let mut timestamps = TimestampParser::new(settings.timezone.clone());
    let (products, sku_index) = load_products(dir, &mut timestamps, &mut problems)?;
    let skus = sku_index.as_ref();
    let (customers, customer_index) = load_customers(dir, &mut timestamps, &mut problems)?;
    let customer_ids = customer_index.as_ref();
    // product_daily.csv needs only the SKUs: read it beside orders.csv.
    let (orders, daily) = std::thread::scope(|s| {
        let daily = s.spawn(|| {
            let mut daily_problems = Problems::default();
            load_daily(dir, skus, &mut daily_problems).map(|d| (d, daily_problems))
        });
        let orders = load_orders(
            dir,
            &mut timestamps,
            skus,
            customer_ids,
            &customers,
            &mut problems,
        );
        let daily = daily
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (orders, daily)
    });
    let (orders, lines) = orders?;
    let (daily, daily_problems) = daily?;
    problems.append(daily_problems);
    drop(customer_index);
    drop(sku_index);
    let tiers = json_files::load_tiers(dir, &mut problems)?;
    let segments = json_files::load_segments(dir, &mut problems)?;
    if !problems.is_empty() {
        return Err(LoadError::Invalid(problems));
    }
    Ok(Dataset {
        settings,
        products,
        customers,
        orders,
        lines,
        daily,
        tiers,
        segments,
    })
}

/// Custom (`x_`) columns of a file, filled row by row.
struct CustomColumns {
    names: Vec<String>,
    values: Vec<Interner>,
}

impl CustomColumns {
    fn new(table: &Table) -> CustomColumns {
        let names: Vec<String> = table.custom_names().map(str::to_owned).collect();
        let values = names.iter().map(|_| Interner::default()).collect();
        CustomColumns { names, values }
    }

    fn push(&mut self, row: &mut Row<'_>) {
        for (k, values) in self.values.iter_mut().enumerate() {
            values.push(row.custom(k));
        }
    }

    fn finish(self) -> Vec<CustomColumn> {
        self.names
            .into_iter()
            .zip(self.values)
            .map(|(name, values)| CustomColumn {
                name,
                values: values.finish(),
            })
            .collect()
    }
}

/// Builds a unique-key column (`sku`, `customer_id`) and its index.
#[derive(Default)]
struct KeyColumn {
    column: TextColumn,
    index: KeyIndex,
    /// Line of each row, to name the first occurrence of a duplicate.
    lines: Vec<u64>,
}

impl KeyColumn {
    fn push(&mut self, row: &mut Row<'_>, column: usize, what: &str) {
        self.lines.push(row.line);
        let Some(key) = row.required_text(column) else {
            self.index.push(0, None);
            self.column.codes.push(NULL_CODE);
            return;
        };
        let hash = hash(key);
        if let Some(first) = self.index.find(hash, key) {
            let first_line = self.lines[first as usize];
            row.report_with(
                column,
                || format!("duplicate {what}, first on line {first_line}"),
                key,
            );
            self.index.push(hash, None);
            self.column.codes.push(NULL_CODE);
            return;
        }
        self.index.push(hash, Some(key));
        self.column.codes.push(self.column.dict.len() as u32);
        self.column.dict.push(key.into());
    }
}

mod product_col {
    pub const SKU: usize = 0;
    pub const PARENT_SKU: usize = 1;
    pub const ASIN: usize = 2;
    pub const TITLE: usize = 3;
    pub const BRAND: usize = 4;
    pub const CATEGORY: usize = 5;
    pub const TAGS: usize = 6;
    pub const SELLER_ACCOUNT: usize = 7;
    pub const MARKETPLACE: usize = 8;
    pub const PRICE: usize = 9;
    pub const COST: usize = 10;
    pub const INVENTORY: usize = 11;
    pub const CREATED_AT: usize = 12;
}

static PRODUCT_COLUMNS: [Column; 13] = [
    Column::required("sku"),
    Column::optional("parent_sku"),
    Column::optional("asin"),
    Column::optional("title"),
    Column::optional("brand"),
    Column::optional("category"),
    Column::optional("tags"),
    Column::optional("seller_account"),
    Column::optional("marketplace"),
    Column::optional("price"),
    Column::optional("cost"),
    Column::optional("inventory"),
    Column::optional("created_at"),
];

fn load_products(
    dir: &Path,
    timestamps: &mut TimestampParser,
    problems: &mut Problems,
) -> Result<(Products, Option<KeyIndex>), LoadError> {
    use product_col::*;
    let Some(mut table) = Table::open(dir, "products.csv", true, &PRODUCT_COLUMNS, &[], problems)?
    else {
        return Ok((Products::default(), None));
    };
    let keyed = table.has(SKU);
    let mut sku = KeyColumn::default();
    let [
        mut parent_sku,
        mut asin,
        mut title,
        mut brand,
        mut category,
        mut seller,
        mut market,
    ] = Default::default();
    let mut tags = TagBuilder::default();
    let (mut price, mut cost, mut inventory, mut created_at) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut custom = CustomColumns::new(&table);
    let mut batch = Batch::default();
    while table.fill(&mut batch)? {
        for i in 0..batch.len() {
            let Some(mut row) = table.row(&batch, i, problems) else {
                continue;
            };
            sku.push(&mut row, SKU, "sku");
            for (builder, column) in [
                (&mut parent_sku, PARENT_SKU),
                (&mut asin, ASIN),
                (&mut title, TITLE),
                (&mut brand, BRAND),
                (&mut category, CATEGORY),
                (&mut seller, SELLER_ACCOUNT),
                (&mut market, MARKETPLACE),
            ] {
                Interner::push(builder, row.text(column));
            }
            tags.push(row.text(TAGS));
            price.push(row.parse(PRICE, false, parse::non_negative_decimal));
            cost.push(row.parse(COST, false, parse::non_negative_decimal));
            inventory.push(row.parse(INVENTORY, false, parse::count));
            created_at.push(row.parse(CREATED_AT, false, |t| timestamps.parse(t)));
            custom.push(&mut row);
        }
    }
    let products = Products {
        sku: sku.column,
        parent_sku: parent_sku.finish(),
        asin: asin.finish(),
        title: title.finish(),
        brand: brand.finish(),
        category: category.finish(),
        tags: tags.finish(),
        seller_account: seller.finish(),
        marketplace: market.finish(),
        price,
        cost,
        inventory,
        created_at,
        custom: custom.finish(),
    };
    Ok((products, keyed.then_some(sku.index)))
}

mod customer_col {
    pub const CUSTOMER_ID: usize = 0;
    pub const EMAIL: usize = 1;
    pub const FIRST_NAME: usize = 2;
    pub const LAST_NAME: usize = 3;
    pub const COUNTRY: usize = 4;
    pub const CITY: usize = 5;
    pub const MARKETPLACE: usize = 6;
    pub const TAGS: usize = 7;
    pub const ACCEPTS_MARKETING: usize = 8;
    pub const CREATED_AT: usize = 9;
}

static CUSTOMER_COLUMNS: [Column; 10] = [
    Column::required("customer_id"),
    Column::optional("email"),
    Column::optional("first_name"),
    Column::optional("last_name"),
    Column::optional("country"),
    Column::optional("city"),
    Column::optional("marketplace"),
    Column::optional("tags"),
    Column::optional("accepts_marketing"),
    Column::optional("created_at"),
];

fn load_customers(
    dir: &Path,
    timestamps: &mut TimestampParser,
    problems: &mut Problems,
) -> Result<(Customers, Option<KeyIndex>), LoadError> {
    use customer_col::*;
    let Some(mut table) =
        Table::open(dir, "customers.csv", true, &CUSTOMER_COLUMNS, &[], problems)?
    else {
        return Ok((Customers::default(), None));
    };
    let keyed = table.has(CUSTOMER_ID);
    let mut customer_id = KeyColumn::default();
    let [
        mut email,
        mut first_name,
        mut last_name,
        mut country,
        mut city,
        mut market,
    ] = Default::default();
    let mut tags = TagBuilder::default();
    let (mut accepts_marketing, mut created_at) = (Vec::new(), Vec::new());
    let mut custom = CustomColumns::new(&table);
    let mut batch = Batch::default();
    while table.fill(&mut batch)? {
        for i in 0..batch.len() {
            let Some(mut row) = table.row(&batch, i, problems) else {
                continue;
            };
            customer_id.push(&mut row, CUSTOMER_ID, "customer_id");
            for (builder, column) in [
                (&mut email, EMAIL),
                (&mut first_name, FIRST_NAME),
                (&mut last_name, LAST_NAME),
                (&mut country, COUNTRY),
                (&mut city, CITY),
                (&mut market, MARKETPLACE),
            ] {
                Interner::push(builder, row.text(column));
            }
            tags.push(row.text(TAGS));
            accepts_marketing.push(row.parse(ACCEPTS_MARKETING, false, parse::boolean));
            created_at.push(row.parse(CREATED_AT, false, |t| timestamps.parse(t)));
            custom.push(&mut row);
        }
    }
    let customers = Customers {
        customer_id: customer_id.column,
        email: email.finish(),
        first_name: first_name.finish(),
        last_name: last_name.finish(),
        country: country.finish(),
        city: city.finish(),
        marketplace: market.finish(),
        tags: tags.finish(),
        accepts_marketing,
        created_at,
        custom: custom.finish(),
    };
    Ok((customers, keyed.then_some(customer_id.index)))
}

mod order_col {
    pub const ORDER_ID: usize = 0;
    pub const ORDERED_AT: usize = 1;
    pub const CUSTOMER_ID: usize = 2;
    pub const SKU: usize = 3;
    pub const QUANTITY: usize = 4;
    pub const UNIT_PRICE: usize = 5;
    pub const DISCOUNT: usize = 6;
    pub const FEES: usize = 7;
    pub const STATUS: usize = 8;
    pub const MARKETPLACE: usize = 9;
    pub const SELLER_ACCOUNT: usize = 10;
}

static ORDER_COLUMNS: [Column; 11] = [
    Column::required("order_id"),
    Column::required("ordered_at"),
    Column::optional("customer_id"),
    Column::required("sku"),
    Column::required("quantity"),
    Column::required("unit_price"),
    Column::optional("discount"),
    Column::optional("fees"),
    Column::optional("status"),
    Column::optional("marketplace"),
    Column::optional("seller_account"),
];

/// Lines whose id table slots are touched ahead of processing them: about
/// as many cache misses as a core keeps in flight.
const TOUCH_AHEAD: usize = 32;

/// Order-level values whose first line was itself invalid: later lines are
/// not compared against them (that would report the same mistake again).
const AT_UNKNOWN: u8 = 1;
const CUSTOMER_UNKNOWN: u8 = 2;

/// Orders as they are being built from their lines.
#[derive(Default)]
struct OrderBuilder {
    order_id: StrColumn,
    ids: IdTable,
    ordered_at: Vec<Nanos>,
    customer: Vec<u32>,
    status: Interner,
    status_codes: Vec<u32>,
    counting: Vec<bool>,
    marketplace: Interner,
    marketplace_codes: Vec<u32>,
    first_line: Vec<u64>,
    unknown: Vec<u8>,
    /// The customer_id text of the newest order: its later lines are
    /// usually adjacent, and comparing with this copy avoids a cache miss
    /// into the customer dictionary for each of them.
    newest_customer: Option<String>,
}

/// The order-level cells of one line.
struct OrderCells<'a> {
    ordered_at: Option<Nanos>,
    customer_id: Option<&'a str>,
    /// [`hash`] of `customer_id`.
    customer_hash: u64,
    status: &'a str,
    marketplace: Option<&'a str>,
}

/// Shows an order-level value of the first line in a disagreement message.
fn where_it_is(value: Option<&str>) -> String {
    match value {
        Some(value) => format!("where it is '{}'", crate::error::display_value(value)),
        None => "where it is empty".to_owned(),
    }
}

impl OrderBuilder {
    fn with_capacity(orders: usize) -> OrderBuilder {
        OrderBuilder {
            order_id: StrColumn::with_capacity(orders, orders * 16),
            ordered_at: Vec::with_capacity(orders),
            customer: Vec::with_capacity(orders),
            status_codes: Vec::with_capacity(orders),
            counting: Vec::with_capacity(orders),
            marketplace_codes: Vec::with_capacity(orders),
            first_line: Vec::with_capacity(orders),
            unknown: Vec::with_capacity(orders),
            ..OrderBuilder::default()
        }
    }

    fn add(
        &mut self,
        id: &str,
        hash: u64,
        cells: &OrderCells<'_>,
        customer_ids: Keys<'_>,
        row: &mut Row<'_>,
    ) -> u32 {
        let order = self.order_id.len() as u32;
        self.order_id.push(id);
        self.ids.insert(hash, order);
        let mut unknown = 0;
        self.ordered_at.push(cells.ordered_at.unwrap_or_else(|| {
            unknown |= AT_UNKNOWN;
            0
        }));
        let customer = match (cells.customer_id, customer_ids) {
            (None, _) => NO_CUSTOMER,
            (Some(text), Some(ids)) => ids.find(cells.customer_hash, text).unwrap_or_else(|| {
                row.report(order_col::CUSTOMER_ID, "not in customers.csv", Some(text));
                unknown |= CUSTOMER_UNKNOWN;
                UNRESOLVED
            }),
            (Some(_), None) => {
                unknown |= CUSTOMER_UNKNOWN;
                UNRESOLVED
            }
        };
        self.customer.push(customer);
        let newest = self.newest_customer.get_or_insert_with(String::new);
        newest.clear();
        newest.push_str(cells.customer_id.unwrap_or(""));
        let status = self.status.intern(Some(cells.status));
        self.status.push_code(status);
        self.status_codes.push(status);
        // fields.md: `cancelled` and `refunded` in any case do not count.
        // (ASCII case folding suffices: their Unicode lower-case forms only
        // arise from ASCII letters.)
        self.counting.push(
            !(cells.status.eq_ignore_ascii_case("cancelled")
                || cells.status.eq_ignore_ascii_case("refunded")),
        );
        let marketplace = self.marketplace.intern(cells.marketplace);
        self.marketplace.push_code(marketplace);
        self.marketplace_codes.push(marketplace);
        self.first_line.push(row.line);
        self.unknown.push(unknown);
        order
    }

    /// Reports each order-level cell of a later line that disagrees with the
    /// order's first line.
    fn check(
        &self,
        order: u32,
        id: &str,
        cells: &OrderCells<'_>,
        customers: &Customers,
        row: &mut Row<'_>,
    ) {
        use order_col::*;
        let i = order as usize;
        let first_line = self.first_line[i];
        let unknown = self.unknown[i];
        let disagree = |row: &mut Row<'_>, column: usize, first: Option<&str>, got: &str| {
            row.report_with(
                column,
                || {
                    format!(
                        "disagrees with line {first_line} of order '{}', {}",
                        crate::error::display_value(id),
                        where_it_is(first),
                    )
                },
                got,
            );
        };
        let first_at = self.ordered_at[i];
        let at_known = unknown & AT_UNKNOWN == 0;
        if cells
            .ordered_at
            .is_some_and(|at| at_known && at != first_at)
        {
            // Compared as instants; shown in UTC since the two lines may
            // have written the same instant with different offsets.
            let first = jiff::Timestamp::from_nanosecond(i128::from(first_at))
                .map(|t| t.to_string())
                .unwrap_or_default();
            let got = row.text(ORDERED_AT).unwrap_or_default();
            disagree(row, ORDERED_AT, Some(&first), got);
        }
        if unknown & CUSTOMER_UNKNOWN == 0 {
            let first = match self.customer[i] {
                NO_CUSTOMER => None,
                _ if i + 1 == self.customer.len() => self.newest_customer.as_deref(),
                c => customers.customer_id.get(c as usize),
            };
            if cells.customer_id != first {
                disagree(row, CUSTOMER_ID, first, cells.customer_id.unwrap_or(""));
            }
        }
        let first = self.status.text(self.status_codes[i]);
        if first != Some(cells.status) {
            disagree(row, STATUS, first, cells.status);
        }
        let first = self.marketplace.text(self.marketplace_codes[i]);
        if first != cells.marketplace {
            disagree(row, MARKETPLACE, first, cells.marketplace.unwrap_or(""));
        }
    }

    fn finish(self) -> Orders {
        Orders {
            order_id: self.order_id,
            ordered_at: self.ordered_at,
            customer: self.customer,
            status: self.status.finish(),
            counting: self.counting,
            marketplace: self.marketplace.finish(),
        }
    }
}

fn load_orders(
    dir: &Path,
    timestamps: &mut TimestampParser,
    skus: Keys<'_>,
    customer_ids: Keys<'_>,
    customers: &Customers,
    problems: &mut Problems,
) -> Result<(Orders, Lines), LoadError> {
    use order_col::*;
    let Some(mut table) = Table::open(
        dir,
        "orders.csv",
        true,
        &ORDER_COLUMNS,
        &[ORDER_ID, SKU, CUSTOMER_ID],
        problems,
    )?
    else {
        return Ok(Default::default());
    };
    // Reserve for the lines the file can hold (at 60 bytes or more a line):
    // growing ten-million-row columns by doubling would copy them and fault
    // in fresh pages several times over; reserved but unused capacity costs
    // only address space.
    let estimate = std::fs::metadata(dir.join("orders.csv")).map_or(0, |m| m.len() as usize / 60);
    let mut orders = OrderBuilder::with_capacity(estimate / 2);
    let mut lines = Lines {
        order: Vec::with_capacity(estimate),
        product: Vec::with_capacity(estimate),
        quantity: Vec::with_capacity(estimate),
        revenue: Vec::with_capacity(estimate),
        unit_price: Vec::with_capacity(estimate),
        discount: Vec::with_capacity(estimate),
        fees: Vec::with_capacity(estimate),
        ..Lines::default()
    };
    let mut seller = Interner::default();
    // Lines of one order are usually adjacent: skip the hash lookup for them.
    let mut last_id = String::new();
    let mut last_order = UNRESOLVED;
    let mut batch = Batch::default();
    while table.fill(&mut batch)? {
        for chunk in (0..batch.len()).step_by(TOUCH_AHEAD) {
            let chunk = chunk..(chunk + TOUCH_AHEAD).min(batch.len());
            // Bring the id table slots of the next lines into cache first:
            // the reads are independent, so their cache misses overlap
            // instead of being paid one line at a time.
            for i in chunk.clone() {
                let &[order_hash, sku_hash, customer_hash] = batch.hashes(i) else {
                    unreachable!("three hashed columns");
                };
                orders.ids.touch(order_hash);
                if let Some(skus) = skus {
                    skus.touch(sku_hash);
                }
                if let Some(ids) = customer_ids {
                    ids.touch(customer_hash);
                }
            }
            for i in chunk {
                let &[order_hash, sku_hash, customer_hash] = batch.hashes(i) else {
                    unreachable!("three hashed columns");
                };
                let Some(mut row) = table.row(&batch, i, problems) else {
                    continue;
                };
                let order_id = row.required_text(ORDER_ID);
                let cells = OrderCells {
                    ordered_at: row.parse(ORDERED_AT, true, |t| timestamps.parse(t)),
                    customer_id: row.text(CUSTOMER_ID),
                    customer_hash,
                    status: row.text(STATUS).unwrap_or("shipped"),
                    marketplace: row.text(MARKETPLACE),
                };
                let order = match order_id {
                    None => UNRESOLVED,
                    Some(id) if id == last_id && last_order != UNRESOLVED => {
                        orders.check(last_order, id, &cells, customers, &mut row);
                        last_order
                    }
                    Some(id) => {
                        let known = &orders.order_id;
                        last_order =
                            match orders.ids.find(order_hash, |o| known.get(o as usize) == id) {
                                Some(order) => {
                                    orders.check(order, id, &cells, customers, &mut row);
                                    order
                                }
                                None => orders.add(id, order_hash, &cells, customer_ids, &mut row),
                            };
                        last_id.clear();
                        last_id.push_str(id);
                        last_order
                    }
                };
                let product = match (row.required_text(SKU), skus) {
                    (Some(sku), Some(ids)) => ids.find(sku_hash, sku).unwrap_or_else(|| {
                        row.report(SKU, "not in products.csv", Some(sku));
                        UNRESOLVED
                    }),
                    _ => UNRESOLVED,
                };
                let quantity = row.parse(QUANTITY, true, parse::quantity);
                let unit_price = row.parse(UNIT_PRICE, true, parse::non_negative_decimal);
                let discount = row.parse(DISCOUNT, false, parse::non_negative_decimal);
                let fees = row.parse(FEES, false, parse::non_negative_decimal);
                let revenue = match (quantity, unit_price) {
                    (Some(quantity), Some(unit_price)) => Decimal::from(quantity)
                        .checked_mul(unit_price)
                        .and_then(|gross| gross.checked_sub(discount.unwrap_or_default()))
                        .unwrap_or_else(|| {
                            row.report(UNIT_PRICE, "revenue out of range", None);
                            Decimal::ZERO
                        }),
                    _ => Decimal::ZERO,
                };
                lines.order.push(order);
                lines.product.push(product);
                lines.quantity.push(quantity.unwrap_or(0));
                lines.revenue.push(revenue);
                lines.unit_price.push(unit_price.unwrap_or_default());
                lines.discount.push(discount.unwrap_or_default());
                lines.fees.push(fees.unwrap_or_default());
                seller.push(row.text(SELLER_ACCOUNT));
            }
        }
    }
    lines.seller_account = seller.finish();
    Ok((orders.finish(), lines))
}

mod daily_col {
    pub const DATE: usize = 0;
    pub const SKU: usize = 1;
    pub const SESSIONS: usize = 2;
    pub const BSR: usize = 3;
    pub const REVIEWS: usize = 4;
    pub const RATING: usize = 5;
}

static DAILY_COLUMNS: [Column; 6] = [
    Column::required("date"),
    Column::required("sku"),
    Column::optional("sessions"),
    Column::optional("bsr"),
    Column::optional("reviews"),
    Column::optional("rating"),
];

fn load_daily(dir: &Path, skus: Keys<'_>, problems: &mut Problems) -> Result<Daily, LoadError> {
    use daily_col::*;
    let Some(mut table) = Table::open(
        dir,
        "product_daily.csv",
        false,
        &DAILY_COLUMNS,
        &[],
        problems,
    )?
    else {
        return Ok(Daily::default());
    };
    // Pre-size as for orders (rows are 30 bytes or more): the duplicate
    // check's table would otherwise rehash all its entries a dozen times.
    let estimate =
        std::fs::metadata(dir.join("product_daily.csv")).map_or(0, |m| m.len() as usize / 30);
    let mut daily = Daily {
        product: Vec::with_capacity(estimate),
        date: Vec::with_capacity(estimate),
        sessions: Vec::with_capacity(estimate),
        bsr: Vec::with_capacity(estimate),
        reviews: Vec::with_capacity(estimate),
        rating: Vec::with_capacity(estimate),
    };
    let mut seen: FxHashMap<(u32, jiff::civil::Date), u64> =
        FxHashMap::with_capacity_and_hasher(estimate, Default::default());
    let mut batch = Batch::default();
    while table.fill(&mut batch)? {
        for i in 0..batch.len() {
            let Some(mut row) = table.row(&batch, i, problems) else {
                continue;
            };
            let date = row.parse(DATE, true, parse::date);
            let product = match (row.required_text(SKU), skus) {
                (Some(sku), Some(ids)) => ids.get(sku).unwrap_or_else(|| {
                    row.report(SKU, "not in products.csv", Some(sku));
                    UNRESOLVED
                }),
                _ => UNRESOLVED,
            };
            if let (Some(date), true) = (date, product != UNRESOLVED) {
                match seen.entry((product, date)) {
                    Entry::Occupied(first) => {
                        let first = *first.get();
                        let got = row.text(DATE).unwrap_or_default();
                        row.report_with(
                            DATE,
                            || format!("a second row for this sku and date, first on line {first}"),
                            got,
                        );
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(row.line);
                    }
                }
            }
            daily.product.push(product);
            daily.date.push(date.unwrap_or_default());
            daily
                .sessions
                .push(row.parse(SESSIONS, false, parse::count));
            daily.bsr.push(row.parse(BSR, false, parse::count));
            daily.reviews.push(row.parse(REVIEWS, false, parse::count));
            daily.rating.push(row.parse(RATING, false, parse::rating));
        }
    }
    Ok(daily)
}
