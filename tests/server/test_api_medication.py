"""The medication API over a live uvicorn and the real database: plan versions, doses, adherence, overview."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest

from server import medication
from server.app import create_app
from server.ingest import handle_message, rule_config
from server.settings import ServerSettings
from server.store import add_patient, add_user, assign_patient
from tests.server.test_security_routes import serve
from wire import Event, EventType, Kind, encode, topic_for
from wire.medication import Drug, MedicationPlan, schedule

pytestmark = pytest.mark.db

PASSWORD = "correct horse battery"
T0 = (datetime.now(timezone.utc).timestamp() // 86_400 - 3) * 86_400  # midnight UTC, three days ago
BODY = {"time_zone": "Europe/Ljubljana", "reason": "after the visit",
        "drugs": [{"name": "bisoprolol", "dose": "5 mg", "times": ["08:00", "20:00"], "critical": True,
                   "instructions": "with food"}]}  # fmt: skip


@dataclass(frozen=True)
class World:
    url: str
    nurse: str
    mine: int
    mine_device: str
    quiet: int  # mine too, with a plan and every dose taken
    theirs: int


@pytest.fixture(scope="module")
def world(db_url: str) -> Iterator[World]:
    tag = secrets.token_hex(3)
    nurse = f"nurse-{tag}"
    settings = ServerSettings(database_url=db_url, ingest_in_server=False, escalation_in_server=False)
    with psycopg.connect(db_url, autocommit=True) as conn:
        add_user(conn, nurse, PASSWORD)
        mine, quiet = add_patient(conn, f"Ann {tag}", f"ma-{tag}"), add_patient(conn, f"Cid {tag}", f"mc-{tag}")
        theirs = add_patient(conn, f"Bob {tag}", f"mb-{tag}")
        for pid in (mine, quiet):
            assign_patient(conn, nurse, pid)
        first_day = datetime.fromtimestamp(T0, timezone.utc).date()
        two_days = Drug("apixaban", "5 mg", ("09:00", "21:00"), start=first_day.isoformat(),
                        end=(first_day + timedelta(days=1)).isoformat())
        plan = MedicationPlan(1, T0, "UTC", (two_days,))
        for pid, device, skip in ((mine, f"ma-{tag}", {1, 2}), (quiet, f"mc-{tag}", set())):
            medication.record_plan(conn, pid, None, plan, since=datetime.fromtimestamp(T0, timezone.utc))
            for seq, d in enumerate(schedule(plan, T0, T0 + 2 * 86_400)):  # 4 doses; `mine` forgets two
                kind = EventType.DOSE_MISSED if seq in skip else EventType.DOSE_TAKEN
                at = d.closes_at if seq in skip else d.planned + 300
                event = Event(device, seq, kind, at, drug=d.drug, planned=d.planned)
                handle_message(conn, topic_for(device, Kind.EVENT), encode(event), rule_config(settings))
        medication.record_plan(conn, theirs, None, plan)
    with serve(create_app(settings)) as url:
        yield World(url, nurse, mine, f"ma-{tag}", quiet, theirs)


@pytest.fixture
def client(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.url, timeout=30) as c:
        assert c.post("/api/auth/login", json={"username": world.nurse, "password": PASSWORD}).status_code == 200
        yield c


def audited(db_url: str, action: str, patient: int) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log WHERE action = %s AND patient_id = %s", (action, patient))
        return int(row.fetchone()[0])  # type: ignore[index]


def test_plan_versions_are_recorded_with_who_and_when_and_bad_plans_name_the_field(
    world: World, client: httpx.Client, db_url: str
) -> None:
    path = f"/api/patients/{world.mine}/medication"
    first = client.post(path, json=BODY)
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["created_by"], first.json()["pushed_at"]) == (2, world.nurse, None)
    changed = {**BODY, "drugs": [{**BODY["drugs"][0], "dose": "2.5 mg"}], "reason": "HR low"}  # type: ignore[dict-item]
    assert client.post(path, json=changed).json()["version"] == 3
    read = client.get(path).json()
    assert read["in_force"]["version"] == 3 and read["in_force"]["drugs"][0]["dose"] == "2.5 mg"
    assert [v["version"] for v in read["versions"]] == [3, 2, 1] and read["versions"][1]["reason"] == "after the visit"
    assert audited(db_url, "record:medication", world.mine) == 2 and audited(db_url, "read:medication", world.mine) >= 1

    def problem(drug: dict[str, Any] | None = None, **plan: Any) -> str:
        body = {**BODY, **plan, "drugs": [{**BODY["drugs"][0], **(drug or {})}]}  # type: ignore[dict-item]
        reply = client.post(path, json=body)
        assert reply.status_code == 422, reply.text
        return reply.text

    assert "time_zone" in problem(time_zone="Moon/Base")
    assert "drugs[0].times[0]" in problem({"times": ["8 am"]})
    assert "drugs[0].start" in problem({"every_hours": 8})
    assert "critcal" in problem({"critcal": True})  # a typo is an error, never a silently ignored field
    assert "grace_minutes" in problem(on_time_minutes=120, grace_minutes=60)
    assert client.get(path).json()["in_force"]["version"] == 3  # nothing was stored by refused requests


def test_doses_and_adherence_of_a_period(world: World, client: httpx.Client, db_url: str) -> None:
    q = {"start": datetime.fromtimestamp(T0, timezone.utc).isoformat(),
         "end": datetime.fromtimestamp(T0 + 2 * 86_400, timezone.utc).isoformat()}  # fmt: skip
    doses = client.get(f"/api/patients/{world.mine}/doses", params=q).json()["doses"]
    assert [d["status"] for d in doses] == ["on_time", "missed", "missed", "on_time"] and doses[0]["drug"] == "apixaban"
    day = datetime.fromtimestamp(T0, timezone.utc).date().isoformat()
    assert doses[0]["planned"] == f"{day}T09:00:00Z" and doses[0]["answered_at"] == f"{day}T09:05:00Z"
    got = client.get(f"/api/patients/{world.mine}/adherence", params=q).json()
    (drug,) = got["drugs"]
    assert (drug["planned"], drug["taken_on_time"], drug["missed"], drug["share_on_time"]) == (4, 2, 2, 0.5)
    assert drug["longest_missed_streak"] == 2 and drug["current_missed_streak"] == 0
    assert got["low"] is True and got["low_share"] == 0.8
    assert audited(db_url, "read:adherence", world.mine) >= 1 and audited(db_url, "read:doses", world.mine) >= 1
    bad = client.get(f"/api/patients/{world.mine}/adherence", params={"start": q["end"], "end": q["start"]})
    assert bad.status_code == 422 and "end" in bad.text
    assert client.get(f"/api/patients/{world.theirs}/adherence", params=q).status_code == 404


def test_the_overview_flags_low_adherence_among_my_patients_only(world: World, client: httpx.Client) -> None:
    rows = {r["patient_id"]: r for r in client.get("/api/adherence").json()}  # the last 7 days
    assert world.theirs not in rows and {world.mine, world.quiet} <= set(rows)
    assert rows[world.mine]["low"] is True and rows[world.quiet]["low"] is False
    assert rows[world.quiet]["lowest_share"] == 1.0
    assert client.get("/api/adherence", params={"days": 0}).status_code == 422
