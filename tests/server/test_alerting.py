"""The ingest/rules seam on the real database: limits in force, triggers, N workers, no-signal resolve."""

from __future__ import annotations

import threading

import psycopg
import pytest

from server import alerting, ingest, records, thresholds
from server.records import AlertChange
from server.rules import RuleConfig
from server.store import add_patient, add_user, store_engine
from wire import Kind, Limits, Summary, SummaryWindow, encode, topic_for

T0 = 1_700_000_000.0
CONFIG = RuleConfig(hold_seconds=60, clear_seconds=120)


def summary(device: str, seq: int, hrs: list[float], t0: float = T0, activity: str = "rest") -> Summary:
    return Summary(device, seq, tuple(
        SummaryWindow(start=t0 + 30 * i, end=t0 + 30 * (i + 1), beats=30, hr_mean=hr, quality=0.9, activity=activity)
        for i, hr in enumerate(hrs)
    ))  # fmt: skip


@pytest.fixture
def patient(db_url: str, device_id: str) -> int:
    with psycopg.connect(db_url) as conn:
        return add_patient(conn, f"P {device_id}", device_id)


def judge(db_url: str, patient: int, msg: Summary) -> list[AlertChange]:
    with psycopg.connect(db_url) as conn:
        return alerting.judge(conn, patient, msg, CONFIG)


def test_defaults_judge_until_a_version_is_approved_then_the_version_does(db_url: str, device_id: str, patient: int) -> None:
    first = judge(db_url, patient, summary(device_id, 1, [45, 45, 45]))
    assert [(c.parameter, c.level) for c in first] == [("hr", "yellow")]  # NEWS2: 45 bpm is yellow
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE alerts SET state = 'resolved' WHERE patient_id = %s", (patient,))
        user = add_user(conn, f"dr-{device_id}", "pw-123456789")
        athlete = {"hr": Limits(50, 111, 40, 131), "hr@rest": Limits(35, 65, 30, 131)}
        thresholds.approve(conn, patient, user, athlete, "athlete, 45 bpm at rest is normal")
    assert judge(db_url, patient, summary(device_id, 2, [45] * 6, t0=T0 + 600)) == []
    changes = judge(db_url, patient, summary(device_id, 3, [70, 70, 70], t0=T0 + 900))
    assert [(c.parameter, c.level, c.trigger["source"]) for c in changes] == [("hr", "yellow", "personalised")]
    trigger = changes[0].trigger
    assert trigger["limits"]["yellow_high"] == 65 and trigger["threshold_version"] == 1
    assert trigger["window"]["activity"] == "rest" and trigger["value"] == 70
    with psycopg.connect(db_url) as conn:
        version = conn.execute("SELECT threshold_version FROM alerts WHERE id = %s", (changes[0].alert_id,)).fetchone()
    assert version == (1,)


def test_two_workers_judging_the_same_patient_open_one_episode(db_url: str, device_id: str, patient: int) -> None:
    # Each worker commits its own message; the rule-state lock makes the second wait and see the first's alert.
    barrier, results = threading.Barrier(2), {}

    def worker(seq: int, t0: float) -> None:
        with psycopg.connect(db_url) as conn:
            barrier.wait()
            with conn.transaction():
                results[seq] = alerting.judge(conn, patient, summary(device_id, seq, [140, 140, 140], t0=t0), CONFIG)

    threads = [threading.Thread(target=worker, args=(1, T0)), threading.Thread(target=worker, args=(2, T0 + 90))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT parameter, level FROM alerts WHERE patient_id = %s", (patient,)).fetchall()
    assert rows == [("hr", "red")]
    assert sum(len(r) for r in results.values()) == 1


def test_data_arriving_resolves_a_no_signal_alert(db_url: str, device_id: str, patient: int) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger) VALUES (%s, 'yellow', 'no_signal',"
            " now(), '{}')", (patient,))  # fmt: skip
    changes = judge(db_url, patient, summary(device_id, 1, [70]))
    assert [(c.kind, c.parameter) for c in changes] == [("resolve", "no_signal")]
    assert judge(db_url, patient, summary(device_id, 2, [70], t0=T0 + 30)) == []


