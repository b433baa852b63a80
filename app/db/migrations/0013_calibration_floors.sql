-- The calibration's floors (app/domain/calibration.py, ``short_floors``): P(the wanted
-- units are on the shelf although the book says there are too few), by units short.
-- A map saved before this migration has none: no floor, as it was assessed.
ALTER TABLE engine_calibration ADD COLUMN floors double precision[] NOT NULL DEFAULT '{}';
