"""The HTTP API over a live uvicorn and the real database: auth, care scoping, alerts, symptoms, SSE."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from server import consent
from server.app import create_app
from server.embedded import free_port
from server.ingest import handle_message, rule_config
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.helpers import wait_for
from wire import Event, EventType, Kind, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db

T0 = 1_700_000_000.0
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class World:
    """Users and patients of one test module."""

    url: str
    db_url: str
    settings: ServerSettings
    admin: str
    nurse: str  # cares for `mine`
    other_nurse: str  # cares for nobody
    mine: int
    mine_device: str
    theirs: int
    theirs_device: str


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[World]:
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url) as conn:
        admin, nurse, other = f"admin-{tag}", f"nurse-{tag}", f"other-{tag}"
        add_user(conn, admin, PASSWORD, "admin")
        add_user(conn, nurse, PASSWORD)
        add_user(conn, other, PASSWORD)
        mine = add_patient(conn, f"Ann {tag}", f"a-{tag}")
        theirs = add_patient(conn, f"Bob {tag}", f"b-{tag}")
        assign_patient(conn, nurse, mine)
        consent.record(conn, mine, "location", True, "patient", None, "in app")  # Ann shares her position
    settings = ServerSettings(database_url=db_url, ingest_in_server=False)
    server = uvicorn.Server(uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=free_port(), log_level="warning",
        timeout_graceful_shutdown=1, lifespan="on",
    ))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn started")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield World(f"http://127.0.0.1:{port}", db_url, settings, admin, nurse, other, mine, f"a-{tag}",
                theirs, f"b-{tag}")  # fmt: skip
    server.should_exit = True
    thread.join(10)


def ingest(world: World, device: str, *messages: Summary | Event) -> None:
    """Feed messages through the ingest handler (the broker-free path of the same code)."""
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        for msg in messages:
            handle_message(conn, topic_for(device, msg.kind), encode(msg), rule_config(world.settings))


def hr_windows(device: str, seq: int, hrs: list[float], t0: float, quality: float = 0.9) -> Summary:
    return Summary(device, seq, tuple(
        SummaryWindow(start=t0 + 60 * i, end=t0 + 60 * (i + 1), beats=60, hr_mean=hr, hr_min=hr - 10,
                      hr_max=hr + 10, quality=quality)
        for i, hr in enumerate(hrs)
    ))  # fmt: skip


def client(world: World, username: str | None = None) -> httpx.Client:
    headers = {}
    if username:
        r = httpx.post(f"{world.url}/api/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        headers["Authorization"] = f"Bearer {r.json()['token']}"
    return httpx.Client(base_url=world.url, timeout=10, headers=headers)


def test_everything_but_health_and_login_needs_a_session(world: World) -> None:
    with client(world) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        for path in ("/api/patients", "/api/alerts", "/api/symptoms", "/api/alerts/stream", "/api/dead-letters"):
            assert c.get(path).status_code == 401, path
        assert c.post("/api/alerts/1/acknowledge", json={}).status_code == 401
        assert c.post("/api/auth/login", json={"username": world.nurse, "password": "nope"}).status_code == 401
        assert c.get("/api/patients", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_login_sets_a_cookie_and_logout_ends_the_session(world: World) -> None:
    with client(world) as c:
        r = c.post("/api/auth/login", json={"username": world.nurse, "password": PASSWORD})
        body = r.json()
        assert body["user"] == {"id": body["user"]["id"], "username": world.nurse, "role": "clinician"}
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
        assert c.get("/api/auth/me").json()["username"] == world.nurse  # by cookie
        assert c.post("/api/auth/logout").json() == {"ok": True}
        assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"}).status_code == 401


def test_a_session_ends_at_its_expiry_and_the_password_is_kept_only_as_a_salted_scrypt_hash(world: World) -> None:
    with client(world) as c:
        r = c.post("/api/auth/login", json={"username": world.other_nurse, "password": PASSWORD})
        token, expires = r.json()["token"], datetime.fromisoformat(r.json()["expires_at"].replace("Z", "+00:00"))
        hours = (expires - datetime.now(timezone.utc)).total_seconds() / 3600
        assert abs(hours - world.settings.session_hours) < 0.1
        me = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/auth/me", headers=me).status_code == 200
        with psycopg.connect(world.db_url) as conn:  # the session's hours pass
            conn.execute("UPDATE sessions SET expires_at = now() - interval '1 second'"
                         " WHERE user_id = (SELECT id FROM users WHERE username = %s)", (world.other_nurse,))
            hashes = [h for (h,) in conn.execute(
                "SELECT password_hash FROM users WHERE username = ANY(%s)", ([world.nurse, world.other_nurse],))]
        assert c.get("/api/auth/me", headers=me).status_code == 401
        assert c.get("/api/patients", headers=me).status_code == 401
    assert len(hashes) == 2 and len(set(hashes)) == 2  # same password, different salts
    for stored in hashes:
        scheme, n, r_, p, salt, digest = stored.split("$")
        assert (scheme, int(n), int(r_), int(p)) == ("scrypt", 2**14, 8, 1) and len(bytes.fromhex(salt)) == 16
        assert PASSWORD not in stored and len(bytes.fromhex(digest)) >= 32


def test_a_clinician_sees_only_assigned_patients(world: World) -> None:
    ingest(world, world.theirs_device, hr_windows(world.theirs_device, 1, [70], T0))
    with client(world, world.nurse) as c:
        assert [p["id"] for p in c.get("/api/patients").json()] == [world.mine]
        assert c.get(f"/api/patients/{world.theirs}/summaries").status_code == 404
        assert c.get(f"/api/symptoms?patient_id={world.theirs}").status_code == 404
    with client(world, world.other_nurse) as c:
        assert c.get("/api/patients").json() == []
    with client(world, world.admin) as c:
        ids = {p["id"] for p in c.get("/api/patients").json()}
        assert {world.mine, world.theirs} <= ids
        assert len(c.get(f"/api/patients/{world.theirs}/summaries").json()) == 1


def test_alerts_can_be_listed_acknowledged_and_resolved(world: World) -> None:
    ingest(world, world.mine_device, hr_windows(world.mine_device, 10, [80, 118, 120], T0 + 10_000))
    ingest(world, world.theirs_device, Event(world.theirs_device, 10, EventType.PANIC, T0 + 10_000))
    with client(world, world.nurse) as c:
        (alert,) = c.get("/api/alerts").json()
        assert (alert["patient_id"], alert["level"], alert["parameter"], alert["state"]) == (
            world.mine, "yellow", "hr", "open")  # fmt: skip
        assert alert["trigger"]["limits"]["yellow_high"] == 111
        patient = c.get("/api/patients").json()[0]
        assert patient["state"] == "yellow" and patient["last_data_at"] == "2023-11-15T01:03:00Z"
        acked = c.post(f"/api/alerts/{alert['id']}/acknowledge", json={"note": "called her"}).json()
        assert (acked["state"], acked["acked_by"], acked["ack_note"]) == ("acknowledged", world.nurse, "called her")
        assert c.post(f"/api/alerts/{alert['id']}/acknowledge", json={}).status_code == 200
        assert c.get("/api/alerts").json() == []  # open = not yet acknowledged
        assert len(c.get("/api/alerts?state=active").json()) == 1
        resolved = c.post(f"/api/alerts/{alert['id']}/resolve", json={"note": "fine"}).json()
        assert resolved["state"] == "resolved"
        assert c.post(f"/api/alerts/{alert['id']}/acknowledge", json={}).status_code == 409
        assert c.post("/api/alerts/999999/acknowledge", json={}).status_code == 404
        assert c.get(f"/api/alerts?state=all&patient_id={world.mine}").json()[0]["id"] == alert["id"]
    with client(world, world.admin) as c:
        red = c.get("/api/alerts?level=red").json()  # the admin sees all: other tests' patients too
        red = [a for a in red if a["patient_id"] in (world.mine, world.theirs)]
        assert [(a["patient_id"], a["parameter"]) for a in red] == [(world.theirs, "panic")]
        red_id = red[0]["id"]
    with client(world, world.nurse) as c:
        assert c.post(f"/api/alerts/{red_id}/acknowledge", json={}).status_code == 404


def test_symptom_periods_carry_hr_stats(world: World) -> None:
    t0 = T0 + 50_000
    d = world.mine_device
    ingest(world, d,
           Event(d, 100, EventType.SYMPTOM_START, t0 + 60, period="s1", tags=("dizzy",), severity=2),
           hr_windows(d, 101, [70, 90, 100, 72], t0),  # windows [0,60) [60,120) [120,180) [180,240)
           hr_windows(d, 102, [150], t0 + 130, quality=0.1),  # noisy: left out of the stats
           Event(d, 103, EventType.SYMPTOM_STOP, t0 + 170, period="s1"))  # fmt: skip
    with client(world, world.nurse) as c:
        rows = c.get("/api/symptoms", params={"patient_id": world.mine, "start": "2023-11-15T00:00:00Z"}).json()
    (period,) = [r for r in rows if r["period"] == "s1"]
    assert period["tags"] == ["dizzy"] and period["severity"] == 2 and period["patient_name"].startswith("Ann")
    assert period["hr"] == {"mean": 95.0, "min": 80.0, "max": 110.0, "windows": 2}


def test_summaries_carry_every_field_the_phone_measured(world: World) -> None:
    t0 = T0 + 90_000
    d = world.mine_device
    window = SummaryWindow(start=t0, end=t0 + 30, beats=35, hr_mean=70.0, pnn50=12.5, pause_max=2.25, ectopic=3,
                           steps=41, posture_changes=2, fall=True)  # fmt: skip
    ingest(world, d, Summary(d, 200, (window,)))
    span = {"start": iso_utc(t0), "end": iso_utc(t0 + 30)}
    with client(world, world.nurse) as c:
        (row,) = c.get(f"/api/patients/{world.mine}/summaries", params=span).json()
    got = {k: row[k] for k in ("pnn50", "pause_max", "ectopic", "steps", "posture_changes", "fall")}
    assert got == {"pnn50": 12.5, "pause_max": 2.25, "ectopic": 3, "steps": 41, "posture_changes": 2, "fall": True}


def iso_utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def test_bad_input_gets_a_4xx_naming_the_field(world: World) -> None:
    with client(world, world.nurse) as c:
        r = c.get(f"/api/patients/{world.mine}/summaries?start=yesterday")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "start"]
        r = c.get("/api/symptoms?start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z")
        assert r.status_code == 422 and "end" in r.json()["detail"]
        r = c.get("/api/analysis/cohort?end=0001-01-02T00:00:00Z")  # its 30-day default would pass year 1
        assert r.status_code == 422 and r.json()["detail"].startswith("end: must be between the years")
        assert c.get("/api/alerts?state=maybe").status_code == 422
        assert c.get("/api/alerts?level=green").status_code == 422
        assert c.get("/api/patients/abc/summaries").status_code == 422
        assert c.post("/api/auth/login", json={"username": "x"}).status_code == 422
        assert c.post("/api/alerts/1/acknowledge", content=b"{").status_code == 422


def test_dead_letters_are_for_admins_only(world: World) -> None:
    ingest(world, world.mine_device)  # nothing
    with psycopg.connect(world.db_url, autocommit=True) as conn:
        handle_message(conn, topic_for(world.mine_device, Kind.SUMMARY), b"\xff\xfe", rule_config(world.settings))
    with client(world, world.nurse) as c:
        assert c.get("/api/dead-letters").status_code == 403
    with client(world, world.admin) as c:
        rows = c.get("/api/dead-letters").json()
    assert any(r["reason"] == "not_utf8" and r["payload_base64"] == "//4=" for r in rows)


def test_reads_are_audited(world: World) -> None:
    with client(world, world.nurse) as c:
        c.get(f"/api/patients/{world.mine}/summaries")
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.user_id"
            " WHERE u.username = %s AND a.action = 'read:summaries' AND a.patient_id = %s",
            (world.nurse, world.mine),
        ).fetchone()
    assert row is not None and row[0] >= 1


def test_the_stream_pushes_alerts_of_my_patients_when_notified(world: World) -> None:
    with client(world, world.nurse) as c, c.stream("GET", "/api/alerts/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        wait_for(lambda: next(lines) == ": listening", what="stream listening")
        ingest(world, world.theirs_device, Event(world.theirs_device, 200, EventType.SYMPTOM_START, T0, period="x"))
        with psycopg.connect(world.db_url, autocommit=True) as conn:  # someone else's alert: not for me
            conn.execute("UPDATE alerts SET state = 'resolved' WHERE patient_id = %s", (world.theirs,))
        ingest(world, world.theirs_device, Event(world.theirs_device, 201, EventType.PANIC, T0 + 1))
        ingest(world, world.mine_device, Event(world.mine_device, 202, EventType.PANIC, T0 + 2, lat=1.0, lon=2.0))
        event = _next_event(lines)
    assert event["patient_id"] == world.mine
    assert (event["level"], event["parameter"], event["state"]) == ("red", "panic", "open")
    assert event["trigger"]["lat"] == 1.0


def _next_event(lines: Iterator[str]) -> dict[str, Any]:
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: ") and name == "alert":
            return dict(json.loads(line[len("data: "):]))
    raise AssertionError("stream ended")
