"""The ingest/rules seam on the real database: limits in force, triggers, N workers, no-signal resolve."""

from __future__ import annotations

import threading

import psycopg
import pytest

from server import alerting, thresholds
from server.records import AlertChange
from server.rules import RuleConfig
from server.store import add_patient, add_user
from wire import Limits, Summary, SummaryWindow

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
