//! Live commits: a change, its events, counts and clock in one transaction;
//! and the wholesale replacement of memberships after a restore.

use std::collections::BTreeMap;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Transaction};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use strata_data::{CustomerRow, DailyRow, LineRow, Nanos, ProductRow, TierScheme};
use strata_lang::catalog::Kind;
use strata_live::{Cause, Change, Event, ProductValue};

use super::accounts::known_user;
use super::{i64_of, tenant_in};
use crate::rows_json::{self, ENTER, EXIT, RuleForms, TIER, text};
use crate::{Commit, Memberships, SegmentInfo, StoreError, TenantId, in_batch};

/// A decimal as text, for a `$n::text::numeric` parameter: the client
/// library's binary NUMERIC drops the scale of a zero (0.00 would be 0).
fn decimal(value: Option<Decimal>) -> Option<String> {
    value.map(|d| d.to_string())
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid(message.into())
}

/// Writes commits in order in one transaction: all of them or none.
pub(super) fn commit_batch(
    conn: &mut Client,
    tenant: TenantId,
    commits: &[Commit<'_>],
) -> Result<(), StoreError> {
    let mut tx = conn.transaction()?;
    // The tenant row stays locked to the end: commits of one tenant follow
    // one another, so event ids increase in commit order.
    tenant_in(&mut tx, tenant, true)?;
    let mut w = Writer {
        tx: &mut tx,
        tenant,
    };
    for (i, commit) in commits.iter().enumerate() {
        w.commit(commit)
            .map_err(|e| in_batch(e, i, commits.len()))?;
    }
    if let Some(last) = commits.last() {
        // `memberships_version` stays: an import committed while this engine
        // ran is not in its memberships, and the next restore must see that.
        tx.execute(
            "UPDATE tenants SET clock = $2, last_change = $3 WHERE id = $1",
            &[
                &tenant.0,
                &last.clock,
                &i64_of(last.seq, "sequence number")?,
            ],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn reset_memberships(
    conn: &mut Client,
    tenant: TenantId,
    memberships: &Memberships,
    clock: Nanos,
    data_version: u64,
) -> Result<(), StoreError> {
    let mut tx = conn.transaction()?;
    tenant_in(&mut tx, tenant, true)?;
    // Members that stay keep the instant they entered; new ones have none
    // known (they entered somewhere in a bulk change). The rows are
    // rewritten whole with `COPY`: set operations against a million-row
    // parameter array leave the planner guessing.
    let mut since: FxHashMap<(String, String), Option<Nanos>> = FxHashMap::default();
    for row in tx.query(
        "SELECT segment, entity, since FROM memberships WHERE tenant_id = $1",
        &[&tenant.0],
    )? {
        since.insert((row.get(0), row.get(1)), row.get(2));
    }
    tx.execute("DELETE FROM memberships WHERE tenant_id = $1", &[&tenant.0])?;
    let mut w = BinaryCopyInWriter::new(
        tx.copy_in(
            "COPY memberships (tenant_id, segment, entity, kind, since) FROM STDIN (FORMAT binary)",
        )?,
        &[Type::INT8, Type::TEXT, Type::TEXT, Type::TEXT, Type::INT8],
    );
    for (segment, kind, entity) in &memberships.members {
        let at = since.remove(&(segment.clone(), entity.clone())).flatten();
        w.write(&[
            &tenant.0,
            segment,
            entity,
            &rows_json::segment_kind_name(*kind),
            &at,
        ])?;
    }
    w.finish()?;
    let mut tier_since: FxHashMap<(String, String), Option<Nanos>> = FxHashMap::default();
    for row in tx.query(
        "SELECT customer_id, tier, since FROM customer_tiers WHERE tenant_id = $1",
        &[&tenant.0],
    )? {
        tier_since.insert((row.get(0), row.get(1)), row.get(2));
    }
    tx.execute(
        "DELETE FROM customer_tiers WHERE tenant_id = $1",
        &[&tenant.0],
    )?;
    let mut w = BinaryCopyInWriter::new(
        tx.copy_in(
            "COPY customer_tiers (tenant_id, customer_id, tier, since) FROM STDIN (FORMAT binary)",
        )?,
        &[Type::INT8, Type::TEXT, Type::TEXT, Type::INT8],
    );
    for (customer, tier) in &memberships.tiers {
        let at = tier_since
            .remove(&(customer.clone(), tier.clone()))
            .flatten();
        w.write(&[&tenant.0, customer, tier, &at])?;
    }
    w.finish()?;
    tx.execute(
        "UPDATE tenants SET clock = $2, memberships_version = $3 WHERE id = $1",
        &[&tenant.0, &clock, &i64_of(data_version, "data_version")?],
    )?;
    tx.commit()?;
    Ok(())
}

/// What one commit's events leave of a (segment, entity) membership, as if
/// applied one by one: an enter inserts (a repeated enter keeps the first
/// instant), an exit deletes.
struct MemberFold {
    kind: Kind,
    /// An exit came: the row, if any, goes before `since` is written.
    exited: bool,
    /// The instant of the first enter after the last exit.
    since: Option<Nanos>,
}

/// Writes of one commit, all inside its transaction.
struct Writer<'a, 't> {
    tx: &'a mut Transaction<'t>,
    tenant: TenantId,
}

impl Writer<'_, '_> {
    /// One commit's change, events and counts (the tenant's clock is the
    /// caller's: one update for a whole batch).
    fn commit(&mut self, commit: &Commit<'_>) -> Result<(), StoreError> {
        if let Some(change) = commit.change {
            self.apply(change, commit.clock, commit.info, commit.anonymised_orders)?;
        }
        self.events(commit.events)?;
        if !commit.counts.is_empty() {
            let segments: Vec<&str> = commit.counts.iter().map(|(s, _)| s.as_str()).collect();
            let counts = commit
                .counts
                .iter()
                .map(|(_, c)| i64_of(*c, "count"))
                .collect::<Result<Vec<i64>, _>>()?;
            let t = self.tenant.0;
            self.execute(
                "INSERT INTO count_history (tenant_id, segment, day, count)
                 SELECT $1, s, $2, c FROM unnest($3::text[], $4::int8[]) AS x(s, c)
                 ON CONFLICT (tenant_id, segment, day) DO UPDATE SET count = EXCLUDED.count",
                &[&t, &commit.day, &segments, &counts],
            )?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        Ok(self.tx.execute(sql, params)?)
    }

    fn exists(&mut self, sql: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.tx.query_opt(sql, &[&self.tenant.0, &key])?.is_some())
    }

    fn product_exists(&mut self, sku: &str) -> Result<bool, StoreError> {
        self.exists(
            "SELECT 1 FROM products WHERE tenant_id = $1 AND sku = $2",
            sku,
        )
    }

    /// Writes the rows a change touches. The engine checked the change
    /// already; what is checked again here is what the tables could not
    /// take without holding a dataset that no longer loads.
    fn apply(
        &mut self,
        change: &Change,
        clock: Nanos,
        info: Option<&SegmentInfo>,
        anonymised: &[String],
    ) -> Result<(), StoreError> {
        let t = self.tenant.0;
        match change {
            Change::UpsertProduct(p) => self.upsert_product(p)?,
            Change::DeleteProduct(sku) => {
                let named: bool = self
                    .tx
                    .query_opt(
                        "SELECT has_lines FROM products WHERE tenant_id = $1 AND sku = $2",
                        &[&t, sku],
                    )?
                    .is_some_and(|r| r.get(0));
                if named {
                    return Err(invalid(format!(
                        "product '{sku}' cannot be deleted: order lines name it"
                    )));
                }
                let deleted = self.execute(
                    "DELETE FROM products WHERE tenant_id = $1 AND sku = $2",
                    &[&t, sku],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown sku '{sku}'")));
                }
                self.execute(
                    "DELETE FROM product_daily WHERE tenant_id = $1 AND sku = $2",
                    &[&t, sku],
                )?;
            }
            Change::UpsertCustomer(c) => self.upsert_customer(c)?,
            Change::DeleteCustomer(id) => {
                let deleted = self.execute(
                    "DELETE FROM customers WHERE tenant_id = $1 AND customer_id = $2",
                    &[&t, id],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown customer '{id}'")));
                }
                // As in the engine: the orders stay, as an anonymous buyer's.
                if !anonymised.is_empty() {
                    self.execute(
                        "UPDATE orders SET customer_id = NULL
                         WHERE tenant_id = $1 AND order_id = ANY($2) AND customer_id = $3",
                        &[&t, &anonymised, id],
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
                    "UPDATE orders SET status = $3 WHERE tenant_id = $1 AND order_id = $2",
                    &[&t, order_id, status],
                )?;
                if updated == 0 {
                    return Err(invalid(format!("unknown order '{order_id}'")));
                }
            }
            Change::SetProductValue { sku, value } => {
                let updated = match value {
                    ProductValue::Price(v) => self.execute(
                        "UPDATE products SET price = $3::text::numeric
                         WHERE tenant_id = $1 AND sku = $2",
                        &[&t, sku, &decimal(*v)],
                    )?,
                    ProductValue::Cost(v) => self.execute(
                        "UPDATE products SET cost = $3::text::numeric
                         WHERE tenant_id = $1 AND sku = $2",
                        &[&t, sku, &decimal(*v)],
                    )?,
                    ProductValue::Inventory(v) => {
                        let v = v.map(|v| i64_of(v, "inventory")).transpose()?;
                        self.execute(
                            "UPDATE products SET inventory = $3 WHERE tenant_id = $1 AND sku = $2",
                            &[&t, sku, &v],
                        )?
                    }
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
                let kind = rows_json::segment_kind_name(rows_json::segment_kind(*kind));
                let before: Option<String> = self
                    .tx
                    .query_opt(
                        "SELECT kind FROM segments WHERE tenant_id = $1 AND name = $2",
                        &[&t, name],
                    )?
                    .map(|r| r.get(0));
                if before.is_some_and(|before| before != kind) {
                    // The engine starts a segment whose kind changed afresh:
                    // its old members are dropped without exit events, and
                    // its history with them.
                    self.forget_segment(name)?;
                }
                let owner = info.and_then(|i| i.owner);
                if let Some(owner) = owner {
                    known_user(&mut *self.tx, owner)?;
                }
                // The owner is written on insert only: an existing one stays.
                self.execute(
                    "INSERT INTO segments AS s (tenant_id, name, kind, rule_source, rule_text,
                         rule_json, created_at, updated_at, description, owner_id)
                     VALUES ($1, $2, $3, $4, $5, $6::text::json, $7, $7, $8, $9)
                     ON CONFLICT (tenant_id, name) DO UPDATE SET kind = EXCLUDED.kind,
                         rule_source = EXCLUDED.rule_source, rule_text = EXCLUDED.rule_text,
                         rule_json = EXCLUDED.rule_json, updated_at = EXCLUDED.updated_at,
                         description = CASE WHEN $10 THEN EXCLUDED.description
                             ELSE s.description END",
                    &[
                        &t,
                        name,
                        &kind,
                        &forms.source,
                        &forms.text,
                        &forms.json,
                        &clock,
                        &info.and_then(|i| i.description.as_deref()),
                        &owner.map(|u| u.0),
                        &info.is_some(),
                    ],
                )?;
            }
            Change::DeleteSegment(name) => {
                // First: the shares' key refuses to outlive the segment.
                self.execute(
                    "DELETE FROM segment_shares WHERE tenant_id = $1 AND segment = $2",
                    &[&t, name],
                )?;
                let deleted = self.execute(
                    "DELETE FROM segments WHERE tenant_id = $1 AND name = $2",
                    &[&t, name],
                )?;
                if deleted == 0 {
                    return Err(invalid(format!("unknown segment '{name}'")));
                }
                // The engine drops a deleted segment's members without
                // events: nobody left it, it stopped existing.
                self.forget_segment(name)?;
            }
            Change::PutTierScheme(scheme) => self.put_tier_scheme(scheme)?,
            Change::DeleteTierScheme(marketplace) => {
                let key = rows_json::marketplace_key(marketplace.as_deref());
                let deleted = self.execute(
                    "DELETE FROM tier_schemes WHERE tenant_id = $1 AND marketplace = $2",
                    &[&t, &key],
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

    fn forget_segment(&mut self, name: &str) -> Result<(), StoreError> {
        let t = self.tenant.0;
        self.execute(
            "DELETE FROM memberships WHERE tenant_id = $1 AND segment = $2",
            &[&t, &name],
        )?;
        self.execute(
            "DELETE FROM count_history WHERE tenant_id = $1 AND segment = $2",
            &[&t, &name],
        )?;
        Ok(())
    }

    fn name_seen(
        &mut self,
        seller_account: Option<&str>,
        marketplace: Option<&str>,
    ) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if let Some(name) = text(seller_account) {
            self.execute(
                "INSERT INTO seller_accounts (tenant_id, name) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&t, &name],
            )?;
        }
        if let Some(name) = text(marketplace) {
            self.execute(
                "INSERT INTO marketplaces (tenant_id, name) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&t, &name],
            )?;
        }
        Ok(())
    }

    fn upsert_product(&mut self, p: &ProductRow) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if p.sku.is_empty() {
            return Err(invalid("a product needs a sku"));
        }
        let inventory = p.inventory.map(|v| i64_of(v, "inventory")).transpose()?;
        self.execute(
            "INSERT INTO products (tenant_id, sku, parent_sku, asin, title, brand, category,
                 tags, seller_account, marketplace, price, cost, inventory, created_at, custom)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11::text::numeric,
                 $12::text::numeric, $13, $14, $15::text::jsonb)
             ON CONFLICT (tenant_id, sku) DO UPDATE SET parent_sku = EXCLUDED.parent_sku,
                 asin = EXCLUDED.asin, title = EXCLUDED.title, brand = EXCLUDED.brand,
                 category = EXCLUDED.category, tags = EXCLUDED.tags,
                 seller_account = EXCLUDED.seller_account, marketplace = EXCLUDED.marketplace,
                 price = EXCLUDED.price, cost = EXCLUDED.cost, inventory = EXCLUDED.inventory,
                 created_at = EXCLUDED.created_at, custom = EXCLUDED.custom",
            &[
                &t,
                &p.sku,
                &text(p.parent_sku.as_deref()),
                &text(p.asin.as_deref()),
                &text(p.title.as_deref()),
                &text(p.brand.as_deref()),
                &text(p.category.as_deref()),
                &rows_json::tags_json(&p.tags),
                &text(p.seller_account.as_deref()),
                &text(p.marketplace.as_deref()),
                &decimal(p.price),
                &decimal(p.cost),
                &inventory,
                &p.created_at,
                &rows_json::custom_json(&p.custom),
            ],
        )?;
        self.name_seen(p.seller_account.as_deref(), p.marketplace.as_deref())
    }

    fn upsert_customer(&mut self, c: &CustomerRow) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if c.customer_id.is_empty() {
            return Err(invalid("a customer needs a customer_id"));
        }
        self.execute(
            "INSERT INTO customers (tenant_id, customer_id, email, first_name, last_name,
                 country, city, marketplace, tags, accepts_marketing, created_at, custom)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $10, $11,
                 $12::text::jsonb)
             ON CONFLICT (tenant_id, customer_id) DO UPDATE SET email = EXCLUDED.email,
                 first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,
                 country = EXCLUDED.country, city = EXCLUDED.city,
                 marketplace = EXCLUDED.marketplace, tags = EXCLUDED.tags,
                 accepts_marketing = EXCLUDED.accepts_marketing,
                 created_at = EXCLUDED.created_at, custom = EXCLUDED.custom",
            &[
                &t,
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
            ],
        )?;
        self.name_seen(None, c.marketplace.as_deref())
    }

    /// One line: its order's columns upserted, the line numbered after the
    /// order's last line.
    fn add_line(&mut self, l: &LineRow) -> Result<(), StoreError> {
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
            "UPDATE products SET has_lines = true
             WHERE tenant_id = $1 AND sku = $2 AND NOT has_lines",
            &[&t, &l.sku],
        )?;
        let customer = text(l.customer_id.as_deref());
        if let Some(id) = customer
            && !self.exists(
                "SELECT 1 FROM customers WHERE tenant_id = $1 AND customer_id = $2",
                id,
            )?
        {
            return Err(invalid(format!("unknown customer '{id}'")));
        }
        // Refused here as at load, where the dataset builder checks the same.
        l.checked_revenue().map_err(invalid)?;
        self.execute(
            "INSERT INTO orders (tenant_id, order_id, ordered_at, customer_id, status, marketplace)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant_id, order_id) DO UPDATE SET ordered_at = EXCLUDED.ordered_at,
                 customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
                 marketplace = EXCLUDED.marketplace",
            &[
                &t,
                &l.order_id,
                &l.ordered_at,
                &customer,
                &text(l.status.as_deref()).unwrap_or("shipped"),
                &text(l.marketplace.as_deref()),
            ],
        )?;
        self.execute(
            "INSERT INTO order_lines (tenant_id, order_id, line_no, sku, quantity, unit_price,
                 discount, fees, seller_account)
             SELECT $1, $2, COALESCE(MAX(line_no), 0) + 1, $3, $4, $5::text::numeric,
                 $6::text::numeric, $7::text::numeric, $8
             FROM order_lines WHERE tenant_id = $1 AND order_id = $2",
            &[
                &t,
                &l.order_id,
                &l.sku,
                &i64::from(l.quantity),
                &l.unit_price.to_string(),
                &l.discount.to_string(),
                &l.fees.to_string(),
                &text(l.seller_account.as_deref()),
            ],
        )?;
        self.name_seen(l.seller_account.as_deref(), l.marketplace.as_deref())
    }

    fn put_daily(&mut self, d: &DailyRow) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if !self.product_exists(&d.sku)? {
            return Err(invalid(format!("unknown sku '{}'", d.sku)));
        }
        let count = |v: Option<u64>, what| v.map(|v| i64_of(v, what)).transpose();
        self.execute(
            "INSERT INTO product_daily (tenant_id, sku, date, sessions, bsr, reviews, rating)
             VALUES ($1, $2, $3, $4, $5, $6, $7::text::numeric)
             ON CONFLICT (tenant_id, sku, date) DO UPDATE SET sessions = EXCLUDED.sessions,
                 bsr = EXCLUDED.bsr, reviews = EXCLUDED.reviews, rating = EXCLUDED.rating",
            &[
                &t,
                &d.sku,
                &d.date,
                &count(d.sessions, "sessions")?,
                &count(d.bsr, "bsr")?,
                &count(d.reviews, "reviews")?,
                &decimal(d.rating),
            ],
        )?;
        Ok(())
    }

    fn put_tier_scheme(&mut self, scheme: &TierScheme) -> Result<(), StoreError> {
        let t = self.tenant.0;
        if scheme.tiers.is_empty() {
            return Err(invalid("a tier scheme needs at least one tier"));
        }
        self.execute(
            "INSERT INTO tier_schemes (tenant_id, marketplace, metric, tiers)
             VALUES ($1, $2, $3, $4::text::jsonb)
             ON CONFLICT (tenant_id, marketplace) DO UPDATE SET metric = EXCLUDED.metric,
                 tiers = EXCLUDED.tiers",
            &[
                &t,
                &rows_json::marketplace_key(scheme.marketplace.as_deref()),
                &rows_json::metric_name(scheme.metric),
                &rows_json::tiers_json(&scheme.tiers),
            ],
        )?;
        self.name_seen(None, scheme.marketplace.as_deref())
    }

    /// Logs the events (one `COPY`, ids in event order) and applies them to
    /// the memberships and tiers: folded per entity first, then written a
    /// segment at a time, so that a change that moves a million members
    /// costs a few statements.
    fn events(&mut self, events: &[Event]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let t = self.tenant.0;
        let mut log = BinaryCopyInWriter::new(
            self.tx.copy_in(
                "COPY events (tenant_id, at, change_seq, type, kind, segment, entity, tier_from,
                     tier_to)
                 FROM STDIN (FORMAT binary)",
            )?,
            &[
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
            ],
        );
        // Per segment (sorted: statements in a stable order), per entity.
        let mut members: BTreeMap<&str, FxHashMap<&str, MemberFold>> = BTreeMap::new();
        // Per customer: the tier and its instant after the last event.
        let mut tiers: FxHashMap<&str, Option<(&str, Nanos)>> = FxHashMap::default();
        let none: Option<&str> = None;
        for event in events {
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
                    log.write(&[
                        &t,
                        at,
                        &change_seq,
                        &if *enter { ENTER } else { EXIT },
                        &kind.as_str(),
                        &&**segment,
                        &&**entity,
                        &none,
                        &none,
                    ])?;
                    let fold =
                        members
                            .entry(segment)
                            .or_default()
                            .entry(entity)
                            .or_insert(MemberFold {
                                kind: *kind,
                                exited: false,
                                since: None,
                            });
                    if *enter {
                        fold.kind = *kind;
                        fold.since = fold.since.or(Some(*at));
                    } else {
                        fold.exited = true;
                        fold.since = None;
                    }
                }
                Event::Tier {
                    at,
                    customer,
                    from,
                    to,
                    ..
                } => {
                    log.write(&[
                        &t,
                        at,
                        &change_seq,
                        &TIER,
                        &none,
                        &none,
                        &&**customer,
                        &from.as_deref(),
                        &to.as_deref(),
                    ])?;
                    tiers.insert(customer, to.as_deref().map(|tier| (tier, *at)));
                }
            }
        }
        log.finish()?;

        for (segment, entities) in &members {
            let gone: Vec<&str> = entities
                .iter()
                .filter(|(_, f)| f.exited)
                .map(|(e, _)| *e)
                .collect();
            if !gone.is_empty() {
                self.execute(
                    "DELETE FROM memberships WHERE tenant_id = $1 AND segment = $2
                     AND entity = ANY($3::text[])",
                    &[&t, segment, &gone],
                )?;
            }
            let (mut entity, mut kind, mut since) = (Vec::new(), Vec::new(), Vec::new());
            for (e, f) in entities {
                if let Some(at) = f.since {
                    entity.push(*e);
                    kind.push(f.kind.as_str());
                    since.push(at);
                }
            }
            if !entity.is_empty() {
                // A member entering again keeps its first instant.
                self.execute(
                    "INSERT INTO memberships (tenant_id, segment, entity, kind, since)
                     SELECT $1, $2, e, k, s FROM unnest($3::text[], $4::text[], $5::int8[])
                         AS x(e, k, s)
                     ON CONFLICT (tenant_id, segment, entity) DO UPDATE SET kind = EXCLUDED.kind",
                    &[&t, segment, &entity, &kind, &since],
                )?;
            }
        }
        let untiered: Vec<&str> = tiers
            .iter()
            .filter(|(_, s)| s.is_none())
            .map(|(c, _)| *c)
            .collect();
        if !untiered.is_empty() {
            self.execute(
                "DELETE FROM customer_tiers WHERE tenant_id = $1 AND customer_id = ANY($2::text[])",
                &[&t, &untiered],
            )?;
        }
        let (mut customer, mut tier, mut since) = (Vec::new(), Vec::new(), Vec::new());
        for (c, state) in &tiers {
            if let Some((name, at)) = state {
                customer.push(*c);
                tier.push(*name);
                since.push(*at);
            }
        }
        if !customer.is_empty() {
            self.execute(
                "INSERT INTO customer_tiers (tenant_id, customer_id, tier, since)
                 SELECT $1, c, n, s FROM unnest($2::text[], $3::text[], $4::int8[]) AS x(c, n, s)
                 ON CONFLICT (tenant_id, customer_id) DO UPDATE SET tier = EXCLUDED.tier,
                     since = EXCLUDED.since",
                &[&t, &customer, &tier, &since],
            )?;
        }
        Ok(())
    }
}
