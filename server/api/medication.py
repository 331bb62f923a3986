"""Medication plans and adherence.

``GET/POST /api/patients/{id}/medication`` (the plan in force and every version;
a new version), ``GET /api/patients/{id}/doses`` (each planned dose of a period
with what became of it), ``GET /api/patients/{id}/adherence`` (per drug), and
``GET /api/adherence`` (the overview: every patient of mine with a plan, flagged
when adherence is low). A patient outside the user's care is 404; every read
is audited. A new version NOTIFYs the escalation loop, which pushes it to the
phone in its retained config.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from server import adherence, medication, queries, store
from server.adherence import DoseOutcome, DrugAdherence
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.api.patients import require_patient, span
from server.queries import PatientRow
from server.medication import PlanError, PlanVersion
from server.phone_config import CONFIG_CHANNEL
from server.records import ts
from wire.medication import (
    DEFAULT_GRACE_MINUTES, DEFAULT_ON_TIME_MINUTES, MAX_DRUGS, MAX_EVERY_HOURS, MAX_GRACE_MINUTES, MAX_INSTRUCTIONS,
    MAX_ON_TIME_MINUTES, MAX_TEXT, MAX_TIMES,
)  # fmt: skip

router = APIRouter(tags=["medication"])
DEFAULT_SPAN = timedelta(days=7)
Start = Annotated[datetime | None, Query(description="ISO 8601; default: `end` minus 7 days")]
End = Annotated[datetime | None, Query(description="ISO 8601; default: now")]


class DrugIn(BaseModel):
    """One drug: times of day (local, ``HH:MM``) or an interval from a first time on ``start``."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, never silently ignored

    name: str = Field(min_length=1, max_length=MAX_TEXT)
    dose: str = Field(min_length=1, max_length=MAX_TEXT, description="e.g. 5 mg, 1 tablet")
    times: list[str] = Field(min_length=1, max_length=MAX_TIMES, description="local times of day HH:MM")
    every_hours: int | None = Field(default=None, ge=1, le=MAX_EVERY_HOURS, description="instead of times of day: the interval")
    start: date | None = Field(default=None, description="first local day (needed with every_hours)")
    end: date | None = Field(default=None, description="last local day, inclusive")
    instructions: str = Field(default="", max_length=MAX_INSTRUCTIONS)
    critical: bool = Field(default=False, description="repeated missed doses raise an alert")


