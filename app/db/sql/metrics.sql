-- GET /metrics: cheap aggregate reads, one round trip each.

-- name: feed_health
SELECT name, kind, last_success_at, last_attempt_at, last_error_at, consecutive_failures,
       last_rows, created_at
FROM feed
ORDER BY name;

-- name: badges_by_state
-- One pass over the stored badges (the read path re-applies the staleness gate).
SELECT badge_state AS state, count(*) AS n
FROM book_position
GROUP BY badge_state;

-- name: suppressed_by_reason
-- Stored badges that promise nothing, counted once per reason code they carry.
SELECT reason, count(*) AS n
FROM book_position, unnest(reasons) AS reason
WHERE badge_state NOT IN ('in_stock', 'low_stock')
GROUP BY reason;

-- name: pick_outcomes
-- Pick outcomes observed since $1, by kind; the all-time totals beside them.
SELECT kind,
       count(*) FILTER (WHERE observed_at >= $1) AS recent,
       count(*) AS total
FROM feedback
WHERE kind IN ('pick_found', 'pick_short')
GROUP BY kind;
