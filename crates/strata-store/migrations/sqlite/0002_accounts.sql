-- Strata schema, version 2 (SQLite): accounts and rights.
-- Passwords are kept as argon2 PHC strings, session and API tokens only as
-- hashes of their secrets. Instants: INTEGER nanoseconds, as in version 1.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,    -- lower-cased by the program
    password_hash TEXT NOT NULL,
    admin         INTEGER NOT NULL CHECK (admin IN (0, 1)),
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL            -- expired from this instant on
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER                     -- NULL: in force
);
CREATE INDEX api_tokens_user ON api_tokens (user_id, id);

CREATE TABLE store_access (
    tenant_id         INTEGER NOT NULL REFERENCES tenants(id),
    user_id           INTEGER NOT NULL REFERENCES users(id),
    product_segments  TEXT NOT NULL CHECK (product_segments IN ('none', 'read', 'edit')),
    customer_segments TEXT NOT NULL CHECK (customer_segments IN ('none', 'read', 'edit')),
    tiers             TEXT NOT NULL CHECK (tiers IN ('none', 'read', 'edit')),
    PRIMARY KEY (tenant_id, user_id)
) WITHOUT ROWID;
CREATE INDEX store_access_user ON store_access (user_id, tenant_id);

-- A segment's owner is a user id. The version 1 column `owner` (TEXT) was
-- never written; `owner_id` replaces it, with a type and a key to check.
ALTER TABLE segments DROP COLUMN owner;
ALTER TABLE segments ADD COLUMN owner_id INTEGER REFERENCES users(id);

-- Shares go with their segment: deleting the segment deletes them first
-- (the key refuses it otherwise). `can_*`: DELETE is a keyword.
CREATE TABLE segment_shares (
    tenant_id  INTEGER NOT NULL,
    segment    TEXT NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    can_read   INTEGER NOT NULL CHECK (can_read IN (0, 1)),
    can_edit   INTEGER NOT NULL CHECK (can_edit IN (0, 1)),
    can_delete INTEGER NOT NULL CHECK (can_delete IN (0, 1)),
    expires_at INTEGER,                    -- NULL: never; else expired from this instant on
    granted_by INTEGER NOT NULL REFERENCES users(id),
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, segment, user_id),
    FOREIGN KEY (tenant_id, segment) REFERENCES segments (tenant_id, name)
) WITHOUT ROWID;
CREATE INDEX segment_shares_user ON segment_shares (tenant_id, user_id, segment);
