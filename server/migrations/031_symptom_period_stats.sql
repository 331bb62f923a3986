-- What the data showed during each symptom period, kept so that searching by it
-- (max HR above X, a pause, an irregular rhythm, signal quality) reads one row a
-- period instead of its windows. A cache filled by the API (server/search.py):
-- a row is final once the patient's data reached past the period's end (the
-- phone sends in order); until then it is recomputed at every search.
CREATE TABLE IF NOT EXISTS symptom_period_stats (
    period_id      bigint PRIMARY KEY REFERENCES symptom_periods(id) ON DELETE CASCADE,
    usable_quality real NOT NULL,            -- windows below it were left out (0..1)
    windows        integer NOT NULL,         -- usable windows overlapping the period
    hr_mean real, hr_min real, hr_max real,  -- bpm
    resp_mean      real,                     -- breaths/min
    rmssd_mean     real,                     -- ms
    quality_mean   real,                     -- 0..1, over all overlapping windows
    flags          text[] NOT NULL DEFAULT '{}',
    final          boolean NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now()
);
