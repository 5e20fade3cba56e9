//! A dataset one row at a time: the row types (one product, customer,
//! order line or daily row as a whole), the rows of a loaded [`Dataset`],
//! and [`DatasetBuilder`], which builds a `Dataset` from rows.
//!
//! Rows are the form data takes outside the columnar store: the live
//! engine's changes, a database's tables. A dataset read back from rows
//! evaluates exactly like the dataset the rows came from.

use jiff::civil::Date;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

use crate::store::{
    CustomColumn, Dataset, NO_CUSTOMER, Nanos, SavedSegment, Settings, TextColumnBuilder,
    TierScheme,
};

/// A product as a whole (an upsert replaces every field).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductRow {
    pub sku: String,
    pub parent_sku: Option<String>,
    pub asin: Option<String>,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub seller_account: Option<String>,
    pub marketplace: Option<String>,
    pub price: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub inventory: Option<u64>,
    pub created_at: Option<Nanos>,
    /// `x_...` attributes; a name not seen before adds the attribute.
    pub custom: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerRow {
    pub customer_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub marketplace: Option<String>,
    pub tags: Vec<String>,
    pub accepts_marketing: Option<bool>,
    pub created_at: Option<Nanos>,
    pub custom: Vec<(String, Option<String>)>,
}

/// One order line, with its order's columns as `orders.csv` repeats them.
#[derive(Clone, Debug, PartialEq)]
pub struct LineRow {
    pub order_id: String,
    pub ordered_at: Nanos,
    pub customer_id: Option<String>,
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub discount: Decimal,
    pub fees: Decimal,
    /// `None` is `shipped`.
    pub status: Option<String>,
    pub marketplace: Option<String>,
    pub seller_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DailyRow {
    pub sku: String,
    pub date: Date,
    pub sessions: Option<u64>,
    pub bsr: Option<u64>,
    pub reviews: Option<u64>,
    pub rating: Option<Decimal>,
}

impl LineRow {
    /// Checks what a line says of itself (a quantity of at least 1, amounts
    /// ≥ 0, a negative zero being zero) and gives its revenue,
    /// `quantity × unit_price − discount`, or what is wrong. Everything that
    /// takes lines (the live engine, the stores, [`DatasetBuilder`]) checks
    /// them this one way.
    pub fn checked_revenue(&self) -> Result<Decimal, &'static str> {
        if self.quantity == 0 {
            return Err("quantity must be at least 1");
        }
        let negative = |d: Decimal| d.is_sign_negative() && !d.is_zero();
        if negative(self.unit_price) || negative(self.discount) || negative(self.fees) {
            return Err("unit_price, discount and fees must be ≥ 0");
        }
        Decimal::from(self.quantity)
            .checked_mul(self.unit_price)
            .and_then(|gross| gross.checked_sub(self.discount))
            .ok_or("quantity × unit_price − discount is out of range")
    }
}

