"""Retention per kind of data: data older than each limit goes, newer data stays, every run is recorded.

Runs on a scratch database of its own (the job removes data of every patient),
on the plain-PostgreSQL path (day partitions dropped whole); the TimescaleDB
path (chunks dropped keeping the rollups) is exercised where the extension
exists, here and in test_store_timeseries.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from server import cli, retention
from server.ingest import Ingestor
from server.retention import KINDS, REFRESH_BUSY, cutoffs, policy_from, run_retention
from server.settings import ServerSettings
from server.store import migrate, refresh_rollups
from tests.fix_db import scratch_database
from tests.server.patient_data import Filled, fill_patient
from tests.server.test_store_timeseries import own_timescale, timescale_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.db

DAYS = 30
OLD, NEW = 400 * 86400.0, 3600.0  # s before now


@pytest.fixture(scope="module")
def url(pg_server_url: str) -> Iterator[str]:
    with scratch_database(pg_server_url, "pisces_retention") as url:
        migrate(url, timescale=False)
        yield url


def age(conn: psycopg.Connection, old: Filled) -> None:
    """Make every timestamp of ``old`` that the writes set to now() as old as its data, plus old rows elsewhere."""
    then = datetime.now(timezone.utc) - timedelta(seconds=OLD)
    conn.execute("UPDATE alerts SET state = 'resolved', closed_at = opened_at WHERE patient_id = %s", (old.patient_id,))
    conn.execute("UPDATE uplink_messages SET received_at = %s WHERE device_id = %s", (then, old.device_id))
    conn.execute("UPDATE dead_letters SET received_at = %s WHERE topic LIKE %s", (then, f"%/{old.device_id}/%"))
    conn.execute("UPDATE sessions SET expires_at = %s WHERE user_id = %s", (then, old.clinician_id))
    conn.execute("INSERT INTO audit_log (at, user_id, action, patient_id) VALUES (%s, %s, 'read:old', %s)",
                 (then, old.clinician_id, old.patient_id))  # fmt: skip
    conn.execute("INSERT INTO weather_rejects (source, line, reason, raw, rejected_at) VALUES"
                 " ('old.csv', 1, 'test', 'x', %s)", (then,))  # fmt: skip


def counts(conn: psycopg.Connection, f: Filled) -> dict[str, int]:
    """Rows of one patient per kind (the kinds' tables, by patient or device)."""
    one = {
        "summaries": "SELECT count(*) FROM summaries WHERE patient_id = %(p)s",
        "rollups": "SELECT (SELECT count(*) FROM summary_1m WHERE patient_id = %(p)s)"
                   " + (SELECT count(*) FROM summary_1h WHERE patient_id = %(p)s)",
        "events": "SELECT (SELECT count(*) FROM events WHERE patient_id = %(p)s)"
                  " + (SELECT count(*) FROM symptom_periods WHERE patient_id = %(p)s)",
        "strips": "SELECT count(*) FROM strips WHERE patient_id = %(p)s",
        "alerts": "SELECT count(*) FROM alerts WHERE patient_id = %(p)s",
        "dead_letters": "SELECT count(*) FROM dead_letters WHERE topic LIKE '%%/' || %(d)s || '/%%'",
        "audit": "SELECT count(*) FROM audit_log WHERE patient_id = %(p)s AND action <> 'read:audit'",
        "sessions": "SELECT count(*) FROM sessions WHERE user_id = %(u)s",
        "uplink_keys": "SELECT count(*) FROM uplink_messages WHERE device_id = %(d)s",
    }  # fmt: skip
    args = {"p": f.patient_id, "d": f.device_id, "u": f.clinician_id}
    return {k: conn.execute(q, args).fetchone()[0] for k, q in one.items()}  # type: ignore[index]


def test_each_kind_removes_what_is_older_than_its_limit_and_keeps_the_rest(url: str) -> None:
    now = time.time()
    with psycopg.connect(url, autocommit=True) as conn:
        old, new = fill_patient(conn, now - OLD), fill_patient(conn, now - NEW)
        conn.execute("UPDATE alerts SET state = 'resolved', closed_at = now() WHERE patient_id = %s", (new.patient_id,))
        age(conn, old)
        before_old, before_new = counts(conn, old), counts(conn, new)
        assert all(before_old.values()) and all(before_new.values()), (before_old, before_new)
        policy = dict.fromkeys(KINDS, float(DAYS))

        dry = run_retention(conn, policy, datetime.now(timezone.utc), dry_run=True)
        assert counts(conn, old) == before_old and counts(conn, new) == before_new
        assert conn.execute("SELECT count(*) FROM retention_runs").fetchone() == (0,)
        by_kind = {o.kind: o for o in dry}
        assert set(by_kind) == set(KINDS) and all(o.removed_anything for o in dry), dry
        assert by_kind["summaries"].rows is None and by_kind["summaries"].dropped  # whole day partitions

        done = run_retention(conn, policy, datetime.now(timezone.utc), by="test")
        after_old, after_new = counts(conn, old), counts(conn, new)
        runs = conn.execute("SELECT kind, rows, dropped, by_whom FROM retention_runs ORDER BY id").fetchall()
        again = run_retention(conn, policy, datetime.now(timezone.utc))
        runs_again = conn.execute("SELECT count(*) FROM retention_runs").fetchone()
    # what is left of the old patient: the audit row fill_patient wrote now (only its old one went)
    assert after_old == dict.fromkeys(KINDS, 0) | {"audit": 1}, after_old
    assert after_new == before_new
    assert [(o.kind, o.rows, o.dropped) for o in done] == [(o.kind, o.rows, o.dropped) for o in dry]
    assert [r[0] for r in runs] == list(KINDS) and {r[3] for r in runs} == {"test"}
    assert dict((r[0], r[1]) for r in runs)["audit"] >= 1
    assert not any(o.removed_anything for o in again) and runs_again == (len(KINDS),)


def test_timescale_drops_whole_chunks_of_old_data(timescale_url: str) -> None:  # noqa: F811
    now = time.time()
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        old, new = fill_patient(conn, now - OLD), fill_patient(conn, now - NEW)
        age(conn, old)
        before_new = counts(conn, new)
        done = {o.kind: o for o in run_retention(conn, dict.fromkeys(KINDS, float(DAYS)), datetime.now(timezone.utc))}
        after_old, after_new = counts(conn, old), counts(conn, new)
    assert done["summaries"].dropped and done["summaries"].rows is None and done["events"].dropped
    assert after_old == dict.fromkeys(KINDS, 0) | {"audit": 1}, after_old
    assert after_new == before_new


def waiting_for_a_lock(conn: psycopg.Connection, pid: int) -> None:
    """Return once backend ``pid`` waits for a lock (fail after a minute: it never got there)."""
    for _ in range(600):
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row == ("Lock",):
            return
        time.sleep(0.1)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_timescale_windows_stay_while_a_refresh_of_the_rollups_is_under_way(
    own_timescale: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """TimescaleDB refuses a refresh overlapping one under way (a policy's, here one held up by a lock on
    the windows): the job then drops no windows (they may not be in the rollups yet), says why, and runs
    the other kinds; the next run drops them."""
    monkeypatch.setattr(retention, "RETENTION_PATIENCE_S", 0.5)
    policy, now = {"summaries": float(DAYS), "sessions": float(DAYS)}, datetime.now(timezone.utc)
    with psycopg.connect(own_timescale, autocommit=True) as conn:
        old = fill_patient(conn, now.timestamp() - OLD)
        age(conn, old)
        before = counts(conn, old)
    with (psycopg.connect(own_timescale) as holder, psycopg.connect(own_timescale, autocommit=True) as refresher,
          psycopg.connect(own_timescale, autocommit=True) as conn):  # fmt: skip
        holder.execute("LOCK TABLE summaries IN ACCESS EXCLUSIVE MODE")  # until holder's transaction ends
        under_way = threading.Thread(target=refresh_rollups, args=(refresher,))
        under_way.start()
        try:
            waiting_for_a_lock(conn, refresher.info.backend_pid)
            busy = {o.kind: o for o in run_retention(conn, policy, now)}
        finally:
            holder.rollback()
            under_way.join()
        during = counts(conn, old)
        again = {o.kind: o for o in run_retention(conn, policy, now)}
        after = counts(conn, old)
        runs = conn.execute("SELECT kind FROM retention_runs ORDER BY id").fetchall()
    assert busy["summaries"].skipped == REFRESH_BUSY and not busy["summaries"].dropped
    assert busy["sessions"].rows == before["sessions"] == 1 and during["sessions"] == 0
    assert during["summaries"] == before["summaries"] > 0
    assert again["summaries"].dropped and after["summaries"] == 0 and after["rollups"] == before["rollups"] > 0
    assert runs == [("sessions",), ("summaries",)]


def test_a_limit_of_zero_keeps_everything_and_unknown_kinds_are_refused() -> None:
    now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    assert cutoffs({"summaries": 0, "audit": 10}, now) == {"audit": datetime(2026, 1, 21, tzinfo=timezone.utc)}
    with pytest.raises(ValueError, match="unknown retention kinds"):
        cutoffs({"summary": 30}, now)
    defaults = policy_from(ServerSettings())
    assert set(defaults) == set(KINDS)
    assert {k for k, d in defaults.items() if d > 0} == {"dead_letters", "audit", "sessions"}


def test_audit_rows_go_only_through_the_recorded_path(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute("INSERT INTO users (username, password_hash, role) VALUES ('auditor-x', 'x', 'admin')"
                            " RETURNING id").fetchone()[0]  # type: ignore[index]
        conn.execute("INSERT INTO audit_log (at, user_id, action) VALUES (now() - interval '100 days', %s, 'a')",
                     (user,))  # fmt: skip
        for statement in ("UPDATE audit_log SET action = 'edited'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # a run record does not cover newer rows
            with conn.transaction():
                conn.execute("INSERT INTO retention_runs (kind, cutoff, by_whom) VALUES"
                             " ('audit', now() - interval '200 days', 'x')")  # fmt: skip
                conn.execute("DELETE FROM audit_log WHERE user_id = %s", (user,))
        conn.execute("INSERT INTO retention_runs (kind, cutoff, by_whom) VALUES ('events', now(), 'x')")
        for statement in ("UPDATE retention_runs SET rows = 0", "DELETE FROM retention_runs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        left = conn.execute("SELECT count(*) FROM audit_log WHERE user_id = %s", (user,)).fetchone()
    assert left == (1,)


def test_a_second_job_skips_while_one_runs(url: str) -> None:
    from server.retention import RETENTION_LOCK_KEY

    with psycopg.connect(url, autocommit=True) as holder, psycopg.connect(url, autocommit=True) as conn:
        holder.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
        outcomes = run_retention(conn, {"audit": 1.0}, datetime.now(timezone.utc))
    assert [o.skipped for o in outcomes] == ["another retention job is running"]


def test_the_ingest_worker_runs_the_job_and_the_cli_shows_a_dry_run(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO dead_letters (topic, payload, reason, received_at) VALUES"
                     " ('t', 'x', 'test', now() - interval '3 days')")  # fmt: skip
    monkeypatch.setenv("PISCES_DATABASE_URL", url)
    monkeypatch.setenv("PISCES_RETENTION_DEAD_LETTERS_DAYS", "2")
    assert cli.main(["retention", "run", "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "dead_letters  older than" in shown and "would remove 1 rows" in shown and "summaries     keep" in shown
    worker = Ingestor(ServerSettings(database_url=url, mqtt_url="mqtt://127.0.0.1:1", retention_dead_letters_days=2))
    try:
        worker._maybe_retention()
    finally:
        worker._drop_connection()
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM dead_letters WHERE received_at < now() - interval '2 days'")
        assert left.fetchone() == (0,)


def test_the_cli_exits_1_when_a_kind_was_not_done_and_0_when_another_job_does_it(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.retention import RETENTION_LOCK_KEY, Outcome

    monkeypatch.setenv("PISCES_DATABASE_URL", url)
    monkeypatch.setenv("PISCES_RETENTION_DEAD_LETTERS_DAYS", "2")
    with psycopg.connect(url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))
        assert cli.main(["retention", "run"]) == 0  # the job holding the lock does the work
    assert "another retention job is running" in capsys.readouterr().out
    now = datetime.now(timezone.utc)
    busy = [Outcome("dead_letters", now, 3, ()), Outcome("summaries", now, None, (), skipped=REFRESH_BUSY)]
    assert [o.failed for o in busy] == [False, True]
    monkeypatch.setattr(retention, "run_retention", lambda *a, **k: busy)  # a TimescaleDB-only refusal, here
    assert cli.main(["retention", "run"]) == 1
    assert "not done for summaries" in capsys.readouterr().err
