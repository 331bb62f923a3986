"""The time-series store on both engines: partitions/hypertables, rollups, retention, compression.

The engine-neutral tests run on the test database, whichever engine it has.
The TimescaleDB tests need a server with the extension preloaded: the test
server if it has it, else ``PISCES_TEST_TIMESCALE_URL``; they skip with the
reason elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from server.ingest import decode_one, rule_config, store_batch
from server.records import ensure_partitions, summary_days
from server.settings import ServerSettings
from server.retention import run_retention
from server.store import add_patient, migrate, store_engine, timescale_usable
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


@pytest.fixture(scope="module")
def timescale_url(pg_server_url: str) -> Iterator[str]:
    """A migrated database on a server with TimescaleDB, or skip."""
    candidates = [pg_server_url, os.environ.get("PISCES_TEST_TIMESCALE_URL")]
    for server in filter(None, candidates):
        with psycopg.connect(server) as conn:
            usable = timescale_usable(conn)
        if usable:
            with scratch_database(server, "pisces_ts") as url:
                migrate(url, timescale=True)
                yield url
            return
    pytest.skip("no PostgreSQL with the timescaledb extension preloaded (set PISCES_TEST_TIMESCALE_URL)")


@pytest.fixture(scope="module")
def plain_url(pg_server_url: str) -> Iterator[str]:
    """A migrated database on the plain-PostgreSQL path (native partitions, rollup tables)."""
    with scratch_database(pg_server_url, "pisces_plain") as url:
        migrate(url, timescale=False)
        yield url


def test_rollups_equal_a_fresh_aggregation_of_the_stored_windows(db_url: str, device_id: str) -> None:
    patient_id = ingest(db_url, device_id)
    with psycopg.connect(db_url) as conn:
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


def test_timescale_hypertables_policies_and_dedup_into_compressed_chunks(timescale_url: str, device_id: str) -> None:
    patient_id = ingest(timescale_url, device_id)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        assert store_engine(conn) == "timescaledb"
        tables = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1").fetchall()
        assert run_retention(conn, {"summaries": 36500}, datetime.now(timezone.utc))[0].dropped == ()  # T0 outlives it
        jobs = conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IN ('summaries', 'summary_1m', 'summary_1h') ORDER BY 1, 2"
        ).fetchall()
        chunks = conn.execute("SELECT show_chunks('summaries', older_than => now())").fetchall()
        for (chunk,) in chunks:
            conn.execute("SELECT compress_chunk(%s, if_not_compressed => true)", (chunk,))
        # Everything delivered again after compression: still stored exactly once.
        batch = [decode_one(t, p) for t, p in messages(device_id)]
        outcomes = store_batch(conn, batch, rule_config(ServerSettings()), rollups=False)
        stored = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = %s", (patient_id,)).fetchone()
    assert tables == [("events",), ("summaries",)]
    # retention is server.retention's job (drop_chunks), not a TimescaleDB policy
    assert {name for name, _ in jobs} == {"policy_compression", "policy_refresh_continuous_aggregate"}
    assert chunks and {o.status for o in outcomes} == {"duplicate"} and stored == (90,)
