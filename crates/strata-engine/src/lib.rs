//! The Strata engine: evaluates segment rules over a loaded dataset as of an
//! instant.
//!
//! [`Engine::new`] takes a [`Dataset`] and `now`, and in one pass builds the
//! live-line indexes and every aggregate of fields.md. Rules then compile to
//! a [`plan`] and evaluate into roaring bitmaps of dense entity ids
//! ([`Engine::evaluate`]). Beside that fast path sits a deliberately plain
//! row-by-row evaluator ([`Engine::evaluate_reference`], module
//! [`reference`]) that recomputes every value from the raw rows; property
//! tests hold the two equal.
//!
//! The engine does no I/O and never reads the clock: `now` is given.

use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use strata_data::Dataset;
use strata_lang::ast::Expr;
use strata_lang::catalog::{Kind, Schema};

mod breakpoints;
pub mod cell;
pub mod clock;
pub mod columns;
mod customers;
mod error;
mod eval;
mod facets;
mod index;
pub mod plan;
pub mod pred;
mod products;
pub mod reference;
mod segments;
pub mod tiers;

pub use cell::Cell;
pub use clock::AsOf;
pub use error::{EngineError, Internal, RuleError};
pub use eval::AccessPath;
pub use segments::parse_saved as parse_saved_rule;

use columns::Col;
use customers::CustomerTable;
use facets::Facet;
use index::{DailyIndex, LiveLines, LiveOrders};
use plan::{CompileError, Compiler, Node};
use products::ProductTable;
use segments::Directory;

/// A rule compiled against one engine.
#[derive(Clone, Debug)]
pub struct Rule {
    pub kind: Kind,
    /// The checked, normalised tree.
    pub expr: Expr,
    /// The normalised text form.
    pub text: String,
    node: Node,
}

struct Saved {
    name: String,
    kind: Kind,
    rule: Rule,
    members: OnceLock<RoaringBitmap>,
    reference_members: OnceLock<RoaringBitmap>,
}

pub struct Engine {
    data: Arc<Dataset>,
    as_of: AsOf,
    live: LiveLines,
    live_orders: LiveOrders,
    daily_index: DailyIndex,
    customers: CustomerTable,
    products: ProductTable,
    directory: Directory,
    saved: Vec<Saved>,
    access_path: AccessPath,
    /// Facets by (kind, field name), for the columns that have them.
    facets: FxHashMap<(Kind, String), Facet>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("now", &self.as_of.now)
            .field("customers", &self.data.customers.len())
            .field("products", &self.data.products.len())
            .field("live_lines", &self.live.len())
            .finish_non_exhaustive()
    }
}

/// Facets for every low-cardinality text, tag and boolean field read
/// straight from the files.
fn raw_facets(data: &Dataset) -> Vec<((Kind, String), Facet)> {
    let mut out = Vec::new();
    for kind in [Kind::Customer, Kind::Product] {
        let custom = match kind {
            Kind::Customer => &data.customers.custom,
            Kind::Product => &data.products.custom,
        };
        let names = Schema::builtin(kind)
            .fields()
            .iter()
            .map(|f| f.name.to_owned())
            .chain(custom.iter().map(|c| c.name.clone()));
        for name in names {
            let col = match kind {
                Kind::Customer => customers::raw_col(data, &name),
                Kind::Product => products::raw_col(data, &name),
            };
            let facet = match col {
                Some(Col::Text(t)) => Facet::of_text(t),
                Some(Col::Tags(t)) => Facet::of_tags(t),
                Some(Col::Bool(b)) => Some(Facet::of_bools(b)),
                _ => None,
            };
            if let Some(facet) = facet {
                out.push(((kind, name), facet));
            }
        }
    }
    out
}

/// The largest total of money the engine accepts: every sum it forms (and
/// 100 × any sum, for shares) then fits a `Decimal` exactly, so no
/// arithmetic on the data can overflow.
const MONEY_LIMIT: f64 = 1e25;

/// Refuses a dataset whose amounts could overflow exact arithmetic: the
/// total of |revenue| + |fees| + quantity × |cost| over all lines, and each
/// product's inventory × cost, must stay within [`MONEY_LIMIT`].
///
/// This is only a range check, so it may use floats: the bound is two
/// orders of magnitude below `Decimal::MAX`, far more than float rounding
/// could matter, and the results themselves are computed exactly.
fn check_ranges(data: &Dataset) -> Result<(), EngineError> {
    let refuse = |what: &str| {
        EngineError::OutOfRange(format!(
            "{what} exceeds {MONEY_LIMIT:e}, the largest total Strata sums exactly"
        ))
    };
    // |d| from its parts: cheaper than a general conversion, and exact
    // enough for a bound.
    const POW10: [f64; 29] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28,
    ];
    let float =
        |d: &Decimal| d.mantissa().unsigned_abs() as f64 / POW10[d.scale().min(28) as usize];
    let lines = &data.lines;
    let costs: Vec<f64> = data
        .products
        .cost
        .iter()
        .map(|c| c.as_ref().map_or(0.0, float))
        .collect();
    let mut total = 0.0;
    for l in 0..lines.len() {
        total += float(&lines.revenue[l])
            + float(&lines.fees[l])
            + f64::from(lines.quantity[l]) * costs[lines.product[l] as usize];
    }
    if total.is_nan() || total > MONEY_LIMIT {
        return Err(refuse(
            "the total of revenue, fees and costs of goods over all order lines",
        ));
    }
    for (inventory, cost) in data.products.inventory.iter().zip(&costs) {
        let value = inventory.map_or(0.0, |i| i as f64 * cost);
        if value.is_nan() || value > MONEY_LIMIT {
            return Err(refuse("a product's inventory value"));
        }
    }
    Ok(())
}

