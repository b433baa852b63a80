-- Admin API: quarantined snapshots and their release.

-- name: list_snapshots
-- Newest first; $1 a status or NULL for all, $2 a feed or NULL, $3 the most rows.
SELECT s.snapshot_id, s.feed, s.etag, s.status, s.reason, s.row_count, s.locations,
       s.received_at,
       (SELECT count(*) FROM warehouse_snapshot_row r WHERE r.snapshot_id = s.snapshot_id)
           AS rows_kept
FROM warehouse_snapshot s
WHERE ($1::text IS NULL OR s.status = $1) AND ($2::text IS NULL OR s.feed = $2)
ORDER BY s.snapshot_id DESC
LIMIT $3;

-- name: snapshot_for_update
SELECT snapshot_id, feed, etag, status, reason, row_count, locations, received_at,
       (SELECT count(*) FROM warehouse_snapshot_row r WHERE r.snapshot_id = s.snapshot_id)
           AS rows_kept
FROM warehouse_snapshot s
WHERE snapshot_id = $1
FOR UPDATE;

-- name: applied_since
-- The first snapshot of the same feed applied after $2 (a release must not undo it).
SELECT snapshot_id
FROM warehouse_snapshot
WHERE feed = $1 AND status = 'applied' AND snapshot_id > $2
ORDER BY snapshot_id
LIMIT 1;

-- name: kept_locations
SELECT DISTINCT location_id FROM warehouse_snapshot_row WHERE snapshot_id = $1;

-- name: newer_in_force
-- Locations the snapshot names whose stock in force is newer than the snapshot's rows.
SELECT l.location_id, l.as_of AS in_force_as_of, k.as_of AS snapshot_as_of
FROM (SELECT location_id, max(as_of) AS as_of
      FROM warehouse_snapshot_row
      WHERE snapshot_id = $1
      GROUP BY location_id) AS k
JOIN warehouse_location l USING (location_id)
WHERE l.as_of > k.as_of
ORDER BY l.location_id
LIMIT 5;

-- name: stage_kept_rows
-- The kept (typed, validated) rows into the pull's staging table, as COPY would.
INSERT INTO warehouse_staging (location_id, sku, on_hand, reserved, in_transit, as_of)
SELECT location_id, sku, on_hand::text, reserved::text, in_transit::text, as_of::text
FROM warehouse_snapshot_row
WHERE snapshot_id = $1
ORDER BY location_id, sku;

-- name: mark_released
UPDATE warehouse_snapshot
SET status = 'applied',
    reason = 'released by an operator at ' || $2::timestamptz || '; was quarantined: '
             || coalesce(reason, '')
WHERE snapshot_id = $1;
