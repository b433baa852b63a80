-- The POS counts of a pair, found without reading its sales. Counts are a small share
-- of the events, but the book rule's latest count (positions.sql) and the retention
-- job's (retention.sql) filtered the pair's every event by type through pos_event_pair:
-- a fast seller's months of sales per look-up. A partial index holds just the counts.
CREATE INDEX pos_event_count ON pos_event (store_id, sku, occurred_at) WHERE type = 'count';
