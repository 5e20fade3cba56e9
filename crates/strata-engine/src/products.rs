//! Product fields: the columns of `products.csv`, the sales aggregates over
//! the live lines and the daily-row figures of fields.md.

use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use strata_data::{Dataset, NO_CUSTOMER};

use crate::clock::AsOf;
use crate::columns::{Col, NumCol, from_fixed, time_column};
use crate::index::{DailyIndex, LiveLines};

#[derive(Debug)]
pub struct ProductTable {
    pub created_at: Vec<i64>,
    pub price: NumCol,
    pub cost: NumCol,
    pub inventory: NumCol,
    pub units_sold: NumCol,
    pub sales: NumCol,
    pub units_7d: NumCol,
    pub units_14d: NumCol,
    pub units_30d: NumCol,
    pub sales_7d: NumCol,
    pub sales_14d: NumCol,
    pub sales_30d: NumCol,
    pub avg_daily_units_7d: NumCol,
    pub avg_daily_units_14d: NumCol,
    pub avg_daily_units_30d: NumCol,
    pub daily_velocity: NumCol,
    pub days_of_stock: NumCol,
    pub inventory_value: NumCol,
    pub revenue_share: NumCol,
    pub customers_30d: NumCol,
    pub sessions_30d: NumCol,
    pub conversion_rate_30d: NumCol,
    pub bsr: NumCol,
    pub reviews: NumCol,
    pub rating: NumCol,
    pub new_reviews_30d: NumCol,
}

/// Sums of one product's lines in one window.
#[derive(Clone, Copy, Default)]
struct Sums {
    units: u64,
    sales: Decimal,
}

/// Sums over positions `slots` of the product-ordered line columns.
fn sums(live: &LiveLines, slots: std::ops::Range<usize>) -> Sums {
    let mut s = Sums {
        units: live.prod_quantity[slots.clone()]
            .iter()
            .map(|&q| u64::from(q))
            .sum(),
        sales: Decimal::ZERO,
    };
    match (&live.prod_revenue, &live.money) {
        (Some(revenue), Some(m)) => {
            let sales: i128 = revenue[slots].iter().map(|&r| i128::from(r)).sum();
            s.sales = from_fixed(sales, m.scale).unwrap_or(Decimal::MAX);
        }
        _ => {
            s.sales = live.by_product[slots]
                .iter()
                .map(|&l| live.revenue(l as usize))
                .sum();
        }
    }
    s
}

