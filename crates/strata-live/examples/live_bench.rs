//! The live engine under a replay of real order traffic (issue #3).
//!
//! ```text
//! cargo run --release -p strata-live --example live_bench -- DATA_DIR bench/rules-live.txt \
//!     [--days 7] [--hours 3] [--batch N] [--json out.json]
//! ```
//!
//! Loads a dataset, cuts it at `T0 = end - days` (end = the last
//! `ordered_at`): orders dated after T0 and daily rows dated after T0's day
//! are left out. Builds a `LiveEngine` at T0 over the cut data, installs the
//! segments of the rules file (`customer<TAB>rule` or `product<TAB>rule` per
//! line, named `r0`, `r1`, … in file order), then replays the orders left
//! out in time order: `advance_to(ordered_at)` and one `AddLines` change per
//! order (with `--batch N`, one per N consecutive orders, after advancing to
//! the last one's instant). Then advances the clock by one day, twice.
//!
//! Prints the timings, latencies, event counts and memory, and each
//! segment's count at T0, at the end and after each clock advance (for
//! `bench/duckdb_live.py` to compare; `--json` writes them for it).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use strata_data::{Dataset, Nanos, RuleSource};
use strata_engine::clock::{NANOS_PER_DAY, date_of};
use strata_lang::catalog::Kind;
use strata_live::feed::order_change;
use strata_live::{Change, Event, LiveEngine};

/// The allocator the `strata` binary ships with, so that the figures are
/// the product's.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const HOUR: Nanos = NANOS_PER_DAY / 24;

struct Args {
    data: String,
    rules: String,
    days: i64,
    hours: i64,
    json: Option<String>,
    batch: usize,
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let mut a = Args {
        data: String::new(),
        rules: String::new(),
        days: 7,
        hours: 3,
        json: None,
        batch: 1,
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--days" => a.days = it.next().and_then(|v| v.parse().ok()).expect("--days N"),
            "--hours" => a.hours = it.next().and_then(|v| v.parse().ok()).expect("--hours N"),
            "--json" => a.json = Some(it.next().expect("--json PATH")),
            "--batch" => a.batch = it.next().and_then(|v| v.parse().ok()).expect("--batch N"),
            _ => pos.push(x),
        }
    }
    if pos.len() != 2 {
        eprintln!(
            "usage: live_bench DATA_DIR RULES_FILE [--days 7] [--hours 3] [--batch N] [--json PATH]"
        );
        std::process::exit(2);
    }
    a.rules = pos.pop().unwrap_or_default();
    a.data = pos.pop().unwrap_or_default();
    a
}

/// (VmRSS, VmHWM) in KiB.
fn mem() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ts(n: Nanos) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(n)).expect("instant in range")
}

/// One order to replay: its instant and its change.
struct Replay {
    at: Nanos,
    lines: usize,
    change: Change,
}

/// The orders dated after `t0`, in time order, as changes.
fn replay(full: &Dataset, t0: Nanos) -> Vec<Replay> {
    let o = &full.orders;
    let mut tail: Vec<usize> = (0..o.len()).filter(|&i| o.ordered_at[i] > t0).collect();
    tail.sort_by_key(|&i| (o.ordered_at[i], i));
    let by_order = full.lines_by_order();
    tail.into_iter()
        .map(|i| Replay {
            at: o.ordered_at[i],
            lines: by_order.of(i).len(),
            change: order_change(full, i, by_order.of(i)),
        })
        .collect()
}

/// Consecutive runs of `n` orders as one change each, applied at the last
/// one's instant (micro-batched ingest).
fn batched(orders: Vec<Replay>, n: usize) -> Vec<Replay> {
    if n == 1 {
        return orders;
    }
    let mut out: Vec<Replay> = Vec::with_capacity(orders.len() / n + 1);
    for (i, r) in orders.into_iter().enumerate() {
        let Change::AddLines(rows) = r.change else {
            unreachable!("replay yields AddLines")
        };
        match out.last_mut() {
            Some(last) if i % n != 0 => {
                last.at = r.at;
                last.lines += r.lines;
                if let Change::AddLines(all) = &mut last.change {
                    all.extend(rows);
                }
            }
            _ => out.push(Replay {
                at: r.at,
                lines: r.lines,
                change: Change::AddLines(rows),
            }),
        }
    }
    out
}

