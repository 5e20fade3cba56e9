-- Strata schema, version 1 (SQLite).
-- Instants: INTEGER nanoseconds since the Unix epoch (UTC).
-- Money and other decimals: TEXT holding the exact decimal as written.
-- Dates: TEXT 'YYYY-MM-DD'. Lists and custom attributes: JSON text.
-- `id` columns give first-stored order, which `load` keeps; the `*_tenant`
-- indexes let it read one tenant's rows in that order without sorting.

CREATE TABLE tenants (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    timezone            TEXT NOT NULL DEFAULT 'UTC',
    currency            TEXT NOT NULL DEFAULT 'USD',
    clock               INTEGER,            -- engine clock at its last commit
    last_change         INTEGER NOT NULL DEFAULT 0,
    data_version        INTEGER NOT NULL DEFAULT 0,
    memberships_version INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL
);

CREATE TABLE seller_accounts (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    name      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE marketplaces (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    name      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;

CREATE TABLE products (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id),
    sku            TEXT NOT NULL,
    parent_sku     TEXT,
    asin           TEXT,
    title          TEXT,
    brand          TEXT,
    category       TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',  -- JSON array of text
    seller_account TEXT,
    marketplace    TEXT,
    price          TEXT,
    cost           TEXT,
    inventory      INTEGER,
    created_at     INTEGER,
    custom         TEXT NOT NULL DEFAULT '[]',  -- JSON array of [name, value|null]
    UNIQUE (tenant_id, sku)
);
CREATE INDEX products_tenant ON products (tenant_id, id);

CREATE TABLE customers (
    id                INTEGER PRIMARY KEY,
    tenant_id         INTEGER NOT NULL REFERENCES tenants(id),
    customer_id       TEXT NOT NULL,
    email             TEXT,
    first_name        TEXT,
    last_name         TEXT,
    country           TEXT,
    city              TEXT,
    marketplace       TEXT,
    tags              TEXT NOT NULL DEFAULT '[]',
    accepts_marketing INTEGER,                    -- 0/1/NULL
    created_at        INTEGER,
    custom            TEXT NOT NULL DEFAULT '[]',
    UNIQUE (tenant_id, customer_id)
);
CREATE INDEX customers_tenant ON customers (tenant_id, id);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    order_id    TEXT NOT NULL,
    ordered_at  INTEGER NOT NULL,
    customer_id TEXT,                 -- NULL: anonymous (or deleted) buyer
    status      TEXT NOT NULL,        -- 'shipped' where the file had none
    marketplace TEXT,
    UNIQUE (tenant_id, order_id)
);
CREATE INDEX orders_tenant ON orders (tenant_id, id);
-- Deleting a customer makes their orders anonymous.
CREATE INDEX orders_customer ON orders (tenant_id, customer_id);

CREATE TABLE order_lines (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenants(id),
    order_id       TEXT NOT NULL,
    line_no        INTEGER NOT NULL,
    sku            TEXT NOT NULL,
    quantity       INTEGER NOT NULL,
    unit_price     TEXT NOT NULL,
    discount       TEXT NOT NULL,
    fees           TEXT NOT NULL,
    seller_account TEXT,
    UNIQUE (tenant_id, order_id, line_no)
);
CREATE INDEX order_lines_tenant ON order_lines (tenant_id, id);
CREATE INDEX order_lines_sku ON order_lines (tenant_id, sku);

CREATE TABLE product_daily (
    id        INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    sku       TEXT NOT NULL,
    date      TEXT NOT NULL,
    sessions  INTEGER,
    bsr       INTEGER,
    reviews   INTEGER,
    rating    TEXT,
    UNIQUE (tenant_id, sku, date)
);
CREATE INDEX product_daily_tenant ON product_daily (tenant_id, id);

CREATE TABLE segments (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    name        TEXT NOT NULL,
    description TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'product')),
    rule_source TEXT NOT NULL CHECK (rule_source IN ('text', 'json')),
    rule_text   TEXT NOT NULL,        -- as written, or the printed form of a JSON rule
    rule_json   TEXT NOT NULL,        -- the JSON form
    owner       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE tier_schemes (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    marketplace TEXT NOT NULL,        -- '' is the fallback scheme
    metric      TEXT NOT NULL,        -- orders | units | revenue | profit
    tiers       TEXT NOT NULL,        -- JSON [{"name", "threshold": "decimal"}], highest first
    UNIQUE (tenant_id, marketplace)
);

CREATE TABLE memberships (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    segment   TEXT NOT NULL,
    entity    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    since     INTEGER,
    PRIMARY KEY (tenant_id, segment, entity)
) WITHOUT ROWID;

CREATE TABLE customer_tiers (
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    customer_id TEXT NOT NULL,
    tier        TEXT NOT NULL,
    since       INTEGER,
    PRIMARY KEY (tenant_id, customer_id)
) WITHOUT ROWID;

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
    at         INTEGER NOT NULL,
    change_seq INTEGER,                -- NULL: caused by time
    type       TEXT NOT NULL CHECK (type IN ('enter', 'exit', 'tier')),
    kind       TEXT,                   -- segment kind (enter/exit)
    segment    TEXT,
    entity     TEXT NOT NULL,          -- customer id or sku
    tier_from  TEXT,
    tier_to    TEXT
);
CREATE INDEX events_tenant ON events (tenant_id, id);

CREATE TABLE count_history (
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    segment   TEXT NOT NULL,
    day       TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, segment, day)
) WITHOUT ROWID;

CREATE TABLE imports (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'abandoned')),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    report      TEXT                   -- JSON counts, once done
);

-- Staging: rows of a running import, moved into the tables at its end.
CREATE TABLE stage_products (
    import_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    sku TEXT NOT NULL, parent_sku TEXT, asin TEXT, title TEXT, brand TEXT, category TEXT,
    tags TEXT NOT NULL, seller_account TEXT, marketplace TEXT, price TEXT, cost TEXT,
    inventory INTEGER, created_at INTEGER, custom TEXT NOT NULL,
    PRIMARY KEY (import_id, seq)
) WITHOUT ROWID;

CREATE TABLE stage_customers (
    import_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    customer_id TEXT NOT NULL, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
    city TEXT, marketplace TEXT, tags TEXT NOT NULL, accepts_marketing INTEGER,
    created_at INTEGER, custom TEXT NOT NULL,
    PRIMARY KEY (import_id, seq)
) WITHOUT ROWID;

CREATE TABLE stage_lines (
    import_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    order_id TEXT NOT NULL, line_no INTEGER NOT NULL, ordered_at INTEGER NOT NULL,
    customer_id TEXT, status TEXT NOT NULL, marketplace TEXT,
    sku TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price TEXT NOT NULL,
    discount TEXT NOT NULL, fees TEXT NOT NULL, seller_account TEXT,
    PRIMARY KEY (import_id, seq)
) WITHOUT ROWID;

CREATE TABLE stage_daily (
    import_id INTEGER NOT NULL, seq INTEGER NOT NULL,
    sku TEXT NOT NULL, date TEXT NOT NULL, sessions INTEGER, bsr INTEGER, reviews INTEGER,
    rating TEXT,
    PRIMARY KEY (import_id, seq)
) WITHOUT ROWID;
