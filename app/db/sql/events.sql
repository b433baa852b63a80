-- POS events, stored idempotently by (feed, event_id).

-- name: insert_events
-- One page (or the pages stored together) in one statement: $2 the events as a JSON
-- array of contract events (msgspec's encoding of PosEvent: "type" is the tag, a
-- count has "on_hand" and no "qty", the others the reverse), $3 the time of receipt;
-- the caller sends each event_id once. A redelivered event_id changes nothing.
-- Returns the event_ids that were new, in the order the engine takes events in
-- (occurred_at, then event_id, as engine_state.sql's events_since); the stores they
-- touch get their newest POS time advanced (capped at the receive time, so a device
-- with a clock in the future cannot keep a store looking fresh).
WITH new AS (
    INSERT INTO pos_event (feed, event_id, type, store_id, sku, qty, on_hand, occurred_at, received_at)
    SELECT $1, u.event_id, u.type, u.store_id, u.sku, u.qty, u.on_hand, u.occurred_at, $3
    FROM json_to_recordset($2::json) AS u(event_id text, type text, store_id text, sku text,
                                          qty integer, on_hand integer, occurred_at timestamptz)
    ON CONFLICT (feed, event_id) DO NOTHING
    RETURNING event_id, store_id, occurred_at
), fresh AS (
    INSERT INTO store_freshness AS f (store_id, last_pos_event_at)
    SELECT store_id, least(max(occurred_at), $3) FROM new GROUP BY store_id
    ON CONFLICT (store_id) DO UPDATE
    SET last_pos_event_at = greatest(f.last_pos_event_at, EXCLUDED.last_pos_event_at)
)
SELECT COALESCE(array_agg(event_id::text ORDER BY occurred_at, event_id), '{}') FROM new;
