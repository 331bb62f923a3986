-- Indexes and a cache for the clinician portal's reads (issue 8).

-- Symptom search per patient, newest first.
CREATE INDEX IF NOT EXISTS symptom_periods_patient_time_idx
    ON symptom_periods (patient_id, (COALESCE(started_at, ended_at)) DESC);
CREATE INDEX IF NOT EXISTS symptom_periods_order_idx
    ON symptom_periods ((COALESCE(started_at, ended_at)) DESC);

-- Rhythm episodes and "an irregular rhythm overlapping" filters read only the
-- flagged windows, a small share of all windows.
CREATE INDEX IF NOT EXISTS summaries_flagged_idx
    ON summaries (patient_id, start_at) WHERE flags <> '{}';

-- Alerts on a patient's time axis.
CREATE INDEX IF NOT EXISTS alerts_patient_time_idx ON alerts (patient_id, opened_at);

-- A patient's baseline: their vitals over the first days of wear (the baseline
-- phase), computed by the API when first needed and kept; recomputed while the
-- phase is still running. A cache: deleting rows loses nothing.
CREATE TABLE IF NOT EXISTS patient_baselines (
    patient_id    bigint PRIMARY KEY REFERENCES patients(id) ON DELETE CASCADE,
    first_data_at timestamptz NOT NULL,
    until_at      timestamptz NOT NULL,       -- end of the baseline phase
    complete      boolean NOT NULL,           -- the phase is over: the row is final
    windows       integer NOT NULL,           -- usable windows it is made of
    hr_mean real, hr_sd real, hr_p05 real, hr_p95 real,   -- bpm
    resp_mean real, resp_sd real,                         -- breaths/min
    rmssd_mean real, sdnn_mean real,                      -- ms
    quality_mean real,                                    -- 0..1
    computed_at   timestamptz NOT NULL DEFAULT now()
);
