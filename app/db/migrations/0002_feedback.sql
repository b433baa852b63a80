-- Feedback: what staff and orders observed on the shelf (contract "Feedback").
-- Stored idempotently by its natural key: the same observation posted again (same
-- store, sku, kind, instant and qty) is one row. A shelf_count also acts as a POS
-- count in the book position (app/db/sql/positions.sql); pick outcomes are kept for
-- the confidence engine to learn record accuracy from.

CREATE TABLE feedback (
    store_id    ident NOT NULL,
    sku         ident NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('shelf_count', 'pick_found', 'pick_short')),
    observed_at timestamptz NOT NULL,
    -- shelf_count: units counted; pick_found: units wanted (all found);
    -- pick_short: units found (0: none), fewer than wanted.
    qty         integer NOT NULL CHECK (qty >= 0 AND (kind <> 'pick_found' OR qty >= 1)),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (store_id, sku, kind, observed_at, qty)
);
-- The primary key serves "latest shelf_count of a pair" (store_id, sku, kind prefix).

-- Feedback observed after it was received (a device clock ahead) applies when due;
-- the badge refresh job finds those with this small index.
CREATE INDEX feedback_future ON feedback (observed_at) WHERE observed_at > received_at;

-- Likewise POS events that were future-dated when received.
CREATE INDEX pos_event_future ON pos_event (occurred_at) WHERE occurred_at > received_at;

-- What the engine learns from: one row per pick, wanted units when known.
CREATE VIEW pick_outcome AS
SELECT store_id, sku, observed_at, received_at,
       kind = 'pick_found' AS found,
       qty AS qty_found,
       CASE WHEN kind = 'pick_found' THEN qty END AS qty_wanted
FROM feedback
WHERE kind IN ('pick_found', 'pick_short');
