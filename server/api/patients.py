"""Patients: ``GET /api/patients``, ``GET /api/patients/{id}/summaries``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from server import queries, store
from server.api.deps import ConnDep, CurrentUser, check_range
from server.queries import PatientRow, SummaryRow

router = APIRouter(prefix="/api/patients", tags=["patients"])


@router.get("")
def list_patients(conn: ConnDep, user: CurrentUser) -> list[PatientRow]:
    """The user's patients with their alert state (ok|yellow|red) and newest data time."""
    rows = queries.list_patients(conn, user)
    store.audit(conn, user, "read:patients", [r.id for r in rows])
    return rows


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
