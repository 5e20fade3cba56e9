//! Restore time of a store's live engine: `Live::open` as a restart does it.
//!
//! `cargo run --release -p strata-store --example restore_bench -- (DATA_DIR | postgres://...) [NOW]`
//!
//! Prints the time to read the rows, to build the engine and evaluate every
//! segment and tier, and to catch up to `NOW` (default: the stored clock,
//! or 2026-11-01 for a store no engine ran on yet).

use std::time::Instant;

use strata_store::Location;
use strata_store::live::Live;

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("a data directory or a postgres:// URL");
    let location = if target.starts_with("postgres") {
        Location::Url(target)
    } else {
        Location::DataDir(target.into())
    };
    let now: jiff::Timestamp = args
        .next()
        .unwrap_or_else(|| "2026-11-01T00:00:00Z".to_owned())
        .parse()
        .expect("NOW as RFC 3339");
    let started = Instant::now();
    let store = strata_store::open(&location).expect("the store opens");
    let (live, restored) = Live::open(store, "default", strata_engine::clock::timestamp_nanos(now))
        .expect("the engine restores");
    let total = started.elapsed();
    println!(
        "restore {location}: total {total:.1?} (read rows {:.1?}, engine {:.1?}), refreshed {}, mismatch {:?}, caught up {} events",
        restored.load, restored.evaluate, restored.refreshed, restored.mismatch, restored.caught_up
    );
    let segments: Vec<String> = live
        .engine()
        .segments()
        .map(|(name, _, _)| format!("{name}={}", live.engine().count(name).unwrap_or(0)))
        .collect();
    println!("segments: {}", segments.join(" "));
    std::mem::forget(live);
}
