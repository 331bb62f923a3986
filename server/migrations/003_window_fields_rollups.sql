-- pisces schema v3 on plain PostgreSQL: the summary-window fields the edge
-- measures since issue 7 (pNN50, longest RR, ectopic beats, steps, posture
-- changes, fall), and rollup columns the portal's charts read for months.
-- (003_window_fields_rollups.timescale.sql is applied instead on TimescaleDB.)
--
-- The "u_" columns count only usable windows, quality >= 0.5 (store_info
-- 'rollup_quality'); a server configured with another min_quality charts from
-- the raw windows instead (server/trends.py: series_source).

ALTER TABLE summaries
    ADD COLUMN pnn50 real,                           -- %
    ADD COLUMN pause_max real,                       -- s, longest RR interval
    ADD COLUMN ectopic integer,                      -- beats
    ADD COLUMN steps integer,
    ADD COLUMN posture_changes integer,
    ADD COLUMN fall boolean NOT NULL DEFAULT false;

INSERT INTO store_info (key, value) VALUES ('rollup_quality', '0.5');

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['summary_1m', 'summary_1h'] LOOP
        EXECUTE format($f$ALTER TABLE %I
            ADD COLUMN usable      bigint NOT NULL DEFAULT 0,  -- windows with quality >= 0.5
            ADD COLUMN u_hr_n      bigint NOT NULL DEFAULT 0,
            ADD COLUMN u_hr_sum    double precision,           -- bpm
            ADD COLUMN u_hr_min    real,
            ADD COLUMN u_hr_max    real,
            ADD COLUMN u_sdnn_n    bigint NOT NULL DEFAULT 0,
            ADD COLUMN u_sdnn_sum  double precision,           -- ms
            ADD COLUMN u_rmssd_n   bigint NOT NULL DEFAULT 0,
            ADD COLUMN u_rmssd_sum double precision,           -- ms
            ADD COLUMN u_resp_n    bigint NOT NULL DEFAULT 0,
            ADD COLUMN u_resp_sum  double precision,           -- breaths/min
            ADD COLUMN u_pause_max real,                       -- s
            ADD COLUMN rhythm      bigint NOT NULL DEFAULT 0,  -- usable windows with an arrhythmia flag
            ADD COLUMN intensity_n bigint NOT NULL DEFAULT 0,
            ADD COLUMN intensity_sum double precision,         -- g
            ADD COLUMN steps_n     bigint NOT NULL DEFAULT 0,
            ADD COLUMN steps_sum   bigint,
            ADD COLUMN falls       bigint NOT NULL DEFAULT 0,
            ADD COLUMN act_lying   bigint NOT NULL DEFAULT 0,
            ADD COLUMN act_rest    bigint NOT NULL DEFAULT 0,
            ADD COLUMN act_run     bigint NOT NULL DEFAULT 0,
            ADD COLUMN act_unknown bigint NOT NULL DEFAULT 0,
            ADD COLUMN act_walk    bigint NOT NULL DEFAULT 0$f$, t);
    END LOOP;
END $$;

-- Recompute the rollups of every bucket whose windows are still stored; rows of
-- buckets already dropped by retention keep their old columns (new ones 0/NULL).
DO $$
DECLARE
    t text;
    step text;
BEGIN
    FOR t, step IN VALUES ('summary_1m', '1 minute'), ('summary_1h', '1 hour') LOOP
        EXECUTE format($f$INSERT INTO %I
            SELECT patient_id, date_bin(%L, start_at, 'epoch'), count(*), sum(beats), count(hr_mean),
                   sum(hr_mean::float8), min(hr_min), max(hr_max), count(resp_rate), sum(resp_rate::float8),
                   sum(quality::float8),
                   count(*) FILTER (WHERE quality >= 0.5),
                   count(hr_mean) FILTER (WHERE quality >= 0.5), sum(hr_mean::float8) FILTER (WHERE quality >= 0.5),
                   min(hr_min) FILTER (WHERE quality >= 0.5), max(hr_max) FILTER (WHERE quality >= 0.5),
                   count(sdnn) FILTER (WHERE quality >= 0.5), sum(sdnn::float8) FILTER (WHERE quality >= 0.5),
                   count(rmssd) FILTER (WHERE quality >= 0.5), sum(rmssd::float8) FILTER (WHERE quality >= 0.5),
                   count(resp_rate) FILTER (WHERE quality >= 0.5), sum(resp_rate::float8) FILTER (WHERE quality >= 0.5),
                   max(pause_max) FILTER (WHERE quality >= 0.5),
                   count(*) FILTER (WHERE quality >= 0.5 AND flags && '{af_suspected,brady,irregular,pause,tachy,vt}'),
                   count(intensity), sum(intensity::float8), count(steps), sum(steps),
                   count(*) FILTER (WHERE fall),
                   count(*) FILTER (WHERE activity = 'lying'), count(*) FILTER (WHERE activity = 'rest'),
                   count(*) FILTER (WHERE activity = 'run'), count(*) FILTER (WHERE activity = 'unknown'),
                   count(*) FILTER (WHERE activity = 'walk')
            FROM summaries GROUP BY 1, 2
            ON CONFLICT (patient_id, bucket) DO UPDATE SET
                windows = EXCLUDED.windows, beats = EXCLUDED.beats, hr_n = EXCLUDED.hr_n,
                hr_sum = EXCLUDED.hr_sum, hr_min = EXCLUDED.hr_min, hr_max = EXCLUDED.hr_max,
                resp_n = EXCLUDED.resp_n, resp_sum = EXCLUDED.resp_sum, quality_sum = EXCLUDED.quality_sum,
                usable = EXCLUDED.usable, u_hr_n = EXCLUDED.u_hr_n, u_hr_sum = EXCLUDED.u_hr_sum,
                u_hr_min = EXCLUDED.u_hr_min, u_hr_max = EXCLUDED.u_hr_max, u_sdnn_n = EXCLUDED.u_sdnn_n,
                u_sdnn_sum = EXCLUDED.u_sdnn_sum, u_rmssd_n = EXCLUDED.u_rmssd_n,
                u_rmssd_sum = EXCLUDED.u_rmssd_sum, u_resp_n = EXCLUDED.u_resp_n,
                u_resp_sum = EXCLUDED.u_resp_sum, u_pause_max = EXCLUDED.u_pause_max,
                rhythm = EXCLUDED.rhythm, intensity_n = EXCLUDED.intensity_n,
                intensity_sum = EXCLUDED.intensity_sum, steps_n = EXCLUDED.steps_n,
                steps_sum = EXCLUDED.steps_sum, falls = EXCLUDED.falls, act_lying = EXCLUDED.act_lying,
                act_rest = EXCLUDED.act_rest, act_run = EXCLUDED.act_run, act_unknown = EXCLUDED.act_unknown,
                act_walk = EXCLUDED.act_walk$f$, t, step);
    END LOOP;
END $$;
