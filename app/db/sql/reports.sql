-- The store managers' reconciliation report (docs/managers.md). The thresholds and
-- weights are parameters; their meaning is in app/domain/reconciliation.py
-- (ReviewRules).

-- name: review_rows
-- One row per item of store $1 that needs a look at $2, highest priority first.
-- $3 disagreement_units, $4 silence_expected_sales, $5 short_pick_lookback,
-- $6 fast_seller_week_units, $7 max_count_age, $8 horizon_days,
-- $9..$12 weights: phantom, disagree, old count, held back.
WITH bp AS (
    SELECT * FROM book_position WHERE store_id = $1
), wh AS (
    -- The warehouse's figure: its row, or 0 when the store's latest snapshot omits the sku.
    SELECT bp.sku,
           CASE WHEN ws.sku IS NOT NULL THEN ws.on_hand WHEN wl.location_id IS NOT NULL THEN 0 END AS on_hand,
           CASE WHEN ws.sku IS NOT NULL THEN ws.reserved WHEN wl.location_id IS NOT NULL THEN 0 END AS reserved,
           COALESCE(ws.as_of, wl.as_of) AS as_of
    FROM bp
    LEFT JOIN warehouse_stock ws ON ws.location_id = $1 AND ws.sku = bp.sku
    LEFT JOIN warehouse_location wl ON wl.location_id = $1
), counts AS (
    -- A count is a POS count or a shelf count, ties broken as in positions.sql.
    SELECT e.sku, e.on_hand AS qty, e.occurred_at AS at, false AS shelf, e.event_id, e.feed
    FROM pos_event e
    WHERE e.store_id = $1 AND e.type = 'count' AND e.occurred_at <= $2
    UNION ALL
    SELECT f.sku, f.qty, f.observed_at, true, NULL, NULL
    FROM feedback f
    WHERE f.store_id = $1 AND f.kind = 'shelf_count' AND f.observed_at <= $2
), last_count AS (
    SELECT DISTINCT ON (sku) sku, qty, at
    FROM counts
    ORDER BY sku, at DESC, shelf DESC, CASE WHEN shelf THEN qty END ASC, event_id DESC, feed DESC
), ev AS (
    SELECT e.sku,
           sum(e.delta) FILTER (WHERE e.type <> 'count' AND e.occurred_at > wh.as_of) AS moved_since_snapshot,
           sum(e.delta) FILTER (WHERE e.type <> 'count' AND e.occurred_at > lc.at) AS moved_since_count,
           sum(e.qty) FILTER (WHERE e.type = 'sale' AND e.occurred_at > $2::timestamptz - interval '7 days') AS sales_7d,
           sum(e.qty) FILTER (WHERE e.type = 'sale' AND e.occurred_at > $2::timestamptz - interval '28 days') AS sales_28d,
           max(e.occurred_at) FILTER (WHERE e.type = 'sale') AS last_sale_at
    FROM pos_event e
    LEFT JOIN wh ON wh.sku = e.sku
    LEFT JOIN last_count lc ON lc.sku = e.sku
    WHERE e.store_id = $1 AND e.occurred_at <= $2
    GROUP BY e.sku
), picks AS (
    -- Short picks since the last count (within the lookback), and order picks of
    -- the last 7 days (demand the till does not see yet).
    SELECT f.sku,
           count(*) FILTER (WHERE f.kind = 'pick_short' AND f.observed_at > $2::timestamptz - $5::interval
                              AND (lc.at IS NULL OR f.observed_at > lc.at)) AS short_picks,
           count(*) FILTER (WHERE f.observed_at > $2::timestamptz - interval '7 days') AS picks_7d
    FROM feedback f
    LEFT JOIN last_count lc ON lc.sku = f.sku
    WHERE f.store_id = $1 AND f.kind IN ('pick_short', 'pick_found') AND f.observed_at <= $2
    GROUP BY f.sku
), facts AS (
    SELECT bp.sku, p.name, p.category, bp.book, bp.safety_buffer, bp.badge_state,
           bp.confidence, bp.reasons AS badge_reasons,
           wh.on_hand AS warehouse_on_hand, wh.reserved AS warehouse_reserved,
           wh.as_of AS warehouse_as_of,
           CASE WHEN wh.as_of IS NOT NULL THEN COALESCE(ev.moved_since_snapshot, 0) END AS pos_movements_since,
           lc.qty AS last_count_qty, lc.at AS last_count_at,
           (wh.on_hand - wh.reserved + COALESCE(ev.moved_since_snapshot, 0))::integer AS warehouse_view,
           (lc.qty + COALESCE(ev.moved_since_count, 0))::integer AS count_view,
           COALESCE(ev.sales_7d, 0)::integer AS sales_7d,
           COALESCE(ev.sales_28d, 0)::integer AS sales_28d,
           ev.last_sale_at,
           greatest(ev.last_sale_at, lc.at) AS silent_since,
           COALESCE(pk.short_picks, 0)::integer AS short_picks,
           COALESCE(pk.picks_7d, 0)::integer AS picks_7d
    FROM bp
    LEFT JOIN product p ON p.sku = bp.sku
    LEFT JOIN wh ON wh.sku = bp.sku
    LEFT JOIN last_count lc ON lc.sku = bp.sku
    LEFT JOIN ev ON ev.sku = bp.sku
    LEFT JOIN picks pk ON pk.sku = bp.sku
), judged AS (
    SELECT f.*,
           (f.count_view - f.warehouse_view) AS differ_by,
           abs(f.count_view - f.warehouse_view) >= $3::integer AS disagree,
           (f.badge_state NOT IN ('in_stock', 'low_stock') AND f.book - f.safety_buffer >= 1) AS held_back,
           (f.book > 0 AND f.sales_28d > 0 AND f.silent_since IS NOT NULL
              AND (f.sales_28d / 28.0 * extract(epoch FROM $2::timestamptz - f.silent_since) / 86400.0)::float8 >= $4::float8) AS silence,
           (f.book > 0 AND f.short_picks > 0) AS short_picked,
           (f.sales_7d >= $6::integer AND (f.last_count_at IS NULL OR f.last_count_at < $2::timestamptz - $7::interval)) AS old_count
    FROM facts f
), coded AS (
    SELECT j.*,
           array_remove(ARRAY[
               CASE WHEN j.silence THEN 'phantom_silence' END,
               CASE WHEN j.short_picked THEN 'phantom_short_picks' END,
               CASE WHEN j.disagree THEN 'records_disagree' END,
               CASE WHEN j.old_count THEN 'count_old_fast_seller' END,
               CASE WHEN j.held_back THEN 'badge_held_back' END], NULL) AS codes,
           CASE WHEN j.silence OR j.short_picked THEN 'check shelf and back room'
                WHEN j.disagree OR j.old_count THEN 'recount'
                WHEN j.held_back AND j.badge_reasons && ARRAY['silent_shelf', 'likely_in_back_room'] THEN 'check shelf and back room'
                WHEN j.held_back AND j.badge_reasons && ARRAY['low_confidence', 'sources_disagree', 'recent_loss'] THEN 'recount'
                ELSE 'none' END AS suggested_action,
           CASE WHEN j.silence OR j.short_picked THEN $9::float8
                WHEN j.disagree THEN $10::float8
                WHEN j.old_count THEN $11::float8
                ELSE $12::float8 END AS weight,
           (greatest(j.sales_7d::float8, j.sales_28d / 4.0) + j.picks_7d) / 7.0 * $8::float8 AS expected_sales
    FROM judged j
)
SELECT sku, name, category, book, safety_buffer, badge_state, confidence, badge_reasons,
       warehouse_on_hand, warehouse_reserved, warehouse_as_of, pos_movements_since,
       last_count_qty, last_count_at, warehouse_view, count_view, differ_by,
       sales_7d, sales_28d, last_sale_at, silent_since, short_picks, codes, suggested_action,
       CASE WHEN suggested_action = 'none' THEN 0
            ELSE round((expected_sales * weight)::numeric, 2)::float8 END AS priority
FROM coded
WHERE cardinality(codes) > 0
ORDER BY priority DESC, sku;

-- name: stores_with_positions
-- Stores the nightly export writes a report for.
SELECT DISTINCT store_id FROM book_position ORDER BY store_id;

-- name: review_summary
-- The report's rows (review_rows, spliced in by app/db/reports.py where the marker
-- is, so both share one definition), totalled per action and per reason; plus the
-- store's position count. Same parameters as review_rows.
WITH review AS (
    /* review_rows */
)
SELECT 'action' AS kind, suggested_action AS key, count(*) AS items,
       COALESCE(sum(priority), 0)::float8 AS priority
FROM review GROUP BY suggested_action
UNION ALL
SELECT 'reason', code, count(*), 0
FROM review, unnest(codes) AS code GROUP BY code
UNION ALL
SELECT 'positions', '', count(*), 0 FROM book_position WHERE store_id = $1;

-- name: store_known
SELECT EXISTS (SELECT 1 FROM store WHERE store_id = $1)
    OR EXISTS (SELECT 1 FROM book_position WHERE store_id = $1);
