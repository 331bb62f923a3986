"""The escalation ladder: the pure planner, and one round on the real database and broker."""

from __future__ import annotations

import queue
import threading

import psycopg
import pytest

from server import records, thresholds
from server.baseline import BaselinePolicy
from server.channels import ChannelSettings
from server.escalation import AlertView, EscalationPolicy, SignalView, Step, Watch, apply_step, load_views, plan
from server.escalation import propose_when_ready, run_escalation
from server.settings import ServerSettings
from server.store import add_patient, add_user
from tests.server.helpers import mqtt_client
from wire import Config, Kind, Limits, Notify, Summary, SummaryWindow, decode, topic_for

NOW = 1_700_010_000.0
T0 = 1_600_000_000.0  # the proposals test's data: older than any other test's
POLICY = EscalationPolicy(no_signal_after_s=600, no_signal_red_after_s=1800, escalate_after_s=300,
                          all_on_call_after_s=600, promote_after_s=1800)  # fmt: skip


def red(step: int = 0, since: float = NOW - 10, state: str = "open") -> AlertView:
    return AlertView(1, 7, "hr", "red", state, since, since, step)


def test_no_signal_goes_to_the_patient_first_then_red() -> None:
    silent = SignalView(7, NOW - 700, gap_alerted=False)
    assert [s.kind for s in plan([], [silent], NOW, POLICY)] == ["no_signal"]
    assert plan([], [SignalView(7, NOW - 500, False)], NOW, POLICY) == []
    assert plan([], [SignalView(7, NOW - 700, True)], NOW, POLICY) == []  # this gap was already alerted
    yellow = AlertView(2, 7, "no_signal", "yellow", "open", NOW - 1200, None, 0)
    assert plan([yellow], [SignalView(7, NOW - 1700, True)], NOW, POLICY) == []
    assert [s.kind for s in plan([yellow], [SignalView(7, NOW - 1900, True)], NOW, POLICY)] == ["no_signal_red"]


def test_an_unacknowledged_red_climbs_the_ladder_and_an_acknowledged_one_does_not() -> None:
    assert plan([red()], [], NOW, POLICY) == []
    (step,) = plan([red(since=NOW - 301)], [], NOW, POLICY)
    assert (step.kind, step.detail["step"], step.detail["to"]) == ("escalate_contact", 1, "second contact")
    (step,) = plan([red(step=1, since=NOW - 601)], [], NOW, POLICY)
    assert step.detail["step"] == 2
    assert plan([red(step=2, since=NOW - 5000)], [], NOW, POLICY) == []
    assert plan([red(since=NOW - 5000, state="acknowledged")], [], NOW, POLICY) == []


def test_a_persisting_yellow_is_promoted() -> None:
    young = AlertView(3, 7, "hr", "yellow", "open", NOW - 100, None, 0)
    old = AlertView(3, 7, "hr", "yellow", "open", NOW - 1801, None, 0)
    assert plan([young], [], NOW, POLICY) == []
    assert [s.kind for s in plan([old], [], NOW, POLICY)] == ["promote"]


