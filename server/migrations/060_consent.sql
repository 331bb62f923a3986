-- Issue 10, patients in control: consent per purpose, patient accounts, what consent
-- enforcement did, and the phone configs pushed. Numbered 060+.

-- Patients and caregivers sign in too (server/api/deps.py keeps them off clinician routes).
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('clinician', 'admin', 'patient', 'caregiver'));

-- A patient's own account: one per patient.
CREATE TABLE IF NOT EXISTS patient_accounts (
    user_id    bigint PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    patient_id bigint NOT NULL UNIQUE REFERENCES patients(id) ON DELETE CASCADE
);

-- Every grant and withdrawal, per patient and purpose; the newest row is in force.
-- Rows are never edited (the trigger below refuses UPDATE): history is the record.
CREATE TABLE IF NOT EXISTS consents (
    id          bigserial PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES patients(id),
    purpose     text NOT NULL CHECK (purpose IN ('monitoring', 'location', 'weather', 'caregivers', 'research')),
    granted     boolean NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (actor IN ('patient', 'clinician', 'system')),  -- who acted
    recorded_by bigint REFERENCES users(id),     -- the person who recorded it (NULL: system)
    method      text NOT NULL CHECK (length(method) BETWEEN 1 AND 200),  -- "in app", "signed form", ...
    note        text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS consents_current_idx ON consents (patient_id, purpose, id DESC);

CREATE OR REPLACE FUNCTION pisces_consents_never_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent rows are never edited: record a new grant or withdrawal instead'
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
DROP TRIGGER IF EXISTS consents_never_change ON consents;
CREATE TRIGGER consents_never_change BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION pisces_consents_never_change();

-- True while the patient's newest row for the purpose grants it (no row: not granted).
CREATE OR REPLACE FUNCTION pisces_consented(patient bigint, what text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT granted FROM consents WHERE patient_id = patient AND purpose = what
                     ORDER BY id DESC LIMIT 1), false)
$$;

-- Patients monitored before consent was recorded keep being monitored: enrolment was their consent.
INSERT INTO consents (patient_id, purpose, granted, actor, method)
SELECT p.id, 'monitoring', true, 'system', 'enrolment (before consent was recorded)'
FROM patients p WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.patient_id = p.id);

-- What the ingest did because consent was missing, per UTC day and patient (the admin's view):
-- positions_stripped (windows and events stored without lat/lon), quarantined (messages kept
-- in dead_letters with reason no_consent).
CREATE TABLE IF NOT EXISTS consent_enforcement (
    day        date NOT NULL,
    patient_id bigint NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('positions_stripped', 'quarantined')),
    count      bigint NOT NULL,
    PRIMARY KEY (day, patient_id, kind)
);

-- The newest retained config published to each patient's phone (server/phone_config.py).
CREATE TABLE IF NOT EXISTS config_pushes (
    patient_id bigint PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
    version    integer NOT NULL,
    pushed_at  timestamptz NOT NULL
);