impl ProductTable {
    pub fn build(
        data: &Dataset,
        as_of: &AsOf,
        live: &LiveLines,
        daily: &DailyIndex,
    ) -> ProductTable {
        let products = &data.products;
        let n = products.len();
        let windows = [7i64, 14, 30].map(|d| live.time_range(as_of.window_start(d), as_of.now));

        let mut all = Vec::with_capacity(n);
        let mut w: [Vec<Sums>; 3] = Default::default();
        let mut customers_30d = Vec::with_capacity(n);
        let mut buyers: Vec<u32> = Vec::new();
        for p in 0..n {
            all.push(sums(live, live.product_slots(p)));
            for (k, range) in windows.iter().enumerate() {
                w[k].push(sums(live, live.product_slots_in(p, range)));
            }
            buyers.clear();
            buyers.extend(
                live.prod_customer[live.product_slots_in(p, &windows[2])]
                    .iter()
                    .copied()
                    .filter(|&c| c != NO_CUSTOMER),
            );
            buyers.sort_unstable();
            buyers.dedup();
            customers_30d.push(buyers.len() as u64);
        }

        // Σ sales_30d per (seller_account, marketplace); null keys form a
        // group of their own.
        let mut group_sales: FxHashMap<(u32, u32), Decimal> = FxHashMap::default();
        for (p, window) in w[2].iter().enumerate() {
            let key = (
                products.seller_account.codes[p],
                products.marketplace.codes[p],
            );
            *group_sales.entry(key).or_default() += window.sales;
        }
        let hundred = Decimal::ONE_HUNDRED;
        let revenue_share = NumCol::ratio(
            (0..n).map(|p| hundred * w[2][p].sales).collect(),
            (0..n)
                .map(|p| {
                    group_sales[&(
                        products.seller_account.codes[p],
                        products.marketplace.codes[p],
                    )]
                })
                .collect(),
        );

        let dec = |v: u64| Decimal::from(v);
        let units = |k: usize| NumCol::from_u64(&w[k].iter().map(|s| s.units).collect::<Vec<_>>());
        let sales = |k: usize| NumCol::from_decimals(w[k].iter().map(|s| Some(s.sales)).collect());
        let avg = |k: usize, days: u64| {
            NumCol::ratio(
                w[k].iter().map(|s| dec(s.units)).collect(),
                vec![dec(days); n],
            )
        };
        // velocity = 0.5·u7/7 + 0.3·u14/14 + 0.2·u30/30 = (150·u7 + 45·u14 + 14·u30) / 2100,
        // kept as that exact quotient.
        let velocity_num: Vec<Decimal> = (0..n)
            .map(|p| dec(150 * w[0][p].units + 45 * w[1][p].units + 14 * w[2][p].units))
            .collect();
        let days_of_stock = NumCol::ratio(
            (0..n)
                .map(|p| match products.inventory[p] {
                    Some(inv) => dec(inv) * Decimal::from(2100),
                    None => Decimal::ZERO,
                })
                .collect(),
            (0..n)
                .map(|p| match products.inventory[p] {
                    Some(_) => velocity_num[p],
                    None => Decimal::ZERO,
                })
                .collect(),
        );

        // Daily rows: the 30-day window is the 30 calendar days ending today.
        let first_day = as_of.daily_window_start(30);
        let baseline_day = as_of.days_ago(30);
        let d = &data.daily;
        let mut sessions_30d = Vec::with_capacity(n);
        let mut bsr = Vec::with_capacity(n);
        let mut reviews = Vec::with_capacity(n);
        let mut rating = Vec::with_capacity(n);
        let mut new_reviews = Vec::with_capacity(n);
        for p in 0..n {
            let rows = daily.of_product(p);
            let sessions: u64 = rows
                .iter()
                .filter(|&&r| d.date[r as usize] >= first_day)
                .filter_map(|&r| d.sessions[r as usize])
                .sum();
            sessions_30d.push(sessions);
            // Rows are sorted by date and all dated on or before today.
            let latest = |col: &[Option<u64>]| rows.iter().rev().find_map(|&r| col[r as usize]);
            bsr.push(latest(&d.bsr).map(dec));
            let now_reviews = latest(&d.reviews);
            reviews.push(now_reviews.map(dec));
            rating.push(rows.iter().rev().find_map(|&r| d.rating[r as usize]));
            let before = rows
                .iter()
                .rev()
                .filter(|&&r| d.date[r as usize] <= baseline_day)
                .find_map(|&r| d.reviews[r as usize])
                .unwrap_or(0);
            new_reviews.push(now_reviews.map(|v| dec(v) - dec(before)));
        }

        ProductTable {
            created_at: time_column(&products.created_at),
            price: NumCol::from_decimals(products.price.clone()),
            cost: NumCol::from_decimals(products.cost.clone()),
            inventory: NumCol::from_ints(
                products
                    .inventory
                    .iter()
                    .map(|v| v.and_then(|v| i64::try_from(v).ok())),
            ),
            units_sold: NumCol::from_u64(&all.iter().map(|s| s.units).collect::<Vec<_>>()),
            sales: NumCol::from_decimals(all.iter().map(|s| Some(s.sales)).collect()),
            units_7d: units(0),
            units_14d: units(1),
            units_30d: units(2),
            sales_7d: sales(0),
            sales_14d: sales(1),
            sales_30d: sales(2),
            avg_daily_units_7d: avg(0, 7),
            avg_daily_units_14d: avg(1, 14),
            avg_daily_units_30d: avg(2, 30),
            daily_velocity: NumCol::ratio(velocity_num.clone(), vec![Decimal::from(2100); n]),
            days_of_stock,
            inventory_value: NumCol::from_decimals(
                (0..n)
                    .map(|p| Some(dec(products.inventory[p]?) * products.cost[p]?))
                    .collect(),
            ),
            revenue_share,
            customers_30d: NumCol::from_u64(&customers_30d),
            conversion_rate_30d: NumCol::ratio(
                (0..n).map(|p| hundred * dec(w[2][p].units)).collect(),
                sessions_30d.iter().map(|&s| dec(s)).collect(),
            ),
            sessions_30d: NumCol::from_u64(&sessions_30d),
            bsr: NumCol::from_decimals(bsr),
            reviews: NumCol::from_decimals(reviews),
            rating: NumCol::from_decimals(rating),
            new_reviews_30d: NumCol::from_decimals(new_reviews),
        }
    }

