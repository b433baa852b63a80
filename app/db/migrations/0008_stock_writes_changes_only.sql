-- A snapshot writes only the warehouse rows that changed (docs/scaling.md). A row
-- whose as_of is its location's (warehouse_location.as_of: the latest among the
-- location's rows in its snapshot) stores NULL, so the next snapshot of the location,
-- at a later as_of, leaves its unchanged rows as they are. A row's snapshot_id is
-- then the snapshot that last wrote it; the location's snapshot in force is
-- warehouse_location.snapshot_id. Rows stored before keep their explicit as_of
-- (same meaning); the next snapshot of their location rewrites them once.
ALTER TABLE warehouse_stock ALTER COLUMN as_of DROP NOT NULL;
