//! The changes the live engine takes, and the events it gives back.

use std::sync::Arc;

use jiff::civil::Date;
use rust_decimal::Decimal;
use strata_data::{Nanos, RuleSource, TierScheme};
use strata_lang::catalog::Kind;

/// A product as a whole (an upsert replaces every field).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductInput {
    pub sku: String,
    pub parent_sku: Option<String>,
    pub asin: Option<String>,
    pub title: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub seller_account: Option<String>,
    pub marketplace: Option<String>,
    pub price: Option<Decimal>,
    pub cost: Option<Decimal>,
    pub inventory: Option<u64>,
    pub created_at: Option<Nanos>,
    /// `x_...` attributes; a name not seen before adds the attribute.
    pub custom: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerInput {
    pub customer_id: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub marketplace: Option<String>,
    pub tags: Vec<String>,
    pub accepts_marketing: Option<bool>,
    pub created_at: Option<Nanos>,
    pub custom: Vec<(String, Option<String>)>,
}

/// One order line, with its order's columns as `orders.csv` repeats them.
#[derive(Clone, Debug, PartialEq)]
pub struct LineInput {
    pub order_id: String,
    pub ordered_at: Nanos,
    pub customer_id: Option<String>,
    pub sku: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub discount: Decimal,
    pub fees: Decimal,
    /// `None` is `shipped`.
    pub status: Option<String>,
    pub marketplace: Option<String>,
    pub seller_account: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DailyInput {
    pub sku: String,
    pub date: Date,
    pub sessions: Option<u64>,
    pub bsr: Option<u64>,
    pub reviews: Option<u64>,
    pub rating: Option<Decimal>,
}

/// A product field that changes often on its own.
#[derive(Clone, Debug, PartialEq)]
pub enum ProductValue {
    Price(Option<Decimal>),
    Cost(Option<Decimal>),
    Inventory(Option<u64>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    UpsertProduct(ProductInput),
    /// Refused while order lines name the product.
    DeleteProduct(String),
    UpsertCustomer(CustomerInput),
    /// The customer's orders stay, as an anonymous buyer's.
    DeleteCustomer(String),
    /// Lines of one or more orders; an order may gain lines later.
    AddLines(Vec<LineInput>),
    SetOrderStatus {
        order_id: String,
        status: String,
    },
    SetProductValue {
        sku: String,
        value: ProductValue,
    },
    /// Replaces the row of that product and date if there is one.
    PutDaily(DailyInput),
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
