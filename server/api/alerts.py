"""Alerts: ``GET /api/alerts``, ``POST /api/alerts/{id}/acknowledge``, ``POST /api/alerts/{id}/resolve``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from server import queries, store
from server.api.deps import ConnDep, CurrentUser
from server.queries import AlertConflict, AlertRow
from server.store import User

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


class NoteIn(BaseModel):
    """An optional note with an acknowledgement or a resolution."""

    note: str = Field(default="", max_length=2000)


@router.get("")
def list_alerts(
    conn: ConnDep,
    user: CurrentUser,
    state: Annotated[Literal["open", "acknowledged", "resolved", "active", "all"], Query()] = "open",
    level: Annotated[Literal["yellow", "red"] | None, Query()] = None,
    patient_id: Annotated[int | None, Query()] = None,
) -> list[AlertRow]:
    """Alerts of the user's patients, red first then newest; ``active`` = open or acknowledged."""
    rows = queries.list_alerts(conn, user, state, level, patient_id)
    store.audit(conn, user, "read:alerts", {r.patient_id for r in rows}, {"state": state})
    return rows


Change = Callable[[psycopg.Connection[Any], User, int, str], AlertRow | None]


def _change(conn: psycopg.Connection[Any], user: User, alert_id: int, note: str, change: Change, verb: str) -> AlertRow:
    try:
        with conn.transaction():
            row = change(conn, user, alert_id, note)
            if row is not None:
                store.audit(conn, user, f"{verb}:alert", [row.patient_id], {"alert_id": alert_id})
    except AlertConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    return row


@router.post("/{alert_id}/acknowledge")
def acknowledge(alert_id: int, body: NoteIn, conn: ConnDep, user: CurrentUser) -> AlertRow:
    """Mark the alert seen (idempotent); 409 if it is already resolved."""
    return _change(conn, user, alert_id, body.note, queries.acknowledge_alert, "ack")


@router.post("/{alert_id}/resolve")
def resolve(alert_id: int, body: NoteIn, conn: ConnDep, user: CurrentUser) -> AlertRow:
    """Close the alert; the rules reopen it only after a fresh hold beyond the limits."""
    return _change(conn, user, alert_id, body.note, queries.resolve_alert, "resolve")
