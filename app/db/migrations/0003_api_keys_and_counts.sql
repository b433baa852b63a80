-- API keys with roles (docs/managers.md), and the store managers' count uploads.
--
-- A key is shown once at creation and stored only as the SHA-256 of the whole key:
-- the key is 256 random bits, so a plain hash is enough (no password stretching
-- needed) and a leaked table gives nothing to log in with. key_id is the key's
-- public part (it is in the key itself: sak_<key_id>_<secret>), so a lookup is by
-- primary key and the secret is compared in constant time in Python.

CREATE TABLE api_key (
    key_id       text PRIMARY KEY CHECK (key_id ~ '^[a-z0-9]{12}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role         text NOT NULL CHECK (role IN ('admin', 'store_manager', 'ingest', 'app')),
    -- The stores a store_manager key may read and write; empty for the other roles.
    store_ids    text[] NOT NULL DEFAULT '{}',
    secret_hash  bytea NOT NULL CHECK (length(secret_hash) = 32),
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK ((role = 'store_manager') = (cardinality(store_ids) > 0))
);

-- A count uploaded from a manager's spreadsheet is stored as a shelf_count feedback
-- (it acts as a count in the book position). This keeps what feedback cannot: the
-- manager's note and which key uploaded it. Same natural key as the feedback row.
CREATE TABLE manager_count (
    store_id    ident NOT NULL,
    sku         ident NOT NULL,
    counted_at  timestamptz NOT NULL,
    counted_qty integer NOT NULL CHECK (counted_qty >= 0),
    note        text,
    key_id      text,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (store_id, sku, counted_at, counted_qty)
);
