//! Tests of the live engine (one integration-test binary).

mod drift;
mod model;
mod paths;
mod share;
