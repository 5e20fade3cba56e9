//! The store test suite, run against every backend: `suite.rs` holds the
//! tests, written once over `dyn Store`; `sqlite.rs` and `postgres.rs`
//! instantiate them with `store_suite!`.

#[macro_use]
mod suite;
mod postgres;
mod sqlite;
