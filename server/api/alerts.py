"""Alerts: list, acknowledge, resolve, notes and history, and alarm-burden figures.

``GET /api/alerts``, ``POST /api/alerts/{id}/acknowledge|resolve|notes``,
``GET /api/alerts/{id}/history``, ``GET /api/alerts/burden``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import time

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from server import queries, store, thresholds
from server.api.deps import ConnDep, CurrentUser
from server.queries import AlertConflict, AlertRow, HistoryEntry
from server.store import User
from server.thresholds import Burden

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


@router.get("/burden")
def burden(conn: ConnDep, user: CurrentUser, patient_id: Annotated[int | None, Query()] = None) -> list[Burden]:
    """Alarm burden per patient and threshold version: alerts per patient-day, share acknowledged, time to ack."""
    visible = [p.id for p in queries.list_patients(conn, user) if patient_id is None or p.id == patient_id]
    store.audit(conn, user, "read:burden", visible)
    return thresholds.alarm_burden(conn, visible, time.time())


@router.post("/{alert_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(alert_id: int, body: NoteIn, conn: ConnDep, user: CurrentUser) -> dict[str, Any]:
    """Add a note to an alert in any state (it is kept in the alert's history)."""
    if queries.get_alert(conn, user, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    with conn.transaction():
        conn.execute("INSERT INTO alert_history (alert_id, kind, user_id, detail) VALUES (%s, 'note', %s,"
                     " jsonb_build_object('note', %s::text))", (alert_id, user.id, body.note))  # fmt: skip
        store.audit(conn, user, "note:alert", [_patient_of(conn, alert_id)], {"alert_id": alert_id})
    return {"alert_id": alert_id, "note": body.note}


@router.get("/{alert_id}/history")
def history(alert_id: int, conn: ConnDep, user: CurrentUser) -> list[HistoryEntry]:
    """What happened to an alert, oldest first: notes, escalation steps, deliveries."""
    if queries.get_alert(conn, user, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}")
    rows = queries.alert_history(conn, [alert_id]).get(alert_id, [])
    store.audit(conn, user, "read:alert_history", [_patient_of(conn, alert_id)], {"alert_id": alert_id})
    return rows


def _patient_of(conn: psycopg.Connection[Any], alert_id: int) -> int:
    row = conn.execute("SELECT patient_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return int(row[0])
