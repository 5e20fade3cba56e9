-- Strata schema, version 2 (PostgreSQL): accounts and rights; the same
-- tables as the SQLite schema.
-- Passwords are kept as argon2 PHC strings, session and API tokens only as
-- hashes of their secrets. Instants: BIGINT nanoseconds, as in version 1.
-- These tables are small: they have their foreign keys, except to
-- `tenants`: the key check would share-lock the tenant's row, which an
-- import's merge holds for minutes (writes here check their tenant first).

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT COLLATE "C" NOT NULL UNIQUE,    -- lower-cased by the program
    password_hash TEXT NOT NULL,
    admin         BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL             -- expired from this instant on
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT                      -- NULL: in force
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);

CREATE TABLE store_access (
    tenant_id         BIGINT NOT NULL,
    user_id           BIGINT NOT NULL REFERENCES users(id),
    product_segments  TEXT NOT NULL CHECK (product_segments IN ('none', 'read', 'edit')),
    customer_segments TEXT NOT NULL CHECK (customer_segments IN ('none', 'read', 'edit')),
    tiers             TEXT NOT NULL CHECK (tiers IN ('none', 'read', 'edit')),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX store_access_user ON store_access (user_id, tenant_id);

-- A segment's owner is a user id. The version 1 column `owner` (TEXT) was
-- never written; `owner_id` replaces it, with a type and a key to check.
ALTER TABLE segments DROP COLUMN owner;
ALTER TABLE segments ADD COLUMN owner_id BIGINT REFERENCES users(id);

-- Shares go with their segment: deleting the segment deletes them first
-- (the key refuses it otherwise). `can_*`: DELETE is a keyword.
CREATE TABLE segment_shares (
    tenant_id  BIGINT NOT NULL,
    segment    TEXT COLLATE "C" NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users(id),
    can_read   BOOLEAN NOT NULL,
    can_edit   BOOLEAN NOT NULL,
    can_delete BOOLEAN NOT NULL,
    expires_at BIGINT,                     -- NULL: never; else expired from this instant on
    granted_by BIGINT NOT NULL REFERENCES users(id),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, segment, user_id),
    FOREIGN KEY (tenant_id, segment) REFERENCES segments (tenant_id, name)
);
CREATE INDEX segment_shares_user ON segment_shares (tenant_id, user_id, segment);