impl Engine {
    /// Builds indexes and aggregates as of `now`, and compiles the saved
    /// segments (refusing unknown references and cycles).
    ///
    /// The dataset may be shared (`Arc`): engines for several instants over
    /// the same data then hold one copy.
    pub fn new(data: impl Into<Arc<Dataset>>, now: jiff::Timestamp) -> Result<Engine, EngineError> {
        let data: Arc<Dataset> = data.into();
        check_ranges(&data)?;
        let as_of = AsOf::new(now, data.settings.timezone.clone());
        // The raw columns' facets need nothing else: build them while the
        // line index is sorted and filled.
        let (live, raw_facets) = std::thread::scope(|s| {
            let facets = s.spawn(|| raw_facets(&data));
            let live = LiveLines::build(&data, &as_of);
            (
                live,
                facets
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e)),
            )
        });
        // Customers on one thread, orders and products on the other: the
        // tables are independent and take about as long.
        let (customers, (live_orders, daily_index, products)) = std::thread::scope(|s| {
            let customers = s.spawn(|| CustomerTable::build(&data, &live));
            let live_orders = LiveOrders::build(&data, &live);
            let daily_index = DailyIndex::build(&data, &as_of);
            let products = ProductTable::build(&data, &as_of, &live, &daily_index);
            let customers = customers
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (customers, (live_orders, daily_index, products))
        });
        let directory = Directory::new(&data.segments);
        let mut engine = Engine {
            data,
            as_of,
            live,
            live_orders,
            daily_index,
            customers,
            products,
            directory,
            saved: Vec::new(),
            access_path: AccessPath::Auto,
            facets: FxHashMap::default(),
        };
        let computed = engine.computed_facets();
        engine.facets = raw_facets.into_iter().chain(computed).collect();
        engine.saved = engine.compile_saved()?;
        Ok(engine)
    }

    fn compile_saved(&self) -> Result<Vec<Saved>, EngineError> {
        let segments = &self.data.segments;
        let mut parsed = Vec::with_capacity(segments.len());
        let mut edges = Vec::with_capacity(segments.len());
        for seg in segments {
            let kind = segments::kind_of(seg.kind);
            let schema = self.schema(kind);
            let (expr, source) = segments::parse_saved(seg, &schema)?;
            let mut out = Vec::new();
            for r in strata_lang::segment_refs(&expr, kind) {
                let lit = strata_lang::ast::Literal {
                    value: strata_lang::ast::Value::String(r.name.clone()),
                    span: r.span,
                };
                let index =
                    plan::SegmentLookup::lookup(&self.directory, r.kind, &lit).map_err(|d| {
                        RuleError {
                            diagnostic: d,
                            source: source.clone(),
                            segment: Some(seg.name.clone()),
                        }
                    })?;
                out.push(index);
            }
            edges.push(out);
            parsed.push((kind, expr, source));
        }
        if let Some(cycle) = segments::find_cycle(&edges) {
            let names: Vec<&str> = cycle.iter().map(|&i| segments[i].name.as_str()).collect();
            let first = cycle[0];
            let (kind, expr, source) = &parsed[first];
            let next = &segments[cycle[1]].name;
            let span = strata_lang::segment_refs(expr, *kind)
                .into_iter()
                .find(|r| r.name == *next)
                .map(|r| r.span)
                .unwrap_or_default();
            return Err(RuleError {
                diagnostic: strata_lang::Diagnostic {
                    span,
                    message: format!("segment references form a cycle: {}", names.join(" → ")),
                    help: None,
                },
                source: source.clone(),
                segment: Some(segments[first].name.clone()),
            }
            .into());
        }
        let mut saved = Vec::with_capacity(parsed.len());
        for ((kind, expr, source), seg) in parsed.into_iter().zip(segments) {
            let rule = self
                .compile_expr(kind, expr, &source)
                .map_err(|e| match e {
                    EngineError::Rule(mut r) => {
                        r.segment = Some(seg.name.clone());
                        EngineError::Rule(r)
                    }
                    other => other,
                })?;
            saved.push(Saved {
                name: seg.name.clone(),
                kind,
                rule,
                members: OnceLock::new(),
                reference_members: OnceLock::new(),
            });
        }
        Ok(saved)
    }

    pub fn data(&self) -> &Dataset {
        &self.data
    }

    pub fn as_of(&self) -> &AsOf {
        &self.as_of
    }

    /// The fields and functions rules of this kind may use over this dataset.
    pub fn schema(&self, kind: Kind) -> Schema {
        let custom = match kind {
            Kind::Customer => &self.data.customers.custom,
            Kind::Product => &self.data.products.custom,
        };
        Schema::with_custom(kind, custom.iter().map(|c| c.name.clone()))
    }

    /// Parses, checks and compiles a rule in the text form.
    pub fn compile(&self, kind: Kind, text: &str) -> Result<Rule, EngineError> {
        let schema = self.schema(kind);
        let expr = strata_lang::parse_rule(text, &schema).map_err(|d| RuleError {
            diagnostic: d,
            source: text.to_owned(),
            segment: None,
        })?;
        self.compile_expr(kind, expr, text)
    }

    /// Compiles a checked, normalised tree; `source` is the text its spans
    /// point into (for messages).
    pub fn compile_expr(&self, kind: Kind, expr: Expr, source: &str) -> Result<Rule, EngineError> {
        let schema = self.schema(kind);
        let compiler = Compiler {
            schema: &schema,
            as_of: &self.as_of,
            segments: &self.directory,
        };
        let node = compiler.compile(&expr).map_err(|e| match e {
            CompileError::User(d) => EngineError::Rule(RuleError {
                diagnostic: d,
                source: source.to_owned(),
                segment: None,
            }),
            CompileError::Internal(i) => EngineError::Internal(i),
        })?;
        Ok(Rule {
            kind,
            text: strata_lang::to_text(&expr),
            expr,
            node,
        })
    }

    /// The members of a rule, as dense ids.
    pub fn evaluate(&self, rule: &Rule) -> Result<RoaringBitmap, Internal> {
        self.eval_node(rule.kind, &rule.node, &self.universe(rule.kind))
    }

    /// Number of entities of a kind.
    pub fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Customer => self.data.customers.len(),
            Kind::Product => self.data.products.len(),
        }
    }

    pub fn universe(&self, kind: Kind) -> RoaringBitmap {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..self.len(kind) as u32);
        all
    }

    /// The dataset id (`customer_id` or `sku`) of a dense id.
    pub fn id(&self, kind: Kind, row: u32) -> &str {
        let col = match kind {
            Kind::Customer => &self.data.customers.customer_id,
            Kind::Product => &self.data.products.sku,
        };
        col.get(row as usize).unwrap_or_default()
    }

    /// The saved segments: name and kind, in file order.
    pub fn saved_segments(&self) -> impl Iterator<Item = (&str, Kind)> {
        self.saved.iter().map(|s| (s.name.as_str(), s.kind))
    }

    /// The members of a saved segment, evaluated once and kept.
    pub fn saved_members(&self, index: usize) -> Result<&RoaringBitmap, Internal> {
        let saved = self
            .saved
            .get(index)
            .ok_or_else(|| Internal::new(format!("no saved segment {index}")))?;
        if let Some(m) = saved.members.get() {
            return Ok(m);
        }
        let members = self.evaluate(&saved.rule)?;
        Ok(saved.members.get_or_init(|| members))
    }

    /// Facets of the computed text fields (the raw ones are built in
    /// [`raw_facets`], beside the line index).
    fn computed_facets(&self) -> Vec<((Kind, String), Facet)> {
        ["email_domain", "tier"]
            .into_iter()
            .filter_map(|name| match self.column(Kind::Customer, name)? {
                Col::Text(t) => Some(((Kind::Customer, name.to_owned()), Facet::of_text(t)?)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn facet(&self, kind: Kind, name: &str) -> Option<&Facet> {
        self.facets.get(&(kind, name.to_owned()))
    }

    /// Forces how behaviour functions read the lines (tests use this to
    /// hold every path to the reference evaluator).
    pub fn set_access_path(&mut self, path: AccessPath) {
        self.access_path = path;
        self.clear_cache();
    }

    /// Forgets the saved segments' memberships, so that the next evaluation
    /// computes them again (for timing a rule from a cold start).
    pub fn clear_cache(&mut self) {
        for saved in &mut self.saved {
            saved.members.take();
            saved.reference_members.take();
        }
    }

    pub(crate) fn column(&self, kind: Kind, name: &str) -> Option<Col<'_>> {
        match kind {
            Kind::Customer => self.customers.col(&self.data, name),
            Kind::Product => self.products.col(&self.data, name),
        }
    }

    /// The columns of a member table: every field of the kind, then the
    /// custom attributes.
    pub fn field_names(&self, kind: Kind) -> Vec<String> {
        let schema = self.schema(kind);
        schema
            .fields()
            .iter()
            .map(|f| f.name.to_owned())
            .chain(schema.custom.iter().cloned())
            .collect()
    }

    /// One field of one entity, for display.
    pub fn cell(&self, kind: Kind, row: u32, name: &str) -> Cell<'_> {
        match self.column(kind, name) {
            Some(col) => Cell::read(col, row as usize),
            None => Cell::Null,
        }
    }
}
