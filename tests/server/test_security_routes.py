"""Every route of ``create_app``, enumerated from ``app.routes``: signed out it answers 401 (but for a
short, explicit allow-list), a clinician asking about a patient not in their care gets 403/404, and a
patient or a caregiver gets 403/404 on every route but their own, and on their own about another patient.

A route added later is covered automatically; one that takes a request body for a patient must
be given a valid body in :data:`VALID_BODIES` (the test fails until it is), so that the answer
shows the authorisation check and not body validation.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.routing import Mount

from server import caregivers, consent, invitations
from server.app import create_app
from server.embedded import free_port
from server.ingest import handle_message, rule_config
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient, link_patient_account
from tests.server.helpers import wait_for
from wire import Event, EventType, encode, topic_for

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
# Answer without a session, by design (docs/security.md): liveness, metrics, sign-in/out, the API
# schema and its viewers, and the portal's static pages (they hold no data; their scripts call the API).
PUBLIC = {
    ("GET", "/healthz"), ("POST", "/api/auth/login"), ("POST", "/api/auth/logout"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("GET", "/"), ("GET", "/login"), ("GET", "/patients/{patient_id}"),
    ("GET", "/patients/{patient_id}/thresholds"), ("GET", "/patients/{patient_id}/medication"), ("GET", "/search"),
    ("GET", "/strips/{patient_id}/{device_id}/{seq}"),
    ("POST", "/api/invitations/accept"),  # the one-time code is the credential (rate-limited)
    ("GET", "/me"), ("GET", "/caregiver"), ("GET", "/join"),
    ("GET", "/patients/{patient_id}/report"),
}  # fmt: skip
PUBLIC_MOUNTS = {"/metrics", "/static"}
VALID_BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/patients/{patient_id}/thresholds"): {"limits": {"hr": {"red_high": 150}}, "reason": "test"},
    ("PUT", "/api/patients/{patient_id}/home"): {"lat": 51.5, "lon": -0.1},
    ("POST", "/api/alerts/{alert_id}/acknowledge"): {"note": ""},
    ("POST", "/api/alerts/{alert_id}/resolve"): {"note": ""},
    ("POST", "/api/alerts/{alert_id}/notes"): {"note": "x"},
    ("POST", "/api/patients/{patient_id}/erase"): {"reason": "test", "confirm_device": "x"},
    ("POST", "/api/patients/{patient_id}/consents"): {"purpose": "research", "granted": True, "method": "form"},
    ("POST", "/api/me/consents"): {"purpose": "research", "granted": True},
    ("POST", "/api/me/caregivers/invitations"): {"label": "x", "scopes": ["status"], "notify_level": "red"},
    ("PUT", "/api/me/caregivers/{caregiver_id}"): {"label": "x", "scopes": ["status"], "notify_level": "red"},
    ("PUT", "/api/caregiver/settings"): {"email": None, "timezone": "UTC"},
    ("POST", "/api/caregiver/invitations/redeem"): {"code": "0000-0000-0000"},
    ("POST", "/api/patients/{patient_id}/visits"): {"note": "seen in clinic"},
    ("POST", "/api/patients/{patient_id}/medication"): {
        "time_zone": "Europe/Ljubljana", "drugs": [{"name": "bisoprolol", "dose": "5 mg", "times": ["08:00"]}]},
}
# Routes whose answer concerns one patient, named by one of these parameters.
PATIENT_PARAMS = ("patient_id", "device_id", "alert_id", "caregiver_id", "invitation_id")
# Each role's own routes (acting on their own patient or grants), and the routes of anyone signed in.
OWN_PREFIX = {"patient": "/api/me", "caregiver": "/api/caregiver/"}
ANYONE_PREFIX = "/api/auth/"


@dataclass(frozen=True)
class RouteInfo:
    """One method of one route: its path template, and the names of its path and query parameters."""

    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool


def app_routes(app: FastAPI) -> tuple[list[RouteInfo], set[str]]:
    """Every (method, route) the app serves, included routers expanded, and the mounted prefixes."""
    routes: list[RouteInfo] = []
    mounts: set[str] = set()

    def visit(route: Any) -> None:
        if hasattr(route, "effective_route_contexts"):  # an included router (FastAPI >= 0.16x)
            for inner in route.effective_route_contexts():
                visit(inner)
        elif isinstance(route, Mount):
            mounts.add(route.path)
        elif hasattr(route, "routes") and not hasattr(route, "methods"):
            for inner in route.routes:
                visit(inner)
        else:
            dependant = getattr(route, "dependant", None)
            query = tuple(p.name for p in dependant.query_params) if dependant else ()
            params = tuple(re.findall(r"{(\w+)(?::\w+)?}", route.path))
            for method in sorted(route.methods - {"HEAD"}):
                routes.append(RouteInfo(method, route.path, params, query,
                                        getattr(route, "body_field", None) is not None))  # fmt: skip

    for route in app.routes:
        visit(route)
    return routes, mounts


@dataclass(frozen=True)
class World:
    """The app on a loopback port, a clinician, the patient in their care with that patient's own account
    and caregiver, and the ids of a patient not in their care (with a caregiver and an invitation)."""

    app: FastAPI
    url: str
    nurse: str
    theirs: int
    theirs_device: str
    their_alert: int
    patient_user: str  # the account of the nurse's patient
    caregiver_user: str  # follows the nurse's patient with every scope
    their_caregiver: int
    their_invitation: int


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[World]:
    tag = secrets.token_hex(3)
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        nurse = f"nurse-{tag}"
        add_user(conn, nurse, PASSWORD)
        mine = add_patient(conn, f"Ann {tag}", f"sa-{tag}")
        theirs = add_patient(conn, f"Bob {tag}", f"sb-{tag}")
        assign_patient(conn, nurse, mine)
        link_patient_account(conn, add_user(conn, f"pat-{tag}", PASSWORD, "patient"), mine)
        for pid in (mine, theirs):
            consent.record(conn, pid, "caregivers", True, "patient", None, "in app")
        carer = add_user(conn, f"care-{tag}", PASSWORD, "caregiver")
        caregivers.add(conn, mine, carer, "son", ["alerts", "status", "trends"], "red", None)
        other_carer = add_user(conn, f"care2-{tag}", PASSWORD, "caregiver")
        their_caregiver = caregivers.add(conn, theirs, other_carer, "wife", ["status"], "none", None).id
        their_invitation = invitations.create(conn, "caregiver", theirs, other_carer, 1)[0].id
        panic = Event(f"sb-{tag}", 1, EventType.PANIC, 1_700_000_000.0)
        handle_message(conn, topic_for(f"sb-{tag}", panic.kind), encode(panic), rule_config(settings))
        row = conn.execute("SELECT id FROM alerts WHERE patient_id = %s", (theirs,)).fetchone()
    assert row is not None, "the panic event opened no alert"
    app = create_app(settings)
    with serve(app) as url:
        yield World(app, url, nurse, theirs, f"sb-{tag}", row[0], f"pat-{tag}", f"care-{tag}", their_caregiver,
                    their_invitation)  # fmt: skip


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """uvicorn serving ``app`` on a free loopback port in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           timeout_graceful_shutdown=1))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn started")
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def fill(path: str, world: World) -> str:
    """The path with every parameter naming the other clinician's patient (or an id of theirs)."""
    values = {"patient_id": world.theirs, "device_id": world.theirs_device, "alert_id": world.their_alert,
              "caregiver_id": world.their_caregiver, "invitation_id": world.their_invitation}
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(values.get(m.group(1), 1)), path)


