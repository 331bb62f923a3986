"""Patients and their trends.

``GET /api/patients``, ``GET /api/patients/{id}``, ``/summaries``, ``/series``
(bucketed trends), ``/timeline`` (alerts, symptom periods, strips, rhythm
episodes and limits on one time axis) and ``/distribution`` (a parameter's
histogram, for the threshold editor). A patient outside the user's care is 404.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Query, status

from server import queries, store, trends
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.queries import PatientRow, SummaryRow
from server.store import User
from server.trends import Histogram, SeriesPoint, Timeline

router = APIRouter(prefix="/api/patients", tags=["patients"])

MAX_SPAN = timedelta(days=400)
DEFAULT_SPAN = timedelta(hours=24)
Start = Annotated[datetime | None, Query(description="ISO 8601; default: `end` minus 24 h")]
End = Annotated[datetime | None, Query(description="ISO 8601; default: the patient's newest data, else now")]


def require_patient(
    conn: psycopg.Connection[Any], user: User, patient_id: int, phases: queries.Phases = queries.Phases()
) -> PatientRow:
    """The patient if in the user's care, else 404 (the same answer as for no such patient)."""
    row = queries.get_patient(conn, user, patient_id, phases)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id}")
    return row


def span(patient: PatientRow, start: datetime | None, end: datetime | None,
         max_span: timedelta = MAX_SPAN) -> tuple[datetime, datetime]:
    """A closed range for a patient's data: defaults, UTC, order and at most ``max_span`` (else 422)."""
    start, end = check_range(start, end)
    if end is None:
        end = (start + DEFAULT_SPAN) if start else (patient.last_data_at or datetime.now().astimezone())
    start = start or end - DEFAULT_SPAN
    if end - start > max_span:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"end: at most {max_span.days} days after start")
    return start, end


@router.get("")
def list_patients(conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> list[PatientRow]:
    """The user's patients: state (red|yellow|no_signal|baseline|ok), last data, battery, most urgent first."""
    rows = queries.list_patients(conn, user, queries.Phases.from_settings(settings))
    store.audit(conn, user, "read:patients", [r.id for r in rows])
    return rows


@router.get("/{patient_id}")
def get_patient(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> PatientRow:
    """One patient of the user's."""
    row = require_patient(conn, user, patient_id, queries.Phases.from_settings(settings))
    store.audit(conn, user, "read:patient", [patient_id])
    return row


@router.get("/{patient_id}/summaries")
def patient_summaries(
    patient_id: int,
    conn: ConnDep,
    user: CurrentUser,
    start: Annotated[datetime | None, Query(description="ISO 8601; windows ending after it")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; windows starting before it")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[SummaryRow]:
    """A patient's summary windows overlapping [start, end), oldest first; 404 if not in the user's care."""
    start, end = check_range(start, end)
    if not store.can_see(conn, user, patient_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id}")
    rows = queries.list_summaries(conn, patient_id, start, end, limit)
    store.audit(conn, user, "read:summaries", [patient_id], {"start": str(start), "end": str(end)})
    return rows


@router.get("/{patient_id}/series")
def patient_series(
    patient_id: int,
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    start: Start = None,
    end: End = None,
    bucket: Annotated[int | None, Query(description="seconds: one of 60, 300, 900, 3600, 14400, 86400; "
                                        "default: the smallest giving at most 1500 points")] = None,
) -> list[SeriesPoint]:
    """A patient's trends over [start, end) in buckets: HR, HRV, respiration, activity, quality, rhythm."""
    start, end = span(require_patient(conn, user, patient_id), start, end)
    width = trends.series_bucket((end - start).total_seconds())
    if bucket is not None:
        if bucket not in trends.BUCKETS_S:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"bucket: one of {list(trends.BUCKETS_S)}")
        if (end - start).total_seconds() / bucket > 10 * trends.MAX_POINTS:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bucket: too small for this range")
        width = bucket
    with queries.portal_read(conn):
        rows = trends.series(conn, patient_id, start, end, width, settings.min_quality)
    store.audit(conn, user, "read:series", [patient_id], {"start": str(start), "end": str(end), "bucket": width})
    return rows


@router.get("/{patient_id}/timeline")
def patient_timeline(
    patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep, start: Start = None, end: End = None
) -> Timeline:
    """Alerts, symptom periods, strips and rhythm episodes overlapping [start, end), and the limits in force."""
    start, end = span(require_patient(conn, user, patient_id), start, end)
    with queries.portal_read(conn):
        row = trends.timeline(conn, patient_id, start, end, settings.min_quality)
    store.audit(conn, user, "read:timeline", [patient_id], {"start": str(start), "end": str(end)})
    return row


@router.get("/{patient_id}/distribution")
def patient_distribution(
    patient_id: int,
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    parameter: Annotated[Literal["hr", "resp_rate"], Query()] = "hr",
    start: Annotated[datetime | None, Query(description="ISO 8601; default: the baseline phase")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601")] = None,
) -> Histogram:
    """Histogram of a parameter over the patient's usable windows (default: the baseline phase)."""
    patient = require_patient(conn, user, patient_id)
    if start is None and end is None and patient.first_data_at is not None:
        start = patient.first_data_at
        end = start + timedelta(days=settings.baseline_days)
    start, end = span(patient, start, end)
    row = trends.histogram(conn, patient_id, parameter, start, end, settings.min_quality)
    store.audit(conn, user, "read:distribution", [patient_id], {"parameter": parameter})
    return row
