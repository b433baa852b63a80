-- Feed state: one row per configured feed, its resume point and its health.

-- name: upsert_feeds
-- From the feeds file at start. A changed URL forgets the cursor and ETag (they
-- belong to the old source); re-reading is safe because events are idempotent.
INSERT INTO feed (name, kind, url)
SELECT u.name, u.kind, u.url
FROM unnest($1::text[], $2::text[], $3::text[]) AS u(name, kind, url)
ON CONFLICT (name) DO UPDATE SET
    kind   = EXCLUDED.kind,
    url    = EXCLUDED.url,
    cursor = CASE WHEN feed.url = EXCLUDED.url THEN feed.cursor END,
    etag   = CASE WHEN feed.url = EXCLUDED.url THEN feed.etag END;

-- name: get_feed
SELECT name, kind, url, cursor, etag, last_attempt_at, last_success_at, last_error,
       last_error_at, consecutive_failures, last_rows, last_duration_ms
FROM feed
WHERE name = $1;

-- name: list_feeds
SELECT name, kind, url, cursor, etag, last_attempt_at, last_success_at, last_error,
       last_error_at, consecutive_failures, last_rows, last_duration_ms
FROM feed
ORDER BY name;

-- name: save_cursor
UPDATE feed SET cursor = $2 WHERE name = $1;

-- name: save_etag
UPDATE feed SET etag = $2 WHERE name = $1;

-- name: record_attempt
UPDATE feed SET last_attempt_at = $2 WHERE name = $1;

-- name: record_success
UPDATE feed
SET last_success_at = $2,
    last_rows = $3,
    last_duration_ms = $4,
    consecutive_failures = 0
WHERE name = $1;

-- name: record_failure
-- Only the health columns: cursor, ETag and stored data stay as they were.
UPDATE feed
SET last_error = $2,
    last_error_at = $3,
    last_duration_ms = $4,
    consecutive_failures = consecutive_failures + 1
WHERE name = $1;
