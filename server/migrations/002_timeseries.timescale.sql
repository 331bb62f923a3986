-- pisces schema v2 with TimescaleDB: hypertables for summaries and events,
-- compression of older summary chunks, and 1-minute / 1-hour continuous
-- aggregates with the same names and columns as the plain path's rollup tables
-- (002_timeseries.sql), so readers need not know which engine they run on.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE store_info (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO store_info (key, value) VALUES ('engine', 'timescaledb');

-- Chunks are created by TimescaleDB itself; the ingest calls this on either engine.
CREATE FUNCTION pisces_ensure_summary_partitions(days date[]) RETURNS integer
LANGUAGE sql AS $$ SELECT 0 $$;

-- See 002_timeseries.sql for why summaries carry no foreign key.
ALTER TABLE summaries DROP CONSTRAINT summaries_patient_id_fkey;
SELECT create_hypertable('summaries', by_range('start_at', INTERVAL '1 day'), migrate_data => true);
SELECT create_hypertable('events', by_range('at', INTERVAL '7 days'), migrate_data => true);
CREATE INDEX strips_reason_time_idx ON strips (reason, start_at);

ALTER TABLE summaries SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'patient_id',
    timescaledb.compress_orderby = 'start_at'
);
SELECT add_compression_policy('summaries', INTERVAL '7 days');

CREATE MATERIALIZED VIEW summary_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT patient_id, time_bucket(INTERVAL '1 minute', start_at) AS bucket, count(*) AS windows,
       sum(beats)::bigint AS beats, count(hr_mean) AS hr_n, sum(hr_mean::float8) AS hr_sum,
       min(hr_min) AS hr_min, max(hr_max) AS hr_max, count(resp_rate) AS resp_n,
       sum(resp_rate::float8) AS resp_sum, sum(quality::float8) AS quality_sum
FROM summaries GROUP BY patient_id, time_bucket(INTERVAL '1 minute', start_at)
WITH NO DATA;

CREATE MATERIALIZED VIEW summary_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT patient_id, time_bucket(INTERVAL '1 hour', start_at) AS bucket, count(*) AS windows,
       sum(beats)::bigint AS beats, count(hr_mean) AS hr_n, sum(hr_mean::float8) AS hr_sum,
       min(hr_min) AS hr_min, max(hr_max) AS hr_max, count(resp_rate) AS resp_n,
       sum(resp_rate::float8) AS resp_sum, sum(quality::float8) AS quality_sum
FROM summaries GROUP BY patient_id, time_bucket(INTERVAL '1 hour', start_at)
WITH NO DATA;

-- Late data (a phone offline for days) inside start_offset is materialised on the next run;
-- newer data is always read live (materialized_only = false).
SELECT add_continuous_aggregate_policy('summary_1m',
    start_offset => INTERVAL '14 days', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('summary_1h',
    start_offset => INTERVAL '14 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes');