def test_every_route_needs_a_session_except_the_public_ones(world: World) -> None:
    routes, mounts = app_routes(world.app)
    assert len(routes) > 40, "route enumeration found too few routes"
    assert mounts == PUBLIC_MOUNTS
    checked = []
    for route in routes:
        if (route.method, route.path) in PUBLIC:
            continue
        body = VALID_BODIES.get((route.method, route.path))
        with httpx.Client(base_url=world.url) as client:
            reply = client.request(route.method, fill(route.path, world), json=body)
        assert reply.status_code == 401, f"{route.method} {route.path} answered {reply.status_code} signed out"
        checked.append(route)
    served = {(r.method, r.path) for r in routes}
    assert PUBLIC <= served, f"stale allow-list entries: {PUBLIC - served}"
    assert len(checked) >= 35
    print(f"signed out: {len(checked)} method+path pairs of {len(routes)} answer 401")


def test_no_route_answers_about_a_patient_outside_the_clinicians_care(world: World) -> None:
    routes, _ = app_routes(world.app)
    with httpx.Client(base_url=world.url, timeout=30) as client:
        signed_in = client.post("/api/auth/login", json={"username": world.nurse, "password": PASSWORD})
        assert signed_in.status_code == 200
        checked = [check_patient_route(client, route, world) for route in routes if names_a_patient(route)]
    assert len(checked) >= 25, checked
    print(f"another clinician's patient: {len(checked)} routes answer 403/404 or no row of theirs")


