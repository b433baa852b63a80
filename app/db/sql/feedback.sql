-- Feedback (what staff and orders observed on the shelf), stored idempotently by its
-- natural key (store_id, sku, kind, observed_at, qty).

-- name: insert_feedback
-- One batch in one statement; an observation already stored (also twice in one
-- batch) changes nothing. Returns the rows that were new.
INSERT INTO feedback (store_id, sku, kind, observed_at, qty, received_at)
SELECT u.store_id, u.sku, u.kind, u.observed_at, u.qty, $6
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[])
     AS u(store_id, sku, kind, observed_at, qty)
ON CONFLICT (store_id, sku, kind, observed_at, qty) DO NOTHING
RETURNING store_id, sku, kind;
