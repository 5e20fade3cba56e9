-- Strata schema, version 1 (PostgreSQL); the same tables as the SQLite schema.
-- Instants: BIGINT nanoseconds since the Unix epoch (UTC); timestamptz has
-- only microseconds.
-- Money and other decimals: NUMERIC without a typmod, so the written scale is
-- kept (49.990 stays 49.990).
-- Lists and custom attributes: jsonb arrays (arrays keep their order).
-- `id` columns give first-stored order, which `load` keeps; primary keys
-- lead with tenant_id so that one tenant's rows are read in id order
-- straight from the index.
-- Identities (sku, customer_id, order_id, names) compare as bytes
-- (COLLATE "C"), as they do in Rust and SQLite, and index faster so.
-- The tables that take rows by the million have no foreign key to
-- `tenants`: the per-row check would cost more than the row, and every
-- write checks its tenant first.

CREATE TABLE tenants (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                TEXT COLLATE "C" NOT NULL UNIQUE,
    timezone            TEXT NOT NULL DEFAULT 'UTC',
    currency            TEXT NOT NULL DEFAULT 'USD',
    clock               BIGINT,             -- engine clock at its last commit
    last_change         BIGINT NOT NULL DEFAULT 0,
    data_version        BIGINT NOT NULL DEFAULT 0,
    memberships_version BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL
);

CREATE TABLE seller_accounts (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    name      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE marketplaces (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    name      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE products (
    id             BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id      BIGINT NOT NULL,
    sku            TEXT COLLATE "C" NOT NULL,
    parent_sku     TEXT,
    asin           TEXT,
    title          TEXT,
    brand          TEXT,
    category       TEXT,
    tags           JSONB NOT NULL DEFAULT '[]',  -- array of text
    seller_account TEXT,
    marketplace    TEXT,
    price          NUMERIC,
    cost           NUMERIC,
    inventory      BIGINT,
    created_at     BIGINT,
    custom         JSONB NOT NULL DEFAULT '[]',  -- array of [name, value|null]
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku)
);

CREATE TABLE customers (
    id                BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id         BIGINT NOT NULL,
    customer_id       TEXT COLLATE "C" NOT NULL,
    email             TEXT,
    first_name        TEXT,
    last_name         TEXT,
    country           TEXT,
    city              TEXT,
    marketplace       TEXT,
    tags              JSONB NOT NULL DEFAULT '[]',
    accepts_marketing BOOLEAN,
    created_at        BIGINT,
    custom            JSONB NOT NULL DEFAULT '[]',
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, customer_id)
);

CREATE TABLE orders (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id   BIGINT NOT NULL,
    order_id    TEXT COLLATE "C" NOT NULL,
    ordered_at  BIGINT NOT NULL,
    customer_id TEXT COLLATE "C",     -- NULL: anonymous (or deleted) buyer
    status      TEXT NOT NULL,        -- 'shipped' where the file had none
    marketplace TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, order_id)
);
-- Deleting a customer makes its orders anonymous.
CREATE INDEX orders_customer ON orders (tenant_id, customer_id);

CREATE TABLE order_lines (
    id             BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id      BIGINT NOT NULL,
    order_id       TEXT COLLATE "C" NOT NULL,
    line_no        INTEGER NOT NULL,
    sku            TEXT COLLATE "C" NOT NULL,
    quantity       BIGINT NOT NULL,
    unit_price     NUMERIC NOT NULL,
    discount       NUMERIC NOT NULL,
    fees           NUMERIC NOT NULL,
    seller_account TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, order_id, line_no)
);
CREATE INDEX order_lines_sku ON order_lines (tenant_id, sku);

CREATE TABLE product_daily (
    id        BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id BIGINT NOT NULL,
    sku       TEXT COLLATE "C" NOT NULL,
    date      DATE NOT NULL,
    sessions  BIGINT,
    bsr       BIGINT,
    reviews   BIGINT,
    rating    NUMERIC,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku, date)
);

