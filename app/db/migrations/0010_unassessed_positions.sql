-- The positions a snapshot's recompute takes whatever their inputs: an unknown badge,
-- or one no engine assessed (no evidence record). pairs_of_changes found them with a
-- scan of every position (~130 ms at 1M, parallel), finding none in the usual case;
-- a partial index holds just those. The flag is a stored generated column so the
-- index blocks HOT only when it flips: PostgreSQL compares the values of the columns
-- an index names, keys and predicate, and the badge writes leave `unassessed` as it
-- was unless a badge turns unknown or known (an index over badge_state or evidence
-- themselves would end the HOT updates of every write that changes them: most do).
-- Adding the column rewrites book_position once (a few seconds per million rows,
-- under an exclusive lock, at the start-up that applies it).
ALTER TABLE book_position
    ADD COLUMN unassessed boolean NOT NULL
    GENERATED ALWAYS AS (badge_state = 'unknown' OR evidence IS NULL) STORED;
CREATE INDEX book_position_unassessed ON book_position (store_id, sku) WHERE unassessed;
