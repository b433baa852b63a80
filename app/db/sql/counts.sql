-- Store managers' counts (docs/managers.md). A count is stored as a shelf_count
-- feedback (it acts as a count in the book); manager_count keeps its note and key.

-- name: positions_of
-- The stored book and badge of some skus of one store.
SELECT sku, book, badge_state
FROM book_position
WHERE store_id = $1 AND sku = ANY($2::text[]);

-- name: insert_manager_counts
-- Idempotent by the count's natural key; returns the counts that were new.
INSERT INTO manager_count (store_id, sku, counted_at, counted_qty, note, key_id, received_at)
SELECT $1, u.sku, u.counted_at, u.counted_qty, u.note, $6, $7
FROM unnest($2::text[], $3::timestamptz[], $4::integer[], $5::text[])
     AS u(sku, counted_at, counted_qty, note)
ON CONFLICT (store_id, sku, counted_at, counted_qty) DO NOTHING
RETURNING sku;
