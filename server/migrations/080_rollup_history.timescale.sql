-- Issue 6, the TimescaleDB path tried for real (see docs/server.md, "TimescaleDB").
--
-- 1. Retention no longer wipes rollups. A TimescaleDB retention policy drops chunks
--    and logs a continuous-aggregate invalidation for their range, so the next
--    refresh that covers it (the 14-day refresh policy, or refresh_rollups) recomputed
--    those buckets from no windows and deleted them. Retention is now applied by the
--    server on both engines (server/retention.py, its summaries kind: run hourly by
--    the ingest when PISCES_RETENTION_SUMMARIES_DAYS is set), dropping chunks without
--    logging invalidations, so no refresh ever recomputes a bucket whose windows are gone.
-- 2. Late windows of any age reach the rollups. The refresh policies reached back 14
--    days only; a window older than that stayed out of the aggregates for good (the
--    real-time part reads raw windows above the watermark only). They now reach back
--    to the beginning (start_offset NULL): a refresh does work only where the
--    invalidation log says windows were written, so this costs nothing when there is
--    none. A database that had the old retention policy keeps a reach of that
--    policy's drop_after instead, because invalidations of the chunks it dropped are
--    still logged further back.
--    Both refresh in one pass (buckets_per_batch 0): TimescaleDB 2.28 splits a refresh
--    into batches of 10 buckets by default and then skips the bucket of an
--    invalidation that ends exactly on a batch boundary (fixed in 2.29, issue
--    timescale/timescaledb#10221), so a late window starting on such a boundary
--    stayed out of the rollups until a later refresh.
-- 3. Compressed chunks segment by device too. The unique key (device_id, seq, idx,
--    start_at) is checked on every insert into a compressed chunk (a late or repeated
--    message older than 7 days); segmenting by patient only, that check examined the
--    batch of every patient overlapping the window's time. Chunks compressed before
--    keep their settings until they are recompressed.
DO $$
DECLARE
    reach interval;  -- NULL: no retention policy ever dropped chunks here
BEGIN
    SELECT (config ->> 'drop_after')::interval INTO reach
    FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' AND hypertable_name = 'summaries';
    PERFORM remove_retention_policy('summaries', if_exists => true);
    PERFORM remove_continuous_aggregate_policy('summary_1m', if_exists => true);
    PERFORM remove_continuous_aggregate_policy('summary_1h', if_exists => true);
    PERFORM add_continuous_aggregate_policy('summary_1m', start_offset => reach, end_offset => INTERVAL '1 minute',
        schedule_interval => INTERVAL '1 minute', buckets_per_batch => 0);
    PERFORM add_continuous_aggregate_policy('summary_1h', start_offset => reach, end_offset => INTERVAL '1 hour',
        schedule_interval => INTERVAL '10 minutes', buckets_per_batch => 0);
END $$;

ALTER TABLE summaries SET (
    timescaledb.compress_segmentby = 'patient_id, device_id',
    timescaledb.compress_orderby = 'start_at, seq, idx'
);
