"""Operations views for admins: ``GET /api/dead-letters``.

Dead letters hold what phones sent, so reading them is a read of those
patients' data: audited for every patient whose device a listed topic names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server import queries, store
from server.api.deps import AdminUser, ConnDep
from server.queries import DeadLetterRow

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/dead-letters")
def dead_letters(
    conn: ConnDep, admin: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterRow]:
    """The newest messages the ingest could not use, with the reason (admins only)."""
    rows = queries.list_dead_letters(conn, limit)
    devices = sorted({parts[2] for r in rows if len(parts := r.topic.split("/")) > 2})
    patients = conn.execute("SELECT id FROM patients WHERE device_id = ANY(%s)", (devices,)).fetchall()
    store.audit(conn, admin, "read:dead_letters", {p[0] for p in patients}, {"limit": limit})
    return rows
