-- GET /metrics: cheap aggregate reads, one round trip each.

-- name: feed_health
SELECT name, kind, last_success_at, last_attempt_at, last_error_at, consecutive_failures,
       last_rows, created_at
FROM feed
ORDER BY name;

-- name: badge_counts
-- One pass over the stored badges (the read path re-applies the staleness gate): how
-- many carry each (state, reasons); app/db/metrics.py sums them by state and, of those
-- that promise nothing, by reason. There are few distinct combinations; one pass
-- instead of two (by state, then reasons unnested) took 142-148 ms against 92 + 180 ms
-- at 1M positions (scripts/bench_metrics.py).
SELECT badge_state AS state, reasons, count(*) AS n
FROM book_position
GROUP BY badge_state, reasons;

-- name: pick_outcomes
-- Pick outcomes observed since $1, by kind; the totals of those stored (the retention
-- period's) beside them.
SELECT kind,
       count(*) FILTER (WHERE observed_at >= $1) AS recent,
       count(*) AS total
FROM feedback
WHERE kind IN ('pick_found', 'pick_short')
GROUP BY kind;
