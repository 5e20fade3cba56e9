//! strata-demo
