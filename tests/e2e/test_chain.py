"""The whole chain, real at every joint.

A scripted simulated patient (virtual strap bytes -> real edge agent -> durable
outbox -> paho QoS 1) talks to a real broker; the real server (ingest, rules,
API) stores into a real PostgreSQL. The test watches what a clinician and the
patient's phone would see: a red alert in the HTTP API, a yellow notification
on the phone's notify topic, and the symptom period with its heart-rate
statistics, checked against the scenario's ground truth.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from simulators.patient import run_patient
from simulators.scenarios import load_scenario
from tests.fix_server import LiveServer, provision
from tests.server.helpers import mqtt_client, wait_for
from wire import Kind, Level, Notify, decode, topic_for

pytestmark = [pytest.mark.e2e, pytest.mark.db, pytest.mark.mqtt]

SCENARIO = "deterioration"  # yellow band from ~80 s, red band from ~220 s
DURATION_S = 420.0
WINDOW_S = 10.0
HR_TOLERANCE_BPM = 8.0


class NotifyInbox:
    """The patient's phone side of the notify topic: a plain MQTT subscriber."""

    def __init__(self, url: str, device_id: str) -> None:
        self.received: list[Notify] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt_client(url)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.subscribe(topic_for(device_id, Kind.NOTIFY), qos=1)
        assert self._subscribed.wait(10), "notify subscription not granted"

    def _on_message(self, client: object, userdata: object, msg: object) -> None:
        notice = decode(msg.payload, Kind.NOTIFY)  # type: ignore[attr-defined]
        with self._lock:
            self.received.append(notice)  # type: ignore[arg-type]

    def levels(self) -> list[Level]:
        with self._lock:
            return [n.level for n in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_red_alert_yellow_notification_and_symptom_statistics(
    live_server: LiveServer, db_url: str, mqtt_url: str, device_id: str, tmp_path: Path
) -> None:
    patient_id = provision(db_url, device_id, live_server.username)
    phone = NotifyInbox(mqtt_url, device_id)
    scenario = load_scenario(SCENARIO)
    start = time.time() - DURATION_S
    cleanup = [phone.close]
    try:
        report = asyncio.run(
            run_patient(
                scenario, device_id, mqtt_url, tmp_path / "outbox.sqlite3",
                start_time=start, duration_s=DURATION_S, speed=float("inf"),
                window_seconds=WINDOW_S, batch_windows=1,
            )
        )
        assert report.drained and report.pending == 0 and report.acked == report.published

        api = httpx.Client(base_url=live_server.url, timeout=10)
        cleanup.append(api.close)
        login = api.post("/api/auth/login", json={"username": live_server.username, "password": live_server.password})
        assert login.status_code == 200, login.text
        api.headers["Authorization"] = f"Bearer {login.json()['token']}"

        def hr_red() -> list[dict]:
            alerts = api.get("/api/alerts", params={"state": "all", "patient_id": patient_id}).json()
            return [a for a in alerts if a["level"] == "red" and a["parameter"] == "hr"]

        red = wait_for(hr_red, timeout=30, what="a red heart-rate alert in the API")[0]
        episode = [scenario.hr_at(t) for t in range(int(DURATION_S))]
        assert red["patient_id"] == patient_id
        # an escalated alert keeps the trigger that opened it and adds the escalation's
        assert red["escalated_at"] is not None and red["trigger"]["value"] >= 111
        escalation = red["trigger"]["escalation"]
        assert escalation["value"] >= 131 and escalation["limits"]["red_high"] == 131
        assert abs(escalation["value"] - max(episode)) < 20

        wait_for(lambda: Level.RED in phone.levels(), timeout=30, what="notifications on the phone")
        levels = phone.levels()
        assert Level.YELLOW in levels, levels  # the yellow band came first, and the patient heard of it
        assert levels.index(Level.YELLOW) < levels.index(Level.RED)

        periods = wait_for(
            lambda: [p for p in api.get("/api/symptoms", params={"patient_id": patient_id}).json() if p["ended_at"]],
            timeout=30, what="the closed symptom period",
        )
        assert len(periods) == 1
        period = periods[0]
        assert period["tags"] == ["palpitations", "breathless"] and period["severity"] == 4
        marks = {a.type: a.at for a in scenario.actions}
        truth = [scenario.hr_at(t) for t in range(int(marks["symptom_start"]), int(marks["symptom_stop"]))]
        hr = period["hr"]
        assert hr["windows"] >= (marks["symptom_stop"] - marks["symptom_start"]) / WINDOW_S - 1
        assert abs(hr["mean"] - statistics.fmean(truth)) < HR_TOLERANCE_BPM
        assert hr["min"] <= hr["mean"] <= hr["max"]

        panic = [a for a in api.get("/api/alerts", params={"state": "all"}).json() if a["parameter"] == "panic"]
        assert [a["patient_id"] for a in panic] == [patient_id]
    finally:
        for close in cleanup:
            close()


def test_data_of_an_unassigned_patient_stays_hidden(
    live_server: LiveServer, db_url: str, device_id: str
) -> None:
    other = provision(db_url, device_id, live_server.username)
    from server.store import add_user

    import psycopg

    with psycopg.connect(db_url) as conn:
        add_user(conn, f"nurse-{device_id}", "another long secret", "clinician")
    with httpx.Client(base_url=live_server.url, timeout=10) as api:
        token = api.post("/api/auth/login", json={"username": f"nurse-{device_id}", "password": "another long secret"})
        api.headers["Authorization"] = f"Bearer {token.json()['token']}"
        assert other not in [p["id"] for p in api.get("/api/patients").json()]
        assert api.get(f"/api/patients/{other}/summaries").status_code == 404
    assert httpx.get(f"{live_server.url}/api/patients").status_code == 401
