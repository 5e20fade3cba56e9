//! The columnar in-memory store a dataset loads into.
//!
//! Entities get dense integer ids in file order (`0..len`). Every column is a
//! `Vec` indexed by that id. Text columns are dictionary encoded: sellers'
//! text (country, brand, category, marketplace) repeats a lot, and a text
//! predicate is then decided once per distinct value instead of once per row.
//!
//! The store holds data exactly as the files give it; nothing here depends on
//! `now`. Aggregates and indexes are the engine's business.

use rust_decimal::Decimal;

/// An instant as nanoseconds since the Unix epoch (UTC). Covers 1677–2262,
/// ample for commerce data; values outside are refused at load.
pub type Nanos = i64;

/// Code of a null cell in a [`TextColumn`].
pub const NULL_CODE: u32 = u32::MAX;

/// Customer id of an anonymous order.
pub const NO_CUSTOMER: u32 = u32::MAX;

/// A dictionary-encoded, nullable text column.
///
/// **Invariant: `dict` holds no duplicates and no empty string** (an empty
/// cell is null, so it gets [`NULL_CODE`]).
#[derive(Clone, Debug, Default)]
pub struct TextColumn {
    pub dict: Vec<Box<str>>,
    pub codes: Vec<u32>,
}

impl TextColumn {
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        match self.codes[row] {
            NULL_CODE => None,
            code => Some(&self.dict[code as usize]),
        }
    }
}

/// Builds a [`TextColumn`], interning each distinct value once.
#[derive(Debug, Default)]
pub struct TextColumnBuilder {
    column: TextColumn,
    index: rustc_hash::FxHashMap<Box<str>, u32>,
}

impl TextColumnBuilder {
    /// Appends a cell; `None` and `Some("")` are both null.
    pub fn push(&mut self, value: Option<&str>) {
        let code = self.intern(value);
        self.column.codes.push(code);
    }

    /// The code for a value without appending a row.
    pub fn intern(&mut self, value: Option<&str>) -> u32 {
        match value {
            None | Some("") => NULL_CODE,
            Some(text) => {
                if let Some(&code) = self.index.get(text) {
                    return code;
                }
                let code = self.column.dict.len() as u32;
                self.column.dict.push(text.into());
                self.index.insert(text.into(), code);
                code
            }
        }
    }

    /// A row pushed so far.
    pub fn get(&self, row: usize) -> Option<&str> {
        self.column.get(row)
    }

    pub fn push_code(&mut self, code: u32) {
        self.column.codes.push(code);
    }

    pub fn len(&self) -> usize {
        self.column.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.column.codes.is_empty()
    }

    pub fn finish(self) -> TextColumn {
        self.column
    }
}

/// Unique strings one after another in one buffer (order ids): no
/// allocation per row, and half the memory of a `Vec<Box<str>>`.
#[derive(Clone, Debug, Default)]
pub struct StrColumn {
    bytes: String,
    /// End of row `i` in `bytes`; row `i` starts where row `i - 1` ends.
    ends: Vec<usize>,
}

