-- The rows each location has in force, so a snapshot is judged per location for
-- truncation (app/domain/truncation.py): a location the file names may not lose more
-- than max_drop of its rows. Written with the location's as_of at each apply; NULL
-- for a location applied before this migration (its rows are counted instead, once).
ALTER TABLE warehouse_location ADD COLUMN row_count integer;
