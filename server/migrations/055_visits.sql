-- Issue 11: clinic visits. A visit starts the next visit-report period (server/report/).
-- Append-only: a correction (another date or note, or a withdrawal) is a new row naming the row it
-- replaces; the current visits are the rows no later row replaces, less the withdrawn ones.
CREATE TABLE IF NOT EXISTS visits (
    id          bigserial PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES patients(id),
    visited_at  timestamptz NOT NULL,                 -- when the consultation took place
    note        text NOT NULL DEFAULT '',
    corrects    bigint REFERENCES visits(id),         -- the row this one replaces (NULL: a new visit)
    withdrawn   boolean NOT NULL DEFAULT false,       -- this correction withdraws the visit (recorded in error)
    recorded_by bigint NOT NULL REFERENCES users(id),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CHECK (corrects IS NOT NULL OR NOT withdrawn)
);
-- A row is replaced at most once, so every visit's history is one line of versions.
CREATE UNIQUE INDEX IF NOT EXISTS visits_corrects_idx ON visits (corrects) WHERE corrects IS NOT NULL;
CREATE INDEX IF NOT EXISTS visits_patient_time_idx ON visits (patient_id, visited_at DESC);

-- What was recorded stays as it was recorded: no row is ever changed. (Deleting is left to a
-- patient's erasure; the API never deletes.)
CREATE OR REPLACE FUNCTION pisces_visits_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'visits are append-only: record a correction instead' USING ERRCODE = 'P0001';
END $$;
DROP TRIGGER IF EXISTS visits_unchanged ON visits;
CREATE TRIGGER visits_unchanged BEFORE UPDATE ON visits FOR EACH ROW EXECUTE FUNCTION pisces_visits_unchanged();