    /// The column behind a product field name.
    pub fn col<'a>(&'a self, data: &'a Dataset, name: &str) -> Option<Col<'a>> {
        Some(match name {
            "price" => Col::Num(&self.price),
            "cost" => Col::Num(&self.cost),
            "inventory" => Col::Num(&self.inventory),
            "created_at" => Col::Time(&self.created_at),
            "units_sold" => Col::Num(&self.units_sold),
            "sales" => Col::Num(&self.sales),
            "units_7d" => Col::Num(&self.units_7d),
            "units_14d" => Col::Num(&self.units_14d),
            "units_30d" => Col::Num(&self.units_30d),
            "sales_7d" => Col::Num(&self.sales_7d),
            "sales_14d" => Col::Num(&self.sales_14d),
            "sales_30d" => Col::Num(&self.sales_30d),
            "avg_daily_units_7d" => Col::Num(&self.avg_daily_units_7d),
            "avg_daily_units_14d" => Col::Num(&self.avg_daily_units_14d),
            "avg_daily_units_30d" => Col::Num(&self.avg_daily_units_30d),
            "daily_velocity" => Col::Num(&self.daily_velocity),
            "days_of_stock" => Col::Num(&self.days_of_stock),
            "inventory_value" => Col::Num(&self.inventory_value),
            "revenue_share" => Col::Num(&self.revenue_share),
            "customers_30d" => Col::Num(&self.customers_30d),
            "sessions_30d" => Col::Num(&self.sessions_30d),
            "conversion_rate_30d" => Col::Num(&self.conversion_rate_30d),
            "bsr" => Col::Num(&self.bsr),
            "reviews" => Col::Num(&self.reviews),
            "rating" => Col::Num(&self.rating),
            "new_reviews_30d" => Col::Num(&self.new_reviews_30d),
            other => return raw_col(data, other),
        })
    }
}

/// The columns read straight from `products.csv` (text, tags and custom
/// attributes), which need nothing computed.
pub fn raw_col<'a>(data: &'a Dataset, name: &str) -> Option<Col<'a>> {
    let p = &data.products;
    Some(match name {
        "sku" => Col::Text(&p.sku),
        "parent_sku" => Col::Text(&p.parent_sku),
        "asin" => Col::Text(&p.asin),
        "title" => Col::Text(&p.title),
        "brand" => Col::Text(&p.brand),
        "category" => Col::Text(&p.category),
        "tags" => Col::Tags(&p.tags),
        "seller_account" => Col::Text(&p.seller_account),
        "marketplace" => Col::Text(&p.marketplace),
        custom if custom.starts_with("x_") => {
            let col = p.custom.iter().find(|x| x.name == custom)?;
            Col::Text(&col.values)
        }
        _ => return None,
    })
}
