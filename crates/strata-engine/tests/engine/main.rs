//! The engine's integration tests: a hand-made dataset whose every field
//! and function value was computed by hand, and property tests holding the
//! bitmap evaluator equal to the plain reference evaluator.

mod handmade;
mod model;
