//! The changes the live engine takes, and the events it gives back.

use std::sync::Arc;

use rust_decimal::Decimal;
pub use strata_data::{CustomerRow, DailyRow, LineRow, ProductRow};
use strata_data::{Nanos, RuleSource, TierScheme};
use strata_lang::catalog::Kind;

/// A product field that changes often on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum ProductValue {
    Price(Option<Decimal>),
    Cost(Option<Decimal>),
    Inventory(Option<u64>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    UpsertProduct(ProductRow),
    /// Refused while order lines name the product.
    DeleteProduct(String),
    UpsertCustomer(CustomerRow),
    /// The customer's orders stay, as an anonymous buyer's.
    DeleteCustomer(String),
    /// Lines of one or more orders; an order may gain lines later.
    AddLines(Vec<LineRow>),
    SetOrderStatus {
        order_id: String,
        status: String,
    },
    SetProductValue {
        sku: String,
        value: ProductValue,
    },
    /// Replaces the row of that product and date if there is one.
    PutDaily(DailyRow),
    /// Creates or replaces a segment.
    PutSegment {
        name: String,
        kind: Kind,
        rule: RuleSource,
    },
    /// Refused while another segment refers to it.
    DeleteSegment(String),
    /// Creates or replaces the scheme of its marketplace.
    PutTierScheme(TierScheme),
    /// The scheme of a marketplace (`None`: the fallback scheme).
    DeleteTierScheme(Option<String>),
}

/// Why an event happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The change with this sequence number (1 for the first change).
    Change(u64),
    /// Time passed: a window or relative date moved over a recorded
    /// instant, a day began, or an order dated in the future came due.
    Time,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Member {
        at: Nanos,
        cause: Cause,
        kind: Kind,
        segment: Arc<str>,
        /// `customer_id` or `sku`.
        entity: Arc<str>,
        enter: bool,
    },
    Tier {
        at: Nanos,
        cause: Cause,
        customer: Arc<str>,
        /// Scheme marketplace, tier name.
        from: Option<Arc<str>>,
        to: Option<Arc<str>>,
    },
}

impl Event {
    pub fn at(&self) -> Nanos {
        match self {
            Event::Member { at, .. } | Event::Tier { at, .. } => *at,
        }
    }

    pub fn cause(&self) -> Cause {
        match self {
            Event::Member { cause, .. } | Event::Tier { cause, .. } => *cause,
        }
    }
}

/// A change or clock advance that was refused; the engine is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// A rule (of a segment being put) does not check.
    #[error(transparent)]
    Rule(#[from] strata_engine::RuleError),
    /// The change is malformed or contradicts the data.
    #[error("{0}")]
    Invalid(String),
    /// A segment other segments refer to.
    #[error("segment '{name}' is used by {}", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error(transparent)]
    Engine(#[from] strata_engine::EngineError),
    #[error(transparent)]
    Internal(#[from] strata_engine::Internal),
}

pub(crate) fn invalid(msg: impl Into<String>) -> LiveError {
    LiveError::Invalid(msg.into())
}
