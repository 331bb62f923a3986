"""The batch path (``store_batch``) against the real database: dedup, dead letters, rules in order, concurrency."""

from __future__ import annotations

import random
import threading
from datetime import date
from typing import Any

import psycopg
import pytest

from server import records
from server.ingest import Decoded, decode_one, rule_config, store_batch
from server.records import ensure_partitions, store_summaries, summary_days, ts
from server.settings import ServerSettings
from server.store import add_patient, store_engine
from tests.server.test_ingest import T0, count, summary
from wire import Event, EventType, Kind, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db


def decoded(messages: list[tuple[str, bytes]], conn: psycopg.Connection[Any]) -> list[Decoded]:
    batch = [decode_one(t, p) for t, p in messages]
    for d in batch:
        if isinstance(d.msg, Summary):
            ensure_partitions(conn, summary_days(d.msg))
    return batch


def run(db_url: str, settings: ServerSettings, messages: list[tuple[str, bytes]]) -> list[str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rollups = store_engine(conn) != "timescaledb"
        outcomes = store_batch(conn, decoded(messages, conn), rule_config(settings), rollups)
    return [o.status for o in outcomes]


def test_a_batch_stores_each_message_once_and_keeps_the_bad_ones(
    db_url: str, settings: ServerSettings, device_id: str, patient_id: int
) -> None:
    one, two = summary(device_id, 1, [70, 71]), summary(device_id, 2, [72])
    bad = (topic_for(device_id, Kind.SUMMARY), b"[1, 2]")
    stranger = summary(f"{device_id}-x", 1, [70])
    assert run(db_url, settings, [one, bad, one, two, stranger]) == [
        "stored", "dead_letter", "duplicate", "stored", "dead_letter",
    ]  # fmt: skip
    assert run(db_url, settings, [two, one]) == ["duplicate", "duplicate"]
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 3
    assert count(db_url, "SELECT count(*) FROM uplink_messages WHERE device_id = %s", device_id) == 2
    with psycopg.connect(db_url) as conn:
        reasons = conn.execute(
            "SELECT reason FROM dead_letters WHERE topic LIKE %s ORDER BY id", (f"%/{device_id}%",)
        ).fetchall()
    assert [r[0] for r in reasons] == ["type", "unknown_device"]


def test_rules_see_a_patients_messages_in_sequence_order_within_a_batch(
    db_url: str, settings: ServerSettings, device_id: str, patient_id: int
) -> None:
    # Arrival order 3, 1, 2; in seq order: 2 min of high HR (yellow once held 60 s), then 4 min normal
    # (resolved once normal for 120 s).
    high = summary(device_id, 1, [120, 120], T0)
    normal = summary(device_id, 2, [70, 70], T0 + 120)
    more = summary(device_id, 3, [70, 70], T0 + 240)
    assert run(db_url, settings, [more, high, normal]) == ["stored"] * 3
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT level, state, extract(epoch FROM opened_at)::float8, extract(epoch FROM closed_at)::float8"
            " FROM alerts WHERE patient_id = %s", (patient_id,)
        ).fetchall()  # fmt: skip
    # Judged in arrival order, the late high windows (older than the newest judged) would raise nothing.
    assert rows == [("yellow", "resolved", T0 + 60, T0 + 240)]


def test_concurrent_batches_with_the_same_messages_store_once_and_open_one_alert_each(
    db_url: str, settings: ServerSettings, device_id: str
) -> None:
    """Two workers get the same messages (every message delivered twice) in different orders."""
    with psycopg.connect(db_url) as conn:
        ids = [add_patient(conn, f"P{i}", f"{device_id}-{i}") for i in range(20)]
    messages = []
    for i in range(20):
        dev = f"{device_id}-{i}"
        messages += [summary(dev, seq, [125, 125], T0 + 120 * seq) for seq in range(1, 6)]
        messages.append((topic_for(dev, Kind.EVENT), encode(Event(dev, 99, EventType.PANIC, T0 + 30))))
    results: list[list[str]] = []

    def worker(seed: int) -> None:
        mine = messages[:]
        random.Random(seed).shuffle(mine)
        for start in range(0, len(mine), 25):
            results.append(run(db_url, settings, mine[start : start + 25]))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [s for r in results for s in r]
    assert statuses.count("stored") == len(messages) and statuses.count("duplicate") == len(messages)
    with psycopg.connect(db_url) as conn:
        n_rows = conn.execute("SELECT count(*) FROM summaries WHERE patient_id = ANY(%s)", (ids,)).fetchone()
        alerts = conn.execute(
            "SELECT parameter, level, count(*) FROM alerts WHERE patient_id = ANY(%s) GROUP BY 1, 2 ORDER BY 1",
            (ids,),
        ).fetchall()
    assert n_rows == (20 * 5 * 2,)
    assert alerts == [("hr", "yellow", 20), ("panic", "red", 20)]


def test_summaries_stored_twice_in_one_transaction_are_each_stored_once(db_url: str, device_id: str, patient_id: int) -> None:
    """The staging table empties as its rows move (not only at commit), so a second call starts empty."""
    first, second = (decode_one(*summary(device_id, seq, [70, 71], T0 + 120 * seq)).msg for seq in (1, 2))
    assert isinstance(first, Summary) and isinstance(second, Summary)
    with psycopg.connect(db_url) as conn:
        rollups = store_engine(conn) != "timescaledb"
        ensure_partitions(conn, summary_days(first) | summary_days(second))
        assert store_summaries(conn, [(patient_id, first)], rollups) == 2
        assert store_summaries(conn, [(patient_id, second)], rollups) == 2
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 4


