//! The commands on a durable store: `import`, `ingest`, and where `count`
//! and `members` read their data from.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use strata_data::{Dataset, Nanos};
use strata_live::{Change, feed};
use strata_store::live::{Live, LiveStoreError};
use strata_store::{Counts, Location, Phase, Progress, Store};

use crate::{Refused, load};

/// Where a store is. Without either option: `./strata-data`.
#[derive(Args, Clone, Debug, Default)]
pub struct StoreArgs {
    /// The data directory of the embedded store (SQLite), created if
    /// missing.
    #[arg(long, value_name = "D", conflicts_with = "database_url")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database to use instead: `postgres://user@host/db`.
    #[arg(long, value_name = "U")]
    pub database_url: Option<String>,
    /// The store (tenant) inside it.
    #[arg(long = "store", value_name = "NAME", default_value = "default")]
    pub tenant: String,
}

impl StoreArgs {
    /// Whether the user named a store (rather than a dataset directory).
    pub fn given(&self) -> bool {
        self.data_dir.is_some() || self.database_url.is_some()
    }

    pub fn location(&self) -> Location {
        match (&self.database_url, &self.data_dir) {
            (Some(url), _) => Location::Url(url.clone()),
            (None, Some(dir)) => Location::DataDir(dir.clone()),
            (None, None) => Location::DataDir(PathBuf::from("strata-data")),
        }
    }

    pub fn open(&self) -> Result<Box<dyn Store>> {
        let location = self.location();
        strata_store::open(&location).map_err(|e| refuse_store(e, &location))
    }
}

fn refuse_store(err: strata_store::StoreError, location: &Location) -> anyhow::Error {
    use strata_store::StoreError;
    match err {
        StoreError::Invalid(_) | StoreError::TooNew { .. } => {
            Refused(format!("{location}: {err}")).into()
        }
        other => anyhow::Error::new(other).context(format!("store {location}")),
    }
}

/// The dataset a store holds for a tenant (refused if the tenant is
/// unknown: reading must not create it).
pub fn load_stored(args: &StoreArgs) -> Result<Dataset> {
    let mut store = args.open()?;
    let tenants = store.tenants()?;
    let Some(tenant) = tenants.iter().find(|t| t.name == args.tenant) else {
        return Err(Refused(format!(
            "{}: no store named '{}' (run `strata import` first)",
            args.location(),
            args.tenant
        ))
        .into());
    };
    Ok(store.load(tenant.id)?)
}

/// Progress on standard error: a bar on a terminal, a line every few
/// seconds otherwise (a log keeps a trace without drowning).
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    phase: Option<Phase>,
    started: Instant,
    phase_started: Instant,
    last_line: Instant,
    /// Between plain progress lines: 2 s, or `STRATA_PROGRESS_INTERVAL_MS`.
    interval: Duration,
}

impl Reporter {
    fn new() -> Reporter {
        let now = Instant::now();
        Reporter {
            bar: None,
            phase: None,
            started: now,
            phase_started: now,
            last_line: now,
            interval: std::env::var("STRATA_PROGRESS_INTERVAL_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(Duration::from_secs(2), Duration::from_millis),
        }
    }

    fn phase_name(phase: Phase) -> &'static str {
        match phase {
            Phase::Staging => "writing",
            Phase::Merging => "merging",
        }
    }

    fn update(&mut self, p: Progress) {
        if self.phase != Some(p.phase) {
            if let Some(bar) = self.bar.take() {
                bar.finish();
            }
            self.phase = Some(p.phase);
            self.phase_started = Instant::now();
            if io::stderr().is_terminal() {
                let bar = indicatif::ProgressBar::new(p.total);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>8} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, ETA {eta})",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(Self::phase_name(p.phase));
                self.bar = Some(bar);
            } else {
                eprintln!("import: {} {} rows", Self::phase_name(p.phase), p.total);
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(p.done),
            None => {
                if self.last_line.elapsed() >= self.interval || p.done == p.total {
                    self.last_line = Instant::now();
                    let secs = self.phase_started.elapsed().as_secs_f64().max(1e-3);
                    let rate = p.done as f64 / secs;
                    let eta = if rate > 0.0 {
                        format!("{:.0}s", (p.total - p.done) as f64 / rate)
                    } else {
                        "?".to_owned()
                    };
                    eprintln!(
                        "import: {} {}/{} rows ({:.0} rows/s, ETA {eta})",
                        Self::phase_name(p.phase),
                        p.done,
                        p.total,
                        rate
                    );
                }
            }
        }
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
        eprintln!("import: done in {:.1?}", self.started.elapsed());
    }
}

