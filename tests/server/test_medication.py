"""Medication plan versions in the database, and the retained config that carries the plan with the limits."""

from __future__ import annotations

import queue
import threading
from datetime import datetime, timezone

import psycopg
import pytest

from server import medication, phone_config, thresholds
from server.channels import ChannelSettings
from server.escalation import EscalationPolicy, Watch, run_escalation
from server.settings import ServerSettings
from server.store import add_patient, add_user
from tests.server.helpers import mqtt_client
from wire import Config, Kind, Limits, decode, topic_for
from wire.medication import Drug, MedicationPlan

pytestmark = pytest.mark.db

PLAN = MedicationPlan(1, 0.0, "Europe/Ljubljana", (Drug("bisoprolol", "5 mg", ("08:00", "20:00"), critical=True),))


def test_versions_are_numbered_in_turn_and_never_edited(db_url: str, device_id: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        user = add_user(conn, f"dr-{device_id}", "pw-123456789")
        first = medication.record_plan(conn, patient, user, PLAN, "start")
        second = medication.record_plan(conn, patient, user, MedicationPlan(1, 0.0, "UTC", ()), "stopped")
        versions = medication.list_plans(conn, patient)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE medication_plans SET drugs = '[]' WHERE id = %s", (first,))
        conn.execute("UPDATE medication_plans SET pushed_at = now() WHERE id = %s", (first,))  # the push only
        in_force = medication.plan_in_force(conn, patient)
    assert [(v.id, v.version, v.reason, v.created_by) for v in versions] == [
        (second, 2, "stopped", f"dr-{device_id}"), (first, 1, "start", f"dr-{device_id}")]  # fmt: skip
    assert in_force is not None and in_force.version == 2 and in_force.to_wire().drugs == ()
    assert versions[1].to_wire().drugs == PLAN.drugs and versions[1].to_wire().since == versions[1].created_at.timestamp()


def test_a_plan_the_wire_refuses_is_never_stored() -> None:
    with pytest.raises(medication.PlanError) as err:
        medication.checked_plan({"time_zone": "Mars/Olympus", "drugs": []})
    assert err.value.problems == ["time_zone: unknown time zone 'Mars/Olympus'"]


def test_the_versions_in_force_in_a_range_are_those_whose_own_span_meets_it() -> None:
    day = datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp()

    def v(n: int, days: float) -> medication.PlanVersion:
        since = datetime.fromtimestamp(day + days * 86_400, timezone.utc)
        return medication.PlanVersion(n, 1, n, "UTC", 60, 180, [], "", since, None, None)

    versions = [v(3, 20), v(1, 0), v(2, 10)]  # in force [0, 10), [10, 20), [20, ...)

    def in_force(start: float, end: float) -> list[int]:
        at = [datetime.fromtimestamp(day + d * 86_400, timezone.utc) for d in (start, end)]
        return [x.version for x in medication.versions_in_force(versions, *at)]

    assert in_force(-5, 0) == [] and in_force(-5, 0.5) == [1]  # before the first: no plan yet
    assert in_force(10, 20) == [2] and in_force(9.9, 20.1) == [1, 2, 3] and in_force(25, 30) == [3]


def test_the_config_version_grows_with_a_change_of_the_limits_the_plan_or_the_location_consent() -> None:
    defaults = thresholds.InForce(None, {"hr": Limits(50, 111, 40, 131)})
    approved = thresholds.InForce(2, {"hr": Limits(45, 100, 40, 131)})
    versions = [
        phone_config.config_for("dev-1", defaults, None, 0, False, 1.0).version,
        phone_config.config_for("dev-1", defaults, PLAN, 0, False, 1.0).version,
        phone_config.config_for("dev-1", approved, PLAN, 0, False, 1.0).version,
        phone_config.config_for("dev-1", approved, MedicationPlan(2, 0.0, "UTC", ()), 0, False, 1.0).version,
        phone_config.config_for("dev-1", approved, MedicationPlan(2, 0.0, "UTC", ()), 1, True, 1.0).version,
    ]
    assert versions == [0, 1, 3, 4, 5]
    config = phone_config.config_for("dev-1", approved, PLAN, 1, True, 1.0)
    assert dict(config.limits)["hr"] == Limits(45, 100, 40, 131) and config.medication == PLAN
    assert config.share_location


@pytest.mark.mqtt
def test_the_loop_pushes_the_plan_with_the_limits_in_force_and_each_change_again(
    db_url: str, mqtt_url: str, device_id: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient = add_patient(conn, "P", device_id)
        user = add_user(conn, f"dr-{device_id}", "pw-123456789")
        medication.record_plan(conn, patient, user, PLAN, "start", since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    inbox: queue.Queue[bytes] = queue.Queue()
    phone = mqtt_client(mqtt_url)
    phone.on_message = lambda _c, _u, m: inbox.put(m.payload)
    phone.subscribe(topic_for(device_id, Kind.CONFIG), 1)
    stop = threading.Event()
    settings = ServerSettings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id=f"esc-{device_id}")
    loop = threading.Thread(target=run_escalation, args=(settings, stop, EscalationPolicy(tick_s=0.2),
                                                         ChannelSettings(), None, Watch()))  # fmt: skip
    loop.start()
    try:
        first = decode(inbox.get(timeout=10))
        with psycopg.connect(db_url, autocommit=True) as conn:
            thresholds.approve(conn, patient, user, {"hr": Limits(45, 100, 40, 131)}, "calm patient")
        second = decode(inbox.get(timeout=10))
        with psycopg.connect(db_url, autocommit=True) as conn:
            medication.record_plan(conn, patient, user, MedicationPlan(1, 0.0, "Europe/Ljubljana", ()), "stopped")
        third = decode(inbox.get(timeout=10))
    finally:
        stop.set()
        loop.join(10)
        phone.disconnect()
        phone.loop_stop()
    assert isinstance(first, Config) and isinstance(second, Config) and isinstance(third, Config)
    assert first.version == 1 and first.medication is not None and first.medication.drugs == PLAN.drugs
    assert first.medication.since == datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    assert dict(first.limits)["hr"] == Limits(yellow_low=50, yellow_high=111, red_low=40, red_high=131)  # NEWS2
    assert second.version == 2 and dict(second.limits)["hr"] == Limits(45, 100, 40, 131)
    assert second.medication == first.medication  # a new threshold version keeps the plan on the phone
    assert third.version == 3 and third.medication is not None and third.medication.drugs == ()
    with psycopg.connect(db_url) as conn:
        assert all(d.patient_id != patient for d in phone_config.due_configs(conn, 0.0))  # nothing left to push
        pushed = conn.execute("SELECT count(*) FROM medication_plans WHERE patient_id = %s AND pushed_at IS NOT NULL",
                              (patient,)).fetchone()  # fmt: skip
    assert pushed == (2,)
