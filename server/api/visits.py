"""Clinic visits: ``GET`` and ``POST /api/patients/{id}/visits``.

A visit (when, a note) starts the patient's next report period. Visits are
append-only: a correction or withdrawal is a new row naming the row it
replaces (``corrects``). Reads are audited as ``read:visits``, records as
``record:visit``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from server import store, visits
from server.api.deps import ConnDep, CurrentUser, check_time
from server.api.patients import require_patient
from server.visits import MAX_NOTE, Visit, VisitError

router = APIRouter(prefix="/api/patients", tags=["visits"])


class VisitIn(BaseModel):
    """A visit to record, or a correction of one (``corrects``: the id of the row it replaces)."""

    visited_at: datetime | None = Field(default=None, description="ISO 8601; default: now (a correction: "
                                        "the corrected row's); a time without a zone is UTC")
    note: str | None = Field(default=None, max_length=MAX_NOTE,
                             description='default: "" (a correction: the corrected row\'s note)')
    corrects: int | None = Field(default=None, ge=1, le=2**63 - 1)
    withdrawn: bool = Field(default=False, description="the correction withdraws the visit (recorded in error)")


@router.get("/{patient_id}/visits")
def list_visits(patient_id: int, conn: ConnDep, user: CurrentUser) -> list[Visit]:
    """Every recorded row of the patient's visits, the latest visit first; ``current`` marks those in effect."""
    require_patient(conn, user, patient_id)
    rows = visits.list_visits(conn, patient_id)
    store.audit(conn, user, "read:visits", [patient_id])
    return rows


@router.post("/{patient_id}/visits", status_code=status.HTTP_201_CREATED)
def record_visit(patient_id: int, body: VisitIn, conn: ConnDep, user: CurrentUser) -> Visit:
    """Record a visit (it starts the next report period), or correct or withdraw one; 422 names the field."""
    require_patient(conn, user, patient_id)
    at = check_time("visited_at", body.visited_at)
    try:
        row = visits.record_visit(conn, patient_id, user.id, at, body.note, datetime.now(timezone.utc),
                                  body.corrects, body.withdrawn)  # fmt: skip
    except VisitError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    store.audit(conn, user, "record:visit", [patient_id], {"visit_id": row.id, "corrects": body.corrects})
    return row
