-- Exports: what the service promises, per (store, sku), for outside feeds.

-- name: google_local_positions
-- Every position with its badge and buffer, in a stable order (streamed by a cursor).
SELECT store_id, sku, badge_state, book, safety_buffer
FROM book_position
ORDER BY store_id, sku;
