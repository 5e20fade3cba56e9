//! Strata datasets: loading and validating a dataset directory into the
//! columnar [`store`].

pub mod store;

pub use store::*;
