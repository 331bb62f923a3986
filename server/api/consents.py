"""Consent as the care team sees and records it: ``GET``/``POST /api/patients/{id}/consents``
(a clinician on the patient's behalf, e.g. from a signed form) and ``GET /api/consent-enforcement``
(admins: what the ingest stripped or quarantined for lack of consent).

The patient's own door is :mod:`server.api.me`; both write through
:func:`server.consent.record`. Every read and change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from server import consent, store
from server.api.deps import AdminUser, ConnDep, CurrentUser
from server.api.patients import require_patient
from server.consent import ConsentRecord, ConsentStatus, EnforcementRow
from server.store import User

router = APIRouter(tags=["consent"])

PurposeName = Literal["monitoring", "location", "weather", "caregivers", "research"]


class ConsentIn(BaseModel):
    """A grant (``granted: true``) or withdrawal of one purpose, and how it was given."""

    purpose: PurposeName
    granted: bool
    method: str = Field(min_length=1, max_length=200, description='e.g. "signed form", "in app", "by phone"')
    note: str = Field(default="", max_length=2000)


@dataclass(frozen=True)
class ConsentsOut:
    """What is in force per purpose, and every record, newest first."""

    patient_id: int
    purposes: list[ConsentStatus]
    history: list[ConsentRecord]


def consents_of(conn: psycopg.Connection[Any], user: User, patient_id: int) -> ConsentsOut:
    """The patient's consents, audited as read by ``user``."""
    rows = consent.history(conn, patient_id)
    store.audit(conn, user, "read:consents", [patient_id])
    return ConsentsOut(patient_id, consent.in_force(rows), rows)


def record_change(conn: psycopg.Connection[Any], user: User, patient_id: int, body: ConsentIn,
                  actor: consent.Actor) -> ConsentsOut:  # fmt: skip
    """Record the change (in force at once), audit it, and answer with the new state."""
    try:
        row = consent.record(conn, patient_id, body.purpose, body.granted, actor, user.id, body.method, body.note)
    except consent.ConsentError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    verb = "grant" if body.granted else "withdraw"
    store.audit(conn, user, f"{verb}:consent", [patient_id], {"purpose": body.purpose, "consent_id": row.id})
    return consents_of(conn, user, patient_id)


@router.get("/api/patients/{patient_id}/consents")
def get_consents(patient_id: int, conn: ConnDep, user: CurrentUser) -> ConsentsOut:
    """The patient's consent per purpose and its history; 404 if not in the user's care."""
    require_patient(conn, user, patient_id)
    return consents_of(conn, user, patient_id)


@router.post("/api/patients/{patient_id}/consents", status_code=status.HTTP_201_CREATED)
def post_consent(patient_id: int, body: ConsentIn, conn: ConnDep, user: CurrentUser) -> ConsentsOut:
    """Record a grant or withdrawal on the patient's behalf (say how: ``method``); in force at once."""
    require_patient(conn, user, patient_id)
    return record_change(conn, user, patient_id, body, "clinician")


@router.get("/api/consent-enforcement")
def consent_enforcement(
    conn: ConnDep, admin: AdminUser, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> list[EnforcementRow]:
    """Per UTC day and patient: windows/events stored without position, messages quarantined (admins)."""
    rows = consent.enforcement(conn, days)
    store.audit(conn, admin, "read:consent-enforcement", {r.patient_id for r in rows}, {"days": days})
    return rows