def store(db_url: str, messages: list[Summary]) -> list[list[AlertChange]]:
    """Store the messages as one ingest batch (the real write path: one limits query for the batch)."""
    batch = [ingest.decode_one(topic_for(m.device, Kind.SUMMARY), encode(m)) for m in messages]
    with psycopg.connect(db_url, autocommit=True) as conn:
        records.ensure_partitions(conn, set().union(*(records.summary_days(m) for m in messages)))
        rollups = store_engine(conn) != "timescaledb"  # TimescaleDB: continuous aggregates keep them
        return [o.changes for o in ingest.store_batch(conn, batch, CONFIG, rollups)]


def other_patient(db_url: str, device: str, *versions: Limits) -> int:
    """A second patient (phone ``device``) with ``versions`` of hr limits approved in turn."""
    with psycopg.connect(db_url) as conn:
        other = add_patient(conn, f"P {device}", device)
        user = add_user(conn, f"dr-{device}", "pw-123456789")
        for n, limits in enumerate(versions, 1):
            thresholds.approve(conn, other, user, {"hr": limits}, f"version {n}")
    return other


def test_limits_in_force_are_read_per_patient_in_one_query(db_url: str, device_id: str, patient: int) -> None:
    other = other_patient(db_url, f"{device_id}-b", Limits(60, 100, 40, 131), Limits(60, 95, 40, 131))
    with psycopg.connect(db_url) as conn:
        many = thresholds.limits_in_force_many(conn, [patient, other])
        assert many[other] == thresholds.limits_in_force(conn, other)
        assert many[patient] == thresholds.limits_in_force(conn, patient)
    assert many[other].version == 2 and many[other].limits["hr"].yellow_high == 95
    assert many[patient].version is None and many[patient].limits["hr"].yellow_high == 111


def test_one_batch_judges_each_patient_by_its_own_limits(db_url: str, device_id: str, patient: int) -> None:
    other_device = f"{device_id}-b"
    other_patient(db_url, other_device, Limits(60, 100, 40, 131))
    # 105 bpm held: yellow under the other patient's version 1, nothing under NEWS2 (yellow from 111).
    changes = store(db_url, [summary(device_id, 1, [105] * 4), summary(other_device, 1, [105] * 4)])
    assert changes[0] == []
    assert [(c.level, c.trigger["threshold_version"], c.trigger["limits"]["yellow_high"]) for c in changes[1]] == [
        ("yellow", 1, 100)]  # fmt: skip


def test_a_version_approved_between_batches_applies_from_the_next_batch(
    db_url: str, device_id: str, patient: int
) -> None:
    assert store(db_url, [summary(device_id, 1, [105] * 4)]) == [[]]  # NEWS2: 105 bpm is within
    with psycopg.connect(db_url) as conn:
        user = add_user(conn, f"dr-{device_id}", "pw-123456789")
        thresholds.approve(conn, patient, user, {"hr": Limits(60, 100, 40, 131)}, "105 is high for her")
    [changes] = store(db_url, [summary(device_id, 2, [105] * 4, t0=T0 + 120)])
    assert [(c.parameter, c.level, c.trigger["source"], c.trigger["threshold_version"]) for c in changes] == [
        ("hr", "yellow", "personalised", 1)]  # fmt: skip
    with psycopg.connect(db_url) as conn:
        thresholds.approve(conn, patient, user, {"hr": Limits(60, 140, 40, 150)}, "tachycardic at rest, known")
        conn.execute("UPDATE alerts SET state = 'resolved' WHERE patient_id = %s", (patient,))
    assert store(db_url, [summary(device_id, 3, [105] * 4, t0=T0 + 240)]) == [[]]  # version 2: 105 within again


def test_a_summary_with_a_3_s_pause_opens_a_red_alert_in_the_database_at_once(
    db_url: str, device_id: str, patient: int
) -> None:
    long_pause = SummaryWindow(start=T0, end=T0 + 30, beats=20, hr_mean=48, quality=0.9, flags=("pause",),
                               pause_max=3.4)  # fmt: skip
    [changes] = store(db_url, [Summary(device_id, 1, (long_pause,))])
    assert [(c.kind, c.parameter, c.level) for c in changes] == [("open", "pause", "red")]
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT level, state, trigger FROM alerts WHERE patient_id = %s", (patient,)).fetchone()
    assert row is not None and row[:2] == ("red", "open")
    assert row[2]["value"] == 3.4 and row[2]["window"]["flags"] == ["pause"] and row[2]["source"] == "Holter"
