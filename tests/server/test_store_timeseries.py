"""The time-series store on both engines: partitions/hypertables, rollups, retention, compression.

The engine-neutral tests run on the test database, whichever engine it has.
The TimescaleDB tests need a server with the extension preloaded: the test
server if it has it, else ``PISCES_TEST_TIMESCALE_URL``; they skip with the
reason elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from server.ingest import decode_one, rule_config, store_batch
from server.records import ensure_partitions, summary_days
from server.retention import run_retention
from server.settings import ServerSettings
from server.store import _migrations, add_patient, migrate, refresh_rollups, store_engine, timescale_usable
from tests.fix_db import scratch_database
from tests.server.test_ingest import T0
from wire import Kind, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db

ROLLUP_COLUMNS = "patient_id, bucket, windows, beats, hr_n, hr_sum, hr_min, hr_max, resp_n, resp_sum, quality_sum"


def messages(device: str) -> list[tuple[str, bytes]]:
    """90 ten-second windows over 15 minutes in 9 messages, some values missing, each sent twice."""
    out = []
    for seq in range(1, 10):
        windows = tuple(
            SummaryWindow(
                start=T0 + 100 * seq + 10 * i, end=T0 + 100 * seq + 10 * (i + 1), beats=12 + i % 3,
                hr_mean=None if i == 4 else 60.0 + seq + i, hr_min=50.0 + i, hr_max=90.0 + seq,
                resp_rate=None if i % 2 else 14.0 + 0.5 * i, quality=0.5 + 0.05 * i,
            )
            for i in range(10)
        )  # fmt: skip
        out.append((topic_for(device, Kind.SUMMARY), encode(Summary(device, seq, windows))))
    return out + out[::-1]


def ingest(url: str, device: str) -> int:
    """Register a patient for ``device`` and store :func:`messages` in batches of 4; returns the patient id."""
    with psycopg.connect(url, autocommit=True) as conn:
        patient_id = add_patient(conn, "Rollup", device)
        rollups = store_engine(conn) != "timescaledb"
        batch = [decode_one(t, p) for t, p in messages(device)]
        for d in batch:
            assert isinstance(d.msg, Summary)
            ensure_partitions(conn, summary_days(d.msg))
        for start in range(0, len(batch), 4):
            store_batch(conn, batch[start : start + 4], rule_config(ServerSettings()), rollups)
    return patient_id


def read_rollups(url: str, table: str, patient_id: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT {ROLLUP_COLUMNS} FROM {table} WHERE patient_id = %s ORDER BY bucket", (patient_id,)
        ).fetchall()


def recompute(url: str, step: str, patient_id: int) -> list[tuple[Any, ...]]:
    """The rollup computed afresh from the raw rows (the reference)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT patient_id, date_bin(%s::interval, start_at, 'epoch'), count(*), sum(beats), count(hr_mean),"
            " sum(hr_mean::float8), min(hr_min), max(hr_max), count(resp_rate), sum(resp_rate::float8),"
            " sum(quality::float8) FROM summaries WHERE patient_id = %s GROUP BY 1, 2 ORDER BY 2",
            (step, patient_id),
        ).fetchall()


def rounded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]


NO_TIMESCALE = "no PostgreSQL with the timescaledb extension preloaded (set PISCES_TEST_TIMESCALE_URL)"


def timescale_server(pg_server_url: str) -> str:
    """The server with TimescaleDB preloaded: the test server if it has it, else PISCES_TEST_TIMESCALE_URL; or skip."""
    for server in filter(None, (pg_server_url, os.environ.get("PISCES_TEST_TIMESCALE_URL"))):
        with psycopg.connect(server) as conn:
            if timescale_usable(conn):
                return server
    pytest.skip(NO_TIMESCALE)


@contextlib.contextmanager
def migrated(server: str, timescale: bool, prefix: str) -> Iterator[str]:
    """A scratch database on ``server``, migrated on one path. On TimescaleDB its jobs are not
    scheduled: tests run the policies themselves (``run_jobs``), and TimescaleDB refuses two
    refreshes of overlapping windows at once."""
    with scratch_database(server, prefix) as url:
        migrate(url, timescale=timescale)
        if timescale:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs"
                             " WHERE job_id >= 1000")  # fmt: skip
        yield url


def run_jobs(conn: psycopg.Connection[Any], proc_name: str) -> int:
    """Run every job of one policy kind now, as TimescaleDB's scheduler would; returns how many ran."""
    jobs = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s ORDER BY job_id", (proc_name,)
    ).fetchall()
    for (job,) in jobs:
        conn.execute("CALL run_job(%s)", (job,))
    return len(jobs)


