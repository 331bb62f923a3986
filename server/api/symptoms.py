"""Patient-marked symptom periods: ``GET /api/symptoms``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from server import queries, store
from server.api.deps import ConnDep, CurrentUser, SettingsDep, check_range
from server.queries import SymptomRow

router = APIRouter(prefix="/api/symptoms", tags=["symptoms"])


@router.get("")
def list_symptoms(
    conn: ConnDep,
    user: CurrentUser,
    settings: SettingsDep,
    patient_id: Annotated[int | None, Query(description="one patient; all of the user's if absent")] = None,
    start: Annotated[datetime | None, Query(description="ISO 8601")] = None,
    end: Annotated[datetime | None, Query(description="ISO 8601")] = None,
) -> list[SymptomRow]:
    """Symptom periods overlapping [start, end), newest first, each with HR mean/min/max over it."""
    start, end = check_range(start, end)
    if patient_id is not None and not store.can_see(conn, user, patient_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id}")
    rows = queries.list_symptoms(conn, user, patient_id, start, end, settings.min_quality)
    store.audit(conn, user, "read:symptoms", {r.patient_id for r in rows}, {"start": str(start), "end": str(end)})
    return rows
