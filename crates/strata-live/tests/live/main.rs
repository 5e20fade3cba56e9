//! Tests of the live engine (one integration-test binary).

mod model;
mod paths;
