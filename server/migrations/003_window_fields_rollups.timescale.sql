-- pisces schema v3 with TimescaleDB: the new summary-window fields (see
-- 003_window_fields_rollups.sql) and the 1-minute / 1-hour continuous aggregates
-- rebuilt with the columns the portal's charts read (same names and meanings as
-- the plain path's rollup tables). A continuous aggregate cannot gain columns,
-- so both are recreated; `pisces db migrate` then refreshes them over the whole
-- stored range (server/store.py: refresh_rollups), which cannot run inside this
-- migration's transaction. Buckets whose windows retention had already dropped
-- are not rebuilt (see docs/server.md).

ALTER TABLE summaries ADD COLUMN pnn50 real;                -- %
ALTER TABLE summaries ADD COLUMN pause_max real;            -- s, longest RR interval
ALTER TABLE summaries ADD COLUMN ectopic integer;           -- beats
ALTER TABLE summaries ADD COLUMN steps integer;
ALTER TABLE summaries ADD COLUMN posture_changes integer;
ALTER TABLE summaries ADD COLUMN fall boolean NOT NULL DEFAULT false;

INSERT INTO store_info (key, value) VALUES ('rollup_quality', '0.5');

DROP MATERIALIZED VIEW summary_1h;
DROP MATERIALIZED VIEW summary_1m;

CREATE MATERIALIZED VIEW summary_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT patient_id, time_bucket(INTERVAL '1 minute', start_at) AS bucket, count(*) AS windows,
       sum(beats)::bigint AS beats, count(hr_mean) AS hr_n, sum(hr_mean::float8) AS hr_sum,
       min(hr_min) AS hr_min, max(hr_max) AS hr_max, count(resp_rate) AS resp_n,
       sum(resp_rate::float8) AS resp_sum, sum(quality::float8) AS quality_sum,
       count(*) FILTER (WHERE quality >= 0.5) AS usable,
       count(hr_mean) FILTER (WHERE quality >= 0.5) AS u_hr_n,
       sum(hr_mean::float8) FILTER (WHERE quality >= 0.5) AS u_hr_sum,
       min(hr_min) FILTER (WHERE quality >= 0.5) AS u_hr_min,
       max(hr_max) FILTER (WHERE quality >= 0.5) AS u_hr_max,
       count(sdnn) FILTER (WHERE quality >= 0.5) AS u_sdnn_n,
       sum(sdnn::float8) FILTER (WHERE quality >= 0.5) AS u_sdnn_sum,
       count(rmssd) FILTER (WHERE quality >= 0.5) AS u_rmssd_n,
       sum(rmssd::float8) FILTER (WHERE quality >= 0.5) AS u_rmssd_sum,
       count(resp_rate) FILTER (WHERE quality >= 0.5) AS u_resp_n,
       sum(resp_rate::float8) FILTER (WHERE quality >= 0.5) AS u_resp_sum,
       max(pause_max) FILTER (WHERE quality >= 0.5) AS u_pause_max,
       count(*) FILTER (WHERE quality >= 0.5 AND flags && '{af_suspected,brady,irregular,pause,tachy,vt}'::text[]) AS rhythm,
       count(intensity) AS intensity_n, sum(intensity::float8) AS intensity_sum,
       count(steps) AS steps_n, sum(steps)::bigint AS steps_sum,
       count(*) FILTER (WHERE fall) AS falls,
       count(*) FILTER (WHERE activity = 'lying') AS act_lying, count(*) FILTER (WHERE activity = 'rest') AS act_rest,
       count(*) FILTER (WHERE activity = 'run') AS act_run, count(*) FILTER (WHERE activity = 'unknown') AS act_unknown,
       count(*) FILTER (WHERE activity = 'walk') AS act_walk
FROM summaries GROUP BY patient_id, time_bucket(INTERVAL '1 minute', start_at)
WITH NO DATA;

CREATE MATERIALIZED VIEW summary_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT patient_id, time_bucket(INTERVAL '1 hour', start_at) AS bucket, count(*) AS windows,
       sum(beats)::bigint AS beats, count(hr_mean) AS hr_n, sum(hr_mean::float8) AS hr_sum,
       min(hr_min) AS hr_min, max(hr_max) AS hr_max, count(resp_rate) AS resp_n,
       sum(resp_rate::float8) AS resp_sum, sum(quality::float8) AS quality_sum,
       count(*) FILTER (WHERE quality >= 0.5) AS usable,
       count(hr_mean) FILTER (WHERE quality >= 0.5) AS u_hr_n,
       sum(hr_mean::float8) FILTER (WHERE quality >= 0.5) AS u_hr_sum,
       min(hr_min) FILTER (WHERE quality >= 0.5) AS u_hr_min,
       max(hr_max) FILTER (WHERE quality >= 0.5) AS u_hr_max,
       count(sdnn) FILTER (WHERE quality >= 0.5) AS u_sdnn_n,
       sum(sdnn::float8) FILTER (WHERE quality >= 0.5) AS u_sdnn_sum,
       count(rmssd) FILTER (WHERE quality >= 0.5) AS u_rmssd_n,
       sum(rmssd::float8) FILTER (WHERE quality >= 0.5) AS u_rmssd_sum,
       count(resp_rate) FILTER (WHERE quality >= 0.5) AS u_resp_n,
       sum(resp_rate::float8) FILTER (WHERE quality >= 0.5) AS u_resp_sum,
       max(pause_max) FILTER (WHERE quality >= 0.5) AS u_pause_max,
       count(*) FILTER (WHERE quality >= 0.5 AND flags && '{af_suspected,brady,irregular,pause,tachy,vt}'::text[]) AS rhythm,
       count(intensity) AS intensity_n, sum(intensity::float8) AS intensity_sum,
       count(steps) AS steps_n, sum(steps)::bigint AS steps_sum,
       count(*) FILTER (WHERE fall) AS falls,
       count(*) FILTER (WHERE activity = 'lying') AS act_lying, count(*) FILTER (WHERE activity = 'rest') AS act_rest,
       count(*) FILTER (WHERE activity = 'run') AS act_run, count(*) FILTER (WHERE activity = 'unknown') AS act_unknown,
       count(*) FILTER (WHERE activity = 'walk') AS act_walk
FROM summaries GROUP BY patient_id, time_bucket(INTERVAL '1 hour', start_at)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('summary_1m',
    start_offset => INTERVAL '14 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('summary_1h',
    start_offset => INTERVAL '14 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes');