impl StrColumn {
    pub fn with_capacity(rows: usize, bytes: usize) -> StrColumn {
        StrColumn {
            bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    pub fn push(&mut self, text: &str) {
        self.bytes.push_str(text);
        self.ends.push(self.bytes.len());
    }

    pub fn get(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// A set of text elements per row (tags), in CSR form: the codes of row `r`
/// are `codes[offsets[r]..offsets[r + 1]]`.
///
/// **Invariant: a row's codes are distinct**, and `offsets.len() == rows + 1`.
#[derive(Clone, Debug)]
pub struct TagColumn {
    pub dict: Vec<Box<str>>,
    pub offsets: Vec<u32>,
    pub codes: Vec<u32>,
}

impl Default for TagColumn {
    fn default() -> Self {
        TagColumn {
            dict: Vec::new(),
            offsets: vec![0],
            codes: Vec::new(),
        }
    }
}

impl TagColumn {
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn codes_of(&self, row: usize) -> &[u32] {
        &self.codes[self.offsets[row] as usize..self.offsets[row + 1] as usize]
    }

    pub fn get(&self, row: usize) -> impl Iterator<Item = &str> {
        self.codes_of(row).iter().map(|&c| &*self.dict[c as usize])
    }
}

/// A named custom attribute column (`x_...`).
#[derive(Clone, Debug)]
pub struct CustomColumn {
    pub name: String,
    pub values: TextColumn,
}

#[derive(Clone, Debug, Default)]
pub struct Products {
    /// `sku`, unique: `sku.codes[i] == i`.
    pub sku: TextColumn,
    pub parent_sku: TextColumn,
    pub asin: TextColumn,
    pub title: TextColumn,
    pub brand: TextColumn,
    pub category: TextColumn,
    pub tags: TagColumn,
    pub seller_account: TextColumn,
    pub marketplace: TextColumn,
    pub price: Vec<Option<Decimal>>,
    pub cost: Vec<Option<Decimal>>,
    pub inventory: Vec<Option<u64>>,
    pub created_at: Vec<Option<Nanos>>,
    pub custom: Vec<CustomColumn>,
}

impl Products {
    pub fn len(&self) -> usize {
        self.sku.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug, Default)]
pub struct Customers {
    /// `customer_id`, unique: `customer_id.codes[i] == i`.
    pub customer_id: TextColumn,
    pub email: TextColumn,
    pub first_name: TextColumn,
    pub last_name: TextColumn,
    pub country: TextColumn,
    pub city: TextColumn,
    pub marketplace: TextColumn,
    pub tags: TagColumn,
    pub accepts_marketing: Vec<Option<bool>>,
    pub created_at: Vec<Option<Nanos>>,
    pub custom: Vec<CustomColumn>,
}

impl Customers {
    pub fn len(&self) -> usize {
        self.customer_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Order-level columns, one row per distinct `order_id` in first-seen order.
///
/// **Invariant: every line of an order agreed on these values at load.**
#[derive(Clone, Debug, Default)]
pub struct Orders {
    pub order_id: StrColumn,
    pub ordered_at: Vec<Nanos>,
    /// Dense customer id, or [`NO_CUSTOMER`] for an anonymous buyer.
    pub customer: Vec<u32>,
    /// The raw status (`shipped` where the cell was empty).
    pub status: TextColumn,
    /// `false` for `cancelled` / `refunded` (any case).
    pub counting: Vec<bool>,
    pub marketplace: TextColumn,
}

impl Orders {
    pub fn len(&self) -> usize {
        self.order_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One row per order line, in file order.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    /// Dense order id (index into [`Orders`]).
    pub order: Vec<u32>,
    /// Dense product id.
    pub product: Vec<u32>,
    pub quantity: Vec<u32>,
    /// `quantity × unit_price − discount`, exact.
    pub revenue: Vec<Decimal>,
    /// As written (the revenue is what rules read; these are kept so that
    /// a stored or exported dataset says what the file said).
    pub unit_price: Vec<Decimal>,
    pub discount: Vec<Decimal>,
    pub fees: Vec<Decimal>,
    pub seller_account: TextColumn,
}

impl Lines {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `product_daily.csv`, one row per (product, date), in file order.
#[derive(Clone, Debug, Default)]
pub struct Daily {
    pub product: Vec<u32>,
    pub date: Vec<jiff::civil::Date>,
    pub sessions: Vec<Option<u64>>,
    pub bsr: Vec<Option<u64>>,
    pub reviews: Vec<Option<u64>>,
    pub rating: Vec<Option<Decimal>>,
}

impl Daily {
    pub fn len(&self) -> usize {
        self.product.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub timezone: jiff::tz::TimeZone,
    /// The IANA name as written (`UTC` by default).
    pub timezone_name: String,
    pub currency: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timezone: jiff::tz::TimeZone::UTC,
            timezone_name: "UTC".to_owned(),
            currency: "USD".to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TierMetric {
    /// `number_of_orders`
    Orders,
    /// `units_purchased`
    Units,
    /// `amount_spent`
    Revenue,
    /// `total_profit`
    Profit,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: String,
    pub threshold: Decimal,
}

/// A validated tier scheme (tiers.md).
///
/// **Invariant: `tiers` is sorted by threshold, highest first**, holds 1 to
/// 10 tiers with unique names and unique thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierScheme {
    /// `None` is the fallback scheme.
    pub marketplace: Option<String>,
    pub metric: TierMetric,
    pub tiers: Vec<Tier>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentKind {
    Customer,
    Product,
}

/// How a saved segment's rule was written in `segments.json`.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleSource {
    /// The text form.
    Text(String),
    /// The JSON tree form.
    Json(serde_json::Value),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SavedSegment {
    pub name: String,
    pub kind: SegmentKind,
    pub rule: RuleSource,
    /// Free text for people (`segments.json`'s `description`).
    pub description: Option<String>,
}

/// A whole loaded dataset.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub settings: Settings,
    pub products: Products,
    pub customers: Customers,
    pub orders: Orders,
    pub lines: Lines,
    pub daily: Daily,
    pub tiers: Vec<TierScheme>,
    pub segments: Vec<SavedSegment>,
}
