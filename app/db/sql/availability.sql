-- Stored badges (written by the reconcilers) as the read path needs them.

-- name: badge_at_store
-- One round trip: is the store known, is the sku known (a product or any
-- position), the pair's position and badge if any, and the store's freshness.
SELECT
    (SELECT EXISTS (SELECT 1 FROM store WHERE store_id = $1)) AS store_known,
    (SELECT EXISTS (SELECT 1 FROM product WHERE sku = $2)
         OR EXISTS (SELECT 1 FROM book_position WHERE sku = $2)) AS sku_known,
    bp.store_id IS NOT NULL AS has_position,
    bp.book, bp.base_at, bp.last_event_at, bp.badge_state, bp.safety_buffer,
    bp.confidence, bp.reasons, bp.badge_as_of, bp.computed_at,
    f.last_pos_event_at, f.snapshot_as_of AS store_snapshot_as_of
FROM (SELECT 1) AS one
LEFT JOIN book_position bp ON bp.store_id = $1 AND bp.sku = $2
LEFT JOIN store_freshness f ON f.store_id = $1;

-- name: badges_near
-- One round trip for nearby lookups of one or many skus ($1 text[], in order).
-- The centre is ($3, $4), or, when $2 (a postal code) is given, the centroid of
-- the stores with that postal code, compared without spaces or case (centre_lat
-- is null when no store has it). The
-- bounding box around the centre (radius $5 km) prefilters stores on the store
-- (lat, lon) index; near a pole or across the antimeridian the longitude span is
-- the whole circle, so the box never drops a store in range (exact distance is
-- checked by the caller). One row per (sku, store in box), or one row with a null
-- store_id for a sku with no store in the box.
WITH centre AS (
    SELECT CASE WHEN $2::text IS NULL THEN $3::float8 ELSE avg(s.lat) END AS lat,
           CASE WHEN $2::text IS NULL THEN $4::float8 ELSE avg(s.lon) END AS lon
    FROM store s
    WHERE upper(replace(s.postal_code, ' ', '')) = upper(replace($2::text, ' ', ''))
), box AS (
    SELECT c.lat, c.lon, degrees($5::float8 / 6371.0088) AS dlat,
           CASE WHEN abs(c.lat) + degrees($5::float8 / 6371.0088) >= 90 THEN 360.0
                ELSE degrees(asin(least(1.0, sin($5::float8 / 6371.0088) / cos(radians(c.lat)))))
           END AS dlon
    FROM centre c
), boxed AS (
    SELECT s.store_id, s.name, s.lat, s.lon,
           f.last_pos_event_at, f.snapshot_as_of AS store_snapshot_as_of
    FROM box b
    JOIN store s
      ON s.lat BETWEEN b.lat - b.dlat AND b.lat + b.dlat
     AND (b.lon - b.dlon < -180 OR b.lon + b.dlon > 180
          OR s.lon BETWEEN b.lon - b.dlon AND b.lon + b.dlon)
    LEFT JOIN store_freshness f ON f.store_id = s.store_id
), wanted AS (
    SELECT w.sku, w.ord,
           EXISTS (SELECT 1 FROM product p WHERE p.sku = w.sku)
               OR EXISTS (SELECT 1 FROM book_position k WHERE k.sku = w.sku) AS sku_known
    FROM unnest($1::text[]) WITH ORDINALITY AS w(sku, ord)
)
SELECT w.ord, w.sku, w.sku_known, c.lat AS centre_lat, c.lon AS centre_lon,
       st.store_id, st.name, st.lat, st.lon,
       bp.store_id IS NOT NULL AS has_position,
       bp.book, bp.base_at, bp.last_event_at, bp.badge_state, bp.safety_buffer,
       bp.confidence, bp.reasons, bp.badge_as_of, bp.computed_at,
       st.last_pos_event_at, st.store_snapshot_as_of
FROM wanted w
CROSS JOIN centre c
LEFT JOIN boxed st ON true
LEFT JOIN book_position bp ON bp.store_id = st.store_id AND bp.sku = w.sku
ORDER BY w.ord;

-- name: notify_badges_changed
-- Stored badges changed: wake every API process that caches them.
SELECT pg_notify('availability_changed', $1::text);

-- name: all_stores
-- Every store with its freshness, for the API's in-process read model.
SELECT s.store_id, s.name, s.lat, s.lon, s.postal_code,
       f.last_pos_event_at, f.snapshot_as_of AS store_snapshot_as_of
FROM store s
LEFT JOIN store_freshness f ON f.store_id = s.store_id
ORDER BY s.store_id;

-- name: stored_badges
-- The stored badges of the skus $1 (text[]) at the stores $2 (text[]), and whether
-- each sku is known (a product or any position). One row per (sku, store with a
-- position), or one row with a null store_id for a sku with none of them.
SELECT w.sku,
       EXISTS (SELECT 1 FROM product p WHERE p.sku = w.sku)
           OR EXISTS (SELECT 1 FROM book_position k WHERE k.sku = w.sku) AS sku_known,
       bp.store_id, bp.store_id IS NOT NULL AS has_position,
       bp.book, bp.base_at, bp.last_event_at, bp.badge_state, bp.safety_buffer,
       bp.confidence, bp.reasons, bp.badge_as_of, bp.computed_at
FROM unnest($1::text[]) AS w(sku)
LEFT JOIN book_position bp ON bp.sku = w.sku AND bp.store_id = ANY ($2::text[]);
