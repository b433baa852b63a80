-- The unrecorded shelf (app/domain/calibration.py, ``unrecorded_rates``): P(a shelf of
-- the chain holds ≥ q units), q = 1 … 24, the confidence of a pair with no record. The
-- API reads the newest map's for such pairs. A map saved before this migration has
-- none: the prior's.
ALTER TABLE engine_calibration ADD COLUMN unrecorded double precision[] NOT NULL DEFAULT '{}';