/// `false` for the statuses that do not count (fields.md: `cancelled` and
/// `refunded`, in any case).
pub fn status_counts(status: &str) -> bool {
    !(status.eq_ignore_ascii_case("cancelled") || status.eq_ignore_ascii_case("refunded"))
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

fn customs(columns: &[CustomColumn], row: usize) -> Vec<(String, Option<String>)> {
    columns
        .iter()
        .map(|c| (c.name.clone(), owned(c.values.get(row))))
        .collect()
}

impl Dataset {
    pub fn product_row(&self, p: usize) -> ProductRow {
        let ps = &self.products;
        ProductRow {
            sku: ps.sku.get(p).unwrap_or_default().to_owned(),
            parent_sku: owned(ps.parent_sku.get(p)),
            asin: owned(ps.asin.get(p)),
            title: owned(ps.title.get(p)),
            brand: owned(ps.brand.get(p)),
            category: owned(ps.category.get(p)),
            tags: ps.tags.get(p).map(str::to_owned).collect(),
            seller_account: owned(ps.seller_account.get(p)),
            marketplace: owned(ps.marketplace.get(p)),
            price: ps.price[p],
            cost: ps.cost[p],
            inventory: ps.inventory[p],
            created_at: ps.created_at[p],
            custom: customs(&ps.custom, p),
        }
    }

    pub fn customer_row(&self, c: usize) -> CustomerRow {
        let cs = &self.customers;
        CustomerRow {
            customer_id: cs.customer_id.get(c).unwrap_or_default().to_owned(),
            email: owned(cs.email.get(c)),
            first_name: owned(cs.first_name.get(c)),
            last_name: owned(cs.last_name.get(c)),
            country: owned(cs.country.get(c)),
            city: owned(cs.city.get(c)),
            marketplace: owned(cs.marketplace.get(c)),
            tags: cs.tags.get(c).map(str::to_owned).collect(),
            accepts_marketing: cs.accepts_marketing[c],
            created_at: cs.created_at[c],
            custom: customs(&cs.custom, c),
        }
    }

    /// Line `l` with its order's columns.
    pub fn line_row(&self, l: usize) -> LineRow {
        let (lines, orders) = (&self.lines, &self.orders);
        let o = lines.order[l] as usize;
        LineRow {
            order_id: orders.order_id.get(o).to_owned(),
            ordered_at: orders.ordered_at[o],
            customer_id: match orders.customer[o] {
                NO_CUSTOMER => None,
                c => owned(self.customers.customer_id.get(c as usize)),
            },
            sku: self
                .products
                .sku
                .get(lines.product[l] as usize)
                .unwrap_or_default()
                .to_owned(),
            quantity: lines.quantity[l],
            unit_price: lines.unit_price[l],
            discount: lines.discount[l],
            fees: lines.fees[l],
            status: owned(orders.status.get(o)),
            marketplace: owned(orders.marketplace.get(o)),
            seller_account: owned(lines.seller_account.get(l)),
        }
    }

    pub fn daily_row(&self, r: usize) -> DailyRow {
        let d = &self.daily;
        DailyRow {
            sku: self
                .products
                .sku
                .get(d.product[r] as usize)
                .unwrap_or_default()
                .to_owned(),
            date: d.date[r],
            sessions: d.sessions[r],
            bsr: d.bsr[r],
            reviews: d.reviews[r],
            rating: d.rating[r],
        }
    }
}

/// A row that cannot join the dataset being built (a duplicate id, an
/// unknown reference, an order whose lines disagree).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RowError(pub String);

/// Custom attribute columns filled row by row: a name first seen at row
/// `n` is null for the rows before it.
#[derive(Default)]
struct CustomBuilder {
    names: FxHashMap<String, usize>,
    columns: Vec<(String, TextColumnBuilder)>,
    rows: usize,
}

impl CustomBuilder {
    fn push(&mut self, values: &[(String, Option<String>)]) {
        for (name, value) in values {
            let i = match self.names.get(name) {
                Some(&i) => i,
                None => {
                    let mut column = TextColumnBuilder::default();
                    for _ in 0..self.rows {
                        column.push(None);
                    }
                    self.columns.push((name.clone(), column));
                    self.names.insert(name.clone(), self.columns.len() - 1);
                    self.columns.len() - 1
                }
            };
            let column = &mut self.columns[i].1;
            if column.len() == self.rows {
                column.push(value.as_deref());
            }
        }
        self.rows += 1;
        for (_, column) in &mut self.columns {
            if column.len() < self.rows {
                column.push(None);
            }
        }
    }

    fn finish(self) -> Vec<CustomColumn> {
        self.columns
            .into_iter()
            .map(|(name, values)| CustomColumn {
                name,
                values: values.finish(),
            })
            .collect()
    }
}

#[derive(Default)]
struct ProductsBuilder {
    index: FxHashMap<String, u32>,
    sku: TextColumnBuilder,
    parent_sku: TextColumnBuilder,
    asin: TextColumnBuilder,
    title: TextColumnBuilder,
    brand: TextColumnBuilder,
    category: TextColumnBuilder,
    tags: crate::intern::TagBuilder,
    seller_account: TextColumnBuilder,
    marketplace: TextColumnBuilder,
    custom: CustomBuilder,
}

#[derive(Default)]
struct CustomersBuilder {
    index: FxHashMap<String, u32>,
    customer_id: TextColumnBuilder,
    email: TextColumnBuilder,
    first_name: TextColumnBuilder,
    last_name: TextColumnBuilder,
    country: TextColumnBuilder,
    city: TextColumnBuilder,
    marketplace: TextColumnBuilder,
    tags: crate::intern::TagBuilder,
    custom: CustomBuilder,
}

#[derive(Default)]
struct OrdersBuilder {
    index: FxHashMap<String, u32>,
    status: TextColumnBuilder,
    marketplace: TextColumnBuilder,
    line_seller: TextColumnBuilder,
}

/// Builds a [`Dataset`] from rows in any order (an order line after its
/// product and customer, a daily row after its product), checking what
/// [`crate::load_dir`] checks of references and order-level columns.
#[derive(Default)]
pub struct DatasetBuilder {
    data: Dataset,
    products: ProductsBuilder,
    customers: CustomersBuilder,
    orders: OrdersBuilder,
    days: rustc_hash::FxHashSet<(u32, Date)>,
}

impl DatasetBuilder {
    pub fn new(settings: Settings) -> DatasetBuilder {
        let mut builder = DatasetBuilder::default();
        builder.data.settings = settings;
        builder
    }

    pub fn product(&mut self, row: ProductRow) -> Result<(), RowError> {
        let b = &mut self.products;
        let id = b.sku.len() as u32;
        if row.sku.is_empty() {
            return Err(RowError("a product without a sku".into()));
        }
        if b.index.insert(row.sku.clone(), id).is_some() {
            return Err(RowError(format!("product '{}' given twice", row.sku)));
        }
        b.sku.push(Some(&row.sku));
        b.parent_sku.push(row.parent_sku.as_deref());
        b.asin.push(row.asin.as_deref());
        b.title.push(row.title.as_deref());
        b.brand.push(row.brand.as_deref());
        b.category.push(row.category.as_deref());
        b.tags.push_each(row.tags.iter().map(String::as_str));
        b.seller_account.push(row.seller_account.as_deref());
        b.marketplace.push(row.marketplace.as_deref());
        b.custom.push(&row.custom);
        let p = &mut self.data.products;
        p.price.push(row.price);
        p.cost.push(row.cost);
        p.inventory.push(row.inventory);
        p.created_at.push(row.created_at);
        Ok(())
    }

    pub fn customer(&mut self, row: CustomerRow) -> Result<(), RowError> {
        let b = &mut self.customers;
        let id = b.customer_id.len() as u32;
        if row.customer_id.is_empty() {
            return Err(RowError("a customer without an id".into()));
        }
        if b.index.insert(row.customer_id.clone(), id).is_some() {
            return Err(RowError(format!(
                "customer '{}' given twice",
                row.customer_id
            )));
        }
        b.customer_id.push(Some(&row.customer_id));
        b.email.push(row.email.as_deref());
        b.first_name.push(row.first_name.as_deref());
        b.last_name.push(row.last_name.as_deref());
        b.country.push(row.country.as_deref());
        b.city.push(row.city.as_deref());
        b.marketplace.push(row.marketplace.as_deref());
        b.tags.push_each(row.tags.iter().map(String::as_str));
        b.custom.push(&row.custom);
        let c = &mut self.data.customers;
        c.accepts_marketing.push(row.accepts_marketing);
        c.created_at.push(row.created_at);
        Ok(())
    }

    /// An order line; its product and customer must be known already.
    pub fn line(&mut self, row: LineRow) -> Result<(), RowError> {
        let product = *self.products.index.get(&row.sku).ok_or_else(|| {
            RowError(format!(
                "order '{}': unknown product '{}'",
                row.order_id, row.sku
            ))
        })?;
        let customer = match &row.customer_id {
            None => NO_CUSTOMER,
            Some(id) => *self.customers.index.get(id).ok_or_else(|| {
                RowError(format!("order '{}': unknown customer '{id}'", row.order_id))
            })?,
        };
        let revenue = row
            .checked_revenue()
            .map_err(|what| RowError(format!("order '{}': {what}", row.order_id)))?;
        let status = row.status.as_deref().unwrap_or("shipped");
        let orders = &mut self.data.orders;
        let b = &mut self.orders;
        let order = match b.index.get(&row.order_id) {
            Some(&o) => {
                let o = o as usize;
                let agrees = orders.ordered_at[o] == row.ordered_at
                    && orders.customer[o] == customer
                    && b.status_at(o) == status
                    && b.marketplace_at(o) == row.marketplace.as_deref();
                if !agrees {
                    return Err(RowError(format!(
                        "order '{}': its lines disagree on the order's columns",
                        row.order_id
                    )));
                }
                o as u32
            }
            None => {
                let o = orders.order_id.len() as u32;
                b.index.insert(row.order_id.clone(), o);
                orders.order_id.push(&row.order_id);
                orders.ordered_at.push(row.ordered_at);
                orders.customer.push(customer);
                b.status.push(Some(status));
                orders.counting.push(status_counts(status));
                b.marketplace.push(row.marketplace.as_deref());
                o
            }
        };
        let lines = &mut self.data.lines;
        lines.order.push(order);
        lines.product.push(product);
        lines.quantity.push(row.quantity);
        lines.revenue.push(revenue);
        lines.unit_price.push(row.unit_price);
        lines.discount.push(row.discount);
        lines.fees.push(row.fees);
        b.line_seller.push(row.seller_account.as_deref());
        Ok(())
    }

    /// A daily row; its product must be known already.
    pub fn daily(&mut self, row: DailyRow) -> Result<(), RowError> {
        let product = *self
            .products
            .index
            .get(&row.sku)
            .ok_or_else(|| RowError(format!("daily row: unknown product '{}'", row.sku)))?;
        if !self.days.insert((product, row.date)) {
            return Err(RowError(format!(
                "daily row of '{}' on {} given twice",
                row.sku, row.date
            )));
        }
        let d = &mut self.data.daily;
        d.product.push(product);
        d.date.push(row.date);
        d.sessions.push(row.sessions);
        d.bsr.push(row.bsr);
        d.reviews.push(row.reviews);
        d.rating.push(row.rating);
        Ok(())
    }

    pub fn tier_scheme(&mut self, scheme: TierScheme) {
        self.data.tiers.push(scheme);
    }

    pub fn segment(&mut self, segment: SavedSegment) {
        self.data.segments.push(segment);
    }

    pub fn finish(self) -> Dataset {
        let DatasetBuilder {
            mut data,
            products: p,
            customers: c,
            orders: o,
            ..
        } = self;
        let ps = &mut data.products;
        ps.sku = p.sku.finish();
        ps.parent_sku = p.parent_sku.finish();
        ps.asin = p.asin.finish();
        ps.title = p.title.finish();
        ps.brand = p.brand.finish();
        ps.category = p.category.finish();
        ps.tags = p.tags.finish();
        ps.seller_account = p.seller_account.finish();
        ps.marketplace = p.marketplace.finish();
        ps.custom = p.custom.finish();
        let cs = &mut data.customers;
        cs.customer_id = c.customer_id.finish();
        cs.email = c.email.finish();
        cs.first_name = c.first_name.finish();
        cs.last_name = c.last_name.finish();
        cs.country = c.country.finish();
        cs.city = c.city.finish();
        cs.marketplace = c.marketplace.finish();
        cs.tags = c.tags.finish();
        cs.custom = c.custom.finish();
        data.orders.status = o.status.finish();
        data.orders.marketplace = o.marketplace.finish();
        data.lines.seller_account = o.line_seller.finish();
        data
    }
}

impl OrdersBuilder {
    fn status_at(&self, o: usize) -> &str {
        self.status.get(o).unwrap_or("shipped")
    }

    fn marketplace_at(&self, o: usize) -> Option<&str> {
        self.marketplace.get(o)
    }
}
