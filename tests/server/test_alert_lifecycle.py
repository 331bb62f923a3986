"""The thresholds and alert-lifecycle API over a live uvicorn and the real database."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import uvicorn

from server import alerting
from server.app import create_app
from server.embedded import free_port
from server.rules import RuleConfig
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.helpers import wait_for
from wire import Summary, SummaryWindow

T0 = 1_700_000_000.0
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def api(db_url: str) -> Iterator[tuple[httpx.Client, int, str]]:
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url) as conn:
        add_user(conn, f"nurse-{tag}", PASSWORD)
        patient = add_patient(conn, f"Ann {tag}", f"a-{tag}")
        assign_patient(conn, f"nurse-{tag}", patient)
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, baseline_days=10)  # not the default 7
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_port(),
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn started")
    with httpx.Client(base_url=f"http://127.0.0.1:{server.config.port}") as client:
        token = client.post("/api/auth/login", json={"username": f"nurse-{tag}", "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['token']}"
        yield client, patient, f"a-{tag}"
    server.should_exit = True
    thread.join(10)


def test_a_clinician_approves_limits_and_bad_ones_are_refused_by_name(api: tuple[httpx.Client, int, str]) -> None:
    client, patient, _ = api
    before = client.get(f"/api/patients/{patient}/thresholds").json()
    assert before["in_force"]["version"] is None and before["phase"]["phase"] == "no_data"
    assert before["phase"]["days_left"] == 10  # the initial phase the deployment configured
    assert before["in_force"]["limits"]["hr"]["red_high"] == 131
    bad = client.post(f"/api/patients/{patient}/thresholds",
                      json={"limits": {"hr@rest": {"yellow_low": 40, "yellow_high": 90, "red_low": 20, "red_high": 131},
                                       "spo2": {}}, "reason": "x"})  # fmt: skip
    assert bad.status_code == 422 and "spo2" in bad.text
    body = {"limits": {"hr@rest": {"yellow_low": 40, "yellow_high": 90, "red_low": 32, "red_high": 131}},
            "reason": "athlete"}  # fmt: skip
    made = client.post(f"/api/patients/{patient}/thresholds", json=body)
    assert made.status_code == 201 and made.json()["version"] == 1 and made.json()["approved_by"].startswith("nurse")
    after = client.get(f"/api/patients/{patient}/thresholds").json()
    assert after["in_force"]["version"] == 1 and after["in_force"]["limits"]["hr@rest"]["red_low"] == 32
    assert client.get("/api/patients/999999/thresholds").status_code == 404


def test_notes_history_and_burden_per_threshold_version(api: tuple[httpx.Client, int, str], db_url: str) -> None:
    client, patient, device = api
    msg = Summary(device, 1, tuple(SummaryWindow(start=T0 + 60 * i, end=T0 + 60 * (i + 1), beats=60, hr_mean=140,
                                                 quality=0.9) for i in range(3)))  # fmt: skip
    with psycopg.connect(db_url) as conn:
        (change,) = alerting.judge(conn, patient, msg, RuleConfig())
    alert = change.alert_id
    assert client.post(f"/api/alerts/{alert}/notes", json={"note": "called the patient"}).status_code == 201
    assert client.post(f"/api/alerts/{alert}/acknowledge", json={"note": "seen"}).status_code == 200
    history = client.get(f"/api/alerts/{alert}/history").json()
    assert [(h["kind"], h["detail"]["note"]) for h in history] == [("note", "called the patient")]
    figures = client.get("/api/alerts/burden", params={"patient_id": patient}).json()
    by_version = {f["threshold_version"]: f for f in figures}
    current = by_version[change.trigger["threshold_version"]]
    assert current["alerts"] == 1 and current["red_alerts"] == 1 and current["share_acknowledged"] == 1.0
    assert current["median_seconds_to_ack"] is not None