/// `strata import DIR`: validate the whole dataset first, then write it.
pub fn import(dir: &Path, args: &StoreArgs) -> Result<()> {
    let started = Instant::now();
    eprintln!("import: validating {}", dir.display());
    let data = load(dir)?;
    let rows = data.products.len() + data.customers.len() + data.lines.len() + data.daily.len();
    eprintln!(
        "import: valid in {:.1?}: {}",
        started.elapsed(),
        data.summary()
    );
    // Saved segments must check before anything is written.
    strata_engine::Engine::new(data.clone(), jiff::Timestamp::now())
        .map_err(crate::refuse_engine)?;
    let mut store = args.open()?;
    let tenant = store.tenant(&args.tenant)?;
    let mut reporter = Reporter::new();
    let report = store.import(tenant.id, &data, &mut |p| reporter.update(p))?;
    reporter.finish();
    let mut out = io::stdout().lock();
    let line = |out: &mut dyn Write, what: &str, c: Counts| {
        writeln!(
            out,
            "{what}: {} inserted, {} updated, {} unchanged",
            c.inserted, c.updated, c.unchanged
        )
    };
    line(&mut out, "products", report.products)?;
    line(&mut out, "customers", report.customers)?;
    line(&mut out, "orders", report.orders)?;
    line(&mut out, "order lines", report.lines)?;
    line(&mut out, "daily rows", report.daily)?;
    line(&mut out, "segments", report.segments)?;
    line(&mut out, "tier schemes", report.tier_schemes)?;
    eprintln!(
        "import: {rows} rows in {:.1?} into {} ('{}')",
        started.elapsed(),
        args.location(),
        args.tenant
    );
    Ok(())
}

/// What an ingest feeds, in order.
enum Item {
    Product(usize),
    Customer(usize),
    Daily(usize),
    Order(usize),
}

