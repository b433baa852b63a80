-- Stores and products: the reference data badges are read against.

-- name: upsert_stores
-- Insert or update many stores at once; an unchanged row is left alone (its
-- updated_at stays), so reloading the same file reports it as unchanged.
INSERT INTO store AS s (store_id, name, lat, lon, postal_code, timezone)
SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[])
ON CONFLICT (store_id) DO UPDATE
SET name = EXCLUDED.name, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
    postal_code = EXCLUDED.postal_code, timezone = EXCLUDED.timezone, updated_at = now()
WHERE (s.name, s.lat, s.lon, s.postal_code, s.timezone)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.lat, EXCLUDED.lon, EXCLUDED.postal_code, EXCLUDED.timezone)
RETURNING (xmax = 0) AS created;

-- name: upsert_products
INSERT INTO product AS p (sku, name, category)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (sku) DO UPDATE
SET name = EXCLUDED.name, category = EXCLUDED.category, updated_at = now()
WHERE (p.name, p.category) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.category)
RETURNING (xmax = 0) AS created;

-- name: get_store
SELECT store_id, name, lat, lon, postal_code, timezone, updated_at
FROM store
WHERE store_id = $1;

-- name: list_stores
SELECT store_id, name, lat, lon, postal_code, timezone, updated_at
FROM store
ORDER BY store_id;

-- name: stores_in_box
-- Prefilter on the store (lat, lon) index; exact distance is computed by the caller.
SELECT store_id, name, lat, lon, postal_code, timezone, updated_at
FROM store
WHERE lat BETWEEN $1 AND $2 AND lon BETWEEN $3 AND $4;

-- name: get_product
SELECT sku, name, category, updated_at
FROM product
WHERE sku = $1;
