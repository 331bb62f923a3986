-- pisces schema v2 on plain PostgreSQL: summaries natively partitioned by day,
-- BRIN time indexes, and 1-minute / 1-hour rollup tables that the ingest keeps
-- up to date in the same transaction as the rows they summarise.
-- (002_timeseries.timescale.sql is applied instead where TimescaleDB is usable.)

CREATE TABLE store_info (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO store_info (key, value) VALUES ('engine', 'postgresql');

-- Day partitions named summaries_YYYYMMDD (UTC), created on demand, race-free.
CREATE FUNCTION pisces_ensure_summary_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d date;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pisces_summary_partitions'));
    FOR d IN SELECT DISTINCT x FROM unnest(days) AS x ORDER BY x LOOP
        IF to_regclass(format('summaries_%s', to_char(d, 'YYYYMMDD'))) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF summaries FOR VALUES FROM (%L) TO (%L)',
                format('summaries_%s', to_char(d, 'YYYYMMDD')),
                d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

ALTER TABLE summaries RENAME TO summaries_v1;
ALTER TABLE summaries_v1 RENAME CONSTRAINT summaries_device_id_seq_idx_start_at_key TO summaries_v1_key;
ALTER INDEX summaries_patient_time_idx RENAME TO summaries_v1_patient_time_idx;

-- No foreign key to patients: the ingest resolves the patient in the same
-- transaction and patients are never deleted, and a per-row RI check would
-- halve the bulk insert rate (the same holds on a TimescaleDB hypertable).
CREATE TABLE summaries (
    patient_id bigint NOT NULL,
    device_id  text NOT NULL,
    seq        bigint NOT NULL,
    idx        integer NOT NULL,             -- position of the window in its message
    start_at   timestamptz NOT NULL,
    end_at     timestamptz NOT NULL,
    beats      integer NOT NULL,
    hr_mean    real, hr_min real, hr_max real,  -- bpm
    rr_mean    real, sdnn real, rmssd real,     -- ms
    flags      text[] NOT NULL DEFAULT '{}',
    resp_rate  real,                            -- breaths/min
    activity   text NOT NULL,
    intensity  real,                            -- g
    quality    real NOT NULL,                   -- 0..1
    battery    smallint,                        -- %
    lat        double precision, lon double precision,
    UNIQUE (device_id, seq, idx, start_at)
) PARTITION BY RANGE (start_at);
CREATE INDEX summaries_patient_time_idx ON summaries (patient_id, start_at);
CREATE INDEX summaries_time_brin ON summaries USING brin (start_at);

SELECT pisces_ensure_summary_partitions(
    ARRAY(SELECT DISTINCT (start_at AT TIME ZONE 'UTC')::date FROM summaries_v1));
INSERT INTO summaries SELECT * FROM summaries_v1;
DROP TABLE summaries_v1;

CREATE INDEX events_time_brin ON events USING brin (at);
CREATE INDEX strips_reason_time_idx ON strips (reason, start_at);

-- Rollups: sums and counts, so that means over any span stay exact (mean = sum / n).
CREATE TABLE summary_1m (
    patient_id  bigint NOT NULL,
    bucket      timestamptz NOT NULL,        -- window start, floored to the minute (UTC)
    windows     bigint NOT NULL,
    beats       bigint NOT NULL,
    hr_n        bigint NOT NULL,             -- windows with an hr_mean
    hr_sum      double precision,            -- sum of hr_mean, bpm
    hr_min      real,                        -- lowest hr_min, bpm
    hr_max      real,                        -- highest hr_max, bpm
    resp_n      bigint NOT NULL,
    resp_sum    double precision,            -- breaths/min
    quality_sum double precision NOT NULL,
    PRIMARY KEY (patient_id, bucket)
);
CREATE TABLE summary_1h (LIKE summary_1m INCLUDING ALL);
COMMENT ON COLUMN summary_1h.bucket IS 'window start, floored to the hour (UTC)';

INSERT INTO summary_1m
SELECT patient_id, date_bin('1 minute', start_at, 'epoch'), count(*), sum(beats), count(hr_mean),
       sum(hr_mean::float8), min(hr_min), max(hr_max), count(resp_rate), sum(resp_rate::float8),
       sum(quality::float8)
FROM summaries GROUP BY 1, 2;
INSERT INTO summary_1h
SELECT patient_id, date_bin('1 hour', start_at, 'epoch'), count(*), sum(beats), count(hr_mean),
       sum(hr_mean::float8), min(hr_min), max(hr_max), count(resp_rate), sum(resp_rate::float8),
       sum(quality::float8)
FROM summaries GROUP BY 1, 2;
