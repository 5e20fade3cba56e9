//! The Strata segment language.
//!
//! (Grammar and module docs to be written by the parser work.)

pub mod ast;
pub mod catalog;
