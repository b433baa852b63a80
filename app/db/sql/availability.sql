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

-- name: badges_in_box
-- One round trip for the nearby lookup: whether the sku is known, and every store
-- in the bounding box (store (lat, lon) index) with its position and freshness.
-- The first row always exists; store_id is null on it when the box is empty.
WITH known AS (
    SELECT EXISTS (SELECT 1 FROM product WHERE sku = $1)
        OR EXISTS (SELECT 1 FROM book_position WHERE sku = $1) AS sku_known
), boxed AS (
    SELECT s.store_id, s.name, s.lat, s.lon,
           bp.store_id IS NOT NULL AS has_position,
           bp.book, bp.base_at, bp.last_event_at, bp.badge_state, bp.safety_buffer,
           bp.confidence, bp.reasons, bp.badge_as_of, bp.computed_at,
           f.last_pos_event_at, f.snapshot_as_of AS store_snapshot_as_of
    FROM store s
    LEFT JOIN book_position bp ON bp.store_id = s.store_id AND bp.sku = $1
    LEFT JOIN store_freshness f ON f.store_id = s.store_id
    WHERE s.lat BETWEEN $2 AND $3 AND s.lon BETWEEN $4 AND $5
)
SELECT known.sku_known, boxed.*
FROM known LEFT JOIN boxed ON true;
