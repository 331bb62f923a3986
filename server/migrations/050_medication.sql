-- Issue 11, medication adherence: versions of each patient's medication plan and the
-- dose confirmations among the events. Numbered 050+.

-- Every version of a patient's medication plan, 1, 2, ... per patient; the newest is in
-- force from its created_at (the wire plan's "since"). A change is a new row: the trigger
-- below refuses to edit a version (only pushed_at, the push to the phone, is ever set).
CREATE TABLE medication_plans (
    id              bigserial PRIMARY KEY,
    patient_id      bigint NOT NULL REFERENCES patients(id),
    version         integer NOT NULL CHECK (version >= 1),
    time_zone       text NOT NULL,                -- IANA name; times of day and days are local there
    on_time_minutes integer NOT NULL,             -- taken this long after the planned time: on time
    grace_minutes   integer NOT NULL,             -- not confirmed this long after: missed
    drugs           jsonb NOT NULL,               -- [{name, dose, times, every_hours?, start?, end?, instructions?, critical?}]
    reason          text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    created_by      bigint REFERENCES users(id),
    pushed_at       timestamptz,                  -- when the phone's retained config carried this version
    UNIQUE (patient_id, version)
);

CREATE FUNCTION pisces_medication_plan_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF ROW(NEW.id, NEW.patient_id, NEW.version, NEW.time_zone, NEW.on_time_minutes, NEW.grace_minutes,
           NEW.drugs, NEW.reason, NEW.created_at, NEW.created_by)
       IS DISTINCT FROM ROW(OLD.id, OLD.patient_id, OLD.version, OLD.time_zone, OLD.on_time_minutes,
           OLD.grace_minutes, OLD.drugs, OLD.reason, OLD.created_at, OLD.created_by) THEN
        RAISE EXCEPTION 'medication plan version % of patient % is never edited: record a new version',
            OLD.version, OLD.patient_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER medication_plans_unchanged BEFORE UPDATE ON medication_plans
    FOR EACH ROW EXECUTE FUNCTION pisces_medication_plan_unchanged();

-- Dose events (dose_taken, dose_skipped, dose_snoozed, dose_missed) name their dose by
-- drug and planned time; other events leave both NULL. They are read by patient and
-- time like every event (events_patient_time_idx), so no index of their own.
ALTER TABLE events ADD COLUMN drug text, ADD COLUMN planned_at timestamptz;
