//! Between the columnar `Dataset` and the live store: building an engine
//! from a loaded dataset in bulk, and writing the live state back out as a
//! `Dataset` (which a from-scratch `strata_engine::Engine` can evaluate, so
//! tests compare the two).

use rust_decimal::Decimal;
use smallvec::SmallVec;
use strata_data::{
    CustomColumn, Dataset, NO_CUSTOMER, RuleSource, SavedSegment, SegmentKind, StrColumn,
    TagColumn, TextColumn, TextColumnBuilder,
};
use strata_engine::clock::timestamp_nanos;
use strata_lang::catalog::Kind;

use crate::change::{Change, LiveError};
use crate::engine::LiveEngine;
use crate::ids::id_hash;
use crate::store::{Day, Line, Order, PLine, Store};

impl LiveEngine {
    /// An engine holding a dataset as of `now`, with its `segments.json` and
    /// `tiers.json` installed and every membership and tier evaluated.
    pub fn new(data: &Dataset, now: jiff::Timestamp) -> Result<LiveEngine, LiveError> {
        let now = timestamp_nanos(now);
        let mut engine = LiveEngine::empty(now, data.settings.timezone.clone());
        engine.set_loading();
        engine.load(data);
        engine.install_segments(data)?;
        engine.settle_initial();
        Ok(engine)
    }

    fn load(&mut self, data: &Dataset) {
        let d = data;
        self.store.product_custom = d.products.custom.iter().map(|c| c.name.clone()).collect();
        self.store.customer_custom = d.customers.custom.iter().map(|c| c.name.clone()).collect();
        for p in 0..d.products.len() {
            self.load_change(Change::UpsertProduct(d.product_row(p)))
                .expect("an upsert cannot fail");
        }
        for c in 0..d.customers.len() {
            self.load_change(Change::UpsertCustomer(d.customer_row(c)))
                .expect("an upsert cannot fail");
        }
        self.load_orders(d);
        for r in 0..d.daily.len() {
            let p = d.daily.product[r] as usize;
            self.store.products[p].daily.push(Day {
                date: d.daily.date[r],
                sessions: d.daily.sessions[r],
                bsr: d.daily.bsr[r],
                reviews: d.daily.reviews[r],
                rating: d.daily.rating[r],
            });
        }
        for p in &mut self.store.products {
            p.daily.sort_by_key(|r| r.date);
            p.daily_changed(0);
        }
        self.store.tiers = d.tiers.clone();
    }

    /// Orders and lines in bulk: per-product line lists sorted once rather
    /// than kept sorted line by line.
    fn load_orders(&mut self, d: &Dataset) {
        let now = self.clock.now;
        let s: &mut Store = &mut self.store;
        for o in 0..d.orders.len() {
            let at = d.orders.ordered_at[o];
            let customer = d.orders.customer[o];
            let status = d.orders.status.get(o).unwrap_or("shipped");
            let id: Box<str> = d.orders.order_id.get(o).into();
            s.order_ids.insert(id_hash(&id), o as u32);
            s.orders.push(Order {
                id,
                at,
                customer,
                status: s.words.word(status),
                counting: d.orders.counting[o],
                marketplace: s.words.text(d.orders.marketplace.get(o)),
                lines: SmallVec::new(),
                units: 0,
                revenue: Decimal::ZERO,
                active: at <= now,
            });
            if customer != NO_CUSTOMER {
                s.customers[customer as usize].all_orders.push(o as u32);
            }
        }
        let start = Store::window_start(now);
        for l in 0..d.lines.len() {
            let o = d.lines.order[l];
            let p = d.lines.product[l];
            let line = Line {
                order: o,
                product: p,
                qty: d.lines.quantity[l],
                revenue: d.lines.revenue[l],
                fees: d.lines.fees[l],
                seller_account: s.words.text(d.lines.seller_account.get(l)),
            };
            let order = &mut s.orders[o as usize];
            order.lines.push(l as u32);
            order.units += u64::from(line.qty);
            order.revenue += line.revenue;
            let product = &mut s.products[p as usize];
            product.line_refs += 1;
            if order.contributes() {
                let at = order.at;
                let c = order.customer;
                let cost = product.cost.unwrap_or(Decimal::ZERO);
                product.lines.push(PLine {
                    at,
                    line: l as u32,
                    qty: line.qty,
                    revenue: line.revenue,
                    customer: c,
                    // Summed once the list is sorted.
                    cum_units: 0,
                    cum_revenue: Decimal::ZERO,
                });
                if c != NO_CUSTOMER {
                    let cu = &mut s.customers[c as usize];
                    cu.units += u64::from(line.qty);
                    cu.spent += line.revenue;
                    cu.profit += line.revenue - line.fees - Decimal::from(line.qty) * cost;
                }
                if at >= start {
                    let g = &mut s.groups[product.group as usize];
                    g.window.insert((at, l as u32), line.revenue);
                    g.shift(line.revenue);
                }
            }
            s.push_line(line);
        }
        for p in &mut s.products {
            if !p.lines.is_sorted_by_key(|x| (x.at, x.line)) {
                p.lines.sort_unstable_by_key(|x| (x.at, x.line));
            }
            p.place_windows(now);
            for i in p.w30_start..p.lines.len() {
                let c = p.lines[i].customer;
                if c != NO_CUSTOMER {
                    *p.w30_buyers.entry(c).or_insert(0) += 1;
                }
            }
            p.rebuild_sums(0);
        }
        for o in 0..s.orders.len() {
            if s.orders[o].contributes() {
                let order = &s.orders[o];
                if order.customer != NO_CUSTOMER && !order.lines.is_empty() {
                    s.customers[order.customer as usize]
                        .orders
                        .push((order.at, o as u32));
                }
            }
        }
        for c in &mut s.customers {
            if !c.orders.is_sorted() {
                c.orders.sort_unstable();
            }
        }
        self.schedule_loaded();
    }