def test_the_windows_statement_runs_while_the_block_does_its_own_work(
    db_url: str, device_id: str, patient_id: int
) -> None:
    """summaries_in_flight sends the statement that moves the staged rows and runs the block meanwhile.

    Another transaction holds the patient's row, which the statement must update
    (last_data_at): inside the block the statement is seen waiting for it, and it
    finishes once that transaction ends. Sent and waited for before the block, it
    would instead give up on its lock_timeout, and this test would fail.
    """
    msg = decode_one(*summary(device_id, 1, [70, 71, 72], T0)).msg
    assert isinstance(msg, Summary)
    with psycopg.connect(db_url) as conn, psycopg.connect(db_url) as other:
        rollups = store_engine(conn) != "timescaledb"
        ensure_partitions(conn, summary_days(msg))
        conn.commit()
        conn.execute("SET lock_timeout = '5s'")
        other.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (patient_id,))
        seen: list[Any] = []
        with records.summaries_in_flight(conn, [(patient_id, msg)], rollups) as inserted:
            watcher = psycopg.connect(db_url, autocommit=True)
            for _ in range(500):
                seen = watcher.execute(
                    "SELECT wait_event_type, left(query, 11) FROM pg_stat_activity WHERE pid = %s",
                    (conn.info.backend_pid,),
                ).fetchall()
                if seen == [("Lock", "WITH staged")]:
                    break
                threading.Event().wait(0.01)
            watcher.close()
            assert inserted == [0]  # not read yet
            other.rollback()  # the statement can go on now
        assert seen == [("Lock", "WITH staged")]
        assert inserted == [3]
        conn.commit()
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 3


def test_a_refused_windows_statement_raises_its_own_error_on_leaving_the_block(
    db_url: str, device_id: str, patient_id: int
) -> None:
    """The ingest tells a refused row (stored message by message, the refused one kept) from an outage
    (retried): the error of the statement sent in pipeline mode must come out as itself."""
    msg = decode_one(*summary(device_id, 1, [70, 71], T0)).msg
    assert isinstance(msg, Summary)
    with psycopg.connect(db_url, autocommit=True) as conn:
        rollups = store_engine(conn) != "timescaledb"
        ensure_partitions(conn, summary_days(msg))
        with conn.transaction():
            assert store_summaries(conn, [(patient_id, msg)], rollups) == 2
        ran = []
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.transaction(), records.summaries_in_flight(conn, [(patient_id, msg)], rollups):
                ran.append(True)
        assert ran == [True]
        assert conn.execute("SELECT 1").fetchone() == (1,)  # the connection is usable again
    assert count(db_url, "SELECT count(*) FROM summaries WHERE device_id = %s", device_id) == 2


def test_window_times_and_flags_are_stored_as_datetimes_and_lists_would_store_them(
    db_url: str, device_id: str, patient_id: int
) -> None:
    """The COPY writes Unix seconds and flag tuples with dumpers of its own; it stores what ``ts(seconds)``
    and ``list(flags)`` are, to the microsecond (rounded half to even, before 2000 as after)."""
    starts = [T0, T0 + 0.1234565, T0 + 10.0000005, T0 + 20.9999996, 1e9 + 0.5e-6, 946_684_799.75]
    flag_sets = [(), ("irregular",), ("af_suspected", "irregular"), ("brady", "ectopic", "pause"), (), ("vt",)]
    windows = tuple(SummaryWindow(start=t, end=t + 9.5, beats=10, quality=0.9, flags=f) for t, f in zip(starts, flag_sets))
    msg = Summary(device_id, 1, windows)
    with psycopg.connect(db_url) as conn:
        rollups = store_engine(conn) != "timescaledb"
        ensure_partitions(conn, summary_days(msg))
        assert store_summaries(conn, [(patient_id, msg)], rollups) == len(windows)
        got = conn.execute(
            "SELECT start_at, end_at, flags FROM summaries WHERE device_id = %s ORDER BY idx", (device_id,)
        ).fetchall()
    assert [(a, b) for a, b, _ in got] == [(ts(w.start), ts(w.end)) for w in windows]
    assert [f for _, _, f in got] == [list(w.flags) for w in windows]


def test_summaries_outside_a_transaction_are_refused_not_lost(db_url: str, device_id: str, patient_id: int) -> None:
    """In autocommit mode with no transaction the COPY would commit alone and the staging table empty itself."""
    msg = decode_one(*summary(device_id, 1, [70], T0)).msg
    assert isinstance(msg, Summary)
    with psycopg.connect(db_url, autocommit=True) as conn:
        ensure_partitions(conn, summary_days(msg))
        with pytest.raises(psycopg.ProgrammingError, match="inside a transaction"):
            store_summaries(conn, [(patient_id, msg)], store_engine(conn) != "timescaledb")
        with conn.transaction():
            assert store_summaries(conn, [(patient_id, msg)], store_engine(conn) != "timescaledb") == 1


def test_a_message_across_midnight_names_both_days() -> None:
    midnight = 1_700_006_400.0  # 2023-11-15 00:00 UTC
    windows = tuple(SummaryWindow(start=midnight - 90 + 60 * i, end=midnight - 30 + 60 * i, beats=60) for i in range(3))
    assert summary_days(Summary("dev-1", 1, windows)) == {date(2023, 11, 14), date(2023, 11, 15)}
    assert summary_days(Summary("dev-1", 2, windows[2:])) == {date(2023, 11, 15)}
