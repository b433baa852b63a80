-- Retention: the old rows no answer reads any more (app/db/retention.py).

-- name: prune_events
-- One batch: the next $6 events received before $1 (the cut-off), in (received_at,
-- feed, event_id) order after the cursor ($3, $4, $5), and of those, deleted, the ones
-- that can no longer change a book, a badge or a reconciliation report at $2 (now) or
-- later. An event goes only when all of these hold:
--   * it occurred before the cut-off too (the engine's window and the report's 28 days
--     of sales lie after it: settings keep the cut-off at least 28 days back);
--   * it occurred before its pair's stored base (the snapshot row or count the book
--     starts from; bases only move forward: an older snapshot is refused) and before
--     the snapshot in force (the report's warehouse view adds movements since that);
--   * it occurred before the pair's latest count, POS or shelf, if the pair has one (the
--     report's count view adds movements since that);
--   * the pair has a newer event (its newest, the book's last_event_at, stays) and, for
--     a sale, a newer sale (the report's last sale stays), both at or before now.
-- Pairs without a stored position keep every event. Returns how many events the batch
-- read and deleted, and the cursor to go on from (no row: nothing left to read).
WITH candidate AS MATERIALIZED (
    SELECT e.feed, e.event_id, e.store_id, e.sku, e.type, e.occurred_at, e.received_at
    FROM pos_event e
    WHERE e.received_at < $1 AND e.received_at >= $3
      AND (e.received_at, e.feed, e.event_id::text) > ($3, $4::text, $5::text)
    ORDER BY e.received_at, e.feed, e.event_id
    LIMIT $6
), pair AS MATERIALIZED (
    SELECT p.store_id, p.sku, bp.base_at, bp.snapshot_as_of,
           (SELECT max(n.occurred_at) FROM pos_event n
            WHERE n.store_id = p.store_id AND n.sku = p.sku AND n.occurred_at <= $2) AS newest_at,
           (SELECT max(n.occurred_at) FROM pos_event n
            WHERE n.store_id = p.store_id AND n.sku = p.sku AND n.type = 'sale'
              AND n.occurred_at <= $2) AS newest_sale_at,
           greatest(
               (SELECT max(k.occurred_at) FROM pos_event k
                WHERE k.store_id = p.store_id AND k.sku = p.sku AND k.type = 'count'
                  AND k.occurred_at <= $2),
               (SELECT max(f.observed_at) FROM feedback f
                WHERE f.store_id = p.store_id AND f.sku = p.sku AND f.kind = 'shelf_count'
                  AND f.observed_at <= $2)) AS counted_at
    FROM (SELECT DISTINCT c.store_id, c.sku FROM candidate c WHERE c.occurred_at < $1) AS p
    JOIN book_position bp ON bp.store_id = p.store_id AND bp.sku = p.sku
    WHERE bp.base_at IS NOT NULL
), doomed AS (
    SELECT c.feed, c.event_id
    FROM candidate c
    JOIN pair p ON p.store_id = c.store_id AND p.sku = c.sku
    WHERE c.occurred_at < $1
      AND c.occurred_at < p.base_at
      AND (p.snapshot_as_of IS NULL OR c.occurred_at < p.snapshot_as_of)
      AND (p.counted_at IS NULL OR c.occurred_at < p.counted_at)
      AND c.occurred_at < p.newest_at
      AND (c.type <> 'sale' OR c.occurred_at < p.newest_sale_at)
), gone AS (
    DELETE FROM pos_event e
    USING doomed d
    WHERE e.feed = d.feed AND e.event_id = d.event_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM candidate) AS scanned,
       (SELECT count(*) FROM gone) AS deleted,
       last.received_at, last.feed, last.event_id
FROM (SELECT c.received_at, c.feed, c.event_id::text AS event_id
      FROM candidate c
      ORDER BY c.received_at DESC, c.feed DESC, c.event_id DESC
      LIMIT 1) AS last;

-- name: prune_feedback
-- One batch of feedback, as prune_events does events: the next $9 rows received before
-- $1 after the cursor ($3..$8, in (received_at, store_id, sku, kind, observed_at, qty)
-- order), and of those, deleted, the ones observed before $1 that no answer reads any
-- more: a pick outcome (the engine learns from 14 days of them, the report from its
-- look-back, 14 days by default, and 7 days, the metrics from 24 hours), and a shelf
-- count that a newer count of its pair (POS or shelf, at or before $2, now) has
-- replaced (the book's base and the report's last count are the latest). Returns what
-- prune_events returns, with the cursor's six parts.
WITH candidate AS MATERIALIZED (
    SELECT f.store_id, f.sku, f.kind, f.observed_at, f.qty, f.received_at
    FROM feedback f
    WHERE f.received_at < $1 AND f.received_at >= $3
      AND (f.received_at, f.store_id::text, f.sku::text, f.kind, f.observed_at, f.qty)
          > ($3, $4::text, $5::text, $6::text, $7::timestamptz, $8::integer)
    ORDER BY f.received_at, f.store_id, f.sku, f.kind, f.observed_at, f.qty
    LIMIT $9
), doomed AS (
    SELECT c.store_id, c.sku, c.kind, c.observed_at, c.qty
    FROM candidate c
    WHERE c.observed_at < $1
      AND (c.kind <> 'shelf_count'
           OR EXISTS (SELECT FROM feedback n
                      WHERE n.store_id = c.store_id AND n.sku = c.sku AND n.kind = 'shelf_count'
                        AND n.observed_at > c.observed_at AND n.observed_at <= $2)
           OR EXISTS (SELECT FROM pos_event k
                      WHERE k.store_id = c.store_id AND k.sku = c.sku AND k.type = 'count'
                        AND k.occurred_at > c.observed_at AND k.occurred_at <= $2))
), gone AS (
    DELETE FROM feedback f
    USING doomed d
    WHERE f.store_id = d.store_id AND f.sku = d.sku AND f.kind = d.kind
      AND f.observed_at = d.observed_at AND f.qty = d.qty
    RETURNING 1
)
SELECT (SELECT count(*) FROM candidate) AS scanned,
       (SELECT count(*) FROM gone) AS deleted,
       last.received_at, last.store_id, last.sku, last.kind, last.observed_at, last.qty
FROM (SELECT c.received_at, c.store_id::text AS store_id, c.sku::text AS sku, c.kind,
             c.observed_at, c.qty
      FROM candidate c
      ORDER BY c.received_at DESC, c.store_id DESC, c.sku DESC, c.kind DESC,
               c.observed_at DESC, c.qty DESC
      LIMIT 1) AS last;

-- name: prune_quarantined
-- Quarantined snapshots received before $1, with their kept rows (ON DELETE CASCADE):
-- a quarantine waits for an operator to look (the admin API), not for months, and a
-- full one keeps a million rows. Applied snapshots' records (one row each) stay.
WITH gone AS (
    DELETE FROM warehouse_snapshot
    WHERE status = 'quarantined' AND received_at < $1
    RETURNING snapshot_id
)
SELECT count(*) FROM gone;
