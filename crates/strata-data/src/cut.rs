//! A dataset as it stood at an earlier instant, and the lines of each
//! order: what a replay needs to start an engine from the past and feed it
//! the rest.

use jiff::civil::Date;

use crate::store::{Daily, Dataset, Lines, Nanos, Orders, StrColumn, TextColumn};

/// A text column holding only `rows` of `col`, in that order (the
/// dictionary is shared as is).
fn pick_text(col: &TextColumn, rows: &[usize]) -> TextColumn {
    TextColumn {
        dict: col.dict.clone(),
        codes: rows.iter().map(|&r| col.codes[r]).collect(),
    }
}

impl Dataset {
    /// The orders dated at or before `until` (whole, with every line;
    /// order indexes renumbered) and the daily rows dated at or before
    /// `until_day`; everything else as it is.
    pub fn until(&self, until: Nanos, until_day: Date) -> Dataset {
        let orders = &self.orders;
        let kept: Vec<usize> = (0..orders.len())
            .filter(|&o| orders.ordered_at[o] <= until)
            .collect();
        let mut renumber = vec![u32::MAX; orders.len()];
        let bytes = kept.iter().map(|&o| orders.order_id.get(o).len()).sum();
        let mut order_id = StrColumn::with_capacity(kept.len(), bytes);
        for (new, &o) in kept.iter().enumerate() {
            renumber[o] = new as u32;
            order_id.push(orders.order_id.get(o));
        }
        let new_orders = Orders {
            order_id,
            ordered_at: kept.iter().map(|&o| orders.ordered_at[o]).collect(),
            customer: kept.iter().map(|&o| orders.customer[o]).collect(),
            status: pick_text(&orders.status, &kept),
            counting: kept.iter().map(|&o| orders.counting[o]).collect(),
            marketplace: pick_text(&orders.marketplace, &kept),
        };
        let lines = &self.lines;
        let kept_lines: Vec<usize> = (0..lines.len())
            .filter(|&l| renumber[lines.order[l] as usize] != u32::MAX)
            .collect();
        let new_lines = Lines {
            order: kept_lines
                .iter()
                .map(|&l| renumber[lines.order[l] as usize])
                .collect(),
            product: kept_lines.iter().map(|&l| lines.product[l]).collect(),
            quantity: kept_lines.iter().map(|&l| lines.quantity[l]).collect(),
            revenue: kept_lines.iter().map(|&l| lines.revenue[l]).collect(),
            unit_price: kept_lines.iter().map(|&l| lines.unit_price[l]).collect(),
            discount: kept_lines.iter().map(|&l| lines.discount[l]).collect(),
            fees: kept_lines.iter().map(|&l| lines.fees[l]).collect(),
            seller_account: pick_text(&lines.seller_account, &kept_lines),
        };
        let daily = &self.daily;
        let days: Vec<usize> = (0..daily.len())
            .filter(|&r| daily.date[r] <= until_day)
            .collect();
        let new_daily = Daily {
            product: days.iter().map(|&r| daily.product[r]).collect(),
            date: days.iter().map(|&r| daily.date[r]).collect(),
            sessions: days.iter().map(|&r| daily.sessions[r]).collect(),
            bsr: days.iter().map(|&r| daily.bsr[r]).collect(),
            reviews: days.iter().map(|&r| daily.reviews[r]).collect(),
            rating: days.iter().map(|&r| daily.rating[r]).collect(),
        };
        Dataset {
            settings: self.settings.clone(),
            products: self.products.clone(),
            customers: self.customers.clone(),
            orders: new_orders,
            lines: new_lines,
            daily: new_daily,
            tiers: self.tiers.clone(),
            segments: self.segments.clone(),
        }
    }

    /// The lines of every order.
    pub fn lines_by_order(&self) -> LinesByOrder {
        let mut offsets = vec![0usize; self.orders.len() + 1];
        for &o in &self.lines.order {
            offsets[o as usize + 1] += 1;
        }
        for o in 0..self.orders.len() {
            offsets[o + 1] += offsets[o];
        }
        let mut next = offsets.clone();
        let mut lines = vec![0u32; self.lines.len()];
        for (l, &o) in self.lines.order.iter().enumerate() {
            lines[next[o as usize]] = l as u32;
            next[o as usize] += 1;
        }
        LinesByOrder { offsets, lines }
    }
}

/// The lines of each order in file order (CSR: the lines of order `o` are
/// `lines[offsets[o]..offsets[o + 1]]`).
#[derive(Clone, Debug)]
pub struct LinesByOrder {
    offsets: Vec<usize>,
    lines: Vec<u32>,
}

impl LinesByOrder {
    pub fn of(&self, o: usize) -> &[u32] {
        &self.lines[self.offsets[o]..self.offsets[o + 1]]
    }
}