/// One replayed order, outside `main` so that an instruction count (e.g.
/// `valgrind --tool=callgrind --toggle-collect='*replayed*'`) can take the
/// ingest's changes alone, without the segments' installation.
#[inline(never)]
fn replayed(live: &mut LiveEngine, change: Change) -> Vec<Event> {
    live.apply(change).expect("add lines")
}

fn read_rules(path: &str) -> Vec<(Kind, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (kind, rule) = l.split_once('\t').expect("kind<TAB>rule");
            let kind = match kind {
                "customer" => Kind::Customer,
                "product" => Kind::Product,
                other => panic!("unknown kind '{other}'"),
            };
            (kind, rule.to_owned())
        })
        .collect()
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn counts(live: &LiveEngine, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| live.count(&format!("r{i}")).expect("segment"))
        .collect()
}

fn tally(events: &[Event], member: &mut u64, tier: &mut u64) {
    for e in events {
        match e {
            Event::Member { .. } => *member += 1,
            Event::Tier { .. } => *tier += 1,
        }
    }
}

fn main() {
    let a = args();
    let (rss0, _) = mem();

    // ---- load and cut ---------------------------------------------------
    let start = Instant::now();
    let full = strata_data::load_dir(Path::new(&a.data)).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let load_s = start.elapsed();
    let (rss_full, _) = mem();
    let end = *full.orders.ordered_at.iter().max().expect("orders");
    let t0 = end - a.days * NANOS_PER_DAY;
    eprintln!(
        "loaded {} in {:.2?}: {} products, {} customers, {} orders, {} lines, {} daily rows",
        a.data,
        load_s,
        full.products.len(),
        full.customers.len(),
        full.orders.len(),
        full.lines.len(),
        full.daily.len()
    );

    let before_cut = mem().0;
    let data = Dataset {
        segments: Vec::new(),
        ..full.until(t0, date_of(t0, &full.settings.timezone))
    };
    let plain_kib = mem().0.saturating_sub(before_cut);
    let mut orders = batched(replay(&full, t0), a.batch.max(1));
    let replay_lines: usize = orders.iter().map(|r| r.lines).sum();
    let sizes = format!(
        "{} customers, {} products; {} order lines up to T0, {} to replay; {} daily rows up to T0",
        data.customers.len(),
        data.products.len(),
        data.lines.len(),
        replay_lines,
        data.daily.len()
    );
    eprintln!(
        "cut at T0 = {} (end {}): {} orders / {} lines up to T0, {} orders / {} lines to replay",
        ts(t0),
        ts(end),
        data.orders.len(),
        data.lines.len(),
        orders.len(),
        replay_lines
    );

    // ---- the engine at T0 ------------------------------------------------
    // The full dataset stays alive until here so that its memory, once
    // freed, cannot be reused by the engine and hide in the measurement.
    let (rss_before, _) = mem();
    let start = Instant::now();
    let mut live = LiveEngine::new(&data, ts(t0)).unwrap_or_else(|e| {
        eprintln!("LiveEngine::new: {e}");
        std::process::exit(1)
    });
    let new_s = start.elapsed();
    let (rss_after, _) = mem();
    let engine_kib = rss_after.saturating_sub(rss_before);
    eprintln!("LiveEngine::new: {new_s:.2?}");
    drop(full);
    drop(data);
    let (rss_engine_only, _) = mem();

    // ---- segments ----------------------------------------------------------
    let rules = read_rules(&a.rules);
    let mut install = Vec::new();
    let mut install_events = 0usize;
    let install_evals0 = live.evaluations();
    let start = Instant::now();
    for (i, (kind, rule)) in rules.iter().enumerate() {
        let t = Instant::now();
        let ev = live
            .apply(Change::PutSegment {
                name: format!("r{i}"),
                kind: *kind,
                rule: RuleSource::Text(rule.clone()),
            })
            .unwrap_or_else(|e| {
                eprintln!("rule r{i} `{rule}`: {e}");
                std::process::exit(1)
            });
        install.push((t.elapsed(), i));
        install_events += ev.len();
    }
    let install_s = start.elapsed();
    let install_evals = live.evaluations() - install_evals0;
    let (rss_installed, _) = mem();
    let counts_t0 = counts(&live, rules.len());
    eprintln!("installed {} segments in {install_s:.2?}", rules.len());

    // ---- ingest ------------------------------------------------------------
    let n_orders = orders.len();
    let mut adv_ns = Vec::with_capacity(n_orders);
    let mut app_ns = Vec::with_capacity(n_orders);
    let (mut ev_change, mut ev_time) = (0usize, 0usize);
    let (mut ev_member, mut ev_tier) = (0u64, 0u64);
    let days = a.days as usize;
    let mut day_ns = vec![0u64; days];
    let mut day_lines = vec![0usize; days];
    let hours = a.hours.max(0) as usize;
    let mut hour_ns = vec![0u64; hours];
    let mut hour_lines = vec![0usize; hours];
    let (mut evals_adv, mut evals_app) = (0u64, 0u64);
    let mut app_evals = Vec::with_capacity(n_orders);
    // The slowest changes: (ns, lines, evaluations, events).
    let mut slowest: Vec<(u64, usize, u64, usize)> = Vec::new();
    let start = Instant::now();
    for r in orders.drain(..) {
        let n = r.lines;
        let ev0 = live.evaluations();
        let t_a = Instant::now();
        let e1 = live.advance_to(r.at).expect("advance");
        let t_b = Instant::now();
        let ev1 = live.evaluations();
        let e2 = replayed(&mut live, r.change);
        let t_c = Instant::now();
        let ev2 = live.evaluations();
        let (adv, app) = ((t_b - t_a).as_nanos() as u64, (t_c - t_b).as_nanos() as u64);
        evals_adv += ev1 - ev0;
        evals_app += ev2 - ev1;
        app_evals.push(ev2 - ev1);
        if slowest.len() < 5 || app > slowest[4].0 {
            slowest.push((app, n, ev2 - ev1, e2.len()));
            slowest.sort_by_key(|x| std::cmp::Reverse(x.0));
            slowest.truncate(5);
        }
        adv_ns.push(adv);
        app_ns.push(app);
        ev_time += e1.len();
        ev_change += e2.len();
        tally(&e1, &mut ev_member, &mut ev_tier);
        tally(&e2, &mut ev_member, &mut ev_tier);
        let d = ((r.at - t0 - 1) / NANOS_PER_DAY) as usize;
        if d < days {
            day_ns[d] += adv + app;
            day_lines[d] += n;
        }
        let h = ((r.at - t0 - 1) / HOUR) as usize;
        if h < hours {
            hour_ns[h] += adv + app;
            hour_lines[h] += n;
        }
    }
    let ingest_wall = start.elapsed();
    let (rss_ingested, hwm_ingested) = mem();
    let counts_end = counts(&live, rules.len());
    let timed: u64 = adv_ns.iter().sum::<u64>() + app_ns.iter().sum::<u64>();
    let adv_total: u64 = adv_ns.iter().sum();
    let app_total: u64 = app_ns.iter().sum();
    adv_ns.sort_unstable();
    app_ns.sort_unstable();
    app_evals.sort_unstable();

    // ---- clock advance -----------------------------------------------------
    let mut advances = Vec::new();
    let mut counts_adv = Vec::new();
    for k in 1..=2 {
        let ev0 = live.evaluations();
        let t = Instant::now();
        let ev = live.advance_to(end + k * NANOS_PER_DAY).expect("advance");
        let s = t.elapsed();
        let (mut m, mut tr) = (0, 0);
        tally(&ev, &mut m, &mut tr);
        advances.push((s, ev.len(), m, tr, live.evaluations() - ev0));
        counts_adv.push(counts(&live, rules.len()));
    }

    // ---- report ------------------------------------------------------------
    let secs = |ns: u64| ns as f64 / 1e9;
    let lps = replay_lines as f64 / secs(timed);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "\n== live engine: {} ==", a.data);
    let _ = writeln!(
        w,
        "T0 = {}, end = {} ({} days replayed)",
        ts(t0),
        ts(end),
        a.days
    );
    let _ = writeln!(w, "data: {sizes}");
    let _ = writeln!(w, "load_dir (full dataset): {:.2} s", load_s.as_secs_f64());
    let _ = writeln!(
        w,
        "LiveEngine::new at T0 (no segments; tiers): {:.2} s",
        new_s.as_secs_f64()
    );
    let mut slow = install.clone();
    slow.sort_by_key(|x| std::cmp::Reverse(x.0));
    let _ = writeln!(
        w,
        "install {} segments: {:.2} s ({} events, {} evaluations, {:.0} ns each); slowest: {}",
        rules.len(),
        install_s.as_secs_f64(),
        install_events,
        install_evals,
        install_s.as_secs_f64() * 1e9 / install_evals.max(1) as f64,
        slow.iter()
            .take(5)
            .map(|(d, i)| format!("r{i} {:.0} ms", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(w, "memory (VmRSS):");
    let _ = writeln!(
        w,
        "  process at start {:.0} MiB; after load_dir of the full dataset {:.0} MiB",
        mib(rss0),
        mib(rss_full)
    );
    let _ = writeln!(
        w,
        "  plain store (the cut Dataset, columnar): {:.0} MiB",
        mib(plain_kib)
    );
    let _ = writeln!(
        w,
        "  LiveEngine::new: +{:.0} MiB = {:.2}x the plain store",
        mib(engine_kib),
        engine_kib as f64 / plain_kib.max(1) as f64
    );
    let _ = writeln!(
        w,
        "  after dropping both datasets: {:.0} MiB; with 100 segments: {:.0} MiB (+{:.0}); after ingest: {:.0} MiB; peak {:.0} MiB",
        mib(rss_engine_only),
        mib(rss_installed),
        mib(rss_installed.saturating_sub(rss_engine_only)),
        mib(rss_ingested),
        mib(hwm_ingested)
    );
    let _ = writeln!(
        w,
        "ingest: {} orders, {} lines in {:.3} s timed ({:.3} s wall)",
        n_orders,
        replay_lines,
        secs(timed),
        ingest_wall.as_secs_f64()
    );
    let _ = writeln!(
        w,
        "  {:.0} lines/s, {:.0} orders/s (one core); apply {:.3} s, advance_to {:.3} s",
        lps,
        n_orders as f64 / secs(timed),
        secs(app_total),
        secs(adv_total)
    );
    let _ = writeln!(
        w,
        "  events: {} from changes, {} from time ({} membership, {} tier)",
        ev_change, ev_time, ev_member, ev_tier
    );
    let _ = writeln!(
        w,
        "  (segment, entity) evaluations: {} in apply ({:.1} per change: p50 {}, p99 {}, max {}; {:.0} ns of apply each), {} in advance_to ({:.0} ns each)",
        evals_app,
        evals_app as f64 / n_orders.max(1) as f64,
        pct(&app_evals, 0.5),
        pct(&app_evals, 0.99),
        app_evals.last().copied().unwrap_or(0),
        app_total as f64 / evals_app.max(1) as f64,
        evals_adv,
        adv_total as f64 / evals_adv.max(1) as f64
    );
    let _ = writeln!(
        w,
        "  slowest changes (µs, lines, evaluations, events): {}",
        slowest
            .iter()
            .map(|(ns, n, e, v)| format!("({:.0}, {n}, {e}, {v})", us(*ns)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        w,
        "  latency of apply(AddLines) (a change to its events): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        us(pct(&app_ns, 0.5)),
        us(pct(&app_ns, 0.99)),
        us(*app_ns.last().unwrap_or(&0))
    );
    let _ = writeln!(
        w,
        "  latency of advance_to(ordered_at) before it: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        us(pct(&adv_ns, 0.5)),
        us(pct(&adv_ns, 0.99)),
        us(*adv_ns.last().unwrap_or(&0))
    );
    for (d, (&ns, &n)) in day_ns.iter().zip(&day_lines).enumerate() {
        let _ = writeln!(
            w,
            "  day {}: {} lines in {:.1} ms ({:.0} lines/s)",
            d + 1,
            n,
            ns as f64 / 1e6,
            n as f64 / secs(ns.max(1))
        );
    }
    for (k, (s, n, m, tr, e)) in advances.iter().enumerate() {
        let _ = writeln!(
            w,
            "clock advance end+{}d -> end+{}d: {:.3} s, {} events ({} membership, {} tier), {:.0} events/s; {} evaluations ({:.0} ns each)",
            k,
            k + 1,
            s.as_secs_f64(),
            n,
            m,
            tr,
            *n as f64 / s.as_secs_f64(),
            e,
            s.as_secs_f64() * 1e9 / (*e).max(1) as f64
        );
    }
    let _ = writeln!(w, "counts (r0..r{}):", rules.len() - 1);
    for (name, c) in [
        ("T0", &counts_t0),
        ("end", &counts_end),
        ("end+1d", &counts_adv[0]),
        ("end+2d", &counts_adv[1]),
    ] {
        let _ = writeln!(
            w,
            "  {name}: {}",
            c.iter()
                .enumerate()
                .map(|(i, n)| format!("r{i}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    print!("{out}");

    if let Some(path) = &a.json {
        let list = |c: &[u64]| c.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let mut j = String::new();
        let _ = writeln!(j, "{{");
        let _ = writeln!(j, "  \"t0_us\": {},", t0 / 1000);
        let _ = writeln!(j, "  \"end_us\": {},", end / 1000);
        let _ = writeln!(j, "  \"lines\": {replay_lines},");
        let _ = writeln!(j, "  \"orders\": {n_orders},");
        let _ = writeln!(j, "  \"seconds\": {},", secs(timed));
        let _ = writeln!(j, "  \"lines_per_s\": {lps},");
        let _ = writeln!(j, "  \"apply_p50_us\": {},", us(pct(&app_ns, 0.5)));
        let _ = writeln!(j, "  \"apply_p99_us\": {},", us(pct(&app_ns, 0.99)));
        let _ = writeln!(
            j,
            "  \"days\": [{}],",
            day_ns
                .iter()
                .zip(&day_lines)
                .map(|(&ns, &n)| format!("{{\"lines\": {n}, \"seconds\": {}}}", secs(ns)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            j,
            "  \"hours\": [{}],",
            hour_ns
                .iter()
                .zip(&hour_lines)
                .map(|(&ns, &n)| format!("{{\"lines\": {n}, \"seconds\": {}}}", secs(ns)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(j, "  \"advance_1_s\": {},", advances[0].0.as_secs_f64());
        let _ = writeln!(j, "  \"advance_2_s\": {},", advances[1].0.as_secs_f64());
        let _ = writeln!(j, "  \"counts\": {{");
        let _ = writeln!(j, "    \"t0\": [{}],", list(&counts_t0));
        let _ = writeln!(j, "    \"end\": [{}],", list(&counts_end));
        let _ = writeln!(j, "    \"end+1d\": [{}],", list(&counts_adv[0]));
        let _ = writeln!(j, "    \"end+2d\": [{}]", list(&counts_adv[1]));
        let _ = writeln!(j, "  }}");
        let _ = writeln!(j, "}}");
        std::fs::write(path, j).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    // Freeing millions of small allocations only delays the exit.
    std::mem::forget(live);
}
