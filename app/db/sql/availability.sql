-- Stored badges (written by the reconcilers) as the read path needs them.

-- name: notify_badges_changed
-- Stored badges changed: wake every API process that caches them.
SELECT pg_notify('availability_changed', $1::text);

-- name: all_stores
-- Every store with its freshness, for the API's in-process read model; on every row
-- (one statement for the model's load) the newest calibration map's unrecorded shelf
-- (NULL before any map), what the API answers for a pair with no position. As text[]:
-- asyncpg decodes that without the type lookup (three round trips on a new connection)
-- a double precision[] costs; the floats print exactly.
SELECT s.store_id, s.name, s.lat, s.lon, s.postal_code,
       f.last_pos_event_at, f.snapshot_as_of AS store_snapshot_as_of,
       (SELECT c.unrecorded::text[] FROM engine_calibration c
        ORDER BY c.calibration_id DESC LIMIT 1) AS unrecorded
FROM store s
LEFT JOIN store_freshness f ON f.store_id = s.store_id
ORDER BY s.store_id;

-- name: stored_badges
-- The stored badges of the skus $1 (text[]) at the stores $2 (text[]), and whether
-- each sku is known (a product or any position). One row per (sku, store with a
-- position), or one row with a null store_id for a sku with none of them.
-- With each position: what reassessing it for another qty or pickup time needs (the
-- engine's evidence record, the position's inputs, the product's category).
SELECT w.sku,
       p.sku IS NOT NULL
           OR EXISTS (SELECT 1 FROM book_position k WHERE k.sku = w.sku) AS sku_known,
       p.category,
       bp.store_id, bp.store_id IS NOT NULL AS has_position,
       bp.book, bp.base_source, bp.base_at, bp.snapshot_as_of, bp.last_event_at,
       bp.badge_state, bp.safety_buffer, bp.confidence, bp.reasons, bp.badge_as_of,
       bp.computed_at, bp.evidence
FROM unnest($1::text[]) AS w(sku)
LEFT JOIN product p ON p.sku = w.sku
LEFT JOIN book_position bp ON bp.sku = w.sku AND bp.store_id = ANY ($2::text[]);

-- name: stored_pairs
-- The stored badges of exactly the (store, sku) pairs ($1 text[] store ids, $2 text[]
-- skus, in step), as stored_badges reads them: one row per pair asked for.
SELECT w.sku, p.category, w.store_id AS asked_store_id,
       bp.store_id, bp.store_id IS NOT NULL AS has_position,
       bp.book, bp.base_source, bp.base_at, bp.snapshot_as_of, bp.last_event_at,
       bp.badge_state, bp.safety_buffer, bp.confidence, bp.reasons, bp.badge_as_of,
       bp.computed_at, bp.evidence
FROM unnest($1::text[], $2::text[]) AS w(store_id, sku)
LEFT JOIN product p ON p.sku = w.sku
LEFT JOIN book_position bp ON bp.store_id = w.store_id AND bp.sku = w.sku;
