-- As 075_ingest_hot_updates.sql: room on each page for in-place (HOT) updates of
-- the rows the ingest updates in every batch. On TimescaleDB the rollups are
-- continuous aggregates that the ingest does not write, so only these two.
ALTER TABLE rule_state SET (fillfactor = 70);
ALTER TABLE patients SET (fillfactor = 70);
