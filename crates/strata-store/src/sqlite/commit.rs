//! Live commits: a change, its events, counts and clock in one transaction;
//! and the wholesale replacement of memberships after a restore.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use strata_data::{CustomerRow, DailyRow, LineRow, Nanos, ProductRow, TierScheme};
use strata_live::{Cause, Change, Event, ProductValue};

use super::accounts::known_user;
use super::{i64_of, tenant_in};
use crate::rows_json::{self, ENTER, EXIT, RuleForms, TIER, text};
use crate::{Commit, Memberships, SegmentInfo, StoreError, TenantId, in_batch};

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// Writes commits in order in one transaction: all of them or none.
pub(super) fn commit_batch(
    conn: &mut rusqlite::Connection,
    tenant: TenantId,
    commits: &[Commit<'_>],
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tenant_in(&tx, tenant)?;
    let w = Writer { tx: &tx, tenant };
    for (i, commit) in commits.iter().enumerate() {
        w.commit(commit)
            .map_err(|e| in_batch(e, i, commits.len()))?;
    }
    if let Some(last) = commits.last() {
        // `memberships_version` stays: an import committed while this engine
        // ran is not in its memberships, and the next restore must see that.
        tx.execute(
            "UPDATE tenants SET clock = ?2, last_change = ?3 WHERE id = ?1",
            params![tenant.0, last.clock, i64_of(last.seq, "sequence number")?],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn reset_memberships(
    conn: &mut rusqlite::Connection,
    tenant: TenantId,
    memberships: &Memberships,
    clock: Nanos,
    data_version: u64,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tenant_in(&tx, tenant)?;
    // Members that stay keep the instant they entered; new ones have none
    // known (they entered somewhere in a bulk change).
    let mut since: HashMap<(String, String), Option<Nanos>> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT segment, entity, since FROM memberships WHERE tenant_id = ?1")?;
        let mut rows = stmt.query([tenant.0])?;
        while let Some(r) = rows.next()? {
            since.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
    }
    tx.execute("DELETE FROM memberships WHERE tenant_id = ?1", [tenant.0])?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO memberships (tenant_id, segment, entity, kind, since)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (segment, kind, entity) in &memberships.members {
            let at = since.remove(&(segment.clone(), entity.clone())).flatten();
            stmt.execute(params![
                tenant.0,
                segment,
                entity,
                rows_json::segment_kind_name(*kind),
                at
            ])?;
        }
    }
    let mut tier_since: HashMap<(String, String), Option<Nanos>> = HashMap::new();
    {
        let mut stmt =
            tx.prepare("SELECT customer_id, tier, since FROM customer_tiers WHERE tenant_id = ?1")?;
        let mut rows = stmt.query([tenant.0])?;
        while let Some(r) = rows.next()? {
            tier_since.insert((r.get(0)?, r.get(1)?), r.get(2)?);
        }
    }
    tx.execute(
        "DELETE FROM customer_tiers WHERE tenant_id = ?1",
        [tenant.0],
    )?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO customer_tiers (tenant_id, customer_id, tier, since)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (customer, tier) in &memberships.tiers {
            let at = tier_since
                .remove(&(customer.clone(), tier.clone()))
                .flatten();
            stmt.execute(params![tenant.0, customer, tier, at])?;
        }
    }
    tx.execute(
        "UPDATE tenants SET clock = ?2, memberships_version = ?3 WHERE id = ?1",
        params![tenant.0, clock, i64_of(data_version, "data_version")?],
    )?;
    tx.commit()?;
    Ok(())
}

/// Writes of one commit, all inside its transaction.
struct Writer<'a> {
    tx: &'a Transaction<'a>,
    tenant: TenantId,
}

impl Writer<'_> {
    /// One commit's change, events and counts (the tenant's clock is the
    /// caller's: one update for a whole batch).
    fn commit(&self, commit: &Commit<'_>) -> Result<(), StoreError> {
        if let Some(change) = commit.change {
            self.apply(change, commit.clock, commit.info, commit.anonymised_orders)?;
        }
        for event in commit.events {
            self.event(event)?;
        }
        let day = commit.day.to_string();
        for (segment, count) in commit.counts {
            self.execute(
                "INSERT INTO count_history (tenant_id, segment, day, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, segment, day) DO UPDATE SET count = excluded.count",
                params![self.tenant.0, segment, day, i64_of(*count, "count")?],
            )?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        Ok(self.tx.prepare_cached(sql)?.execute(params)?)
    }

    fn exists(&self, sql: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .tx
            .prepare_cached(sql)?
            .exists(params![self.tenant.0, key])?)
    }

    fn product_exists(&self, sku: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM products WHERE tenant_id = ?1 AND sku = ?2",
            sku,
        )
    }

    /// Writes the rows a change touches. The engine checked the change
    /// already; what is checked again here is what the tables could not
    /// take without holding a dataset that no longer loads.
    fn apply(
        &self,
        change: &Change,
        clock: Nanos,
        info: Option<&SegmentInfo>,
        anonymised: &[String],
    ) -> Result<(), StoreError> {
        let t = self.tenant.0;
        match change {
            Change::UpsertProduct(p) => self.upsert_product(p)?,
            Change::DeleteProduct(sku) => {
                let named: Option<bool> = self
                    .tx
                    .prepare_cached(
                        "SELECT has_lines FROM products WHERE tenant_id = ?1 AND sku = ?2",
                    )?
                    .query_row(params![t, sku], |r| r.get(0))
                    .optional()?;
                if named == Some(true) {
                    return Err(invalid(format!(
                        "product '{sku}' cannot be deleted: order lines name it"
                    )));
                }
                let deleted = self.execute(
                    "DELETE FROM products WHERE tenant_id = ?1 AND sku = ?2",
                    params![t, sku],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown sku '{sku}'")));
                }
                self.execute(
                    "DELETE FROM product_daily WHERE tenant_id = ?1 AND sku = ?2",
                    params![t, sku],
                )?;
            }
            Change::UpsertCustomer(c) => self.upsert_customer(c)?,
            Change::DeleteCustomer(id) => {
                let deleted = self.execute(
                    "DELETE FROM customers WHERE tenant_id = ?1 AND customer_id = ?2",
                    params![t, id],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown customer '{id}'")));
                }
                // As in the engine: the orders stay, as an anonymous buyer's.
                for order in anonymised {
                    self.execute(
                        "UPDATE orders SET customer_id = NULL
                         WHERE tenant_id = ?1 AND order_id = ?2 AND customer_id = ?3",
                        params![t, order, id],
                    )?;
                }
            }
            Change::AddLines(lines) => {
                for (i, line) in lines.iter().enumerate() {
                    self.add_line(line).map_err(|e| match e {
                        StoreError::Invalid(m) => invalid(format!("line {}: {m}", i + 1)),
                        e => e,
                    })?;
                }
            }
            Change::SetOrderStatus { order_id, status } => {
                if status.is_empty() {
                    return Err(invalid("status is empty"));
                }
                let updated = self.execute(
                    "UPDATE orders SET status = ?3 WHERE tenant_id = ?1 AND order_id = ?2",
                    params![t, order_id, status],
                )?;
                if updated == 0 {
                    return Err(invalid(format!("unknown order '{order_id}'")));
                }
            }
            Change::SetProductValue { sku, value } => {
                let updated = match value {
                    ProductValue::Price(v) => self.execute(
                        "UPDATE products SET price = ?3 WHERE tenant_id = ?1 AND sku = ?2",
                        params![t, sku, v.map(|d| d.to_string())],
                    )?,
                    ProductValue::Cost(v) => self.execute(
                        "UPDATE products SET cost = ?3 WHERE tenant_id = ?1 AND sku = ?2",
                        params![t, sku, v.map(|d| d.to_string())],
                    )?,
                    ProductValue::Inventory(v) => self.execute(
                        "UPDATE products SET inventory = ?3 WHERE tenant_id = ?1 AND sku = ?2",
                        params![t, sku, v.map(|v| i64_of(v, "inventory")).transpose()?],
                    )?,
                };
                if updated == 0 {
                    return Err(invalid(format!("unknown sku '{sku}'")));
                }
            }
            Change::PutDaily(row) => self.put_daily(row)?,
            Change::PutSegment { name, kind, rule } => {
                if name.is_empty() {
                    return Err(invalid("a segment needs a name"));
                }
                let forms = RuleForms::of(name, rule)?;
                let new_kind = rows_json::segment_kind_name(rows_json::segment_kind(*kind));
                let old_kind: Option<String> = self
                    .tx
                    .query_row(
                        "SELECT kind FROM segments WHERE tenant_id = ?1 AND name = ?2",
                        params![t, name],
                        |r| r.get(0),
                    )
                    .optional()?;
                if old_kind.is_some_and(|k| k != new_kind) {
                    // The engine starts a re-kinded segment afresh, without
                    // exits for the members of the other kind.
                    self.execute(
                        "DELETE FROM memberships WHERE tenant_id = ?1 AND segment = ?2",
                        params![t, name],
                    )?;
                    self.execute(
                        "DELETE FROM count_history WHERE tenant_id = ?1 AND segment = ?2",
                        params![t, name],
                    )?;
                }
                if let Some(owner) = info.and_then(|i| i.owner) {
                    known_user(self.tx, owner)?;
                }
                // Stamped with the engine's clock, the instant the change
                // took effect (an import, having none, uses the wall clock).
                // The owner is written on insert only: an existing one stays.
                self.execute(
                    "INSERT INTO segments (tenant_id, name, kind, rule_source, rule_text,
                         rule_json, created_at, updated_at, description, owner_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)
                     ON CONFLICT (tenant_id, name) DO UPDATE SET kind = excluded.kind,
                         rule_source = excluded.rule_source, rule_text = excluded.rule_text,
                         rule_json = excluded.rule_json, updated_at = excluded.updated_at,
                         description = CASE WHEN ?10 THEN excluded.description
                             ELSE segments.description END",
                    params![
                        t,
                        name,
                        new_kind,
                        forms.source,
                        forms.text,
                        forms.json,
                        clock,
                        info.and_then(|i| i.description.as_deref()),
                        info.and_then(|i| i.owner).map(|u| u.0),
                        info.is_some(),
                    ],
                )?;
            }
            Change::DeleteSegment(name) => {
                // First: the shares' key refuses to outlive the segment.
                self.execute(
                    "DELETE FROM segment_shares WHERE tenant_id = ?1 AND segment = ?2",
                    params![t, name],
                )?;
                let deleted = self.execute(
                    "DELETE FROM segments WHERE tenant_id = ?1 AND name = ?2",
                    params![t, name],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown segment '{name}'")));
                }
                // The engine drops a deleted segment's members without
                // events: nobody left it, it stopped existing.
                self.execute(
                    "DELETE FROM memberships WHERE tenant_id = ?1 AND segment = ?2",
                    params![t, name],
                )?;
                self.execute(
                    "DELETE FROM count_history WHERE tenant_id = ?1 AND segment = ?2",
                    params![t, name],
                )?;
            }
            Change::PutTierScheme(scheme) => self.put_tier_scheme(scheme)?,
            Change::DeleteTierScheme(marketplace) => {
                let key = rows_json::marketplace_key(marketplace.as_deref());
                let deleted = self.execute(
                    "DELETE FROM tier_schemes WHERE tenant_id = ?1 AND marketplace = ?2",
                    params![t, key],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!(
                        "no tier scheme for marketplace {}",
                        marketplace.as_deref().unwrap_or("null")
                    )));
                }
            }
        }
        Ok(())
    }

    fn name_seen(
        &self,
        seller_account: Option<&str>,
        marketplace: Option<&str>,
    ) -> Result<(), StoreError> {
        if let Some(name) = text(seller_account) {
            self.execute(
                "INSERT OR IGNORE INTO seller_accounts (tenant_id, name) VALUES (?1, ?2)",
                params![self.tenant.0, name],
            )?;
        }
        if let Some(name) = text(marketplace) {
            self.execute(
                "INSERT OR IGNORE INTO marketplaces (tenant_id, name) VALUES (?1, ?2)",
                params![self.tenant.0, name],
            )?;
        }
        Ok(())
    }

    fn upsert_product(&self, p: &ProductRow) -> Result<(), StoreError> {
        if p.sku.is_empty() {
            return Err(invalid("a product needs a sku"));
        }
        let inventory = p.inventory.map(|v| i64_of(v, "inventory")).transpose()?;
        self.execute(
            "INSERT INTO products (tenant_id, sku, parent_sku, asin, title, brand, category,
                 tags, seller_account, marketplace, price, cost, inventory, created_at, custom)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (tenant_id, sku) DO UPDATE SET parent_sku = excluded.parent_sku,
                 asin = excluded.asin, title = excluded.title, brand = excluded.brand,
                 category = excluded.category, tags = excluded.tags,
                 seller_account = excluded.seller_account, marketplace = excluded.marketplace,
                 price = excluded.price, cost = excluded.cost, inventory = excluded.inventory,
                 created_at = excluded.created_at, custom = excluded.custom",
            params![
                self.tenant.0,
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
            ],
        )?;
        self.name_seen(p.seller_account.as_deref(), p.marketplace.as_deref())
    }

    fn upsert_customer(&self, c: &CustomerRow) -> Result<(), StoreError> {
        if c.customer_id.is_empty() {
            return Err(invalid("a customer needs a customer_id"));
        }
        self.execute(
            "INSERT INTO customers (tenant_id, customer_id, email, first_name, last_name,
                 country, city, marketplace, tags, accepts_marketing, created_at, custom)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET email = excluded.email,
                 first_name = excluded.first_name, last_name = excluded.last_name,
                 country = excluded.country, city = excluded.city,
                 marketplace = excluded.marketplace, tags = excluded.tags,
                 accepts_marketing = excluded.accepts_marketing,
                 created_at = excluded.created_at, custom = excluded.custom",
            params![
                self.tenant.0,
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
            ],
        )?;
        self.name_seen(None, c.marketplace.as_deref())
    }

    /// One line: its order's columns upserted, the line numbered after the
    /// order's last line.
    fn add_line(&self, l: &LineRow) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if l.order_id.is_empty() {
            return Err(invalid("order_id is empty"));
        }
        if !self.product_exists(&l.sku)? {
            return Err(invalid(format!("unknown sku '{}'", l.sku)));
        }
        // Only a product's first line writes its row: a write for every
        // line would put a random page in the log for each.
        self.execute(
            "UPDATE products SET has_lines = 1 WHERE tenant_id = ?1 AND sku = ?2 AND has_lines = 0",
            params![t, l.sku],
        )?;
        let customer = text(l.customer_id.as_deref());
        if let Some(id) = customer
            && !self.exists(
                "SELECT 1 FROM customers WHERE tenant_id = ?1 AND customer_id = ?2",
                id,
            )?
        {
            return Err(invalid(format!("unknown customer '{id}'")));
        }
        // Refused here as at load, where the dataset builder checks the same.
        l.checked_revenue().map_err(invalid)?;
        self.execute(
            "INSERT INTO orders (tenant_id, order_id, ordered_at, customer_id, status, marketplace)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, order_id) DO UPDATE SET ordered_at = excluded.ordered_at,
                 customer_id = excluded.customer_id, status = excluded.status,
                 marketplace = excluded.marketplace",
            params![
                t,
                l.order_id,
                l.ordered_at,
                customer,
                text(l.status.as_deref()).unwrap_or("shipped"),
                text(l.marketplace.as_deref()),
            ],
        )?;
        // The number is read first: an INSERT that selects from its own
        // table makes SQLite stage the rows in a temporary file, which cost
        // more than the insert itself.
        let line_no: i64 = self
            .tx
            .prepare_cached(
                "SELECT COALESCE(MAX(line_no), 0) + 1 FROM order_lines
                 WHERE tenant_id = ?1 AND order_id = ?2",
            )?
            .query_row(params![t, l.order_id], |r| r.get(0))?;
        self.execute(
            "INSERT INTO order_lines (tenant_id, order_id, line_no, sku, quantity, unit_price,
                 discount, fees, seller_account)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                t,
                l.order_id,
                line_no,
                l.sku,
                l.quantity,
                l.unit_price.to_string(),
                l.discount.to_string(),
                l.fees.to_string(),
                text(l.seller_account.as_deref()),
            ],
        )?;
        self.name_seen(l.seller_account.as_deref(), l.marketplace.as_deref())
    }

    fn put_daily(&self, d: &DailyRow) -> Result<(), StoreError> {
        if !self.product_exists(&d.sku)? {
            return Err(invalid(format!("unknown sku '{}'", d.sku)));
        }
        let count = |v: Option<u64>, what| v.map(|v| i64_of(v, what)).transpose();
        self.execute(
            "INSERT INTO product_daily (tenant_id, sku, date, sessions, bsr, reviews, rating)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, sku, date) DO UPDATE SET sessions = excluded.sessions,
                 bsr = excluded.bsr, reviews = excluded.reviews, rating = excluded.rating",
            params![
                self.tenant.0,
                d.sku,
                d.date.to_string(),
                count(d.sessions, "sessions")?,
                count(d.bsr, "bsr")?,
                count(d.reviews, "reviews")?,
                d.rating.map(|r| r.to_string()),
            ],
        )?;
        Ok(())
    }

    fn put_tier_scheme(&self, scheme: &TierScheme) -> Result<(), StoreError> {
        if scheme.tiers.is_empty() {
            return Err(invalid("a tier scheme needs at least one tier"));
        }
        self.execute(
            "INSERT INTO tier_schemes (tenant_id, marketplace, metric, tiers) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, marketplace) DO UPDATE SET metric = excluded.metric,
                 tiers = excluded.tiers",
            params![
                self.tenant.0,
                rows_json::marketplace_key(scheme.marketplace.as_deref()),
                rows_json::metric_name(scheme.metric),
                rows_json::tiers_json(&scheme.tiers),
            ],
        )?;
        self.name_seen(None, scheme.marketplace.as_deref())
    }

    /// Applies an event to the memberships and tiers, and logs it.
    fn event(&self, event: &Event) -> Result<(), StoreError> {
        let t = self.tenant.0;
        let change_seq = match event.cause() {
            Cause::Change(seq) => Some(i64_of(seq, "sequence number")?),
            Cause::Time => None,
        };
        match event {
            Event::Member {
                at,
                kind,
                segment,
                entity,
                enter,
                ..
            } => {
                let kind = kind.as_str();
                if *enter {
                    // A repeated enter keeps the first instant.
                    self.execute(
                        "INSERT INTO memberships (tenant_id, segment, entity, kind, since)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (tenant_id, segment, entity) DO UPDATE SET kind = excluded.kind",
                        params![t, &**segment, &**entity, kind, at],
                    )?;
                } else {
                    self.execute(
                        "DELETE FROM memberships WHERE tenant_id = ?1 AND segment = ?2 AND entity = ?3",
                        params![t, &**segment, &**entity],
                    )?;
                }
                self.execute(
                    "INSERT INTO events (tenant_id, at, change_seq, type, kind, segment, entity)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        t,
                        at,
                        change_seq,
                        if *enter { ENTER } else { EXIT },
                        kind,
                        &**segment,
                        &**entity
                    ],
                )?;
            }
            Event::Tier {
                at,
                customer,
                from,
                to,
                ..
            } => {
                match to {
                    Some(tier) => self.execute(
                        "INSERT INTO customer_tiers (tenant_id, customer_id, tier, since)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (tenant_id, customer_id) DO UPDATE SET tier = excluded.tier,
                             since = excluded.since",
                        params![t, &**customer, &**tier, at],
                    )?,
                    None => self.execute(
                        "DELETE FROM customer_tiers WHERE tenant_id = ?1 AND customer_id = ?2",
                        params![t, &**customer],
                    )?,
                };
                self.execute(
                    "INSERT INTO events (tenant_id, at, change_seq, type, entity, tier_from, tier_to)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        t,
                        at,
                        change_seq,
                        TIER,
                        &**customer,
                        from.as_deref(),
                        to.as_deref()
                    ],
                )?;
            }
        }
        Ok(())
    }
}
