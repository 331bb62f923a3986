"""One-time codes into accounts: ``POST /api/patients/{id}/account-invitation`` (a clinician invites the
patient to an account of their own), ``POST /api/invitations/accept`` (anyone with a code: choose a
username and password, signed in at once) and ``POST /api/caregiver/invitations/redeem`` (a caregiver
who already has an account follows one more patient).

``accept`` is the one data-changing route open without a session: the code is
the credential (60 random bits, single use, expiring), and wrong codes count
against the client address in the sign-in limiter (429 after too many).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from server import caregivers, consent, invitations, store
from server.api.auth import LoginOut, limiter_of, open_session, refuse_if_limited
from server.api.deps import CaregiverUser, ConnDep, CurrentUser, SettingsDep
from server.api.patients import require_patient
from server.invitations import Invitation
from server.security import login_keys
from server.store import User

router = APIRouter(tags=["invitations"])

BAD_CODE = "this code is unknown, already used, cancelled or expired: ask for a new one"


class CodeIn(BaseModel):
    """An invitation code as given (case and dashes do not matter)."""

    code: str = Field(min_length=1, max_length=40)


class AcceptIn(CodeIn):
    """A code and the credentials of the new account."""

    username: str = Field(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=8, max_length=1000)


@dataclass(frozen=True)
class InvitationOut:
    """A new invitation and its one-time code (shown this once: hand it over in person or by phone)."""

    invitation: Invitation
    code: str


@router.post("/api/patients/{patient_id}/account-invitation", status_code=status.HTTP_201_CREATED)
def invite_patient(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> InvitationOut:
    """A code with which the patient makes their own account; 409 if they already have one."""
    require_patient(conn, user, patient_id)
    if store.has_account(conn, patient_id):
        raise HTTPException(status.HTTP_409_CONFLICT, f"patient {patient_id} already has an account")
    with conn.transaction():
        invitation, code = invitations.create(conn, "patient", patient_id, user.id, settings.invitation_hours)
        store.audit(conn, user, "invite:account", [patient_id], {"invitation_id": invitation.id})
    return InvitationOut(invitation, code)


def _follow(conn: psycopg.Connection[Any], invitation: Invitation, user_id: int) -> None:
    """Make the caregiver grant an invitation describes (409 without the patient's consent)."""
    if not consent.granted(conn, invitation.patient_id, "caregivers"):
        raise HTTPException(status.HTTP_409_CONFLICT, "the patient has withdrawn consent to caregiver access")
    try:
        caregivers.add(conn, invitation.patient_id, user_id, invitation.label, invitation.scopes,
                       invitation.notify_level, invitation.id)  # fmt: skip
    except caregivers.CaregiverError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def _new_account(conn: psycopg.Connection[Any], invitation: Invitation, body: AcceptIn) -> User:
    if invitation.kind == "patient" and store.has_account(conn, invitation.patient_id):
        raise HTTPException(status.HTTP_409_CONFLICT, "this patient already has an account")
    try:
        with conn.transaction():
            uid = store.add_user(conn, body.username, body.password, invitation.kind)
    except psycopg.errors.UniqueViolation as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "username: taken, choose another") from exc
    user = User(uid, body.username, invitation.kind)
    if invitation.kind == "patient":
        store.link_patient_account(conn, uid, invitation.patient_id)
    else:
        _follow(conn, invitation, uid)
    return user


def _wrong_code(request: Request, keys: list[str]) -> HTTPException:
    limiter_of(request).failed(keys)
    return HTTPException(status.HTTP_404_NOT_FOUND, BAD_CODE)


@router.post("/api/invitations/accept", status_code=status.HTTP_201_CREATED)
def accept(body: AcceptIn, request: Request, response: Response, conn: ConnDep, settings: SettingsDep) -> LoginOut:
    """Make the account an invitation is for (patient or caregiver) and sign in; 404 for a bad code."""
    keys = [f"addr:{request.client.host}"] if request.client else []
    refuse_if_limited(request, keys)
    with conn.transaction():
        invitation = invitations.claim(conn, body.code)
        if invitation is None:
            raise _wrong_code(request, keys)
        user = _new_account(conn, invitation, body)
        invitations.mark_used(conn, invitation.id, user.id)
        store.audit(conn, user, f"join:{invitation.kind}", [invitation.patient_id], {"invitation_id": invitation.id})
    return open_session(conn, response, settings, user)


@router.post("/api/caregiver/invitations/redeem", status_code=status.HTTP_201_CREATED)
def redeem(body: CodeIn, request: Request, user: CaregiverUser, conn: ConnDep) -> dict[str, int]:
    """Follow one more patient with their invitation code; 404 for a bad code, 409 if already following."""
    keys = login_keys(user.username, request.client.host if request.client else None)
    refuse_if_limited(request, keys)
    with conn.transaction():
        invitation = invitations.claim(conn, body.code)
        if invitation is None or invitation.kind != "caregiver":
            raise _wrong_code(request, keys)
        _follow(conn, invitation, user.id)
        invitations.mark_used(conn, invitation.id, user.id)
        store.audit(conn, user, "join:caregiver", [invitation.patient_id], {"invitation_id": invitation.id})
    return {"patient_id": invitation.patient_id}
