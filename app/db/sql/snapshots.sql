-- Warehouse snapshots: stage a streamed CSV, validate it with line numbers, then
-- quarantine it or apply it whole. The staging table lives only for the pull's
-- transaction; every statement is set-based (no per-row round trips).

-- name: lock_feed
-- One pull per feed at a time: its ETag and snapshot record must not move underneath.
SELECT pg_advisory_xact_lock(1518997932, hashtext($1));

-- name: lock_locations
-- One judge and swap per location at a time, until commit: two feeds may name the same
-- location, and a pull is judged and diffed against that location's rows in force, which
-- the other feed's pull must not be changing meanwhile. Taken after staging (the COPY
-- runs side by side), before the first read of the stock in force; before the stores'
-- recompute locks (lock_stores), never after them. Keys in one order: no deadlock.
SELECT count(pg_advisory_xact_lock(1518997933, k))
FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest($1::text[]) AS s ORDER BY 1) AS keys;

-- name: tune_transaction
-- The duplicate check and the location aggregate hash a million rows; keep them in
-- memory. Every statement planned for its parameters (typed_changes' branches).
SET LOCAL work_mem = '256MB';
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: create_staging
-- Text columns so any row COPY can split lands here and is judged in SQL; ``line`` is
-- the row's line in the file (the header is line 1).
CREATE TEMP TABLE warehouse_staging (
    location_id text,
    sku         text,
    on_hand     text,
    reserved    text,
    in_transit  text,
    as_of       text,
    line        bigint GENERATED ALWAYS AS IDENTITY (START WITH 2)
) ON COMMIT DROP;

-- name: analyze_staging
-- Temp tables are never auto-analyzed; the plans below need real row counts.
ANALYZE warehouse_staging;

-- name: staged_clean
-- True when staged_problems would find nothing (the usual case), judged in one scan:
-- each column's distinct values (and each (location_id, sku)'s count) are gathered
-- in one pass of hash tables, then the same checks as staged_problems run on the
-- few distinct values. When false, staged_problems says where and why.
WITH d AS (
    SELECT location_id, sku, on_hand, reserved, in_transit, as_of, count(*) AS n,
           GROUPING(location_id, sku) = 0 AS by_pair,
           GROUPING(location_id, sku) = 1 AS by_location, GROUPING(location_id, sku) = 2 AS by_sku,
           GROUPING(on_hand) = 0 AS by_on_hand, GROUPING(reserved) = 0 AS by_reserved,
           GROUPING(in_transit) = 0 AS by_in_transit, GROUPING(as_of) = 0 AS by_as_of
    FROM warehouse_staging
    GROUP BY GROUPING SETS ((location_id, sku), (location_id), (sku), (on_hand), (reserved),
                            (in_transit), (as_of))
)
SELECT NOT EXISTS (
    SELECT 1 FROM d
    WHERE (by_pair AND n > 1)
       OR (by_location AND (location_id IS NULL OR location_id !~ '^[A-Za-z0-9._:-]+$'
                            OR length(location_id) > 64))
       OR (by_sku AND (sku IS NULL OR sku !~ '^[A-Za-z0-9._:-]+$' OR length(sku) > 64))
       OR (by_on_hand AND (on_hand IS NULL OR on_hand !~ '^[0-9]+$'
                           OR NOT pg_input_is_valid(on_hand, 'integer')))
       OR (by_reserved AND (reserved IS NULL OR reserved !~ '^[0-9]+$'
                            OR NOT pg_input_is_valid(reserved, 'integer')))
       OR (by_in_transit AND (in_transit IS NULL OR in_transit !~ '^[0-9]+$'
                              OR NOT pg_input_is_valid(in_transit, 'integer')))
       OR (by_as_of AND (as_of IS NULL
           OR as_of !~ '^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$'
           OR NOT pg_input_is_valid(as_of, 'timestamptz'))));

