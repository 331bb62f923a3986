"""Operations views for admins: ``GET /api/dead-letters``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server import queries
from server.api.deps import AdminUser, ConnDep
from server.queries import DeadLetterRow

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/dead-letters")
def dead_letters(
    conn: ConnDep, _admin: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterRow]:
    """The newest messages the ingest could not use, with the reason (admins only)."""
    return queries.list_dead_letters(conn, limit)
