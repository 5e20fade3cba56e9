//! Loads a dataset directory and reports how long it took, for measuring the
//! loader on large generated data:
//! `cargo run --release -p strata-data --example load_time -- DIR`.

use std::time::Instant;

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: load_time DIR");
        std::process::exit(2);
    };
    let start = Instant::now();
    match strata_data::load_dir(dir.as_ref()) {
        Ok(dataset) => println!("{}", dataset.summary()),
        Err(e) => println!("{e}"),
    }
    eprintln!("loaded in {:.2?}", start.elapsed());
}
