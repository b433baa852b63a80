-- Foundation: stores, products, feeds, POS events, warehouse snapshots, book positions.
-- Identifiers follow the contract: 1 to 64 of A-Z a-z 0-9 . _ - :

CREATE DOMAIN ident AS text CHECK (VALUE ~ '^[A-Za-z0-9._:-]{1,64}$');

CREATE TABLE store (
    store_id    ident PRIMARY KEY,
    name        text NOT NULL,
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    postal_code text,
    timezone    text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX store_lat_lon ON store (lat, lon);

CREATE TABLE product (
    sku        ident PRIMARY KEY,
    name       text,
    category   text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per configured feed: its resume point and its health.
CREATE TABLE feed (
    name                 text PRIMARY KEY,
    kind                 text NOT NULL CHECK (kind IN ('pos', 'warehouse')),
    url                  text NOT NULL,
    cursor               text,
    etag                 text,
    last_attempt_at      timestamptz,
    last_success_at      timestamptz,
    last_error           text,
    last_error_at        timestamptz,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_rows            bigint,
    last_duration_ms     double precision,
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- POS events, idempotent by (feed, event_id). delta is the signed book movement.
CREATE TABLE pos_event (
    feed        text NOT NULL REFERENCES feed (name),
    event_id    ident NOT NULL,
    type        text NOT NULL CHECK (type IN ('sale', 'return', 'receipt', 'adjustment', 'count')),
    store_id    ident NOT NULL,
    sku         ident NOT NULL,
    qty         integer,
    on_hand     integer,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    delta       integer GENERATED ALWAYS AS (
                    CASE type WHEN 'sale' THEN -qty WHEN 'count' THEN NULL ELSE qty END) STORED,
    PRIMARY KEY (feed, event_id),
    CHECK (CASE type
             WHEN 'count' THEN on_hand IS NOT NULL AND on_hand >= 0 AND qty IS NULL
             WHEN 'adjustment' THEN qty IS NOT NULL AND qty <> 0 AND on_hand IS NULL
             ELSE qty IS NOT NULL AND qty > 0 AND on_hand IS NULL END)
);
CREATE INDEX pos_event_pair ON pos_event (store_id, sku, occurred_at);

-- Every snapshot pulled, applied or not. Rows of quarantined snapshots are kept in
-- warehouse_snapshot_row so an operator can inspect (and later release) them.
CREATE TABLE warehouse_snapshot (
    snapshot_id bigserial PRIMARY KEY,
    feed        text NOT NULL REFERENCES feed (name),
    etag        text,
    status      text NOT NULL CHECK (status IN ('applied', 'quarantined')),
    reason      text,
    row_count   bigint,
    locations   integer,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX warehouse_snapshot_feed ON warehouse_snapshot (feed, snapshot_id DESC);

CREATE TABLE warehouse_snapshot_row (
    snapshot_id bigint NOT NULL REFERENCES warehouse_snapshot (snapshot_id) ON DELETE CASCADE,
    location_id ident NOT NULL,
    sku         ident NOT NULL,
    on_hand     integer NOT NULL,
    reserved    integer NOT NULL,
    in_transit  integer NOT NULL,
    as_of       timestamptz NOT NULL,
    PRIMARY KEY (snapshot_id, location_id, sku)
);

-- The system of record in force: latest row per (location, sku).
CREATE TABLE warehouse_stock (
    location_id ident NOT NULL,
    sku         ident NOT NULL,
    on_hand     integer NOT NULL CHECK (on_hand >= 0),
    reserved    integer NOT NULL CHECK (reserved >= 0),
    in_transit  integer NOT NULL CHECK (in_transit >= 0),
    as_of       timestamptz NOT NULL,
    snapshot_id bigint NOT NULL,
    PRIMARY KEY (location_id, sku)
);

-- Latest snapshot that named each location: a sku it does not list has 0 units then.
CREATE TABLE warehouse_location (
    location_id ident PRIMARY KEY,
    as_of       timestamptz NOT NULL,
    snapshot_id bigint NOT NULL
);

-- Newest data the service holds per store; the staleness gate reads it.
CREATE TABLE store_freshness (
    store_id          ident PRIMARY KEY,
    last_pos_event_at timestamptz,
    snapshot_as_of    timestamptz
);

-- Book position per (store, sku) with its inputs' times, and the badge computed from it.
CREATE TABLE book_position (
    store_id       ident NOT NULL,
    sku            ident NOT NULL,
    book           integer,
    base_source    text CHECK (base_source IN ('snapshot', 'count')),
    base_at        timestamptz,
    snapshot_as_of timestamptz,
    last_event_at  timestamptz,
    in_transit     integer NOT NULL DEFAULT 0,
    badge_state    text NOT NULL CHECK (badge_state IN ('in_stock', 'low_stock', 'unavailable', 'unknown')),
    safety_buffer  integer NOT NULL,
    confidence     double precision,
    reasons        text[] NOT NULL DEFAULT '{}',
    badge_as_of    timestamptz,
    computed_at    timestamptz NOT NULL,
    PRIMARY KEY (store_id, sku)
);
CREATE INDEX book_position_sku ON book_position (sku, store_id);