def policies(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """``(kind, table, refresh start_offset)`` of the store's TimescaleDB policy jobs, in order."""
    return conn.execute(
        "SELECT proc_name, hypertable_name, config ->> 'start_offset' FROM timescaledb_information.jobs"
        " WHERE job_id >= 1000 ORDER BY 1, 2"
    ).fetchall()


def expected_policies(reach: str | None) -> list[tuple[Any, ...]]:
    """Compression, and both refresh policies reaching back ``reach`` (None: to the beginning)."""
    refresh = "policy_refresh_continuous_aggregate"
    return [("policy_compression", "summaries", None), (refresh, "summary_1h", reach), (refresh, "summary_1m", reach)]


def migrate_without(url: str, timescale: bool, skipped: int) -> None:
    """Apply every migration but ``skipped``, as a database created before it was."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, name, text in _migrations(timescale):
            if number != skipped:
                with conn.transaction():
                    conn.execute(text.encode())
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))


@pytest.fixture(scope="module")
def timescale_url(pg_server_url: str) -> Iterator[str]:
    """A migrated database on a server with TimescaleDB, or skip."""
    with migrated(timescale_server(pg_server_url), True, "pisces_ts") as url:
        yield url


@pytest.fixture(scope="module")
def plain_url(pg_server_url: str) -> Iterator[str]:
    """A migrated database on the plain-PostgreSQL path (native partitions, rollup tables)."""
    with migrated(pg_server_url, False, "pisces_plain") as url:
        yield url


@pytest.fixture(params=["postgresql", "timescaledb"])
def own_store(request: pytest.FixtureRequest, pg_server_url: str) -> Iterator[str]:
    """A database of the test's own on each engine (its own materialisation state), or skip."""
    timescale = request.param == "timescaledb"
    with migrated(timescale_server(pg_server_url) if timescale else pg_server_url, timescale, "pisces_own") as url:
        yield url


@pytest.fixture
def own_timescale(pg_server_url: str) -> Iterator[str]:
    """A TimescaleDB database of the test's own, or skip."""
    with migrated(timescale_server(pg_server_url), True, "pisces_own_ts") as url:
        yield url


def test_rollups_equal_a_fresh_aggregation_of_the_stored_windows(db_url: str, device_id: str) -> None:
    patient_id = ingest(db_url, device_id)
    with psycopg.connect(db_url, autocommit=True) as conn:
        if store_engine(conn) == "timescaledb":
            # What the refresh policy does within a minute: windows below the watermark (which other tests'
            # newer windows may have moved past T0) are in the aggregates only once refreshed.
            refresh_rollups(conn, datetime.fromtimestamp(T0, timezone.utc), datetime.fromtimestamp(T0 + 3600, timezone.utc))
        stored = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (patient_id,)).fetchone()
    assert stored == (90,)
    one_minute = read_rollups(db_url, "summary_1m", patient_id)
    assert rounded(one_minute) == rounded(recompute(db_url, "1 minute", patient_id))
    assert len(one_minute) == 15 and sum(r[2] for r in one_minute) == 90
    assert rounded(read_rollups(db_url, "summary_1h", patient_id)) == rounded(recompute(db_url, "1 hour", patient_id))


def test_plain_path_partitions_by_day_with_brin(plain_url: str, device_id: str) -> None:
    ingest(plain_url, device_id)
    day = datetime.fromtimestamp(T0, timezone.utc).strftime("%Y%m%d")
    with psycopg.connect(plain_url) as conn:
        assert store_engine(conn) == "postgresql"
        where = conn.execute(
            "SELECT tableoid::regclass::text, count(*) FROM summaries WHERE device_id = %s GROUP BY 1", (device_id,)
        ).fetchall()
        brin = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%USING brin%%'",
            (f"summaries_{day}",),
        ).fetchone()
    assert where == [(f"summaries_{day}", 90)]
    assert brin == (1,)


def test_plain_retention_drops_old_day_partitions_and_keeps_rollups(plain_url: str, device_id: str) -> None:
    patient_id = ingest(plain_url, device_id)  # T0 is in 2023: far older than 30 days
    recent = datetime.now(timezone.utc).date() - timedelta(days=1)
    with psycopg.connect(plain_url, autocommit=True) as conn:
        ensure_partitions(conn, [recent])
        (outcome,) = run_retention(conn, {"summaries": 30}, datetime.now(timezone.utc))
        dropped = outcome.dropped
        left = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (patient_id,)).fetchone()
        kept = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"summaries_{recent:%Y%m%d}",)).fetchone()
    assert f"summaries_{datetime.fromtimestamp(T0, timezone.utc):%Y%m%d}" in dropped
    assert left == (0,) and kept == (True,)
    assert sum(r[2] for r in read_rollups(plain_url, "summary_1m", patient_id)) == 90