/// `strata ingest DIR`: the dataset's rows as live changes, each committed
/// before it is acknowledged on standard output: tier schemes and segments
/// first, products and customers, then daily rows and orders in time
/// order with the clock following them.
pub fn ingest(dir: &Path, args: &StoreArgs, until: Option<&str>, events: bool) -> Result<()> {
    let data = load(dir)?;
    let until = until
        .map(|t| crate::parse_instant(&data, "--until", t).map(crate::nanos))
        .transpose()?;
    let store = args.open()?;

    // What the store already holds, so that a second run resumes.
    let mut held = Held::default();
    let first = data.orders.ordered_at.iter().copied().min();
    let start = first.unwrap_or_else(|| crate::nanos(jiff::Timestamp::now()));
    let (mut live, restored) = Live::open_inspect(store, &args.tenant, start, |stored| {
        held = Held::of(stored);
        // Rows imported before any engine ran: start after the newest of
        // them, not in their past.
        stored.orders.ordered_at.iter().copied().max()
    })
    .map_err(refuse_live)?;
    eprintln!(
        "ingest: restored in {:.1?} (load {:.1?}), clock {}{}",
        restored.load + restored.evaluate,
        restored.load,
        crate::instant_text(restored.clock),
        restored
            .mismatch
            .as_deref()
            .map(|m| format!("; WARNING: {m}"))
            .unwrap_or_default()
    );

    let mut out = io::stdout().lock();
    let mut acked = 0u64;
    let mut items: Vec<(Nanos, Item)> = Vec::new();
    for p in 0..data.products.len() {
        let row = data.product_row(p);
        if held.products.get(&row.sku) != Some(&row) {
            items.push((Nanos::MIN, Item::Product(p)));
        }
    }
    for c in 0..data.customers.len() {
        let row = data.customer_row(c);
        if held.customers.get(&row.customer_id) != Some(&row) {
            items.push((Nanos::MIN, Item::Customer(c)));
        }
    }
    let tz = data.settings.timezone.clone();
    for r in 0..data.daily.len() {
        let row = data.daily_row(r);
        if held.daily.get(&(row.sku.clone(), row.date)) != Some(&row) {
            let at = strata_engine::clock::day_start(row.date, &tz);
            items.push((at, Item::Daily(r)));
        }
    }
    let by_order = data.lines_by_order();
    for o in 0..data.orders.len() {
        let id = data.orders.order_id.get(o);
        if held.orders.get(id).copied() != Some(by_order.of(o).len()) {
            items.push((data.orders.ordered_at[o], Item::Order(o)));
        }
    }
    // Entities first, then rows in time order (daily rows before orders
    // of the same instant), file order within.
    items.sort_by_key(|(at, item)| (*at, matches!(item, Item::Order(_))));

    let mut defined = false;
    for (at, item) in items {
        if at != Nanos::MIN && !defined {
            put_definitions(&mut live, &data, &held, &mut out, &mut acked)?;
            defined = true;
        }
        if at != Nanos::MIN && until.is_some_and(|u| at > u) {
            break;
        }
        if at > live.engine().now() {
            let happened = live.advance_to(at).map_err(refuse_live)?;
            if events {
                print_events(&mut out, &happened)?;
            }
        }
        let (what, id, change) = match item {
            Item::Product(p) => {
                let row = data.product_row(p);
                ("product", row.sku.clone(), Change::UpsertProduct(row))
            }
            Item::Customer(c) => {
                let row = data.customer_row(c);
                (
                    "customer",
                    row.customer_id.clone(),
                    Change::UpsertCustomer(row),
                )
            }
            Item::Daily(r) => {
                let row = data.daily_row(r);
                let id = format!("{}@{}", row.sku, row.date);
                ("daily", id, Change::PutDaily(row))
            }
            Item::Order(o) => {
                let id = data.orders.order_id.get(o).to_owned();
                let change = match held.orders.get(&id) {
                    // Lines past those held: the order grew since.
                    Some(&n) => match feed::order_change(&data, o, by_order.of(o)) {
                        Change::AddLines(lines) if n < lines.len() => {
                            Change::AddLines(lines[n..].to_vec())
                        }
                        _ => {
                            return Err(Refused(format!(
                                "ingest: order '{id}' holds {n} lines in the store, more than {} here",
                                by_order.of(o).len()
                            ))
                            .into());
                        }
                    },
                    None => feed::order_change(&data, o, by_order.of(o)),
                };
                ("order", id, change)
            }
        };
        let happened = live.apply(change).map_err(refuse_live)?;
        acked += 1;
        writeln!(out, "ack\t{}\t{what}\t{id}", live.engine().last_change())?;
        if events {
            print_events(&mut out, &happened)?;
        }
        out.flush()?;
    }
    if !defined {
        put_definitions(&mut live, &data, &held, &mut out, &mut acked)?;
    }
    if let Some(until) = until {
        let happened = live.advance_to(until).map_err(refuse_live)?;
        if events {
            print_events(&mut out, &happened)?;
        }
    }
    out.flush()?;
    eprintln!(
        "ingest: {acked} changes committed; clock {}",
        crate::instant_text(live.engine().now())
    );
    Ok(())
}