def test_steps_are_applied_once_even_if_planned_twice(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        conn.execute("UPDATE patients SET last_data_at = to_timestamp(%s) WHERE id = %s", (NOW - 700, patient))
        (step,) = plan([], [SignalView(patient, NOW - 700, False)], NOW, POLICY)
        first, second = apply_step(conn, step), apply_step(conn, step)
        alert_id = first[0].alert_id
        yellow = AlertView(alert_id, patient, "hr", "yellow", "open", NOW - 2000, None, 0)
        conn.execute("UPDATE alerts SET parameter = 'hr' WHERE id = %s", (alert_id,))
        (promote,) = plan([yellow], [], NOW, POLICY)
        promoted, again = apply_step(conn, promote), apply_step(conn, promote)
        level = conn.execute("SELECT level, state FROM alerts WHERE id = %s", (alert_id,)).fetchone()
        history = conn.execute("SELECT kind FROM alert_history WHERE alert_id = %s ORDER BY id", (alert_id,)).fetchall()
    assert [(c.kind, c.parameter, c.level) for c in first] == [("open", "no_signal", "yellow")] and second == []
    assert [(c.kind, c.level) for c in promoted] == [("escalate", "red")] and again == []
    assert level == ("red", "open") and history == [("no_signal",), ("promote",)]


def test_the_loop_tells_a_silent_patients_phone_and_pushes_approved_limits(
    db_url: str, mqtt_url: str, device_id: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        user = add_user(conn, f"dr-{device_id}", "pw-123456789")
        conn.execute("UPDATE patients SET last_data_at = now() - interval '20 minutes' WHERE id = %s", (patient,))
        thresholds.approve(conn, patient, user, {"hr@rest": Limits(38, 70, 30, 131)}, "athlete")
    inbox: queue.Queue[bytes] = queue.Queue()
    phone = mqtt_client(mqtt_url)
    phone.on_message = lambda _c, _u, m: inbox.put(m.payload)
    phone.subscribe([(topic_for(device_id, Kind.NOTIFY), 1), (topic_for(device_id, Kind.CONFIG), 1)])
    stop, watch = threading.Event(), Watch()
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"esc-{device_id}")
    loop = threading.Thread(target=run_escalation, args=(settings, stop, EscalationPolicy(tick_s=0.2),
                                                         ChannelSettings(), None, watch))  # fmt: skip
    loop.start()
    try:
        got = [decode(inbox.get(timeout=10)), decode(inbox.get(timeout=10))]
    finally:
        stop.set()
        loop.join(10)
        phone.disconnect()
        phone.loop_stop()
    config = next(m for m in got if isinstance(m, Config))
    notice = next(m for m in got if isinstance(m, Notify))
    assert config.version == 1 and dict(config.limits)["hr@rest"] == Limits(38, 70, 30, 131)
    assert (notice.parameter, notice.level.value) == ("no_signal", "yellow")
    assert watch.configs_pushed >= 1 and not loop.is_alive()  # other tests' patients share the database
    with psycopg.connect(db_url) as conn:
        pushed = conn.execute("SELECT pushed_at FROM threshold_versions WHERE patient_id = %s", (patient,)).fetchone()
    assert pushed is not None and pushed[0] is not None


def steps_of(conn: psycopg.Connection, patient: int, now: float) -> list[Step]:  # type: ignore[type-arg]
    """The planner's steps for one patient at ``now``, from the database's own views."""
    alerts, signals = load_views(conn)
    return [s for s in plan(alerts, signals, now, POLICY) if s.patient_id == patient]


def test_a_silent_patient_gets_a_yellow_then_a_red_no_signal_alert_in_the_database(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        conn.execute("UPDATE patients SET last_data_at = to_timestamp(%s) WHERE id = %s", (NOW - 700, patient))
        assert steps_of(conn, patient, NOW - 200) == []  # silent 500 s: not yet
        (step,) = steps_of(conn, patient, NOW)
        (opened,) = apply_step(conn, step)
        assert steps_of(conn, patient, NOW + 600) == []  # yellow already out; red only after 1800 s silent
        (to_red,) = steps_of(conn, patient, NOW + 1200)
        (escalated,) = apply_step(conn, to_red)
        assert apply_step(conn, to_red) == [] and steps_of(conn, patient, NOW + 1300) == []
        row = conn.execute("SELECT level, state, parameter FROM alerts WHERE patient_id = %s", (patient,)).fetchall()
        history = conn.execute("SELECT kind FROM alert_history WHERE alert_id = %s ORDER BY id",
                               (opened.alert_id,)).fetchall()  # fmt: skip
    assert (opened.kind, opened.parameter, opened.level) == ("open", "no_signal", "yellow")
    assert (escalated.kind, escalated.level, escalated.alert_id) == ("escalate", "red", opened.alert_id)
    assert escalated.trigger["silent_s"] == 1900.0
    assert row == [("red", "open", "no_signal")] and history == [("no_signal",), ("no_signal_red",)]


BASELINE = BaselinePolicy(days=1, min_good_hours=2, min_context_hours=1)


def store_hours(conn: psycopg.Connection, patient: int, device: str, hours: int, hr: float) -> None:  # type: ignore[type-arg]
    """``hours`` of minute windows at rest from T0, through the ingest's write path."""
    for hour in range(hours):
        msg = Summary(device, hour, tuple(
            SummaryWindow(start=T0 + 3600 * hour + 60 * i, end=T0 + 3600 * hour + 60 * (i + 1), beats=60,
                          hr_mean=hr + (i % 5) - 2, resp_rate=15, activity="rest", quality=0.9)
            for i in range(60)))  # fmt: skip
        records.ensure_partitions(conn, records.summary_days(msg))
        with conn.transaction():  # the staging table empties at each commit
            records.store_summaries(conn, [(patient, msg)])


def test_a_proposal_is_stored_when_the_initial_phase_ends_and_only_once(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        ready = add_patient(conn, "Ready", device_id)
        short = add_patient(conn, "Short", f"{device_id}-s")
        store_hours(conn, ready, device_id, 3, hr=92)
        store_hours(conn, short, f"{device_id}-s", 1, hr=70)  # too little good data for the phase
        propose_when_ready(conn, T0 + 3600 * 3, BASELINE)  # the phase (1 day) is not over yet
        assert thresholds.list_versions(conn, ready) == []
        propose_when_ready(conn, T0 + 86_400 + 60, BASELINE)
        propose_when_ready(conn, T0 + 86_400 + 120, BASELINE)  # again: the patient has a proposal now
        proposals = thresholds.list_versions(conn, ready)
        assert thresholds.list_versions(conn, short) == []
    (proposal,) = proposals
    assert proposal.status == "proposed" and proposal.version is None
    assert proposal.baseline["stats"]["hr@rest"]["windows"] == 180
    assert proposal.limits["hr@rest"]["yellow_high"] > 92  # above this patient's own resting rate


def test_the_ladder_and_the_initial_phase_come_from_the_settings() -> None:
    settings = ServerSettings(no_signal_after_seconds=60, no_signal_red_after_seconds=120, escalate_after_seconds=30,
                              escalate_all_after_seconds=90, promote_yellow_after_seconds=900, baseline_days=3,
                              baseline_min_good_hours=12)  # fmt: skip
    policy = EscalationPolicy.from_settings(settings)
    assert (policy.no_signal_after_s, policy.no_signal_red_after_s, policy.escalate_after_s,
            policy.all_on_call_after_s, policy.promote_after_s) == (60, 120, 30, 90, 900)  # fmt: skip
    assert EscalationPolicy.from_settings(ServerSettings()) == EscalationPolicy()
    baseline = BaselinePolicy.from_settings(settings)
    assert (baseline.days, baseline.min_good_hours) == (3, 12)
    assert BaselinePolicy.from_settings(ServerSettings()) == BaselinePolicy()
    for bad, name in (({"no_signal_red_after_seconds": 600}, "NO_SIGNAL_RED"),
                      ({"escalate_all_after_seconds": 300}, "ESCALATE_ALL"),
                      ({"baseline_days": 1, "baseline_min_good_hours": 30}, "MIN_GOOD_HOURS")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            ServerSettings(**bad)


def test_the_loop_runs_the_ladder_the_settings_give(db_url: str, mqtt_url: str, device_id: str) -> None:
    """Silent 90 s: nothing by default (10 min), a yellow no-signal notice with PISCES_NO_SIGNAL_AFTER_SECONDS=60."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_patient(conn, "P", device_id)
        conn.execute("UPDATE patients SET last_data_at = now() - interval '90 seconds' WHERE device_id = %s",
                     (device_id,))  # fmt: skip
    inbox: queue.Queue[bytes] = queue.Queue()
    phone = mqtt_client(mqtt_url)
    phone.on_message = lambda _c, _u, m: inbox.put(m.payload)
    phone.subscribe(topic_for(device_id, Kind.NOTIFY), 1)
    stop = threading.Event()
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"esc-{device_id}",
                              no_signal_after_seconds=60, no_signal_red_after_seconds=3600)  # fmt: skip
    loop = threading.Thread(target=run_escalation, args=(settings, stop))
    loop.start()
    try:
        notice = decode(inbox.get(timeout=15))
    finally:
        stop.set()
        loop.join(10)
        phone.disconnect()
        phone.loop_stop()
    assert isinstance(notice, Notify) and (notice.parameter, notice.level.value) == ("no_signal", "yellow")