def test_timescale_gives_the_same_rollups_as_plain_postgresql(
    timescale_url: str, plain_url: str, device_id: str
) -> None:
    on_timescale = ingest(timescale_url, device_id)
    on_plain = ingest(plain_url, f"{device_id}-p")
    for table in ("summary_1m", "summary_1h"):
        ts_rows = [(0, *r[1:]) for r in rounded(read_rollups(timescale_url, table, on_timescale))]
        plain_rows = [(0, *r[1:]) for r in rounded(read_rollups(plain_url, table, on_plain))]
        assert ts_rows == plain_rows and ts_rows


def materialised(conn: psycopg.Connection[Any], view: str, patient_id: int) -> list[tuple[Any, ...]]:
    """The rows of a continuous aggregate's materialisation hypertable (not its real-time part)."""
    row = conn.execute(
        "SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name)"
        " FROM timescaledb_information.continuous_aggregates WHERE view_name = %s", (view,)
    ).fetchone()  # fmt: skip
    assert row is not None
    return conn.execute(f"SELECT {ROLLUP_COLUMNS} FROM {row[0]} WHERE patient_id = %s ORDER BY bucket",
                        (patient_id,)).fetchall()  # fmt: skip


def late(device: str, seq: int) -> tuple[str, bytes]:
    """A message that arrives late: 5 windows just after those of :func:`messages`."""
    windows = tuple(SummaryWindow(start=T0 + 1000 + 10 * i, end=T0 + 1010 + 10 * i, beats=11, hr_mean=77.0,
                                  quality=0.9) for i in range(5))  # fmt: skip
    return topic_for(device, Kind.SUMMARY), encode(Summary(device, seq, windows))


def test_timescale_hypertables_policies_and_late_data_into_compressed_chunks(own_timescale: str, device_id: str) -> None:
    url = own_timescale
    patient_id = ingest(url, device_id)  # T0 is in 2023: its chunk is older than the 7 days of the compression policy
    config = rule_config(ServerSettings())
    with psycopg.connect(url, autocommit=True) as conn:
        assert store_engine(conn) == "timescaledb"
        tables = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1").fetchall()
        jobs = policies(conn)
        assert run_retention(conn, {"summaries": 36500}, datetime.now(timezone.utc))[0].dropped == ()  # T0 outlives it
        assert run_jobs(conn, "policy_compression") == 1
        compressed = conn.execute(
            "SELECT count(*) FILTER (WHERE is_compressed), count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'summaries'"
        ).fetchone()
        segments = conn.execute("SELECT DISTINCT segmentby, orderby FROM timescaledb_information.chunk_compression_settings"
                                " WHERE hypertable = 'summaries'::regclass").fetchall()  # fmt: skip
        # Everything delivered again after compression, and one message more that arrived late.
        outcomes = store_batch(conn, [decode_one(t, p) for t, p in [*messages(device_id), late(device_id, 10)]],
                               config, rollups=False)  # fmt: skip
        stored = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (patient_id,)).fetchone()
        assert run_jobs(conn, "policy_refresh_continuous_aggregate") == 2
        rollups = {v: materialised(conn, v, patient_id) for v in ("summary_1m", "summary_1h")}
    assert tables == [("events",), ("summaries",)]
    assert jobs == expected_policies(reach=None)
    assert compressed == (1, 1) and segments == [("patient_id,device_id", "start_at,seq,idx")]
    assert [o.status for o in outcomes] == ["duplicate"] * 18 + ["stored"] and stored == (95,)
    assert rounded(rollups["summary_1m"]) == rounded(recompute(url, "1 minute", patient_id))
    assert rounded(rollups["summary_1h"]) == rounded(recompute(url, "1 hour", patient_id))
    assert sum(r[2] for r in rollups["summary_1m"]) == 95


def test_timescale_rollups_keep_windows_older_than_any_refresh_window(own_timescale: str, device_id: str) -> None:
    """Windows arriving long after their time (T0, 2023) reach the rollups the portal reads, and stay
    there once newer windows are materialised (the real-time part reads above the watermark only)."""
    url = own_timescale
    old = ingest(url, device_id)
    now = datetime.now(timezone.utc).timestamp() // 60 * 60 - 600
    recent = Summary(f"{device_id}-n", 1, (SummaryWindow(start=now, end=now + 10, beats=12, quality=0.9),))
    with psycopg.connect(url, autocommit=True) as conn:
        newer = add_patient(conn, "Recent", recent.device)
        store_batch(conn, [decode_one(topic_for(recent.device, Kind.SUMMARY), encode(recent))],
                    rule_config(ServerSettings()), rollups=False)  # fmt: skip
        run_jobs(conn, "policy_refresh_continuous_aggregate")
        assert materialised(conn, "summary_1m", newer)  # so the watermark is past the old windows
    for table, step in (("summary_1m", "1 minute"), ("summary_1h", "1 hour")):
        assert rounded(read_rollups(url, table, old)) == rounded(recompute(url, step, old)) != []


