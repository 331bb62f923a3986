"""Patients and caregivers over a live server: accounts from codes, consent, scopes, revocation (streams too)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from server.app import create_app
from server.ingest import handle_message, rule_config
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.helpers import wait_for
from tests.server.test_api import _next_event as next_alert
from tests.server.test_security_routes import serve
from wire import Event, EventType, Summary, SummaryWindow, encode, topic_for

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
T0 = 1_700_000_000.0


@dataclass(frozen=True)
class People:
    """A live server, a nurse, two of her patients (Ann and Cid) with their devices and own accounts."""

    url: str
    db_url: str
    settings: ServerSettings
    nurse: str
    ann: int
    ann_device: str
    cid: int
    cid_device: str
    tag: str

    @property
    def ann_user(self) -> str:
        return f"ann-{self.tag}"

    @property
    def cid_user(self) -> str:
        return f"cid-{self.tag}"


@pytest.fixture(scope="module")
def people(db_url: str) -> Iterator[People]:
    tag = secrets.token_hex(3)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, f"nurse-{tag}", PASSWORD)
        ann = add_patient(conn, f"Ann {tag}", f"pa-{tag}")
        cid = add_patient(conn, f"Cid {tag}", f"pc-{tag}")
        for pid in (ann, cid):
            assign_patient(conn, f"nurse-{tag}", pid)
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with serve(create_app(settings)) as url:
        world = People(url, db_url, settings, f"nurse-{tag}", ann, f"pa-{tag}", cid, f"pc-{tag}", tag)
        patient_account(world, ann, "ann")
        patient_account(world, cid, "cid")
        yield world


def signed_in(p: People, username: str) -> httpx.Client:
    r = httpx.post(f"{p.url}/api/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=p.url, timeout=10, headers={"Authorization": f"Bearer {r.json()['token']}"})


def accept(p: People, code: str, username: str) -> httpx.Response:
    return httpx.post(f"{p.url}/api/invitations/accept", json={"code": code, "username": username,
                                                                "password": PASSWORD})  # fmt: skip


def patient_account(p: People, patient_id: int, name: str) -> str:
    """The nurse invites the patient, who makes their account with the code; returns the username."""
    with signed_in(p, p.nurse) as nurse:
        made = nurse.post(f"/api/patients/{patient_id}/account-invitation")
    assert made.status_code == 201, made.text
    username = f"{name}-{p.tag}"
    joined = accept(p, made.json()["code"], username)
    assert joined.status_code == 201 and joined.json()["user"]["role"] == "patient", joined.text
    return username


def consent(client: httpx.Client, purpose: str, granted: bool) -> dict[str, Any]:
    r = client.post("/api/me/consents", json={"purpose": purpose, "granted": granted})
    assert r.status_code == 201, r.text
    return {s["purpose"]: s["granted"] for s in r.json()["purposes"]}


def caregiver_for(p: People, patient: httpx.Client, name: str, scopes: list[str], notify: str = "none") -> str:
    """The patient invites a caregiver with these scopes, who makes an account; returns the username."""
    made = patient.post("/api/me/caregivers/invitations", json={"label": name, "scopes": scopes, "notify_level": notify})
    assert made.status_code == 201, made.text
    username = f"{name}-{p.tag}"
    assert accept(p, made.json()["code"], username).status_code == 201
    return username


def ingest(p: People, device: str, msg: Event | Summary) -> None:
    with psycopg.connect(p.db_url, autocommit=True) as conn:
        handle_message(conn, topic_for(device, msg.kind), encode(msg), rule_config(p.settings))


def test_a_clinician_invites_the_patient_to_an_account_of_their_own(people: People, device_id: str) -> None:
    with psycopg.connect(people.db_url, autocommit=True) as conn:
        pid = add_patient(conn, "Fay", device_id)
        assign_patient(conn, people.nurse, pid)
    with signed_in(people, people.nurse) as nurse:
        made = nurse.post(f"/api/patients/{pid}/account-invitation").json()
    code = made["code"]
    assert made["invitation"]["status"] == "pending" and made["invitation"]["kind"] == "patient"
    assert accept(people, "ZZZZ-ZZZZ-ZZZZ", f"fay-{device_id}").status_code == 404
    taken = accept(people, code, people.nurse)
    assert taken.status_code == 409 and "username" in taken.json()["detail"]  # the code is still good after that
    joined = accept(people, code.lower().replace("-", " "), f"fay-{device_id}")
    assert joined.status_code == 201 and "pisces_session" in joined.headers["set-cookie"]
    with httpx.Client(base_url=people.url, headers={"Authorization": f"Bearer {joined.json()['token']}"}) as fay:
        me = fay.get("/api/me").json()
        assert fay.get("/api/patients").status_code == 403  # a patient is not the care team
    assert (me["patient_id"], me["name"], me["monitoring"]) == (pid, "Fay", True)
    assert accept(people, code, f"fay2-{device_id}").status_code == 404  # single use
    with signed_in(people, people.nurse) as nurse:
        again = nurse.post(f"/api/patients/{pid}/account-invitation")
        foreign = nurse.post(f"/api/patients/{pid + 10_000}/account-invitation")
    assert again.status_code == 409 and foreign.status_code == 404


def test_an_expired_code_opens_nothing(people: People, device_id: str) -> None:
    with psycopg.connect(people.db_url, autocommit=True) as conn:
        pid = add_patient(conn, "P", device_id)
        assign_patient(conn, people.nurse, pid)
    with signed_in(people, people.nurse) as nurse:
        code = nurse.post(f"/api/patients/{pid}/account-invitation").json()["code"]
    with psycopg.connect(people.db_url, autocommit=True) as conn:
        conn.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE patient_id = %s", (pid,))
    assert accept(people, code, f"late-{device_id}").status_code == 404


def test_consent_recorded_by_the_patient_or_the_clinician_and_both_see_who(people: People) -> None:
    ann = people.ann_user
    with signed_in(people, ann) as me:
        assert consent(me, "research", True)["research"] is True
        with signed_in(people, people.nurse) as nurse:
            seen = nurse.get(f"/api/patients/{people.ann}/consents").json()
            research = next(s for s in seen["purposes"] if s["purpose"] == "research")
            assert (research["granted"], research["actor"], research["recorded_by"]) == (True, "patient", ann)
            bad = nurse.post(f"/api/patients/{people.ann}/consents", json={"purpose": "research", "granted": False})
            assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "method"
            r = nurse.post(f"/api/patients/{people.ann}/consents",
                           json={"purpose": "research", "granted": False, "method": "by phone", "note": "asked"})
            assert r.status_code == 201
        history = me.get("/api/me/consents").json()["history"]
    assert [(h["purpose"], h["granted"], h["actor"], h["recorded_by"], h["method"]) for h in history[:2]] == [
        ("research", False, "clinician", people.nurse, "by phone"),
        ("research", True, "patient", ann, "in app (patient page)")]  # fmt: skip
    with psycopg.connect(people.db_url) as conn:
        actions = {r[0] for r in conn.execute("SELECT action FROM audit_log WHERE patient_id = %s", (people.ann,))}
    assert {"grant:consent", "withdraw:consent", "read:consents", "join:patient"} <= actions


def test_a_caregiver_sees_only_what_the_patient_shares_and_not_a_moment_longer(people: People) -> None:
    with signed_in(people, people.ann_user) as me:
        consent(me, "caregivers", False)
        refused = me.post("/api/me/caregivers/invitations", json={"label": "x", "scopes": ["status"]})
        assert refused.status_code == 409 and "caregiver access" in refused.json()["detail"]
        consent(me, "caregivers", True)
        ben = caregiver_for(people, me, "ben", ["status"])
        grant = me.get("/api/me/caregivers").json()["caregivers"][0]
        with signed_in(people, ben) as carer:
            base = f"/api/caregiver/patients/{people.ann}"
            assert [f["patient_id"] for f in carer.get("/api/caregiver/patients").json()] == [people.ann]
            assert carer.get(base).json()["state"] in ("no_signal", "ok", "baseline")
            assert carer.get(f"{base}/alerts").status_code == 403
            assert carer.get(f"{base}/series").status_code == 403
            assert carer.get(f"/api/caregiver/patients/{people.cid}").status_code == 404  # not followed
            assert carer.get(f"/api/patients/{people.ann}").status_code == 403  # clinician route
            changed = me.put(f"/api/me/caregivers/{grant['id']}", json={"label": "son", "scopes": ["alerts", "trends"]})
            assert changed.status_code == 200 and changed.json()["scopes"] == ["alerts", "trends"]
            assert carer.get(base).status_code == 403 and carer.get(f"{base}/alerts").status_code == 200
            assert carer.get(f"{base}/series").status_code == 200
            consent(me, "caregivers", False)  # every caregiver suspended at once
            assert carer.get(f"{base}/alerts").status_code == 404 and carer.get("/api/caregiver/patients").json() == []
            consent(me, "caregivers", True)  # ...and back: the grant was not revoked
            assert carer.get(f"{base}/alerts").status_code == 200
            assert me.post(f"/api/me/caregivers/{grant['id']}/revoke").json()["revoked_at"] is not None
            assert carer.get(f"{base}/alerts").status_code == 404  # the same open session: no more
            assert me.put(f"/api/me/caregivers/{grant['id']}", json={"scopes": ["status"]}).status_code == 404
    with psycopg.connect(people.db_url) as conn:
        reads = {r[0] for r in conn.execute(
            "SELECT a.action FROM audit_log a JOIN users u ON u.id = a.user_id WHERE u.username = %s", (ben,))}
    assert {"read:status", "read:alerts", "read:series", "join:caregiver", "read:followed"} <= reads


def test_the_live_stream_stops_at_revocation_and_ends_when_nothing_is_left(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("server.api.stream.KEEPALIVE_S", 0.3)
    with signed_in(people, people.ann_user) as a, signed_in(people, people.cid_user) as c:
        consent(a, "caregivers", True)
        consent(c, "caregivers", True)
        dee = caregiver_for(people, a, "dee", ["alerts"])
        code = c.post("/api/me/caregivers/invitations", json={"label": "dee", "scopes": ["alerts"]}).json()["code"]
        with signed_in(people, dee) as carer:
            assert carer.post("/api/caregiver/invitations/redeem", json={"code": code}).status_code == 201
            assert carer.post("/api/caregiver/invitations/redeem", json={"code": code}).status_code == 404
            with carer.stream("GET", "/api/caregiver/stream") as r:
                lines = r.iter_lines()
                wait_for(lambda: next(lines) == ": listening", what="stream listening")
                ingest(people, people.ann_device, Event(people.ann_device, 1, EventType.PANIC, T0))
                first = next_alert(lines)
                grant = next(g for g in a.get("/api/me/caregivers").json()["caregivers"] if g["username"] == dee)
                assert a.post(f"/api/me/caregivers/{grant['id']}/revoke").status_code == 200
                consent(a, "monitoring", False)  # resolves (and announces) her panic alert: not to Dee now
                ingest(people, people.cid_device, Event(people.cid_device, 1, EventType.PANIC, T0 + 10))
                second = next_alert(lines)
                consent(c, "caregivers", False)
                rest = list(lines)  # the stream ends: Dee may see nobody now
        consent(a, "monitoring", True)
    assert (first["patient_id"], first["parameter"], second["patient_id"]) == (people.ann, "panic", people.cid)
    assert set(first) == {"id", "patient_id", "level", "parameter", "state", "opened_at", "closed_at", "value"}
    assert not any(line.startswith("data: ") for line in rest)


def test_monitoring_paused_shows_to_the_patient_the_clinician_and_the_caregiver(people: People) -> None:
    with signed_in(people, people.ann_user) as me:
        consent(me, "caregivers", True)
        eve = caregiver_for(people, me, "eve", ["status"])
        consent(me, "monitoring", False)
        ingest(people, people.ann_device, Summary(people.ann_device, 50, (SummaryWindow(T0, T0 + 60, 60, 60.0),)))
        mine = me.get("/api/me").json()
        with signed_in(people, people.nurse) as nurse:
            listed = {p["id"]: p for p in nurse.get("/api/patients").json()}[people.ann]
        with signed_in(people, eve) as carer:
            seen = carer.get(f"/api/caregiver/patients/{people.ann}").json()
        consent(me, "monitoring", True)
    assert (mine["state"], mine["monitoring"], listed["state"], seen["state"]) == ("paused", False, "paused", "paused")
    with psycopg.connect(people.db_url) as conn:
        kept = conn.execute("SELECT count(*) FROM dead_letters WHERE reason = 'no_consent' AND topic LIKE %s",
                            (f"%/{people.ann_device}/%",)).fetchone()  # fmt: skip
    assert kept == (1,)


def test_caregiver_settings_are_validated(people: People) -> None:
    with signed_in(people, f"eve-{people.tag}") as carer:
        bad_zone = carer.put("/api/caregiver/settings", json={"timezone": "Mars/Olympus"})
        half = carer.put("/api/caregiver/settings", json={"quiet_start": "22:00"})
        mail = carer.put("/api/caregiver/settings", json={"email": "not an address"})
        good = carer.put("/api/caregiver/settings", json={"email": "eve@example.org", "quiet_start": "22:00",
                                                          "quiet_end": "07:00", "timezone": "Europe/Berlin"})
        got = carer.get("/api/caregiver/settings").json()
    assert bad_zone.status_code == 422 and "timezone" in bad_zone.json()["detail"]
    assert half.status_code == 422 and "quiet_end" in json.dumps(half.json())
    assert mail.status_code == 422 and mail.json()["detail"][0]["loc"][-1] == "email"
    assert good.status_code == 200
    assert got == {"email": "eve@example.org", "quiet_start": "22:00:00", "quiet_end": "07:00:00",
                   "timezone": "Europe/Berlin"}  # fmt: skip