class PlanIn(BaseModel):
    """A new version of the plan: the whole plan as it is from now on (no drugs: no medication)."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(min_length=1, max_length=MAX_TEXT, description="the patient's IANA time zone")
    drugs: list[DrugIn] = Field(default_factory=list, max_length=MAX_DRUGS)
    on_time_minutes: int = Field(default=DEFAULT_ON_TIME_MINUTES, ge=1, le=MAX_ON_TIME_MINUTES)
    grace_minutes: int = Field(default=DEFAULT_GRACE_MINUTES, ge=1, le=MAX_GRACE_MINUTES)
    reason: str = Field(default="", max_length=2000)


def _period(patient: PatientRow, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """7 days up to now by default (doses are due whether data came or not); else as :func:`span`."""
    s, e = check_range(start, end)
    e = e or ((s + DEFAULT_SPAN) if s else datetime.now(timezone.utc))
    return span(patient, s or e - DEFAULT_SPAN, e)


@router.get("/api/patients/{patient_id}/medication")
def read_plan(patient_id: int, conn: ConnDep, user: CurrentUser) -> dict[str, Any]:
    """The plan in force (null: none yet) and every version, newest first, with who and when."""
    require_patient(conn, user, patient_id)
    versions = medication.list_plans(conn, patient_id)
    store.audit(conn, user, "read:medication", [patient_id])
    return {"in_force": versions[0] if versions else None, "versions": versions}


@router.post("/api/patients/{patient_id}/medication", status_code=status.HTTP_201_CREATED)
def record_plan(patient_id: int, body: PlanIn, conn: ConnDep, user: CurrentUser) -> PlanVersion:
    """Record the next version of the plan, in force from now (422 naming the field at fault)."""
    require_patient(conn, user, patient_id)
    raw = body.model_dump(exclude={"reason"}, mode="json")
    raw["drugs"] = [{k: v for k, v in d.items() if v is not None} for d in raw["drugs"]]
    try:
        plan = medication.checked_plan(raw)
    except PlanError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.problems) from exc
    with conn.transaction():
        row_id = medication.record_plan(conn, patient_id, user.id, plan, body.reason)
        store.audit(conn, user, "record:medication", [patient_id], {"id": row_id})
        conn.execute("SELECT pg_notify(%s, %s)", (CONFIG_CHANNEL, str(patient_id)))
    row = medication.get_plan(conn, row_id)
    assert row is not None
    return row


def _dose_json(d: DoseOutcome) -> dict[str, Any]:
    return {"drug": d.drug, "dose": d.dose, "critical": d.critical, "plan_version": d.plan_version,
            "planned": ts(d.planned), "on_time_until": ts(d.on_time_until), "closes_at": ts(d.closes_at),
            "status": d.status, "answered_at": None if d.answered_at is None else ts(d.answered_at),
            "reason": d.reason, "snoozes": d.snoozes}  # fmt: skip


@router.get("/api/patients/{patient_id}/doses")
def dose_history(patient_id: int, conn: ConnDep, user: CurrentUser, start: Start = None,
                 end: End = None) -> dict[str, Any]:  # fmt: skip
    """Each dose planned in [start, end) (up to now), by time, with its status (docs/medication.md)."""
    start, end = _period(require_patient(conn, user, patient_id), start, end)
    doses = adherence.dose_history(conn, patient_id, start, end)
    store.audit(conn, user, "read:doses", [patient_id], {"start": start.isoformat(), "end": end.isoformat()})
    return {"start": start, "end": end, "doses": [_dose_json(d) for d in doses]}


@router.get("/api/patients/{patient_id}/adherence")
def drug_adherence(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep, start: Start = None,
                   end: End = None) -> dict[str, Any]:  # fmt: skip
    """Per drug over [start, end): doses planned, on time, late, skipped, missed, unconfirmed, streaks."""
    start, end = _period(require_patient(conn, user, patient_id), start, end)
    drugs = adherence.adherence(conn, patient_id, start, end)
    store.audit(conn, user, "read:adherence", [patient_id], {"start": start.isoformat(), "end": end.isoformat()})
    return {"start": start, "end": end, "low_share": settings.adherence_low_share,
            "low": adherence.is_low(drugs, settings.adherence_low_share), "drugs": drugs}  # fmt: skip


@router.get("/api/adherence")
def overview(conn: ConnDep, user: CurrentUser, settings: SettingsDep,
             days: Annotated[float | None, Query(gt=0, le=90, description="default: the server's window")] = None,
             ) -> list[dict[str, Any]]:  # fmt: skip
    """My patients with a plan: per-drug adherence over the last ``days``, ``low`` below the threshold."""
    span = days or settings.adherence_low_days
    now = time.time()
    patients = dict(queries.visible_patients(conn, user))
    found = adherence.history_many(conn, sorted(patients), now - span * 86_400.0, now, now)
    store.audit(conn, user, "read:adherence", list(found), {"days": span})
    return [_overview_row(pid, patients[pid], adherence.summarize(doses), settings.adherence_low_share, span)
            for pid, doses in sorted(found.items(), key=lambda kv: (patients[kv[0]], kv[0]))]  # fmt: skip


def _overview_row(pid: int, name: str, drugs: list[DrugAdherence], low: float, days: float) -> dict[str, Any]:
    shares = [d.share_on_time for d in drugs if d.share_on_time is not None]
    return {"patient_id": pid, "patient_name": name, "days": days, "low": adherence.is_low(drugs, low),
            "lowest_share": min(shares) if shares else None, "drugs": drugs}  # fmt: skip