def names_a_patient(route: RouteInfo) -> bool:
    """True if the route's answer concerns a patient named by a path or query parameter."""
    if (route.method, route.path) in PUBLIC or route.path.endswith("/stream"):
        return False  # the streams have no patient parameter; they are scoped per event (test_api, test_caregivers)
    return any(p in route.path_params or p in route.query_params for p in PATIENT_PARAMS)


def check_patient_route(client: httpx.Client, route: RouteInfo, world: World) -> str:
    """Ask the route about the other clinician's patient: 403/404, or for a query filter no row of theirs."""
    key = (route.method, route.path)
    assert not route.has_body or key in VALID_BODIES, f"add a valid body for {route.method} {route.path}"
    url = fill(route.path, world)
    by_query = "patient_id" in route.query_params and "patient_id" not in route.path_params
    if by_query:
        url += f"?patient_id={world.theirs}"
    reply = client.request(route.method, url, json=VALID_BODIES.get(key))
    what = f"{route.method} {route.path}: {reply.status_code} {reply.text[:200]}"
    if by_query and reply.status_code == 200:  # a filter over the caller's own patients
        compact = reply.text.replace(" ", "")
        assert f'"patient_id":{world.theirs},' not in compact and world.theirs_device not in compact, what
    else:
        assert reply.status_code in (403, 404), what
    return f"{route.method} {route.path}"


@pytest.mark.parametrize("role", ["patient", "caregiver"])
def test_patients_and_caregivers_get_403_or_404_but_on_their_own_routes(world: World, role: str) -> None:
    routes, _ = app_routes(world.app)
    username = world.patient_user if role == "patient" else world.caregiver_user
    others: list[tuple[str, str]] = []
    own: list[tuple[str, str]] = []
    with httpx.Client(base_url=world.url, timeout=30) as client:
        signed_in = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
        assert signed_in.status_code == 200 and signed_in.json()["user"]["role"] == role
        for route in routes:
            key = (route.method, route.path)
            mine = route.path.startswith(OWN_PREFIX[role])
            if key in PUBLIC or route.path.startswith(ANYONE_PREFIX) or (mine and not route.path_params):
                continue  # sign-in/out and their own data are tested in tests/server/test_me_caregivers.py
            reply = client.request(route.method, fill(route.path, world), json=VALID_BODIES.get(key))
            what = f"{role}: {route.method} {route.path}: {reply.status_code} {reply.text[:200]}"
            assert reply.status_code in (403, 404), what
            (own if mine else others).append(key)
    assert len(others) >= 40, others  # every clinician and admin route, and the other role's
    assert len(own) >= 3, own  # their own routes, asked about another patient's caregiver, invitation or data
    print(f"{role}: {len(others)} other routes and {len(own)} own routes about another patient refused")
