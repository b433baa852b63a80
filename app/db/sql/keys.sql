-- API keys (docs/managers.md). Only the SHA-256 of a key is stored.

-- name: insert_key
INSERT INTO api_key (key_id, name, role, store_ids, secret_hash, created_at)
VALUES ($1, $2, $3, $4::text[], $5, $6);

-- name: get_key
SELECT key_id, name, role, store_ids, secret_hash, created_at, last_used_at, revoked_at
FROM api_key WHERE key_id = $1;

-- name: list_keys
SELECT key_id, name, role, store_ids, created_at, last_used_at, revoked_at
FROM api_key ORDER BY created_at, key_id;

-- name: revoke_key
-- Revoking twice keeps the first time. Returns the row, or nothing for an unknown id.
UPDATE api_key SET revoked_at = COALESCE(revoked_at, $2)
WHERE key_id = $1
RETURNING key_id, name, role, store_ids, created_at, last_used_at, revoked_at;

-- name: touch_key
-- Record a use, at most once a minute per key (a write per request would be waste).
UPDATE api_key SET last_used_at = $2::timestamptz
WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute');
