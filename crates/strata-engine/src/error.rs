//! Errors. A user error (a rule that does not check, a saved segment that
//! refers to nothing or to itself) is kept apart from an internal one (a
//! broken invariant), so that the boundary can map them to different codes.

use std::fmt;

use strata_lang::Diagnostic;

/// A rule the user wrote is refused.
#[derive(Debug, Clone)]
pub struct RuleError {
    pub diagnostic: Diagnostic,
    /// The rule text the diagnostic points into.
    pub source: String,
    /// The saved segment the rule belongs to, if any.
    pub segment: Option<String>,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = &self.segment {
            writeln!(f, "in saved segment '{name}':")?;
        }
        f.write_str(self.diagnostic.render(&self.source).trim_end())
    }
}

impl std::error::Error for RuleError {}

/// A broken invariant inside the engine: a bug, never the user's fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("internal error: {0}")]
pub struct Internal(pub String);

impl Internal {
    pub fn new(message: impl Into<String>) -> Internal {
        Internal(message.into())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The user's rule, or a saved segment's, is refused.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The dataset holds amounts the engine cannot sum exactly.
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}