-- name: staged_problems
-- The first $1 problems in file order, each with its line, and how many there are.
-- Patterns avoid {1,64} and capturing groups: PostgreSQL's regex engine makes those
-- ten times slower, which shows at a million rows. Every column is judged once per
-- distinct value, not per row (a file repeats its locations, skus, counts and
-- as_of): a row's value is then looked up among the bad ones (same verdict, same
-- message); OFFSET 0 keeps the planner from pushing the checks below the DISTINCT.
WITH bad_location_id AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT location_id AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^[A-Za-z0-9._:-]+$' OR length(v) > 64
), bad_sku AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT sku AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^[A-Za-z0-9._:-]+$' OR length(v) > 64
), bad_on_hand AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT on_hand AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^[0-9]+$' OR NOT pg_input_is_valid(v, 'integer')
), bad_reserved AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT reserved AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^[0-9]+$' OR NOT pg_input_is_valid(v, 'integer')
), bad_in_transit AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT in_transit AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^[0-9]+$' OR NOT pg_input_is_valid(v, 'integer')
), bad_as_of AS MATERIALIZED (
    SELECT v FROM (SELECT DISTINCT as_of AS v FROM warehouse_staging OFFSET 0) AS d
    WHERE v !~ '^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$'
       OR NOT pg_input_is_valid(v, 'timestamptz')
), field_problems AS (
    SELECT line, concat_ws(', ',
        CASE WHEN location_id IS NULL THEN 'location_id is empty'
             WHEN location_id IN (SELECT v FROM bad_location_id)
             THEN format('location_id %s is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)',
                         quote_literal(left(location_id, 80))) END,
        CASE WHEN sku IS NULL THEN 'sku is empty'
             WHEN sku IN (SELECT v FROM bad_sku)
             THEN format('sku %s is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)',
                         quote_literal(left(sku, 80))) END,
        CASE WHEN on_hand IS NULL THEN 'on_hand is empty'
             WHEN on_hand IN (SELECT v FROM bad_on_hand)
             THEN format('on_hand %s is not a non-negative integer',
                         quote_literal(left(on_hand, 40))) END,
        CASE WHEN reserved IS NULL THEN 'reserved is empty'
             WHEN reserved IN (SELECT v FROM bad_reserved)
             THEN format('reserved %s is not a non-negative integer',
                         quote_literal(left(reserved, 40))) END,
        CASE WHEN in_transit IS NULL THEN 'in_transit is empty'
             WHEN in_transit IN (SELECT v FROM bad_in_transit)
             THEN format('in_transit %s is not a non-negative integer',
                         quote_literal(left(in_transit, 40))) END,
        CASE WHEN as_of IS NULL THEN 'as_of is empty'
             WHEN as_of IN (SELECT v FROM bad_as_of)
             THEN format('as_of %s is not an RFC 3339 timestamp with offset',
                         quote_literal(left(as_of, 40))) END
    ) AS problem
    FROM warehouse_staging
),
duplicate_pairs AS (
    SELECT location_id, sku
    FROM warehouse_staging
    GROUP BY location_id, sku
    HAVING count(*) > 1
),
duplicates AS (
    SELECT line,
           format('duplicate (location_id, sku) (%s, %s), first on line %s',
                  quote_literal(left(location_id, 80)), quote_literal(left(sku, 80)), first_line)
               AS problem
    FROM (
        SELECT s.line, s.location_id, s.sku,
               min(s.line) OVER (PARTITION BY s.location_id, s.sku) AS first_line
        FROM warehouse_staging s
        JOIN duplicate_pairs d USING (location_id, sku)
    ) AS pairs
    WHERE line > first_line
),
problems AS (
    SELECT line, problem FROM field_problems WHERE problem <> ''
    UNION ALL
    SELECT line, problem FROM duplicates
)
SELECT line, problem, count(*) OVER () AS total
FROM problems
ORDER BY line, problem
LIMIT $1;

-- name: staged_rows_by_location
-- The rows the staged file lists for each location it names.
SELECT location_id, count(*) AS n FROM warehouse_staging GROUP BY location_id;

-- name: rows_in_force
-- The rows each of the locations $1 has in force (its row_count; counted for a
-- location applied before migration 0014). A location without rows is left out.
SELECT l.location_id,
       COALESCE(l.row_count,
                (SELECT count(*) FROM warehouse_stock w WHERE w.location_id = l.location_id))
           AS n
FROM warehouse_location l
WHERE l.location_id = ANY($1::text[]);

-- name: latest_snapshot
SELECT snapshot_id, status, etag, reason
FROM warehouse_snapshot
WHERE feed = $1
ORDER BY snapshot_id DESC
LIMIT 1;