/// Tier schemes, then segments in an order that puts each after those it
/// refers to (retrying those that wait for another); after the products and
/// customers, whose custom attributes rules may name.
fn put_definitions(
    live: &mut Live,
    data: &Dataset,
    held: &Held,
    out: &mut impl Write,
    acked: &mut u64,
) -> Result<()> {
    for scheme in &data.tiers {
        if !held.tiers.contains(scheme) {
            live.apply(Change::PutTierScheme(scheme.clone()))
                .map_err(refuse_live)?;
            *acked += 1;
            let name = scheme.marketplace.as_deref().unwrap_or("*");
            writeln!(out, "ack\t{}\ttiers\t{name}", live.engine().last_change())?;
        }
    }
    let mut pending: Vec<&strata_data::SavedSegment> = data
        .segments
        .iter()
        .filter(|s| held.segments.get(&s.name) != Some(*s))
        .collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut first_error = None;
        for seg in pending.iter().copied() {
            let change = Change::PutSegment {
                name: seg.name.clone(),
                kind: match seg.kind {
                    strata_data::SegmentKind::Customer => strata_lang::catalog::Kind::Customer,
                    strata_data::SegmentKind::Product => strata_lang::catalog::Kind::Product,
                },
                rule: seg.rule.clone(),
            };
            match live.apply(change) {
                Ok(_) => {
                    *acked += 1;
                    writeln!(
                        out,
                        "ack\t{}\tsegment\t{}",
                        live.engine().last_change(),
                        seg.name
                    )?;
                }
                Err(LiveStoreError::Refused(e)) => {
                    first_error.get_or_insert(e);
                    waiting.push(seg);
                }
                Err(other) => return Err(refuse_live(other)),
            }
        }
        if waiting.len() == pending.len() {
            let e = first_error.expect("a segment was refused");
            return Err(refuse_live(LiveStoreError::Refused(e)));
        }
        pending = waiting;
    }
    out.flush()?;
    Ok(())
}

fn print_events(out: &mut impl Write, events: &[strata_live::Event]) -> Result<()> {
    for event in events {
        match event {
            strata_live::Event::Member {
                at,
                segment,
                entity,
                enter,
                ..
            } => {
                let what = if *enter { "enter" } else { "exit" };
                writeln!(
                    out,
                    "{}\t{what}\t{segment}\t{entity}",
                    crate::instant_text(*at)
                )?;
            }
            strata_live::Event::Tier {
                at,
                customer,
                from,
                to,
                ..
            } => writeln!(
                out,
                "{}\ttier\t{customer}\t{}\t{}",
                crate::instant_text(*at),
                from.as_deref().unwrap_or("-"),
                to.as_deref().unwrap_or("-")
            )?,
        }
    }
    Ok(())
}

fn refuse_live(err: LiveStoreError) -> anyhow::Error {
    match err {
        LiveStoreError::Refused(strata_live::LiveError::Rule(e)) => Refused(e.to_string()).into(),
        LiveStoreError::Refused(strata_live::LiveError::Invalid(m)) => Refused(m).into(),
        other => anyhow::Error::new(other),
    }
}

/// The rows a store holds, by identity.
#[derive(Default)]
struct Held {
    products: HashMap<String, strata_data::ProductRow>,
    customers: HashMap<String, strata_data::CustomerRow>,
    daily: HashMap<(String, jiff::civil::Date), strata_data::DailyRow>,
    /// Order id → lines held.
    orders: HashMap<String, usize>,
    segments: HashMap<String, strata_data::SavedSegment>,
    tiers: Vec<strata_data::TierScheme>,
}

impl Held {
    fn of(data: &Dataset) -> Held {
        let mut held = Held::default();
        for p in 0..data.products.len() {
            let row = data.product_row(p);
            held.products.insert(row.sku.clone(), row);
        }
        for c in 0..data.customers.len() {
            let row = data.customer_row(c);
            held.customers.insert(row.customer_id.clone(), row);
        }
        for r in 0..data.daily.len() {
            let row = data.daily_row(r);
            held.daily.insert((row.sku.clone(), row.date), row);
        }
        held.segments = data
            .segments
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        held.tiers = data.tiers.clone();
        for &o in &data.lines.order {
            *held
                .orders
                .entry(data.orders.order_id.get(o as usize).to_owned())
                .or_insert(0) += 1;
        }
        held
    }
}
