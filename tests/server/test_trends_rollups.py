"""Every field a phone measured is stored, and trends read from rollups equal trends from raw windows.

Runs on both engines: the plain-PostgreSQL rollup tables kept by the ingest,
and TimescaleDB's continuous aggregates (partly materialised, partly read
live); the TimescaleDB half skips where the extension is absent.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from psycopg.rows import class_row

from server.ingest import decode_one, rule_config, store_batch
from server.queries import list_summaries
from server.records import RHYTHM_FLAGS_SQL, ROLLUP_QUALITY, ensure_partitions, summary_days
from server.settings import ServerSettings
from server.store import add_patient, migrate, refresh_rollups, store_engine
from server.trends import _RAW_SERIES, ACTIVITIES, ARRHYTHMIA_FLAGS, BUCKETS_S, SeriesPoint, series, series_source
from tests.fix_db import scratch_database
from tests.server.test_store_timeseries import migrate_without, timescale_server
from tests.server.test_store_timeseries import plain_url, timescale_url  # noqa: F401 - fixtures
from wire import ACTIVITY_CLASSES, RHYTHM_FLAGS, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db

T0 = 1_790_000_000.0  # 2026-09-21, a Monday
DAYS = 2
UTC = timezone.utc


def random_window(rng: random.Random, start: float) -> SummaryWindow:
    """A window with every optional field sometimes missing; qualities around the usable limit."""
    hr = rng.uniform(45, 150)
    maybe = lambda value: None if rng.random() < 0.15 else value  # noqa: E731
    return SummaryWindow(
        start=start, end=start + rng.choice([20.0, 30.0, 60.0]), beats=rng.randint(0, 150),
        hr_mean=maybe(round(hr, 2)), hr_min=round(hr - rng.uniform(0, 10), 1), hr_max=round(hr + rng.uniform(0, 20), 1),
        rr_mean=60_000 / hr, sdnn=maybe(rng.uniform(5, 200)), rmssd=maybe(rng.uniform(3, 150)),
        flags=tuple(rng.sample(sorted(RHYTHM_FLAGS), rng.choice([0, 0, 0, 0, 1, 2]))),
        resp_rate=maybe(rng.uniform(6, 40)), activity=rng.choice(sorted(ACTIVITY_CLASSES)),
        intensity=maybe(rng.uniform(0.001, 2.0)), quality=rng.choice([0.1, 0.49, 0.5, 0.51, 0.8, 1.0]),
        battery=rng.randint(0, 100), pnn50=maybe(rng.uniform(0, 100)), pause_max=maybe(rng.uniform(0.3, 4.0)),
        ectopic=maybe(rng.randint(0, 5)), steps=maybe(rng.randint(0, 120)),
        posture_changes=maybe(rng.randint(0, 3)), fall=rng.random() < 0.01,
    )  # fmt: skip


def fleet(device: str, seed: int) -> list[Summary]:
    """About DAYS days of windows starting at odd seconds, with gaps, in messages of up to 100 windows."""
    rng = random.Random(seed)
    windows, t = [], T0 + 17
    while t < T0 + DAYS * 86400:
        w = random_window(rng, t)
        windows.append(w)
        t = w.end + (rng.choice([0, 0, 0, 7, 600]) if rng.random() < 0.2 else 0)
    return [Summary(device, 1 + i // 100, tuple(windows[i : i + 100])) for i in range(0, len(windows), 100)]


def ingest(url: str, device: str, messages: list[Summary]) -> int:
    """Store the messages twice (the second time all duplicates) in batches of 5; returns the patient id."""
    with psycopg.connect(url, autocommit=True) as conn:
        patient_id = add_patient(conn, f"Trends {device}", device)
        rollups = store_engine(conn) != "timescaledb"
        batch = [decode_one(topic_for(device, m.kind), encode(m)) for m in messages]
        for m in messages:
            ensure_partitions(conn, summary_days(m))
        for _ in range(2):
            for i in range(0, len(batch), 5):
                store_batch(conn, batch[i : i + 5], rule_config(ServerSettings()), rollups)
        if not rollups:  # materialise the first day; the rest is read live from the hypertable
            refresh_rollups(conn, datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86400, UTC))
    return patient_id


def raw_series(conn: psycopg.Connection[Any], pid: int, start: datetime, end: datetime, b: int) -> list[SeriesPoint]:
    """The reference: the points aggregated from the raw windows."""
    params = {"b": b, "q": ROLLUP_QUALITY, "pid": pid, "start": start, "end": end, "flags": list(ARRHYTHMIA_FLAGS)}
    return conn.cursor(row_factory=class_row(SeriesPoint)).execute(_RAW_SERIES, params).fetchall()


RANGES = (  # (start, end) in s after T0: unaligned at both ends, aligned, inside one hour, all
    (37 * 60 + 13, 86400 + 19 * 3600 + 5 * 60 + 3), (3600, 2 * 86400), (7200 + 61, 7200 + 3000), (-86400, 3 * 86400),
)


def check_rollup_series_equal_raw(url: str, device: str) -> None:
    messages = fleet(device, seed=len(device))
    pid = ingest(url, device, messages)
    with psycopg.connect(url) as conn:
        for b in BUCKETS_S[1:]:
            assert series_source(b, ROLLUP_QUALITY) != "summaries"
            for lo, hi in RANGES:
                start, end = datetime.fromtimestamp(T0 + lo, UTC), datetime.fromtimestamp(T0 + hi, UTC)
                expected = raw_series(conn, pid, start, end, b)
                assert expected, (b, lo, hi)
                assert series(conn, pid, start, end, b, ROLLUP_QUALITY) == expected, (b, lo, hi)
        days = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 3 * 86400, UTC)
        whole = raw_series(conn, pid, *days, 86400)
    # The data exercise what the rollups must carry (so the comparison can fail on each of them).
    assert sum(p.windows for p in whole) == sum(len(m.windows) for m in messages)
    assert all(p.steps and p.falls and p.rhythm and p.pause_max and p.hr_mean for p in whole)


def test_rollup_series_equal_raw_series_on_plain_postgresql(plain_url: str, device_id: str) -> None:  # noqa: F811
    check_rollup_series_equal_raw(plain_url, device_id)


def test_rollup_series_equal_raw_series_on_timescaledb(timescale_url: str, device_id: str) -> None:  # noqa: F811
    check_rollup_series_equal_raw(timescale_url, device_id)


def test_other_usable_quality_and_short_spans_read_raw_windows() -> None:
    assert series_source(60, ROLLUP_QUALITY) == "summaries"
    assert series_source(900, ROLLUP_QUALITY) == "summary_1m"
    assert series_source(3600, ROLLUP_QUALITY) == "summary_1h"
    assert series_source(3600, 0.7) == "summaries"


def test_rollup_flags_and_activities_match_the_wire_and_the_trends() -> None:
    assert RHYTHM_FLAGS_SQL == "'{" + ",".join(sorted(ARRHYTHMIA_FLAGS)) + "}'::text[]"
    assert ACTIVITIES == tuple(sorted(ACTIVITY_CLASSES))


def test_every_window_field_is_stored(db_url: str, device_id: str) -> None:
    rng = random.Random(5)
    sent = [random_window(rng, T0 + 60 * i) for i in range(40)]
    sent[3] = SummaryWindow(start=T0 + 180, end=T0 + 200, beats=20, pnn50=12.5, pause_max=2.75, ectopic=3,
                            steps=41, posture_changes=2, fall=True)  # fmt: skip
    pid = ingest(db_url, device_id, [Summary(device_id, 1, tuple(sent))])
    with psycopg.connect(db_url) as conn:
        rows = list_summaries(conn, pid, None, None, 100)
    assert len(rows) == len(sent)
    for w, r in zip(sent, rows):
        assert r.start == datetime.fromtimestamp(w.start, UTC) and r.fall == w.fall
        assert (r.ectopic, r.steps, r.posture_changes) == (w.ectopic, w.steps, w.posture_changes)
        for name in ("pnn50", "pause_max", "hr_mean", "sdnn", "rmssd", "intensity", "resp_rate"):
            got, want = getattr(r, name), getattr(w, name)
            assert (got is None) == (want is None) and (want is None or got == pytest.approx(want, rel=1e-6)), name
    assert (rows[3].pnn50, rows[3].pause_max, rows[3].ectopic, rows[3].steps, rows[3].fall) == (12.5, 2.75, 3, 41, True)


def test_a_rollup_refresh_of_a_bulk_load_matches_the_ingest(plain_url: str, device_id: str) -> None:  # noqa: F811
    """Windows written around the ingest (bulk loads) get rollups from refresh_rollups, equal to the ingest's."""
    pid = ingest(plain_url, device_id, fleet(device_id, seed=3)[:6])
    table = "summary_1m"
    with psycopg.connect(plain_url) as conn:
        by_ingest = conn.execute(f"SELECT * FROM {table} WHERE patient_id = %s ORDER BY bucket", (pid,)).fetchall()
        conn.execute(f"DELETE FROM {table} WHERE patient_id = %s", (pid,))
        refresh_rollups(conn, datetime.fromtimestamp(T0 + 120, UTC), None)
        refreshed = conn.execute(f"SELECT * FROM {table} WHERE patient_id = %s ORDER BY bucket", (pid,)).fetchall()
    first_bucket = datetime.fromtimestamp((T0 + 120) // 60 * 60, UTC)  # the bucket the range starts in
    assert by_ingest[0][1] < first_bucket
    assert refreshed == [r for r in by_ingest if r[1] >= first_bucket]


@pytest.mark.parametrize("engine", ["postgresql", "timescaledb"])
def test_migration_003_rebuilds_the_rollups_of_stored_windows(
    engine: str, pg_server_url: str, device_id: str
) -> None:
    server = timescale_server(pg_server_url) if engine == "timescaledb" else pg_server_url
    with scratch_database(server, "pisces_m003") as url:
        migrate_without(url, engine == "timescaledb", 3)
        with psycopg.connect(url, autocommit=True) as conn:
            pid = add_patient(conn, "Before 003", device_id)
            ensure_partitions(conn, [datetime.fromtimestamp(T0 + d * 86400, UTC).date() for d in range(2)])
            conn.execute(
                "INSERT INTO summaries (patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, hr_min,"
                " hr_max, sdnn, rmssd, flags, resp_rate, activity, intensity, quality)"
                " SELECT %s, %s, 1, i, to_timestamp(%s + 60 * i), to_timestamp(%s + 60 * i + 60), 70, 60 + i %% 40,"
                " 50, 110, 40 + i %% 7, 30 + i %% 5, CASE WHEN i %% 13 = 0 THEN '{irregular}'::text[] ELSE '{}' END,"
                " 14 + i %% 3, CASE WHEN i %% 3 = 0 THEN 'walk' ELSE 'rest' END, 0.01 * (i %% 9), 0.3 + (i %% 8) * 0.1"
                " FROM generate_series(0, 1439) AS i",
                (pid, device_id, T0, T0),
            )
        assert migrate(url) == [3]
        with psycopg.connect(url) as conn:
            start, end = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86400, UTC)
            for b in (900, 3600, 86400):
                expected = raw_series(conn, pid, start, end, b)
                assert expected and series(conn, pid, start, end, b, ROLLUP_QUALITY) == expected
            materialised = conn.execute("SELECT sum(usable), sum(rhythm) FROM summary_1h WHERE patient_id = %s", (pid,))
            assert materialised.fetchone() == (sum(1 for i in range(1440) if 0.3 + (i % 8) * 0.1 >= 0.5 - 1e-9),
                                               sum(1 for i in range(1440) if i % 13 == 0 and i % 8 >= 2))  # fmt: skip

