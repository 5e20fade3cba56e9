//! `cargo run --release -p strata-demo --example demo -- DIR [CUSTOMERS] [SEED]`
//!
//! Writes a demo dataset and prints the row counts and the time taken,
//! without going through the `strata` command line.

use std::time::Instant;

use strata_demo::{DemoOptions, generate};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: demo DIR [CUSTOMERS] [SEED]");
        std::process::exit(2);
    };
    let mut opts = DemoOptions::default();
    if let Some(n) = args.next() {
        opts.customers = n.parse().expect("CUSTOMERS must be a number");
    }
    if let Some(s) = args.next() {
        opts.seed = s.parse().expect("SEED must be a number");
    }
    let start = Instant::now();
    match generate(dir.as_ref(), &opts) {
        Ok(summary) => eprintln!("{summary:?} in {:.2?}", start.elapsed()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
