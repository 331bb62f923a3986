"""Every route that reads or changes a patient's data writes an audit row naming the user, the action,
the patient and the reason the request gave (``X-Access-Reason``).

Routes are enumerated from ``app.routes`` as in test_security_routes.py, so a route added later is
checked without editing this test: a route naming a patient (path or query) must answer 2xx to a
valid request and write the row; any other route whose answer mentions the patient must too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from server.app import create_app
from server.settings import ServerSettings
from server.store import add_user
from tests.server.patient_data import PASSWORD, Filled, fill_patient
from tests.server.test_security_routes import (
    OWN_PREFIX, PATIENT_PARAMS, PUBLIC, VALID_BODIES, RouteInfo, app_routes, serve,
)

pytestmark = pytest.mark.db

REASON = "audit route test"
# Not called here, on purpose: the endless live stream (its per-alert push:alert rows are tested in
# test_api.py), and the two routes that end the caller's own sessions (no patient data).
NOT_CALLED = {("GET", "/api/alerts/stream"), ("GET", "/api/caregiver/stream"), ("POST", "/api/auth/logout"),
              ("POST", "/api/auth/sessions/revoke-all")}
# Called after the others, since they narrow or end what other calls need (the caregiver's grant, the invitation).
LATE = {("PUT", "/api/me/caregivers/{caregiver_id}"), ("POST", "/api/me/caregivers/{caregiver_id}/revoke"),
        ("POST", "/api/me/caregivers/invitations/{invitation_id}/cancel")}
LAST = ("POST", "/api/patients/{patient_id}/erase")  # erases the patient: called last, on a patient of its own
# About the spare patient, who has no account yet (the main one has, so this would be a 409).
ON_SPARE = {LAST, ("POST", "/api/patients/{patient_id}/account-invitation")}
LIMITS = {"yellow_low": 50, "yellow_high": 110, "red_low": 40, "red_high": 150}
BODIES: dict[tuple[str, str], Any] = {
    **VALID_BODIES,
    ("POST", "/api/patients/{patient_id}/thresholds"): {"limits": {"hr": LIMITS}, "reason": "test"},
    ("PUT", "/api/patients/{patient_id}/home"): {"lat": 46.0, "lon": 14.5},
    ("POST", "/api/alerts/{alert_id}/acknowledge"): {"note": "seen"},
    ("POST", "/api/alerts/{alert_id}/resolve"): {"note": "done"},
    ("POST", "/api/alerts/{alert_id}/notes"): {"note": "a note"},
    ("POST", "/api/weather/import"): "time,temperature_2m\n",
}
QUERIES: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/weather"): {"lat": 46.05, "lon": 14.5, "start": "2025-01-01T00:00:00Z",
                              "end": "2025-01-02T00:00:00Z"},
}
T0 = 1_767_000_000.0  # 2025-12-29, apart from the other tests' data


@dataclass(frozen=True)
class Setup:
    app: FastAPI
    url: str
    admin: str
    admin_id: int
    patient: Filled  # with her own account and a caregiver, who call their own routes
    spare: Filled  # the one the erase route erases


@pytest.fixture(scope="module")
def setup(db_url: str) -> Iterator[Setup]:
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        patient, spare = fill_patient(conn, T0), fill_patient(conn, T0 + 500, people=False)
        name = f"auditor-{patient.patient_id}"
        admin_id = add_user(conn, name, PASSWORD, "admin")
    app = create_app(settings)
    with serve(app) as url:
        yield Setup(app, url, name, admin_id, patient, spare)


def fill(route: RouteInfo, f: Filled) -> str:
    values = {"patient_id": f.patient_id, "device_id": f.device_id, "alert_id": f.alert_id, "seq": 5,
              "caregiver_id": f.grant_id, "invitation_id": f.invitation_id}
    path = route.path
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", str(value))
    return path


def mentions(text: str, f: Filled) -> bool:
    compact = text.replace(" ", "")
    in_list = re.search(rf'"patient_ids":\[([0-9,]*,)?{f.patient_id}[],]', compact) is not None
    return f'"patient_id":{f.patient_id},' in compact or in_list or f.device_id in text or f.name in text


AuditRows = list[tuple[Any, ...]]


def call(c: httpx.Client, conn: psycopg.Connection, route: RouteInfo, f: Filled) -> tuple[httpx.Response, AuditRows]:
    """Call the route about ``f``; the audit rows it wrote."""
    before = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]  # type: ignore[index]
    key = (route.method, route.path)
    params = dict(QUERIES.get(key, {}))
    if "patient_id" in route.query_params and "patient_id" not in route.path_params:
        params["patient_id"] = f.patient_id
    body = BODIES.get(key)
    if key == LAST:
        body = {"reason": "the patient asked", "confirm_device": f.device_id}
    content = {"content": body} if isinstance(body, str) else {"json": body}
    reply = c.request(route.method, fill(route, f), params=params, **content)  # type: ignore[arg-type]
    rows = conn.execute("SELECT user_id, action, patient_id, reason FROM audit_log WHERE id > %s ORDER BY id",
                        (before,)).fetchall()  # fmt: skip
    return reply, rows


def signed_in(c: httpx.Client, username: str) -> httpx.Client:
    token = c.post("/api/auth/login", json={"username": username, "password": PASSWORD}).json()["token"]
    c.headers.update({"Authorization": f"Bearer {token}", "X-Access-Reason": REASON})
    return c


def caller(route: RouteInfo, clients: dict[str, tuple[httpx.Client, int]]) -> tuple[httpx.Client, int]:
    """The client (and its user id) that may call the route: the patient or caregiver on their own routes."""
    own = [role for role, prefix in OWN_PREFIX.items() if route.path.startswith(prefix)]
    return clients[own[0] if own else "admin"]


def test_every_read_or_change_of_patient_data_is_audited(setup: Setup, db_url: str) -> None:
    routes, _ = app_routes(setup.app)
    order = {key: 2 for key in LATE} | {("POST", "/api/me/caregivers/{caregiver_id}/revoke"): 3, LAST: 4}
    todo = sorted((r for r in routes if (r.method, r.path) not in PUBLIC | NOT_CALLED),
                  key=lambda r: order.get((r.method, r.path), 1))  # fmt: skip
    audited, unaudited, failures = [], [], []
    p = setup.patient
    with (httpx.Client(base_url=setup.url, timeout=60) as admin, httpx.Client(base_url=setup.url, timeout=60) as own,
          httpx.Client(base_url=setup.url, timeout=60) as follower, psycopg.connect(db_url, autocommit=True) as conn):
        clients = {"admin": (signed_in(admin, setup.admin), setup.admin_id),
                   "patient": (signed_in(own, p.account), p.account_id),
                   "caregiver": (signed_in(follower, f"son-of-{p.account}"), p.caregiver_id)}  # fmt: skip
        for route in todo:
            f = setup.spare if (route.method, route.path) in ON_SPARE else p
            c, user_id = caller(route, clients)
            reply, rows = call(c, conn, route, f)
            what = f"{route.method} {route.path}"
            names = any(p in route.path_params or p in route.query_params for p in PATIENT_PARAMS)
            if names and not reply.is_success:
                failures.append(f"{what}: {reply.status_code} {reply.text[:200]} (give it a valid request here)")
                continue
            about = names or (reply.is_success and mentions(reply.text, f))
            if not about:
                unaudited.append(what)
                continue
            mine = [r for r in rows if r[0] == user_id and r[2] == f.patient_id and r[1] and r[3] == REASON]
            if mine:
                audited.append(what)
            else:
                failures.append(f"{what}: no audit row naming the patient ({rows})")
    assert failures == [], "\n".join(failures)
    assert len(audited) >= 30, audited
    print(f"{len(audited)} routes audited; not about a patient: {unaudited}")


def test_the_reason_is_optional_and_bounded(setup: Setup, db_url: str) -> None:
    with httpx.Client(base_url=setup.url, timeout=30) as c:
        token = c.post("/api/auth/login", json={"username": setup.admin, "password": PASSWORD}).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        plain = c.get(f"/api/patients/{setup.patient.patient_id}")
        control = c.get(f"/api/patients/{setup.patient.patient_id}", headers={"X-Access-Reason": "x" * 201})
    assert plain.status_code == 200 and control.status_code == 422
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT reason FROM audit_log WHERE user_id = %s AND action = 'read:patient'"
                           " ORDER BY id DESC LIMIT 1", (setup.admin_id,)).fetchone()  # fmt: skip
    assert row == (None,)
