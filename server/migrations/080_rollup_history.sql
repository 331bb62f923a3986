-- Issue 6, the TimescaleDB path tried for real: rollups keep their history when raw
-- windows are dropped, and take late windows of any age. The plain path's rollup
-- tables already do both (the ingest adds every inserted window to them at once and
-- retention drops only summary partitions), so there is nothing to change here; the
-- TimescaleDB variant (080_rollup_history.timescale.sql) brings that path level.
SELECT 1;