def test_retention_keeps_the_rollups_of_dropped_windows_through_later_refreshes(own_store: str, device_id: str) -> None:
    url = own_store
    patient_id = ingest(url, device_id)  # T0 is in 2023: far older than 30 days
    reference = {t: rounded(recompute(url, step, patient_id)) for t, step in (("summary_1m", "1 minute"),
                                                                           ("summary_1h", "1 hour"))}  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        timescale = store_engine(conn) == "timescaledb"
        dropped = run_retention(conn, {"summaries": 30}, datetime.now(timezone.utc), by="test")[0].dropped
        recorded = conn.execute("SELECT kind, rows, dropped, by_whom FROM retention_runs").fetchall()
        left = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (patient_id,)).fetchone()
        after_drop = {t: rounded(read_rollups(url, t, patient_id)) for t in reference}
        refresh_rollups(conn)  # over everything, the dropped days too
        if timescale:
            run_jobs(conn, "policy_refresh_continuous_aggregate")
        after_refresh = {t: rounded(read_rollups(url, t, patient_id)) for t in reference}
    assert dropped and left == (0,) and recorded == [("summaries", None, list(dropped), "test")]
    assert after_drop == reference and after_refresh == reference and reference["summary_1m"]


@pytest.mark.parametrize("former_policy", [None, "30 days"])
def test_migration_080_on_a_timescale_store_made_before_it(
    former_policy: str | None, pg_server_url: str, device_id: str
) -> None:
    """The retention policy goes (retention is the server's now); the refresh policies reach back to the
    beginning, or only as far as a former retention policy dropped chunks (their invalidations are logged)."""
    with scratch_database(timescale_server(pg_server_url), "pisces_m080") as url:
        migrate_without(url, True, 80)
        with psycopg.connect(url, autocommit=True) as conn:
            if former_policy:
                conn.execute("SELECT add_retention_policy('summaries', drop_after => %s::interval)", (former_policy,))
            before = conn.execute("SELECT count(*) FROM timescaledb_information.jobs"
                                  " WHERE proc_name = 'policy_retention'").fetchone()  # fmt: skip
        assert migrate(url) == [80]
        with psycopg.connect(url) as conn:
            jobs = policies(conn)
            segments = conn.execute("SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings"
                                    " WHERE hypertable = 'summaries'::regclass").fetchall()  # fmt: skip
    assert before == (1 if former_policy else 0,)
    assert jobs == expected_policies(reach=former_policy)
    assert segments == [("patient_id,device_id", "start_at,seq,idx")]


def windows_at(url: str, device: str, starts: list[datetime]) -> int:
    """Register a patient and store one message of 10-s windows starting at ``starts``; returns the patient id."""
    windows = tuple(SummaryWindow(start=t.timestamp(), end=t.timestamp() + 10, beats=12, hr_mean=70.0, quality=0.9)
                    for t in starts)  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        patient_id = add_patient(conn, device, device)
        store_batch(conn, [decode_one(topic_for(device, Kind.SUMMARY), encode(Summary(device, 1, windows)))],
                    rule_config(ServerSettings()), rollups=False)  # fmt: skip
    return patient_id


@pytest.mark.parametrize("refresh", ["policy", "refresh_rollups"])
def test_timescale_refresh_takes_late_windows_up_to_one_on_a_batch_boundary(
    refresh: str, own_timescale: str, device_id: str
) -> None:
    """A refresh split into batches of 10 buckets (TimescaleDB 2.28's default) skips the bucket of the last
    window when it starts on a batch boundary (timescale/timescaledb#10221); newer windows being materialised
    already, that bucket is then missing from the rollups."""
    url, day = own_timescale, datetime(2023, 11, 20, 3, tzinfo=timezone.utc)
    with psycopg.connect(url, autocommit=True) as conn:
        run_jobs(conn, "policy_refresh_continuous_aggregate")  # as the scheduler had before the windows came
    newer = windows_at(url, f"{device_id}-n", [day + timedelta(minutes=45, seconds=5)])
    with psycopg.connect(url, autocommit=True) as conn:
        run_jobs(conn, "policy_refresh_continuous_aggregate")
        assert materialised(conn, "summary_1m", newer)  # the watermark is past what comes next
    late = windows_at(url, device_id, [day + timedelta(minutes=m) for m in (0, 10, 20)])  # batches of 10 minutes
    with psycopg.connect(url, autocommit=True) as conn:
        if refresh == "policy":
            run_jobs(conn, "policy_refresh_continuous_aggregate")
        else:  # up to a finite end, as retention does (an open end hides the skipped bucket)
            refresh_rollups(conn, None, datetime.now(timezone.utc))
    for table, step in (("summary_1m", "1 minute"), ("summary_1h", "1 hour")):
        assert rounded(read_rollups(url, table, late)) == rounded(recompute(url, step, late)) != []
