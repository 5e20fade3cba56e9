//! The field catalogue: every field and function of each kind, with its type.
//!
//! This is language knowledge (names and types, fields.md), not evaluation:
//! the checker uses it to refuse ill-typed rules and the engine to map names
//! to columns. Custom attributes (`x_*` columns of a dataset) are added per
//! dataset through [`Schema`].

use std::fmt;

/// The kind of entity a rule selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Customer,
    Product,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Customer => "customer",
            Kind::Product => "product",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a field or function result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Text,
    Number,
    Money,
    Timestamp,
    Boolean,
    /// A set of text elements (tags); never null.
    TextSet,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Number => "number",
            Type::Money => "money",
            Type::Timestamp => "timestamp",
            Type::Boolean => "boolean",
            Type::TextSet => "text set",
        }
    }

    /// Number and money take the same operators and values.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Number | Type::Money)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: Type,
}

/// The named arguments a function accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// `since:` / `until:`: date, timestamp, relative or `today`.
    Bound,
    /// `sku:`, `category:`, `brand:`, `marketplace:`: a string or a list of strings.
    TextFilter,
    /// `in_segment:`: one string naming a product segment.
    ProductSegment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamDef {
    pub name: &'static str,
    pub kind: ArgKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionDef {
    pub name: &'static str,
    pub ty: Type,
    /// Named parameters, all optional.
    pub params: &'static [ParamDef],
    /// `Some(name)` when the function takes exactly one positional string
    /// argument (a segment name of the same kind); the name is the key used
    /// for it in the JSON form.
    pub positional: Option<&'static str>,
}

const fn f(name: &'static str, ty: Type) -> FieldDef {
    FieldDef { name, ty }
}

pub const CUSTOMER_FIELDS: &[FieldDef] = &[
    f("customer_id", Type::Text),
    f("email", Type::Text),
    f("email_domain", Type::Text),
    f("first_name", Type::Text),
    f("last_name", Type::Text),
    f("country", Type::Text),
    f("city", Type::Text),
    f("marketplace", Type::Text),
    f("tags", Type::TextSet),
    f("accepts_marketing", Type::Boolean),
    f("created_at", Type::Timestamp),
    f("number_of_orders", Type::Number),
    f("units_purchased", Type::Number),
    f("amount_spent", Type::Money),
    f("total_profit", Type::Money),
    f("average_order_value", Type::Money),
    f("first_order_date", Type::Timestamp),
    f("last_order_date", Type::Timestamp),
    f("tier", Type::Text),
];

pub const PRODUCT_FIELDS: &[FieldDef] = &[
    f("sku", Type::Text),
    f("parent_sku", Type::Text),
    f("asin", Type::Text),
    f("title", Type::Text),
    f("brand", Type::Text),
    f("category", Type::Text),
    f("tags", Type::TextSet),
    f("seller_account", Type::Text),
    f("marketplace", Type::Text),
    f("price", Type::Money),
    f("cost", Type::Money),
    f("inventory", Type::Number),
    f("created_at", Type::Timestamp),
    f("units_sold", Type::Number),
    f("sales", Type::Money),
    f("units_7d", Type::Number),
    f("units_14d", Type::Number),
    f("units_30d", Type::Number),
    f("sales_7d", Type::Money),
    f("sales_14d", Type::Money),
    f("sales_30d", Type::Money),
    f("avg_daily_units_7d", Type::Number),
    f("avg_daily_units_14d", Type::Number),
    f("avg_daily_units_30d", Type::Number),
    f("daily_velocity", Type::Number),
    f("days_of_stock", Type::Number),
    f("inventory_value", Type::Money),
    f("revenue_share", Type::Number),
    f("customers_30d", Type::Number),
    f("sessions_30d", Type::Number),
    f("conversion_rate_30d", Type::Number),
    f("bsr", Type::Number),
    f("reviews", Type::Number),
    f("rating", Type::Number),
    f("new_reviews_30d", Type::Number),
];

const BOUNDS: [ParamDef; 2] = [
    ParamDef {
        name: "since",
        kind: ArgKind::Bound,
    },
    ParamDef {
        name: "until",
        kind: ArgKind::Bound,
    },
];

const BEHAVIOUR_PARAMS: &[ParamDef] = &[
    BOUNDS[0],
    BOUNDS[1],
    ParamDef {
        name: "sku",
        kind: ArgKind::TextFilter,
    },
    ParamDef {
        name: "category",
        kind: ArgKind::TextFilter,
    },
    ParamDef {
        name: "brand",
        kind: ArgKind::TextFilter,
    },
    ParamDef {
        name: "in_segment",
        kind: ArgKind::ProductSegment,
    },
    ParamDef {
        name: "marketplace",
        kind: ArgKind::TextFilter,
    },
];

const fn behaviour(name: &'static str, ty: Type) -> FunctionDef {
    FunctionDef {
        name,
        ty,
        params: BEHAVIOUR_PARAMS,
        positional: None,
    }
}

const fn bounded(name: &'static str, ty: Type) -> FunctionDef {
    FunctionDef {
        name,
        ty,
        params: &BOUNDS,
        positional: None,
    }
}

const IN_SEGMENT: FunctionDef = FunctionDef {
    name: "in_segment",
    ty: Type::Boolean,
    params: &[],
    positional: Some("segment"),
};

pub const CUSTOMER_FUNCTIONS: &[FunctionDef] = &[
    behaviour("orders", Type::Number),
    behaviour("units", Type::Number),
    behaviour("spent", Type::Money),
    behaviour("purchased", Type::Boolean),
    IN_SEGMENT,
];

pub const PRODUCT_FUNCTIONS: &[FunctionDef] = &[
    bounded("units_sold", Type::Number),
    bounded("sales", Type::Money),
    bounded("sessions", Type::Number),
    IN_SEGMENT,
];

/// The fields and functions available to rules of one kind over one
/// dataset: the built-in catalogue plus the dataset's custom attributes.
#[derive(Clone, Debug)]
pub struct Schema {
    pub kind: Kind,
    /// Custom attribute names (`x_...`), each a text field.
    pub custom: Vec<String>,
}

impl Schema {
    pub fn builtin(kind: Kind) -> Schema {
        Schema {
            kind,
            custom: Vec::new(),
        }
    }

    pub fn with_custom(kind: Kind, custom: impl IntoIterator<Item = String>) -> Schema {
        Schema {
            kind,
            custom: custom.into_iter().collect(),
        }
    }

    pub fn fields(&self) -> &'static [FieldDef] {
        match self.kind {
            Kind::Customer => CUSTOMER_FIELDS,
            Kind::Product => PRODUCT_FIELDS,
        }
    }

    pub fn functions(&self) -> &'static [FunctionDef] {
        match self.kind {
            Kind::Customer => CUSTOMER_FUNCTIONS,
            Kind::Product => PRODUCT_FUNCTIONS,
        }
    }

    pub fn field(&self, name: &str) -> Option<FieldDef> {
        self.fields().iter().copied().find(|f| f.name == name)
    }

    pub fn function(&self, name: &str) -> Option<FunctionDef> {
        self.functions().iter().copied().find(|f| f.name == name)
    }

    /// The type of a field name, custom attributes included.
    pub fn field_type(&self, name: &str) -> Option<Type> {
        if let Some(def) = self.field(name) {
            return Some(def.ty);
        }
        self.custom.iter().any(|c| c == name).then_some(Type::Text)
    }

    /// Every name a rule of this kind may use (for "did you mean").
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.fields()
            .iter()
            .map(|f| f.name)
            .chain(self.functions().iter().map(|f| f.name))
            .chain(self.custom.iter().map(String::as_str))
    }
}