    /// Installs `segments.json`, each after the segments it refers to.
    fn install_segments(&mut self, d: &Dataset) -> Result<(), LiveError> {
        let mut pending: Vec<&SavedSegment> = d.segments.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for seg in pending {
                let kind = kind_of(seg.kind);
                // A rule referring to a segment not installed yet (or wrong)
                // is retried, and its error reported if nothing moves.
                let ready = self.check_rule(kind, &seg.rule).is_ok();
                if ready {
                    self.load_change(Change::PutSegment {
                        name: seg.name.clone(),
                        kind,
                        rule: seg.rule.clone(),
                    })?;
                } else {
                    rest.push(seg);
                }
            }
            if rest.len() == before {
                // Blame a segment that waits on no other pending one: the
                // others may be sound and only waiting on it.
                let pending_names: Vec<&str> = rest.iter().map(|s| s.name.as_str()).collect();
                let waits = |seg: &SavedSegment| {
                    let kind = kind_of(seg.kind);
                    let schema = self.schema(kind);
                    strata_engine::parse_saved_rule(seg, &schema).is_ok_and(|(expr, _)| {
                        strata_lang::segment_refs(&expr, kind)
                            .iter()
                            .any(|r| pending_names.contains(&r.name.as_str()))
                    })
                };
                let seg = rest.iter().copied().find(|s| !waits(s)).unwrap_or(rest[0]);
                let kind = kind_of(seg.kind);
                return Err(match self.check_rule(kind, &seg.rule) {
                    Err(mut e) => {
                        e.segment = Some(seg.name.clone());
                        LiveError::Rule(e)
                    }
                    Ok(_) => crate::change::invalid(format!(
                        "segment '{}' could not be installed",
                        seg.name
                    )),
                });
            }
            pending = rest;
        }
        Ok(())
    }

    /// Writes the live state as a dataset: live entities renumbered
    /// densely in slot order, every order and line, daily rows, tiers, and
    /// the segments in their normalised text form.
    pub fn to_dataset(&self) -> Dataset {
        let s = &self.store;
        let mut out = Dataset::default();
        out.settings.timezone = self.clock.cal.tz.clone();
        out.settings.timezone_name = self.clock.cal.tz.iana_name().unwrap_or("UTC").to_owned();
        let pslots: Vec<usize> = (0..s.products.len())
            .filter(|&p| s.products[p].alive)
            .collect();
        let cslots: Vec<usize> = (0..s.customers.len())
            .filter(|&c| s.customers[c].alive)
            .collect();
        let mut pmap = vec![u32::MAX; s.products.len()];
        for (i, &p) in pslots.iter().enumerate() {
            pmap[p] = i as u32;
        }
        let mut cmap = vec![NO_CUSTOMER; s.customers.len()];
        for (i, &c) in cslots.iter().enumerate() {
            cmap[c] = i as u32;
        }
        let ps = &s.products;
        let p = &mut out.products;
        p.sku = texts(&pslots, |r| Some(&ps[r].sku));
        p.parent_sku = texts(&pslots, |r| ps[r].parent_sku.as_deref());
        p.asin = texts(&pslots, |r| ps[r].asin.as_deref());
        p.title = texts(&pslots, |r| ps[r].title.as_deref());
        p.brand = texts(&pslots, |r| ps[r].brand.as_deref());
        p.category = texts(&pslots, |r| ps[r].category.as_deref());
        p.tags = tag_col(&pslots, |r| &ps[r].tags);
        p.seller_account = texts(&pslots, |r| ps[r].seller_account.as_deref());
        p.marketplace = texts(&pslots, |r| ps[r].marketplace.as_deref());
        p.price = pslots.iter().map(|&r| ps[r].price).collect();
        p.cost = pslots.iter().map(|&r| ps[r].cost).collect();
        p.inventory = pslots.iter().map(|&r| ps[r].inventory).collect();
        p.created_at = pslots.iter().map(|&r| ps[r].created_at).collect();
        p.custom = s
            .product_custom
            .iter()
            .enumerate()
            .map(|(i, name)| CustomColumn {
                name: name.clone(),
                values: texts(&pslots, |r| ps[r].custom.get(i).and_then(|v| v.as_deref())),
            })
            .collect();
        let cs = &s.customers;
        let c = &mut out.customers;
        c.customer_id = texts(&cslots, |r| Some(&cs[r].id));
        c.email = texts(&cslots, |r| cs[r].email.as_deref());
        c.first_name = texts(&cslots, |r| cs[r].first_name.as_deref());
        c.last_name = texts(&cslots, |r| cs[r].last_name.as_deref());
        let words = &s.words;
        c.country = texts(&cslots, |r| words.get_text(cs[r].country));
        c.city = texts(&cslots, |r| words.get_text(cs[r].city));
        c.marketplace = texts(&cslots, |r| words.get_text(cs[r].marketplace));
        c.tags = tag_col(&cslots, |r| &cs[r].tags);
        c.accepts_marketing = cslots.iter().map(|&r| cs[r].accepts_marketing).collect();
        c.created_at = cslots.iter().map(|&r| cs[r].created_at).collect();
        c.custom = s
            .customer_custom
            .iter()
            .enumerate()
            .map(|(i, name)| CustomColumn {
                name: name.clone(),
                values: texts(&cslots, |r| cs[r].custom.get(i).and_then(|v| v.as_deref())),
            })
            .collect();
        let os = &s.orders;
        let all: Vec<usize> = (0..os.len()).collect();
        let mut ids = StrColumn::with_capacity(os.len(), 0);
        for o in os {
            ids.push(&o.id);
        }
        out.orders.order_id = ids;
        out.orders.ordered_at = os.iter().map(|o| o.at).collect();
        out.orders.customer = os
            .iter()
            .map(|o| {
                if o.customer == NO_CUSTOMER {
                    NO_CUSTOMER
                } else {
                    cmap[o.customer as usize]
                }
            })
            .collect();
        let words = &s.words;
        out.orders.status = texts(&all, |r| Some(words.get(os[r].status)));
        out.orders.counting = os.iter().map(|o| o.counting).collect();
        out.orders.marketplace = texts(&all, |r| words.get_text(os[r].marketplace));
        let ls = &s.lines;
        out.lines.order = ls.iter().map(|l| l.order).collect();
        out.lines.product = ls.iter().map(|l| pmap[l.product as usize]).collect();
        out.lines.quantity = ls.iter().map(|l| l.qty).collect();
        out.lines.revenue = ls.iter().map(|l| l.revenue).collect();
        // The row store keeps only the revenue; any exact split will do.
        let parts: Vec<(Decimal, Decimal)> = ls
            .iter()
            .map(|l| {
                crate::feed::price_parts(l.qty, l.revenue).unwrap_or((Decimal::ZERO, -l.revenue))
            })
            .collect();
        out.lines.unit_price = parts.iter().map(|p| p.0).collect();
        out.lines.discount = parts.iter().map(|p| p.1).collect();
        out.lines.fees = ls.iter().map(|l| l.fees).collect();
        let lall: Vec<usize> = (0..ls.len()).collect();
        out.lines.seller_account = texts(&lall, |r| words.get_text(ls[r].seller_account));
        for &p in &pslots {
            for r in &ps[p].daily {
                out.daily.product.push(pmap[p]);
                out.daily.date.push(r.date);
                out.daily.sessions.push(r.sessions);
                out.daily.bsr.push(r.bsr);
                out.daily.reviews.push(r.reviews);
                out.daily.rating.push(r.rating);
            }
        }
        out.tiers = s.tiers.clone();
        out.segments = self
            .segments
            .iter()
            .flatten()
            .map(|seg| SavedSegment {
                name: seg.name.to_string(),
                kind: match seg.kind {
                    Kind::Customer => SegmentKind::Customer,
                    Kind::Product => SegmentKind::Product,
                },
                rule: RuleSource::Text(seg.text.clone()),
                // The engine has no use for descriptions; the store keeps them.
                description: None,
            })
            .collect();
        out
    }
}

fn kind_of(kind: SegmentKind) -> Kind {
    match kind {
        SegmentKind::Customer => Kind::Customer,
        SegmentKind::Product => Kind::Product,
    }
}

fn texts<'a>(rows: &[usize], f: impl Fn(usize) -> Option<&'a str>) -> TextColumn {
    let mut b = TextColumnBuilder::default();
    for &r in rows {
        b.push(f(r));
    }
    b.finish()
}

fn tag_col<'a>(rows: &[usize], f: impl Fn(usize) -> &'a [Box<str>]) -> TagColumn {
    let mut dict: Vec<Box<str>> = Vec::new();
    let mut col = TagColumn::default();
    for &r in rows {
        for t in f(r) {
            let code = match dict.iter().position(|x| x == t) {
                Some(i) => i,
                None => {
                    dict.push(t.clone());
                    dict.len() - 1
                }
            };
            col.codes.push(code as u32);
        }
        col.offsets.push(col.codes.len() as u32);
    }
    col.dict = dict;
    col
}
