"""The audit log, read-only for admins: ``GET /api/audit``.

Rows are written by the routes that read or change a patient's data (see
:func:`server.store.audit`); the application has no route that edits or deletes
them, and the database refuses UPDATE, DELETE and TRUNCATE (migration 065)
except the recorded audit retention. Reading the log is itself audited
(``read:audit``, one row per patient the answer names).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query
from pydantic import BaseModel

from server import store
from server.api.deps import AdminUser, ConnDep, check_range

router = APIRouter(prefix="/api", tags=["admin"])


class AuditRow(BaseModel):
    """One recorded read or change: who, what, when, which patient, why (if given) and the details."""

    id: int
    at: datetime
    user_id: int
    username: str
    action: str
    patient_id: int | None
    detail: dict[str, Any]
    reason: str | None = None


def query_audit(
    conn: psycopg.Connection[Any],
    *,
    patient_id: int | None,
    username: str | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[AuditRow]:
    """Audit rows matching every given filter, newest first; ``action`` matches a prefix (``read:``)."""
    rows = conn.execute(
        "SELECT a.id, a.at, a.user_id, u.username, a.action, a.patient_id, a.detail, a.reason"
        " FROM audit_log a JOIN users u ON u.id = a.user_id"
        " WHERE (%(pid)s::bigint IS NULL OR a.patient_id = %(pid)s)"
        " AND (%(user)s::text IS NULL OR u.username = %(user)s)"
        " AND (%(action)s::text IS NULL OR starts_with(a.action, %(action)s))"
        " AND (%(start)s::timestamptz IS NULL OR a.at >= %(start)s)"
        " AND (%(end)s::timestamptz IS NULL OR a.at < %(end)s)"
        " ORDER BY a.at DESC, a.id DESC LIMIT %(limit)s",
        {"pid": patient_id, "user": username, "action": action, "start": start, "end": end, "limit": limit},
    ).fetchall()
    return [AuditRow(id=r[0], at=r[1], user_id=r[2], username=r[3], action=r[4], patient_id=r[5], detail=r[6],
                     reason=r[7]) for r in rows]  # fmt: skip


@router.get("/audit")
def audit_log(
    conn: ConnDep,
    admin: AdminUser,
    patient_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    username: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRow]:
    """Who read or changed which patient's data, when and how, newest first (admins only)."""
    start, end = check_range(start, end)
    rows = query_audit(conn, patient_id=patient_id, username=username, action=action, start=start, end=end,
                       limit=limit)  # fmt: skip
    store.audit(conn, admin, "read:audit", {r.patient_id for r in rows if r.patient_id is not None},
                {"patient_id": patient_id, "username": username, "action": action})
    return rows
