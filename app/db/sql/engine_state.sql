-- What the live confidence engine reads to catch up (app/db/engine_state.py).

-- name: categories
SELECT sku, category FROM product;

-- name: look
-- What this transaction can see, taken before a catch-up's reads (what they read is
-- at least this), and its own id if it has one (see events_since).
SELECT pg_current_snapshot()::text AS snapshot, pg_current_xact_id_if_assigned()::text AS own;

-- name: events_since
-- POS events received at or after $1, in publication order, less those received at
-- exactly $1 that the engine has seen already ($2 feeds, $3 event ids) and, when $4
-- names a feed, less that feed's events this transaction stored (the caller has them:
-- a row's xmin is the transaction that inserted it). Also less those an earlier look
-- read ($5 snapshots, $6 own ids, $7 whether it took its own events in, $8 lower
-- bounds; from ``look``): an event received at or after a look's bound whose
-- transaction that look's snapshot saw complete, or the look's own transaction's when
-- it took them in (whether a transaction sees itself as complete in its own snapshot
-- depends on later ones, so its own are decided by $7). Events without stored_by
-- (stored before migration 0011) are never left out this way.
WITH looks AS MATERIALIZED (
    SELECT l.snapshot::pg_snapshot AS snapshot, l.own::xid8 AS own, l.taken, l.since
    FROM unnest($5::text[], $6::text[], $7::boolean[], $8::timestamptz[])
        AS l(snapshot, own, taken, since)
)
SELECT e.feed, e.event_id, e.type, e.store_id, e.sku, e.qty, e.on_hand, e.occurred_at,
       e.received_at
FROM pos_event e
LEFT JOIN unnest($2::text[], $3::text[]) AS seen(feed, event_id)
    ON e.received_at = $1 AND seen.feed = e.feed AND seen.event_id = e.event_id
WHERE e.received_at >= $1 AND seen.feed IS NULL
  AND ($4::text IS NULL OR NOT (e.feed = $4 AND e.xmin = pg_current_xact_id()::xid))
  AND NOT EXISTS (
      SELECT FROM looks l
      WHERE e.received_at >= l.since
        AND CASE WHEN e.stored_by = l.own THEN l.taken
                 ELSE pg_visible_in_snapshot(e.stored_by, l.snapshot) END)
ORDER BY e.received_at, e.occurred_at, e.feed, e.event_id;

-- name: feedback_since
-- Feedback received at or after $1, in publication order.
SELECT store_id, sku, kind, observed_at, qty, received_at
FROM feedback
WHERE received_at >= $1
ORDER BY received_at, observed_at, store_id, sku, kind, qty;

-- name: snapshots_in_force_since
-- Applied snapshots after $1 that still hold stock somewhere, with the locations
-- whose stock they hold and each location's as_of.
SELECT s.snapshot_id, s.received_at,
       array_agg(l.location_id ORDER BY l.location_id) AS locations,
       array_agg(l.as_of ORDER BY l.location_id) AS as_ofs
FROM warehouse_location l
JOIN warehouse_snapshot s ON s.snapshot_id = l.snapshot_id
WHERE l.snapshot_id > $1
GROUP BY s.snapshot_id, s.received_at
ORDER BY s.received_at, s.snapshot_id;

-- name: snapshot_rows
-- The rows in force at the locations $1 (a snapshot's, all of them: a row it left
-- as it was keeps the snapshot that wrote it): one row per location, its columns as
-- arrays in sku order (one round of decoding per location, not per row). A row's
-- as_of is NULL when it is its location's (the caller has those).
SELECT location_id, array_agg(sku) AS skus, array_agg(on_hand) AS on_hands,
       array_agg(reserved) AS reserveds, array_agg(in_transit) AS in_transits,
       array_agg(as_of) AS as_ofs
FROM (SELECT location_id, sku::text AS sku, on_hand, reserved, in_transit, as_of
      FROM warehouse_stock
      WHERE location_id = ANY($1::text[])
      ORDER BY location_id, sku) AS ordered
GROUP BY location_id
ORDER BY location_id;

-- name: save_calibration
-- A calibration map the engine used; the same map again returns its existing id.
WITH inserted AS (
    INSERT INTO engine_calibration (digest, labels, weights, bins, floors, unrecorded)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (digest) DO NOTHING
    RETURNING calibration_id
)
SELECT calibration_id FROM inserted
UNION ALL
SELECT calibration_id FROM engine_calibration WHERE digest = $1
LIMIT 1;

-- name: load_calibration
SELECT calibration_id, weights, bins, floors, unrecorded
FROM engine_calibration WHERE calibration_id = $1;