-- name: insert_snapshot
INSERT INTO warehouse_snapshot (feed, etag, status, reason, row_count, locations, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING snapshot_id;

-- name: keep_staged_rows
-- A quarantined snapshot that parsed keeps its typed rows for inspection and release.
INSERT INTO warehouse_snapshot_row
    (snapshot_id, location_id, sku, on_hand, reserved, in_transit, as_of)
SELECT $1, location_id, sku, on_hand::integer, reserved::integer, in_transit::integer,
       as_of::timestamptz
FROM warehouse_staging;

-- name: stage_locations
-- Each location the staged file names, with its as_of (the latest among its rows) and
-- the snapshot whose rows it held until now (NULL: none).
CREATE TEMP TABLE staged_location ON COMMIT DROP AS
SELECT s.location_id, s.as_of, l.snapshot_id AS previous_snapshot, s.n
FROM (SELECT location_id, max(as_of::timestamptz) AS as_of, count(*) AS n
      FROM warehouse_staging
      GROUP BY location_id) AS s
LEFT JOIN warehouse_location l ON l.location_id = s.location_id;

-- name: remove_unlisted_rows
-- Every location the file names is replaced whole: a sku it no longer lists goes.
-- Returns the rows removed (the live engine takes them out).
DELETE FROM warehouse_stock AS w
USING staged_location AS n
WHERE w.location_id = n.location_id
  AND NOT EXISTS (SELECT 1 FROM warehouse_staging s
                  WHERE s.location_id = w.location_id AND s.sku = w.sku)
RETURNING w.location_id, w.sku::text AS sku;

-- name: staged_changes
-- After merge_staged_rows, per named location that held stock: its previous snapshot
-- and the rows the engine cannot infer (the rows $1 wrote, and those whose as_of is
-- not the location's; every other row is as it was, at the location's new as_of),
-- column-wise with each row's as_of in full.
SELECT n.location_id, n.as_of, n.previous_snapshot,
       array_agg(w.sku::text) FILTER (WHERE w.sku IS NOT NULL) AS skus,
       array_agg(w.on_hand) FILTER (WHERE w.sku IS NOT NULL) AS on_hands,
       array_agg(w.reserved) FILTER (WHERE w.sku IS NOT NULL) AS reserveds,
       array_agg(w.in_transit) FILTER (WHERE w.sku IS NOT NULL) AS in_transits,
       array_agg(COALESCE(w.as_of, n.as_of)) FILTER (WHERE w.sku IS NOT NULL) AS as_ofs
FROM staged_location n
LEFT JOIN warehouse_stock w
    ON w.location_id = n.location_id AND (w.snapshot_id = $1 OR w.as_of IS NOT NULL)
WHERE n.previous_snapshot IS NOT NULL
GROUP BY n.location_id, n.as_of, n.previous_snapshot;

-- name: merge_staged_rows
-- The file's rows, cast once here, into the stock; $1 the snapshot. A row's as_of is
-- stored only when it is not its location's (NULL stands for warehouse_location's),
-- and a row equal to the stored one is not written at all: the next snapshot of a
-- location writes only the rows that changed. snapshot_id: the snapshot that last
-- wrote the row (the location's is warehouse_location.snapshot_id).
MERGE INTO warehouse_stock AS w
USING (SELECT s.location_id, s.sku, s.on_hand::integer AS on_hand,
              s.reserved::integer AS reserved, s.in_transit::integer AS in_transit,
              NULLIF(s.as_of::timestamptz, n.as_of) AS as_of
       FROM warehouse_staging s
       JOIN staged_location n ON n.location_id = s.location_id) AS s
ON w.location_id = s.location_id AND w.sku = s.sku
WHEN MATCHED AND (w.on_hand, w.reserved, w.in_transit, w.as_of)
                 IS DISTINCT FROM (s.on_hand, s.reserved, s.in_transit, s.as_of) THEN
    UPDATE SET on_hand = s.on_hand, reserved = s.reserved, in_transit = s.in_transit,
               as_of = s.as_of, snapshot_id = $1
WHEN NOT MATCHED THEN
    INSERT (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
    VALUES (s.location_id, s.sku, s.on_hand, s.reserved, s.in_transit, s.as_of, $1);

-- name: stock_at_staged_locations
-- Whether any location the file names holds stock already (else insert_staged_rows).
SELECT EXISTS (SELECT 1 FROM warehouse_stock w
               JOIN staged_location n ON n.location_id = w.location_id);

-- name: insert_staged_rows
-- merge_staged_rows for locations that hold no stock yet (a first load): every row
-- is new, so a plain insert without the join against what is stored.
INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
SELECT s.location_id, s.sku, s.on_hand::integer, s.reserved::integer, s.in_transit::integer,
       NULLIF(s.as_of::timestamptz, n.as_of), $1
FROM warehouse_staging s
JOIN staged_location n ON n.location_id = s.location_id;

-- name: apply_locations
-- Record each named location's as_of, snapshot and rows in force, raise its store's
-- freshness; returns the named locations.
WITH location AS (
    INSERT INTO warehouse_location (location_id, as_of, snapshot_id, row_count)
    SELECT location_id, as_of, $1, n FROM staged_location
    ON CONFLICT (location_id) DO UPDATE SET
        as_of = EXCLUDED.as_of,
        snapshot_id = EXCLUDED.snapshot_id,
        row_count = EXCLUDED.row_count
)
INSERT INTO store_freshness (store_id, snapshot_as_of)
SELECT location_id, as_of FROM staged_location
ON CONFLICT (store_id) DO UPDATE SET
    snapshot_as_of = greatest(store_freshness.snapshot_as_of, EXCLUDED.snapshot_as_of)
RETURNING store_id;

-- The typed fast path (reconcilers/warehouse.py): a plain file (SnapshotBody.plain)
-- is COPYed into typed columns, judged on its few distinct locations and as_of
-- values and on the rows that differ from the stock in force, and applied from those
-- differences. Anything it cannot vouch for goes the text path above instead, which
-- gives the line-numbered reasons.

-- name: create_typed_staging
-- Counts parse during the COPY (a plain file has no sign, prefix or underscore in a
-- count, so what int4in takes is what ^[0-9]+$ takes); as_of stays text (judged per
-- distinct value, like the ids). Unlogged, not temporary: PostgreSQL scans a temporary
-- table in the leader alone, this one with parallel workers (the (location, as_of)
-- pass and the diff's hash join, below). app/db/snapshots.py names it after the
-- backend (``warehouse_typed_<pid>``), creates it inside the pull's transaction and
-- drops it there (drop_typed_staging), so no other session ever sees it and a pull
-- that fails or dies leaves nothing behind.
CREATE UNLOGGED TABLE warehouse_typed (
    location_id text,
    sku         text,
    on_hand     integer,
    reserved    integer,
    in_transit  integer,
    as_of       text
);

-- name: drop_typed_staging
-- Once the differences are in snapshot_change nothing reads the typed rows again.
DROP TABLE warehouse_typed;

-- name: judge_in_parallel
-- For typed_as_ofs and typed_changes over the million-row staging: parallel workers
-- (the planner, misled by the unanalyzed staging, keeps the (location, as_of) pass in
-- one process at the default costs: 185 against 110 ms at 1M; the diff goes parallel
-- either way, 880 against 520 ms), and no merge join (it would sort both million-row
-- sides: 2.3 s against 0.7 s hashing one). A table under min_parallel_table_scan_size
-- (8 MB, ~100,000 rows) is still scanned by one process.
SET LOCAL enable_mergejoin = off;
SET LOCAL parallel_setup_cost = 100;
SET LOCAL parallel_tuple_cost = 0.01;

-- name: judged
-- The settings judge_in_parallel changed, back to the server's.
SET LOCAL enable_mergejoin TO DEFAULT;
SET LOCAL parallel_setup_cost TO DEFAULT;
SET LOCAL parallel_tuple_cost TO DEFAULT;

-- name: typed_as_ofs
-- Each (location, as_of text) of the file with its rows, and how many of them have
-- an empty count: one pass, no cast.
CREATE TEMP TABLE staged_as_of ON COMMIT DROP AS
SELECT location_id, as_of AS as_of_text, count(*) AS n,
       count(*) FILTER (WHERE on_hand IS NULL OR reserved IS NULL OR in_transit IS NULL)
           AS empty
FROM warehouse_typed
GROUP BY location_id, as_of;

-- name: typed_clean
-- True when no count is empty and every location and as_of is one staged_problems
-- would accept (the same rules); the skus are judged with the differences.
SELECT NOT EXISTS (
    SELECT 1 FROM staged_as_of
    WHERE empty > 0
       OR location_id IS NULL OR location_id !~ '^[A-Za-z0-9._:-]+$' OR length(location_id) > 64
       OR as_of_text IS NULL
       OR as_of_text !~ '^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$'
       OR NOT pg_input_is_valid(as_of_text, 'timestamptz'));

-- name: typed_rows_by_location
-- staged_rows_by_location for the typed rows.
SELECT location_id, sum(n)::bigint AS n FROM staged_as_of GROUP BY location_id;

-- name: stage_typed_locations
-- stage_locations for the typed rows, with their rows; and each distinct as_of text
-- cast once, with its location's as_of.
CREATE TEMP TABLE staged_location ON COMMIT DROP AS
SELECT s.location_id, s.as_of, l.snapshot_id AS previous_snapshot, s.n
FROM (SELECT location_id, max(as_of_text::timestamptz) AS as_of, sum(n) AS n
      FROM staged_as_of
      GROUP BY location_id) AS s
LEFT JOIN warehouse_location l ON l.location_id = s.location_id;
CREATE TEMP TABLE staged_time ON COMMIT DROP AS
SELECT a.location_id, a.as_of_text, a.as_of_text::timestamptz AS as_of, n.as_of AS location_as_of
FROM staged_as_of a
JOIN staged_location n ON n.location_id = a.location_id;

-- name: typed_shape
-- one_as_of: every location of the file has one as_of text (the usual file), so no
-- row's as_of differs from its location's and typed_changes needs no per-row cast;
-- every_location: the file names every location that holds stock (every such location
-- has its warehouse_location row: the apply writes both), so the stock needs no filter.
SELECT (SELECT count(*) = count(DISTINCT location_id) FROM staged_as_of) AS one_as_of,
       NOT EXISTS (SELECT 1 FROM warehouse_location l
                   WHERE NOT EXISTS (SELECT 1 FROM staged_location n
                                     WHERE n.location_id = l.location_id)) AS every_location;

-- name: typed_changes
-- The file against the stock in force at the locations it names, in one join: the
-- rows to insert ('new'), update ('changed') or delete ('removed'), and the rows kept
-- as they are whose as_of is their own ('kept': the engine needs those). A row's
-- as_of is stored only when it is not its location's (merge_staged_rows' rule).
-- $1 one_as_of and $2 every_location (typed_shape): each pair of branches runs one
-- (the transaction plans every statement for its parameters, see tune_transaction).
CREATE TEMP TABLE snapshot_change ON COMMIT DROP AS
SELECT COALESCE(s.location_id, w.location_id::text) AS location_id,
       COALESCE(s.sku, w.sku::text) AS sku,
       s.on_hand, s.reserved, s.in_transit, s.as_of,
       CASE WHEN s.location_id IS NULL THEN 'removed'
            WHEN w.location_id IS NULL THEN 'new'
            WHEN (w.on_hand, w.reserved, w.in_transit, w.as_of)
                 IS NOT DISTINCT FROM (s.on_hand, s.reserved, s.in_transit, s.as_of) THEN 'kept'
            ELSE 'changed' END AS change
FROM (SELECT t.location_id, t.sku, t.on_hand, t.reserved, t.in_transit,
             NULL::timestamptz AS as_of
      FROM warehouse_typed t
      WHERE $1::boolean
      UNION ALL
      SELECT t.location_id, t.sku, t.on_hand, t.reserved, t.in_transit,
             NULLIF(m.as_of, m.location_as_of)
      FROM warehouse_typed t
      JOIN staged_time m ON m.location_id = t.location_id AND m.as_of_text = t.as_of
      WHERE NOT $1::boolean) AS s
FULL JOIN (SELECT w.location_id, w.sku, w.on_hand, w.reserved, w.in_transit, w.as_of
           FROM warehouse_stock w
           WHERE $2::boolean
           UNION ALL
           SELECT w.location_id, w.sku, w.on_hand, w.reserved, w.in_transit, w.as_of
           FROM warehouse_stock w
           WHERE NOT $2::boolean
             AND w.location_id IN (SELECT location_id FROM staged_location)) AS w
    ON w.location_id = s.location_id AND w.sku = s.sku
WHERE s.location_id IS NULL OR w.location_id IS NULL OR w.as_of IS NOT NULL
   OR (w.on_hand, w.reserved, w.in_transit, w.as_of)
      IS DISTINCT FROM (s.on_hand, s.reserved, s.in_transit, s.as_of);

-- name: changes_clean
-- True when the file has no duplicate (location_id, sku) and every sku is an
-- identifier: a row that matched a stored one has a stored (valid) sku, so only the
-- new rows' skus are judged; a duplicate among them shows directly, one of a stored
-- pair makes the file's rows outnumber the stored rows kept plus the new ones. $1
-- every_location (typed_shape): the stored rows are all the stock, counted plainly.
-- Also how many differences there are (analyze_changes only for many), counted in
-- the same pass as the new and removed rows.
SELECT NOT EXISTS (
           SELECT 1 FROM (SELECT DISTINCT sku FROM snapshot_change WHERE change = 'new') AS d
           WHERE sku IS NULL OR sku !~ '^[A-Za-z0-9._:-]+$' OR length(sku) > 64)
   AND NOT EXISTS (
           SELECT 1 FROM snapshot_change WHERE change = 'new'
           GROUP BY location_id, sku HAVING count(*) > 1)
   AND (SELECT sum(n) FROM staged_location)
       - CASE WHEN $1::boolean THEN (SELECT count(*) FROM warehouse_stock)
              ELSE (SELECT count(*) FROM warehouse_stock
                    WHERE location_id IN (SELECT location_id FROM staged_location)) END
       = tally.new_rows - tally.removed_rows AS clean,
       tally.changes
FROM (SELECT count(*) FILTER (WHERE change = 'new') AS new_rows,
             count(*) FILTER (WHERE change = 'removed') AS removed_rows,
             count(*) AS changes
      FROM snapshot_change) AS tally;

-- name: analyze_changes
-- For write_changes' plans when the differences are many (ANALYZE_CHANGES_FROM): a few
-- are probed by key with or without statistics.
ANALYZE snapshot_change;

-- name: write_changes
-- The differences into the stock, $1 the snapshot (the rows it writes carry it).
WITH removed AS (
    DELETE FROM warehouse_stock AS w
    USING snapshot_change AS c
    WHERE c.change = 'removed' AND w.location_id = c.location_id AND w.sku = c.sku
), changed AS (
    UPDATE warehouse_stock AS w
    SET on_hand = c.on_hand, reserved = c.reserved, in_transit = c.in_transit,
        as_of = c.as_of, snapshot_id = $1
    FROM snapshot_change AS c
    WHERE c.change = 'changed' AND w.location_id = c.location_id AND w.sku = c.sku
)
INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
SELECT location_id, sku, on_hand, reserved, in_transit, as_of, $1
FROM snapshot_change
WHERE change = 'new';

-- name: changes_by_location
-- staged_changes from the differences: per named location that held stock, its
-- previous snapshot, the rows new, changed or kept with their own as_of (as_of in
-- full) and the skus removed.
SELECT n.location_id, n.as_of, n.previous_snapshot,
       array_agg(c.sku) FILTER (WHERE c.change <> 'removed') AS skus,
       array_agg(c.on_hand) FILTER (WHERE c.change <> 'removed') AS on_hands,
       array_agg(c.reserved) FILTER (WHERE c.change <> 'removed') AS reserveds,
       array_agg(c.in_transit) FILTER (WHERE c.change <> 'removed') AS in_transits,
       array_agg(COALESCE(c.as_of, n.as_of)) FILTER (WHERE c.change <> 'removed') AS as_ofs,
       array_agg(c.sku) FILTER (WHERE c.change = 'removed') AS removed
FROM staged_location n
LEFT JOIN snapshot_change c ON c.location_id = n.location_id
WHERE n.previous_snapshot IS NOT NULL
GROUP BY n.location_id, n.as_of, n.previous_snapshot;

-- name: analyze_after_load
-- The planner's statistics of the tables a first load fills (reconcilers/warehouse.py).
ANALYZE warehouse_stock, warehouse_location, book_position;
