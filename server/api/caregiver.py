"""A caregiver's view: ``/api/caregiver/patients`` (whom I follow), ``.../{id}`` (status),
``.../{id}/alerts``, ``.../{id}/series`` (trends), ``/api/caregiver/stream`` (live alerts) and
``/api/caregiver/settings`` (my e-mail and quiet hours).

Only ``caregiver`` users get in. Each request checks the grant afresh
(:func:`server.caregivers.access`): a patient the caregiver does not follow,
or no longer (revoked, or consent to caregiver access withdrawn), is 404; a
scope the patient did not share is 403. Every read is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator

from server import caregiver_view, caregivers, queries, store, trends
from server.api.deps import CaregiverUser, ConnDep, PoolDep, SettingsDep
from server.api.patients import End, Start, span
from server.api.stream import alert_events, event_stream
from server.caregiver_view import CaregiverAlert, CaregiverStatus
from server.caregivers import Followed, Settings
from server.store import User
from server.trends import SeriesPoint

router = APIRouter(prefix="/api/caregiver", tags=["caregiver"])

TREND_BUCKET_S = 3600  # caregivers see hourly trends, not single windows
TREND_SPAN = timedelta(days=31)


def grant_for(conn: psycopg.Connection[Any], user: User, patient_id: int, scope: str) -> Followed:
    """The caregiver's grant for the patient with ``scope``: 404 without access, 403 without the scope."""
    grant = caregivers.access(conn, user.id, patient_id)
    if grant is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id}")
    if scope not in grant.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"the patient has not shared their {scope} with you")
    return grant


@router.get("/patients")
def followed(user: CaregiverUser, conn: ConnDep) -> list[Followed]:
    """The patients I follow now and what each lets me see."""
    rows = caregivers.followed(conn, user.id)
    store.audit(conn, user, "read:followed", [r.patient_id for r in rows])
    return rows


@router.get("/patients/{patient_id}")
def patient_status(patient_id: int, user: CaregiverUser, conn: ConnDep, settings: SettingsDep) -> CaregiverStatus:
    """A followed patient's state and last data (scope ``status``)."""
    grant = grant_for(conn, user, patient_id, "status")
    out = caregiver_view.status(conn, grant, queries.Phases.from_settings(settings))
    store.audit(conn, user, "read:status", [patient_id])
    return out


@router.get("/patients/{patient_id}/alerts")
def patient_alerts(
    patient_id: int, user: CaregiverUser, conn: ConnDep,
    active: Annotated[bool, Query(description="only those not yet resolved")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[CaregiverAlert]:  # fmt: skip
    """A followed patient's alerts, unresolved first (scope ``alerts``)."""
    grant_for(conn, user, patient_id, "alerts")
    rows = caregiver_view.alerts(conn, patient_id, active, limit)
    store.audit(conn, user, "read:alerts", [patient_id], {"active": active})
    return rows


@router.get("/patients/{patient_id}/series")
def patient_series(patient_id: int, user: CaregiverUser, conn: ConnDep, settings: SettingsDep,
                   start: Start = None, end: End = None) -> list[SeriesPoint]:  # fmt: skip
    """A followed patient's hourly trends over [start, end) (scope ``trends``; at most 31 days)."""
    grant_for(conn, user, patient_id, "trends")
    patient = queries.patient_by_id(conn, patient_id)
    assert patient is not None
    start, end = span(patient, start, end, TREND_SPAN)
    with queries.portal_read(conn):
        rows = trends.series(conn, patient_id, start, end, TREND_BUCKET_S, settings.min_quality)
    store.audit(conn, user, "read:series", [patient_id], {"start": str(start), "end": str(end)})
    return rows


def _pushed(pool: Any, user: User, alert_id: int) -> CaregiverAlert | None:
    with pool.connection() as conn:
        row = caregiver_view.alert_for(conn, user.id, alert_id)
        if row is not None:
            store.audit(conn, user, "push:alert", [row.patient_id], {"alert_id": alert_id})
        return row


def _follows_anyone(pool: Any, user: User) -> bool:
    with pool.connection() as conn:
        return any("alerts" in g.scopes for g in caregivers.followed(conn, user.id))


@router.get("/stream")
async def stream(request: Request, user: CaregiverUser, pool: PoolDep, settings: SettingsDep) -> StreamingResponse:
    """Live ``alert`` events of the patients who share their alerts with me; ends when none does any more."""
    events = alert_events(settings.database_url or "", lambda alert_id: _pushed(pool, user, alert_id),
                          request.is_disconnected, lambda: _follows_anyone(pool, user))  # fmt: skip
    return event_stream(events)


class SettingsIn(BaseModel):
    """Where alerts reach me (e-mail; null: nowhere) and when not (quiet hours, local to ``timezone``)."""

    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    quiet_start: time | None = Field(default=None, description='e.g. "22:00"; with quiet_end, or neither')
    quiet_end: time | None = Field(default=None, description='e.g. "07:00" (may be past midnight)')
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description='e.g. "Europe/Berlin"')

    @model_validator(mode="after")
    def _both_or_neither(self) -> SettingsIn:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end go together")
        return self


@dataclass(frozen=True)
class SettingsOut:
    """My delivery settings."""

    email: str | None
    quiet_start: time | None
    quiet_end: time | None
    timezone: str


def _out(s: Settings) -> SettingsOut:
    return SettingsOut(s.email, s.quiet_start, s.quiet_end, s.timezone)


@router.get("/settings")
def get_settings(user: CaregiverUser, conn: ConnDep) -> SettingsOut:
    """My e-mail for alerts and my quiet hours."""
    return _out(caregivers.get_settings(conn, user.id))


@router.put("/settings")
def put_settings(body: SettingsIn, user: CaregiverUser, conn: ConnDep) -> SettingsOut:
    """Set my e-mail and quiet hours (during them, alerts wait; 422 for an unknown time zone)."""
    quiet = (body.quiet_start.replace(tzinfo=None) if body.quiet_start else None,
             body.quiet_end.replace(tzinfo=None) if body.quiet_end else None)  # fmt: skip
    wanted = Settings(body.email or None, *quiet, body.timezone)
    try:
        return _out(caregivers.set_settings(conn, user.id, wanted))
    except caregivers.CaregiverError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
