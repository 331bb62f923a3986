"""Erasure on request: ``POST /api/patients/{id}/erase`` and the record of erasures, ``GET /api/erasures``.

Admins only (an erasure cannot be undone). The export of everything is
``GET /api/patients/{id}/export.zip`` (:mod:`server.api.exports`); what an
erasure deletes, keeps and records is :mod:`server.erasure`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from server import erasure, store
from server.api.deps import AdminUser, ConnDep, SettingsDep
from server.erasure import Erasure, ErasureError

router = APIRouter(tags=["data rights"])


class ErasureIn(BaseModel):
    """Why the data are erased, and the patient's device id as a confirmation."""

    reason: str = Field(min_length=1, max_length=2000)
    confirm_device: str = Field(min_length=1, max_length=64)


@router.post("/api/patients/{patient_id}/erase")
def erase(patient_id: int, body: ErasureIn, conn: ConnDep, admin: AdminUser, settings: SettingsDep) -> Erasure:
    """Erase the patient's data, keep what must be kept, revoke the device; 404 unknown, 409 already erased."""
    try:
        return erasure.erase_patient(conn, patient_id, admin, body.reason, body.confirm_device,
                                     settings.erasure_keep, erasure.device_cleanup(settings))  # fmt: skip
    except ErasureError as exc:
        raise HTTPException(exc.status, str(exc)) from exc


@router.get("/api/erasures")
def erasures(conn: ConnDep, admin: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[Erasure]:
    """The record of erasures, newest first: who, when, why, rows per table, what was kept (audited)."""
    rows = erasure.list_erasures(conn, limit)
    store.audit(conn, admin, "read:erasures", {r.patient_id for r in rows})
    return rows
