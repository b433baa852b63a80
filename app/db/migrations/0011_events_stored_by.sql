-- The transaction that stored each POS event, as a 64-bit id, so the live engine's
-- catch-up can leave out in SQL the events it has seen already (engine_state.sql's
-- events_since): a run's first catch-up looks CATCH_UP_OVERLAP (5 minutes) behind
-- its mark for pages another process committed late, and it used to fetch and
-- discard every event of those minutes again (50,000 at 10,000 events a minute,
-- ~0.5 s a run). An event stored by a transaction its last look already saw as
-- complete is one it has read. Nullable and without a rewrite: events stored before
-- this migration have no id and are read as before.
ALTER TABLE pos_event ADD COLUMN stored_by xid8;
ALTER TABLE pos_event ALTER COLUMN stored_by SET DEFAULT pg_current_xact_id();
