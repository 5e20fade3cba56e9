//! Customer tiers (tiers.md): the tier whose threshold the customer's metric
//! strictly exceeds, highest threshold first.

use rust_decimal::Decimal;
use strata_data::{TierMetric, TierScheme};

/// The four measures a scheme can rank by, for one customer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Metrics {
    pub orders: Decimal,
    pub units: Decimal,
    pub revenue: Decimal,
    pub profit: Decimal,
}

impl Metrics {
    fn get(&self, metric: TierMetric) -> Decimal {
        match metric {
            TierMetric::Orders => self.orders,
            TierMetric::Units => self.units,
            TierMetric::Revenue => self.revenue,
            TierMetric::Profit => self.profit,
        }
    }
}

/// The scheme that applies to a customer's marketplace: its own, or the
/// `null` fallback scheme.
pub fn scheme_for<'a>(
    schemes: &'a [TierScheme],
    marketplace: Option<&str>,
) -> Option<&'a TierScheme> {
    let own =
        marketplace.and_then(|m| schemes.iter().find(|s| s.marketplace.as_deref() == Some(m)));
    own.or_else(|| schemes.iter().find(|s| s.marketplace.is_none()))
}

/// The tier name for a customer, if any threshold is exceeded.
pub fn tier_of<'a>(scheme: &'a TierScheme, metrics: &Metrics) -> Option<&'a str> {
    let value = metrics.get(scheme.metric);
    // Tiers are sorted highest threshold first (a store invariant).
    scheme
        .tiers
        .iter()
        .find(|t| value > t.threshold)
        .map(|t| t.name.as_str())
}
