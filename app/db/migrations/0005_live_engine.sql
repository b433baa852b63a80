-- The confidence engine in the live service (docs/engine.md, docs/scaling.md).
-- evidence: the engine's EvidenceRecord for the stored badge (msgpack, see
-- app/domain/reassess.py), from which the API answers other quantities and pickup
-- times without the engine. NULL for positions computed without the engine.
ALTER TABLE book_position ADD COLUMN evidence bytea;

-- Calibration maps the engine used, so API processes can reassess with the same
-- map (EvidenceRecord.calibration_id). One row per distinct map; rows are small
-- (12 weights, 40 bins) and a new one appears only when the map is rebuilt.
CREATE TABLE engine_calibration (
    calibration_id bigserial PRIMARY KEY,
    digest         text NOT NULL UNIQUE,
    labels         integer NOT NULL,
    weights        double precision[] NOT NULL,
    bins           double precision[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The engine catches up on what was stored since it last looked (its own process's
-- writes, another process's, or a warm start's window), by time of receipt.
CREATE INDEX pos_event_received ON pos_event (received_at);
CREATE INDEX feedback_received ON feedback (received_at);
