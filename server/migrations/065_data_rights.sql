-- Issue 10, data rights and the audit log: why a person read or changed data,
-- an audit log the database keeps append-only, erased patients (their row stays
-- as a pseudonym so that the audit log and the erasure record still point at
-- it), the erasure record, and a record of every retention run.
-- The same on plain PostgreSQL and TimescaleDB (no hypertable is touched).

ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS reason text;  -- X-Access-Reason of the request, if given
CREATE INDEX IF NOT EXISTS audit_log_time_idx ON audit_log (at);  -- retention deletes by age

-- Set by an erasure, which also replaces the name and the device id: the row then names no one.
ALTER TABLE patients ADD COLUMN IF NOT EXISTS erased_at timestamptz;

-- One row per retention kind per run that deleted or dropped something. A row of kind
-- 'audit' is what lets that same transaction delete audit rows older than its cutoff.
CREATE TABLE IF NOT EXISTS retention_runs (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    txid    bigint NOT NULL DEFAULT txid_current(),
    kind    text NOT NULL,                    -- summaries, events, audit, ... (server/retention.py)
    cutoff  timestamptz NOT NULL,             -- data older than this went
    rows    bigint,                           -- rows deleted; NULL when only whole partitions/chunks went
    dropped text[] NOT NULL DEFAULT '{}',     -- partitions or chunks dropped whole
    by_whom text NOT NULL                     -- "server" (the background job) or "cli:<os user>"
);

-- What an erasure did: who asked, why, how many rows of which table went, what was kept and why.
CREATE TABLE IF NOT EXISTS erasures (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    patient_id      bigint NOT NULL REFERENCES patients(id),  -- the pseudonym the kept rows carry
    requested_by    bigint NOT NULL REFERENCES users(id),
    reason          text NOT NULL,
    erased          jsonb NOT NULL,           -- {"table": rows deleted}
    kept            jsonb NOT NULL,           -- {"table": why it is kept}
    sessions_closed integer NOT NULL,
    device          jsonb NOT NULL            -- {"credentials": "revoked", "retained_config": "cleared", ...}
);

CREATE OR REPLACE FUNCTION pisces_audit_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM retention_runs r
               WHERE r.kind = 'audit' AND r.txid = txid_current() AND OLD.at < r.cutoff) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: rows go only through the recorded audit retention'
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE OR REPLACE FUNCTION pisces_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION pisces_append_only();
DROP TRIGGER IF EXISTS audit_log_no_delete ON audit_log;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION pisces_audit_delete_guard();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION pisces_append_only();

-- The erasure record and the retention record: append-only without exception.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['erasures', 'retention_runs'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I'
                       ' FOR EACH ROW EXECUTE FUNCTION pisces_append_only()', t || '_append_only', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_no_truncate', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION pisces_append_only()', t || '_no_truncate', t);
    END LOOP;
END $$;
