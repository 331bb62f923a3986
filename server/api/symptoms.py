"""Symptom-period search and symptom-rhythm correlation: ``GET /api/symptoms``, ``GET /api/symptoms/correlation``.

Every parameter is validated (422 naming it); a patient id outside the user's
care is 404, exactly as an unknown one, so no query reveals or reads another
clinician's patients.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, Query, status

from server import queries, search, store
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.search import Correlation, SymptomFilter, SymptomPage, SymptomResult
from server.store import User

router = APIRouter(prefix="/api/symptoms", tags=["symptoms"])

CORRELATION_DEFAULT = timedelta(days=30)
CORRELATION_MAX = timedelta(days=400)
PatientIds = Annotated[list[int], Query(description="only these patients (repeat); default all of yours")]


def _check_patients(conn: psycopg.Connection[Any], user: User, patient_ids: list[int]) -> tuple[int, ...]:
    for pid in patient_ids:
        if not store.can_see(conn, user, pid):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {pid}")
    return tuple(sorted(set(patient_ids)))


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


@router.get("/search")
def search_symptoms(
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    patient_id: PatientIds = [],  # noqa: B006 - FastAPI copies defaults
    start: Annotated[datetime | None, Query(description="ISO 8601: periods ending after it")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601: periods starting before it")] = None,
    tag: Annotated[list[str], Query(max_length=40, description="any of these tags (repeat)")] = [],  # noqa: B006
    severity_min: Annotated[int | None, Query(ge=1, le=5)] = None,
    severity_max: Annotated[int | None, Query(ge=1, le=5)] = None,
    text: Annotated[str, Query(max_length=200, description="in the note or a tag")] = "",
    hr_max_above: Annotated[float | None, Query(ge=20, le=300, description="bpm")] = None,
    hr_min_below: Annotated[float | None, Query(ge=20, le=300, description="bpm")] = None,
    pause: Annotated[bool | None, Query(description="a window with a pause overlaps (or not)")] = None,
    irregular: Annotated[bool | None, Query(description="an irregular/AF window overlaps (or not)")] = None,
    min_quality: Annotated[float | None, Query(ge=0, le=1, description="mean signal quality")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SymptomPage:
    """Symptom periods of the user's patients matching every filter given, newest first, one page."""
    start, end = check_range(start, end)
    if severity_min is not None and severity_max is not None and severity_min > severity_max:
        raise _unprocessable("severity_max: must not be below severity_min")
    if len(tag) > 20:
        raise _unprocessable("tag: at most 20 tags")
    flt = SymptomFilter(
        _check_patients(conn, user, patient_id), start, end, tuple(t.strip() for t in tag if t.strip()),
        severity_min, severity_max, text.strip(), hr_max_above, hr_min_below, pause, irregular, min_quality,
        limit, offset,
    )  # fmt: skip
    with queries.portal_read(conn):
        page = search.search_symptoms(conn, user, flt, settings.min_quality)
    detail = {"start": str(start), "end": str(end), "tags": list(flt.tags), "text": flt.text}
    store.audit(conn, user, "search:symptoms", {r.patient_id for r in page.results}, detail)
    return page


@router.get("")
def list_symptoms(
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    patient_id: Annotated[int | None, Query(description="one patient; all of the user's if absent")] = None,
    start: Annotated[datetime | None, Query(description="ISO 8601")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601")] = None,
) -> list[SymptomResult]:
    """Symptom periods overlapping [start, end), newest first (the newest 500; the search pages further)."""
    start, end = check_range(start, end)
    pids = _check_patients(conn, user, [patient_id] if patient_id is not None else [])
    with queries.portal_read(conn):
        page = search.search_symptoms(conn, user, SymptomFilter(pids, start, end, limit=500), settings.min_quality)
    store.audit(conn, user, "read:symptoms", {r.patient_id for r in page.results}, {"start": str(start), "end": str(end)})
    return page.results


@router.get("/correlation")
def correlation(
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    patient_id: PatientIds = [],  # noqa: B006
    start: Annotated[datetime | None, Query(description="ISO 8601; default: end minus 30 days")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601; default: now")] = None,
) -> list[Correlation]:
    """Per patient: marked periods, those with an arrhythmia, arrhythmia episodes, those without a mark."""
    start, end = check_range(start, end)
    end = end or (start + CORRELATION_DEFAULT if start else datetime.now().astimezone())
    start = start or end - CORRELATION_DEFAULT
    if end - start > CORRELATION_MAX:
        raise _unprocessable(f"end: at most {CORRELATION_MAX.days} days after start")
    pids = _check_patients(conn, user, patient_id)
    with queries.portal_read(conn):
        rows = search.correlate(conn, user, pids, start, end, settings.min_quality)
    store.audit(conn, user, "read:correlation", [r.patient_id for r in rows], {"start": str(start), "end": str(end)})
    return rows
