-- Book positions, set-wise, exactly as the contract defines them (the reference is
-- app/domain/book.py; tests/test_positions.py holds the two equal).

-- name: lock_stores
-- Serialise recomputes that touch the same stores until commit, so a recompute
-- always runs after the inputs of any other in-flight one are committed (no lost
-- update between the POS and warehouse pullers). Keys in one order: no deadlock.
SELECT count(pg_advisory_xact_lock(24245, k))
FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest($1::text[]) AS s ORDER BY 1) AS keys;

-- name: book_rule
-- The book of every pair of a ``pairs`` CTE (store_id, sku) that the caller puts in
-- front (app/db/positions.py: ``pairs_named``, ``pairs_of_stores``,
-- ``pairs_of_snapshot``), as the CTE ``booked`` that ``book_compared`` or
-- ``book_plain`` reads; the one SQL definition of the contract's book rule.
-- $1 the pairs' stores: a whole-store recompute filters every table by them (each
-- "AND <alias>.<store column> = ANY($1::text[])"), so no join scans the whole table;
-- for named pairs positions.py drops those filters (the pairs join by index), $2 now.
-- Base: the warehouse row (on_hand - reserved at as_of, the row's own or else its
-- location's); 0 at the location's as_of when its latest snapshot does not list the
-- sku; the latest count strictly later replaces it. Counts are POS `count` events and
-- `shelf_count` feedback alike (the contract: a shelf count "also acts as a count").
-- Ties at one instant: a shelf count beats a POS count (a person looked at the
-- shelf), the smaller of two shelf counts wins (no promise on the higher guess), and
-- between POS counts the larger event_id (then feed) wins. Then every movement
-- strictly after the base time and <= now. last_event_at is the newest POS event or
-- count <= now.
-- $3 only_changed: leave out pairs whose book, base source and units in transit come
-- out as stored, with a stored badge that is not unknown and was assessed ($4: an
-- engine assesses this recompute) as this one would be (a snapshot's recompute).
snap AS (
    SELECT p.store_id, p.sku,
           CASE WHEN ws.location_id IS NOT NULL THEN ws.on_hand - ws.reserved
                WHEN wl.location_id IS NOT NULL THEN 0 END AS snap_qty,
           CASE WHEN ws.location_id IS NOT NULL THEN COALESCE(ws.as_of, wl.as_of)
                ELSE wl.as_of END AS snap_at,
           COALESCE(ws.in_transit, 0) AS in_transit
    FROM pairs p
    LEFT JOIN warehouse_stock ws
        ON ws.location_id = p.store_id AND ws.sku = p.sku AND ws.location_id = ANY($1::text[])
    LEFT JOIN warehouse_location wl ON wl.location_id = p.store_id
), counts AS (
    SELECT e.store_id, e.sku, e.on_hand, e.occurred_at, false AS shelf, e.event_id, e.feed
    FROM pos_event e
    JOIN pairs p ON p.store_id = e.store_id AND p.sku = e.sku
    WHERE e.type = 'count' AND e.store_id = ANY($1::text[]) AND e.occurred_at <= $2
    UNION ALL
    SELECT f.store_id, f.sku, f.qty, f.observed_at, true, NULL, NULL
    FROM feedback f
    JOIN pairs p ON p.store_id = f.store_id AND p.sku = f.sku
    WHERE f.kind = 'shelf_count' AND f.store_id = ANY($1::text[]) AND f.observed_at <= $2
), latest_count AS (
    SELECT DISTINCT ON (c.store_id, c.sku) c.store_id, c.sku, c.on_hand, c.occurred_at
    FROM counts c
    ORDER BY c.store_id, c.sku, c.occurred_at DESC, c.shelf DESC,
             CASE WHEN c.shelf THEN c.on_hand END ASC, c.event_id DESC, c.feed DESC
), base AS (
    SELECT s.store_id, s.sku, s.in_transit, s.snap_at AS snapshot_as_of,
           (c.occurred_at IS NOT NULL AND (s.snap_at IS NULL OR c.occurred_at > s.snap_at)) AS counted,
           s.snap_qty, s.snap_at, c.on_hand AS count_qty, c.occurred_at AS count_at
    FROM snap s
    LEFT JOIN latest_count c ON c.store_id = s.store_id AND c.sku = s.sku
), based AS (
    SELECT store_id, sku, in_transit, snapshot_as_of, count_at,
           CASE WHEN counted THEN 'count' WHEN snap_at IS NOT NULL THEN 'snapshot' END AS base_source,
           CASE WHEN counted THEN count_qty ELSE snap_qty END AS base_qty,
           CASE WHEN counted THEN count_at ELSE snap_at END AS base_at
    FROM base
), moved AS (
    SELECT e.store_id, e.sku,
           sum(e.delta) FILTER (WHERE e.type <> 'count' AND e.occurred_at > b.base_at) AS moved,
           max(e.occurred_at) AS last_event_at
    FROM based b
    JOIN pos_event e ON e.store_id = b.store_id AND e.sku = b.sku
    WHERE e.occurred_at <= $2 AND e.store_id = ANY($1::text[])
    GROUP BY e.store_id, e.sku
), booked AS (
    SELECT b.store_id, b.sku,
           (b.base_qty + COALESCE(m.moved, 0))::integer AS book,
           b.base_source, b.base_at, b.snapshot_as_of,
           greatest(m.last_event_at, b.count_at) AS last_event_at, b.in_transit,
           pr.category,
           greatest(f.last_pos_event_at, f.snapshot_as_of) AS store_newest_at
    FROM based b
    LEFT JOIN moved m ON m.store_id = b.store_id AND m.sku = b.sku
    LEFT JOIN product pr ON pr.sku = b.sku
    LEFT JOIN store_freshness f ON f.store_id = b.store_id
)

-- name: moved_per_pair
-- book_rule's ``moved`` for named pairs (a POS page, feedback, the refresh, a
-- snapshot's candidates; positions.py puts it in place of the set-wise one): per
-- pair, the movements after its base through the index (store_id, sku, occurred_at),
-- and its newest event by one index probe. The set-wise form reads every event a pair
-- ever had (months of a fast seller's sales, per POS page); this reads the ones since
-- its base (a day's, with daily snapshots). A whole store's recompute keeps the
-- set-wise form: one pass over its events beats a million pairs' probes.
moved AS (
    SELECT b.store_id, b.sku,
           (SELECT sum(e.delta) FROM pos_event e
            WHERE e.store_id = b.store_id AND e.sku = b.sku AND e.type <> 'count'
              AND e.occurred_at > b.base_at AND e.occurred_at <= $2) AS moved,
           (SELECT max(e.occurred_at) FROM pos_event e
            WHERE e.store_id = b.store_id AND e.sku = b.sku AND e.occurred_at <= $2) AS last_event_at
    FROM based b
)

-- name: book_compared
-- book_rule's rows with whether the pair has a position (``stored``); $3
-- only_changed leaves out those book_rule describes under $3 and $4.
SELECT k.*, bp.store_id IS NOT NULL AS stored
FROM booked k
LEFT JOIN book_position bp
    ON bp.store_id = k.store_id AND bp.sku = k.sku AND bp.store_id = ANY($1::text[])
WHERE NOT ($3::boolean AND bp.store_id IS NOT NULL
           AND bp.book IS NOT DISTINCT FROM k.book
           AND bp.base_source IS NOT DISTINCT FROM k.base_source
           AND bp.in_transit = k.in_transit
           AND bp.badge_state <> 'unknown'
           AND (bp.evidence IS NOT NULL) = $4::boolean)

-- name: book_compared_per_pair
-- book_compared for named pairs with moved_per_pair: the stored position of each pair
-- by one probe of its key (LATERAL ... LIMIT 1 keeps it a probe). As a join, right
-- after a first load (book_position not analyzed yet: default selectivities) the
-- planner took each pair's probe for 40 rows, costed moved_per_pair's subplans by
-- that, and hashed all of book_position instead (1.3 s at 1M positions for a
-- snapshot's 19,478 candidates, docs/scaling.md).
SELECT k.*, bp.assessed IS NOT NULL AS stored
FROM booked k
LEFT JOIN LATERAL (
    SELECT p.book, p.base_source, p.in_transit, p.badge_state, p.evidence IS NOT NULL AS assessed
    FROM book_position p
    WHERE p.store_id = k.store_id AND p.sku = k.sku
    LIMIT 1
) bp ON true
WHERE NOT ($3::boolean AND bp.assessed IS NOT NULL
           AND bp.book IS NOT DISTINCT FROM k.book
           AND bp.base_source IS NOT DISTINCT FROM k.base_source
           AND bp.in_transit = k.in_transit
           AND bp.badge_state <> 'unknown'
           AND bp.assessed = $4::boolean)

-- name: book_plain
-- book_rule's rows, every one (only_changed $3 must be false: nothing is compared
-- with the stored positions, so none is read; $4 is not needed). The named pairs'
-- recompute (a POS page, feedback, the refresh) upserts them all.
SELECT k.*, NULL::boolean AS stored
FROM booked k
WHERE NOT $3::boolean AND $4::boolean IS NOT NULL

-- name: pairs_named
-- The pairs given: $1 store ids and $5 skus, parallel arrays. In key order: the
-- probes of warehouse_stock then walk its index in order, and the rows come out (and
-- are written back to book_position) in that order too (a 10,000-pair POS pull:
-- the probes take half the time they took in the hash order of DISTINCT alone).
SELECT DISTINCT u.store_id, u.sku FROM unnest($1::text[], $5::text[]) AS u(store_id, sku)
ORDER BY 1, 2

-- name: upsert_positions
-- One statement for the whole batch; reasons arrive comma-joined (codes have none).
-- evidence: the engine's record (NULL when no engine assessed the badge).
-- app/db/positions.py runs it followed by ``position_on_conflict``.
INSERT INTO book_position AS bp (
    store_id, sku, book, base_source, base_at, snapshot_as_of, last_event_at, in_transit,
    badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence, computed_at)
SELECT u.store_id, u.sku, u.book, u.base_source, u.base_at, u.snapshot_as_of,
       u.last_event_at, u.in_transit, u.badge_state, u.safety_buffer, u.confidence,
       string_to_array(u.reasons, ','), u.badge_as_of, u.evidence, $15
FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::timestamptz[],
            $6::timestamptz[], $7::timestamptz[], $8::integer[], $9::text[],
            $10::integer[], $11::double precision[], $12::text[], $13::timestamptz[],
            $14::bytea[])
     AS u(store_id, sku, book, base_source, base_at, snapshot_as_of, last_event_at,
          in_transit, badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence)

-- name: create_position_write
-- A large batch of computed rows arrives here by binary COPY, then one upsert.
CREATE TEMP TABLE IF NOT EXISTS position_write (
    store_id text, sku text, book integer, base_source text, base_at timestamptz,
    snapshot_as_of timestamptz, last_event_at timestamptz, in_transit integer,
    badge_state text, safety_buffer integer, confidence double precision, reasons text,
    badge_as_of timestamptz, evidence bytea
) ON COMMIT DROP;

-- name: upsert_from_position_write
-- $1 computed_at. Reasons arrive comma-joined, as in upsert_positions (one value a
-- row: sent as text[], each element costs the driver a type check). Followed by
-- ``position_on_conflict`` too.
INSERT INTO book_position AS bp (
    store_id, sku, book, base_source, base_at, snapshot_as_of, last_event_at, in_transit,
    badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence, computed_at)
SELECT store_id, sku, book, base_source, base_at, snapshot_as_of, last_event_at, in_transit,
       badge_state, safety_buffer, confidence, string_to_array(reasons, ','), badge_as_of,
       evidence, $1
FROM position_write

-- name: position_on_conflict
-- The end of both position upserts (upsert_positions, upsert_from_position_write):
-- a pair already stored takes every column of the new row.
ON CONFLICT (store_id, sku) DO UPDATE SET
    book = EXCLUDED.book,
    base_source = EXCLUDED.base_source,
    base_at = EXCLUDED.base_at,
    snapshot_as_of = EXCLUDED.snapshot_as_of,
    last_event_at = EXCLUDED.last_event_at,
    in_transit = EXCLUDED.in_transit,
    badge_state = EXCLUDED.badge_state,
    safety_buffer = EXCLUDED.safety_buffer,
    confidence = EXCLUDED.confidence,
    reasons = EXCLUDED.reasons,
    badge_as_of = EXCLUDED.badge_as_of,
    evidence = EXCLUDED.evidence,
    computed_at = EXCLUDED.computed_at;

-- name: truncate_position_write
TRUNCATE position_write;

-- name: pairs_of_stores
-- Every pair the stores $1 have anything for: warehouse rows, POS events, shelf
-- counts, positions.
SELECT location_id AS store_id, sku FROM warehouse_stock WHERE location_id = ANY($1::text[])
UNION
SELECT store_id, sku FROM pos_event WHERE store_id = ANY($1::text[])
UNION
SELECT store_id, sku FROM feedback WHERE store_id = ANY($1::text[]) AND kind = 'shelf_count'
UNION
SELECT store_id, sku FROM book_position WHERE store_id = ANY($1::text[])

-- name: pairs_of_snapshot
-- The pairs of the stores $1 whose position the snapshot $5 that was just applied
-- can have changed: the rows it wrote (``apply_staged`` leaves a row equal to the
-- stored one as it is), a position without a row (the snapshot may have removed
-- it) and a row without a position, the positions book_rule recomputes whatever
-- their inputs (unknown, or not assessed as $4 says), and the pairs with POS events
-- or shelf counts (their base or movements may change with the location's as_of).
-- Any other pair's warehouse row is the one its stored position was computed from,
-- so its book, base source and units in transit come out as stored: book_rule's
-- only_changed would leave it out after computing it. One pass over the stores'
-- rows and positions (a first load: every row, no position).
SELECT COALESCE(ws.location_id, bp.store_id) AS store_id, COALESCE(ws.sku, bp.sku) AS sku
FROM (SELECT location_id, sku, snapshot_id
      FROM warehouse_stock WHERE location_id = ANY($1::text[])) AS ws
FULL JOIN (SELECT store_id, sku, badge_state, evidence
           FROM book_position WHERE store_id = ANY($1::text[])) AS bp
    ON bp.store_id = ws.location_id AND bp.sku = ws.sku
WHERE ws.snapshot_id = $5 OR ws.location_id IS NULL OR bp.store_id IS NULL
   OR bp.badge_state = 'unknown' OR (bp.evidence IS NOT NULL) <> $4::boolean
UNION
SELECT store_id, sku FROM pos_event WHERE store_id = ANY($1::text[])
UNION
SELECT store_id, sku FROM feedback WHERE store_id = ANY($1::text[]) AND kind = 'shelf_count'

-- name: pairs_of_changes
-- pairs_of_snapshot for stores $1 whose snapshot came with what it changed ($3 stores
-- and $4 skus, parallel arrays: the rows it wrote or removed and those with an as_of
-- of their own), in one statement for all of them: those pairs, the positions
-- book_rule recomputes whatever their inputs (unknown, or not assessed as $2 says:
-- with an engine, the few the partial index book_position_unassessed holds; without
-- one, every assessed position, by a scan), and the pairs with POS events or shelf
-- counts. pairs_of_snapshot's other two branches need no search here. A position
-- without a row: the row went in the snapshot that removed it (listed then); since
-- then its base is 0 at the location's as_of, so only its events or counts (listed
-- here) can change its book. A row without a position: the snapshot that wrote it
-- computed its pair then (a new pair is always written), and positions are never
-- deleted. (The stores joined, not
-- "= ANY": a bitmap scan of 200 stores' keys took twice the hash join's time at 1M.)
SELECT store_id, sku FROM unnest($3::text[], $4::text[]) AS c(store_id, sku)
UNION
SELECT bp.store_id, bp.sku
FROM book_position bp
JOIN unnest($1::text[]) AS named(store_id) ON named.store_id = bp.store_id
WHERE $2::boolean AND bp.unassessed
UNION
SELECT bp.store_id, bp.sku
FROM book_position bp
JOIN unnest($1::text[]) AS named(store_id) ON named.store_id = bp.store_id
WHERE NOT $2::boolean AND (bp.badge_state = 'unknown' OR bp.evidence IS NOT NULL)
UNION
SELECT store_id, sku FROM pos_event WHERE store_id = ANY($1::text[])
UNION
SELECT store_id, sku FROM feedback WHERE store_id = ANY($1::text[]) AND kind = 'shelf_count'
ORDER BY 1, 2;

-- name: stores_with_positions
-- Those of the stores $1 that have any position stored.
SELECT s FROM unnest($1::text[]) AS s
WHERE EXISTS (SELECT 1 FROM book_position bp WHERE bp.store_id = s);

-- name: pairs_to_refresh
-- Pairs whose stored badge can change with time alone, with why. $1 now,
-- $2 max_data_age, $3 lookahead (the refresh interval), $4 how far back to look
-- for events that came due.
-- aging:       a badge other than unknown whose newest data (the store's, or the
--              pair's own) is past the age limit or will be within $3;
-- fresh_again: an unknown (stale_data) badge whose store has fresh data again
--              (a feed that went quiet resumed, but did not touch this pair);
-- due:         a POS event or shelf count dated after the pair's last computation
--              (it was in the future when stored) whose time has now come.
-- A pair listed for several reasons is listed once (aging, then due, then fresh_again).
WITH judged AS (
    SELECT bp.store_id, bp.sku, bp.badge_state, bp.reasons,
           greatest(f.last_pos_event_at, f.snapshot_as_of, bp.badge_as_of) AS newest_at
    FROM book_position bp
    LEFT JOIN store_freshness f ON f.store_id = bp.store_id
), timed AS (
    SELECT store_id, sku, 'aging' AS why, badge_state
    FROM judged
    WHERE badge_state <> 'unknown'
      AND (newest_at IS NULL OR newest_at < $1::timestamptz - $2::interval + $3::interval)
    UNION ALL
    SELECT store_id, sku, 'fresh_again', badge_state
    FROM judged
    WHERE badge_state = 'unknown' AND 'stale_data' = ANY (reasons)
      AND newest_at >= $1::timestamptz - $2::interval
), came_due AS (
    SELECT e.store_id, e.sku
    FROM pos_event e
    WHERE e.occurred_at > e.received_at
      AND e.occurred_at <= $1::timestamptz AND e.occurred_at > $1::timestamptz - $4::interval
    UNION
    SELECT f.store_id, f.sku
    FROM feedback f
    WHERE f.kind = 'shelf_count' AND f.observed_at > f.received_at
      AND f.observed_at <= $1::timestamptz AND f.observed_at > $1::timestamptz - $4::interval
), due AS (
    SELECT c.store_id, c.sku, 'due' AS why, bp.badge_state
    FROM came_due c
    LEFT JOIN book_position bp ON bp.store_id = c.store_id AND bp.sku = c.sku
    WHERE bp.computed_at IS NULL
       OR EXISTS (SELECT 1 FROM pos_event e
                  WHERE e.store_id = c.store_id AND e.sku = c.sku
                    AND e.occurred_at > bp.computed_at AND e.occurred_at <= $1::timestamptz)
       OR EXISTS (SELECT 1 FROM feedback f
                  WHERE f.store_id = c.store_id AND f.sku = c.sku AND f.kind = 'shelf_count'
                    AND f.observed_at > bp.computed_at AND f.observed_at <= $1::timestamptz)
)
SELECT DISTINCT ON (store_id, sku) store_id, sku, why, badge_state
FROM (SELECT * FROM timed UNION ALL SELECT * FROM due) AS all_reasons
ORDER BY store_id, sku, why;

-- name: promises_among
-- How many of the given pairs show a promise now.
SELECT count(*)
FROM book_position bp
JOIN unnest($1::text[], $2::text[]) AS u(store_id, sku)
  ON bp.store_id = u.store_id AND bp.sku = u.sku
WHERE bp.badge_state IN ('in_stock', 'low_stock');

-- name: pairs_of_quiet_stores
-- Every stored pair of the given stores, with its badge.
SELECT store_id, sku, badge_state FROM book_position WHERE store_id = ANY($1::text[]);

-- name: create_book_batch
-- A whole-store batch's computed books stay on the server (numbered n); only the
-- few distinct badges derived from them travel back (``insert_from_book_batch``).
CREATE TEMP TABLE IF NOT EXISTS book_batch (
    n integer, store_id text, sku text, book integer, base_source text, base_at timestamptz,
    snapshot_as_of timestamptz, last_event_at timestamptz, in_transit integer, category text,
    store_newest_at timestamptz, stored boolean
) ON COMMIT DROP;

-- name: truncate_book_batch
TRUNCATE book_batch;

-- name: update_from_book_batch
-- $1 the badge of each numbered row (an index into the badges $2..$7, from 1),
-- $8 computed_at; ends in one of the two blocks below (positions.py joins them).
-- The pairs already stored (``stored``: book_rule found their position) are updated
-- here, the others inserted by insert_from_book_batch right after (the store locks
-- keep every write of these stores' positions to this transaction meanwhile).
UPDATE book_position AS bp SET
    book = b.book,
    base_source = b.base_source,
    base_at = b.base_at,
    snapshot_as_of = b.snapshot_as_of,
    last_event_at = b.last_event_at,
    in_transit = b.in_transit,
    badge_state = t.badge_state,
    safety_buffer = t.safety_buffer,
    confidence = t.confidence,
    reasons = string_to_array(t.reasons, ','),
    badge_as_of = t.badge_as_of,
    evidence = t.evidence,
    computed_at = $8
FROM book_batch b
JOIN unnest($2::text[], $3::integer[], $4::double precision[], $5::text[],
            $6::timestamptz[], $7::bytea[]) WITH ORDINALITY
     AS t(badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence, id)
  ON t.id = ($1::integer[])[b.n]

-- name: of_batch_stores
-- update_from_book_batch for whole-store batches: $9 the batch's stores (the update
-- reads only their positions).
WHERE bp.store_id = ANY($9::text[]) AND bp.store_id = b.store_id AND bp.sku = b.sku
  AND b.stored;

-- name: of_named_pairs
-- update_from_book_batch for named pairs (a snapshot's candidates), without a stores'
-- filter: with one the planner probed book_position_sku (sku first, ~6 us a pair,
-- jumping about the index) where the primary key walks them in the pairs' order
-- (~3 us; 109-124 against 126-140 ms for 19,478 pairs, docs/scaling.md).
WHERE bp.store_id = b.store_id AND bp.sku = b.sku AND b.stored;

-- name: insert_from_book_batch
-- The kept rows not stored yet (arguments as update_from_book_batch, less $9): a
-- plain insert, no speculative insertion nor probe per row.
INSERT INTO book_position (
    store_id, sku, book, base_source, base_at, snapshot_as_of, last_event_at, in_transit,
    badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence, computed_at)
SELECT b.store_id, b.sku, b.book, b.base_source, b.base_at, b.snapshot_as_of,
       b.last_event_at, b.in_transit, t.badge_state, t.safety_buffer, t.confidence,
       string_to_array(t.reasons, ','), t.badge_as_of, t.evidence, $8
FROM book_batch b
JOIN unnest($2::text[], $3::integer[], $4::double precision[], $5::text[],
            $6::timestamptz[], $7::bytea[]) WITH ORDINALITY
     AS t(badge_state, safety_buffer, confidence, reasons, badge_as_of, evidence, id)
  ON t.id = ($1::integer[])[b.n]
WHERE NOT b.stored;