CREATE TABLE segments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT,
    kind        TEXT NOT NULL CHECK (kind IN ('customer', 'product')),
    rule_source TEXT NOT NULL CHECK (rule_source IN ('text', 'json')),
    rule_text   TEXT NOT NULL,        -- as written, or the printed form of a JSON rule
    -- As given, or the JSON form of a text rule. `json`, not `jsonb`: a JSON
    -- rule comes back with its key order and number text as given.
    rule_json   JSON NOT NULL,
    owner       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE tier_schemes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    marketplace TEXT COLLATE "C" NOT NULL,        -- '' is the fallback scheme
    metric      TEXT NOT NULL CHECK (metric IN ('orders', 'units', 'revenue', 'profit')),
    tiers       JSONB NOT NULL,       -- [{"name", "threshold": "decimal"}], highest first
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, marketplace)
);

CREATE TABLE memberships (
    tenant_id BIGINT NOT NULL,
    segment   TEXT COLLATE "C" NOT NULL,
    entity    TEXT COLLATE "C" NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('customer', 'product')),
    since     BIGINT,                 -- NULL: present before a wholesale reset
    PRIMARY KEY (tenant_id, segment, entity)
);

CREATE TABLE customer_tiers (
    tenant_id   BIGINT NOT NULL,
    customer_id TEXT COLLATE "C" NOT NULL,
    tier        TEXT NOT NULL,
    since       BIGINT,
    PRIMARY KEY (tenant_id, customer_id)
);

CREATE TABLE events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    tenant_id  BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    change_seq BIGINT,                 -- NULL: caused by time
    type       TEXT NOT NULL CHECK (type IN ('enter', 'exit', 'tier')),
    kind       TEXT CHECK (kind IN ('customer', 'product')),  -- enter/exit
    segment    TEXT,
    entity     TEXT NOT NULL,          -- customer id or sku
    tier_from  TEXT,
    tier_to    TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE count_history (
    tenant_id BIGINT NOT NULL REFERENCES tenants(id),
    segment   TEXT COLLATE "C" NOT NULL,
    day       DATE NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment, day)
);

CREATE TABLE imports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   BIGINT NOT NULL REFERENCES tenants(id),
    state       TEXT NOT NULL CHECK (state IN ('running', 'done', 'abandoned')),
    started_at  BIGINT NOT NULL,
    finished_at BIGINT,
    report      JSONB                  -- counts, once done
);
CREATE INDEX imports_running ON imports (id) WHERE state = 'running';

-- Staging: rows of a running import, moved into the tables at its end.
-- Plain tables: a batch that was committed is there after a crash, and the
-- next import's clean-up removes it. Decimals, tags and custom attributes
-- are staged as text and parsed by the merge (the client library's binary
-- NUMERIC drops the scale of a zero: 0.00 would come back as 0).
CREATE TABLE stage_products (
    import_id BIGINT NOT NULL, seq BIGINT NOT NULL,
    sku TEXT NOT NULL, parent_sku TEXT, asin TEXT, title TEXT, brand TEXT, category TEXT,
    tags TEXT NOT NULL, seller_account TEXT, marketplace TEXT, price TEXT, cost TEXT,
    inventory BIGINT, created_at BIGINT, custom TEXT NOT NULL,
    PRIMARY KEY (import_id, seq)
);

CREATE TABLE stage_customers (
    import_id BIGINT NOT NULL, seq BIGINT NOT NULL,
    customer_id TEXT NOT NULL, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
    city TEXT, marketplace TEXT, tags TEXT NOT NULL, accepts_marketing BOOLEAN,
    created_at BIGINT, custom TEXT NOT NULL,
    PRIMARY KEY (import_id, seq)
);

CREATE TABLE stage_lines (
    import_id BIGINT NOT NULL, seq BIGINT NOT NULL,
    order_id TEXT NOT NULL, line_no INTEGER NOT NULL, ordered_at BIGINT NOT NULL,
    customer_id TEXT, status TEXT NOT NULL, marketplace TEXT,
    sku TEXT NOT NULL, quantity BIGINT NOT NULL, unit_price TEXT NOT NULL,
    discount TEXT NOT NULL, fees TEXT NOT NULL, seller_account TEXT,
    PRIMARY KEY (import_id, seq)
);

CREATE TABLE stage_daily (
    import_id BIGINT NOT NULL, seq BIGINT NOT NULL,
    sku TEXT NOT NULL, date DATE NOT NULL, sessions BIGINT, bsr BIGINT, reviews BIGINT,
    rating TEXT,
    PRIMARY KEY (import_id, seq)
);
