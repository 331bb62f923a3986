"""A patient's own account: ``/api/me`` (their status), ``/api/me/consents`` and ``/api/me/caregivers``.

Only a ``patient`` user linked to a patient row gets past :data:`PatientSelf`;
every route acts on that patient alone, so there is no patient id to guess.
A patient grants and withdraws consent "in app" here, invites caregivers with
one-time codes (which needs their consent to caregiver access first),
chooses what each caregiver sees and is told, and revokes them. Every read
and change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from server import caregivers, consent, invitations, queries, store
from server.api.consents import ConsentIn, ConsentsOut, PurposeName, consents_of, record_change
from server.api.deps import ConnDep, PatientSelf, SettingsDep
from server.api.invitations import InvitationOut
from server.caregivers import Grant
from server.invitations import Invitation

router = APIRouter(prefix="/api/me", tags=["me"])

IN_APP = "in app (patient page)"
Scope = Annotated[str, Field(pattern="^(status|alerts|trends)$")]


@dataclass(frozen=True)
class MeOut:
    """The signed-in patient: who, their state as the care team sees it, and whether monitoring runs."""

    patient_id: int
    name: str
    state: str
    monitoring: bool
    last_data_at: datetime | None


class OwnConsentIn(BaseModel):
    """The patient grants (``granted: true``) or withdraws one purpose themselves."""

    purpose: PurposeName
    granted: bool
    note: str = Field(default="", max_length=2000)


class CaregiverIn(BaseModel):
    """What a caregiver sees and which alerts reach them (``none``, ``red`` only, ``yellow`` and red)."""

    label: str = Field(default="", max_length=100, description='who they are to you, e.g. "my daughter"')
    scopes: list[Scope] = Field(default_factory=lambda: ["status"], max_length=3)
    notify_level: str = Field(default="red", pattern="^(none|red|yellow)$")


@dataclass(frozen=True)
class CaregiversOut:
    """The patient's caregivers (active first) and caregiver invitations (newest first)."""

    caregivers: list[Grant]
    invitations: list[Invitation]


@router.get("")
def get_me(me: PatientSelf, conn: ConnDep, settings: SettingsDep) -> MeOut:
    """The signed-in patient's own status."""
    row = queries.patient_by_id(conn, me.patient_id, queries.Phases.from_settings(settings))
    assert row is not None  # the account's patient row exists (foreign key)
    store.audit(conn, me.user, "read:self", [me.patient_id])
    return MeOut(row.id, row.name, row.state, row.monitoring, row.last_data_at)


@router.get("/consents")
def my_consents(me: PatientSelf, conn: ConnDep) -> ConsentsOut:
    """My consent per purpose and its history."""
    return consents_of(conn, me.user, me.patient_id)


@router.post("/consents", status_code=status.HTTP_201_CREATED)
def change_my_consent(body: OwnConsentIn, me: PatientSelf, conn: ConnDep) -> ConsentsOut:
    """Grant or withdraw one purpose; in force at once."""
    change = ConsentIn(purpose=body.purpose, granted=body.granted, method=IN_APP, note=body.note)
    return record_change(conn, me.user, me.patient_id, change, "patient")


@router.get("/caregivers")
def my_caregivers(me: PatientSelf, conn: ConnDep) -> CaregiversOut:
    """Everyone who follows or followed me, and the invitations I made."""
    out = CaregiversOut(caregivers.list_for_patient(conn, me.patient_id),
                        invitations.list_for(conn, me.patient_id, "caregiver"))  # fmt: skip
    store.audit(conn, me.user, "read:caregivers", [me.patient_id])
    return out


@router.post("/caregivers/invitations", status_code=status.HTTP_201_CREATED)
def invite_caregiver(body: CaregiverIn, me: PatientSelf, conn: ConnDep, settings: SettingsDep) -> InvitationOut:
    """A one-time code for a caregiver; 409 until I have granted consent to caregiver access."""
    if not consent.granted(conn, me.patient_id, "caregivers"):
        raise HTTPException(status.HTTP_409_CONFLICT, "grant consent to caregiver access first (purpose caregivers)")
    with conn.transaction():
        invitation, code = invitations.create(conn, "caregiver", me.patient_id, me.user.id,
                                              settings.invitation_hours, body.label, tuple(body.scopes),
                                              body.notify_level)  # fmt: skip
        store.audit(conn, me.user, "invite:caregiver", [me.patient_id], {"invitation_id": invitation.id})
    return InvitationOut(invitation, code)


@router.post("/caregivers/invitations/{invitation_id}/cancel")
def cancel_invitation(invitation_id: int, me: PatientSelf, conn: ConnDep) -> Invitation:
    """Cancel a pending invitation (its code stops working); 404 if it is not mine."""
    with conn.transaction():
        found = invitations.cancel(conn, me.patient_id, invitation_id)
        if found is None or found.kind != "caregiver":
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no invitation {invitation_id}")
        store.audit(conn, me.user, "cancel:invitation", [me.patient_id], {"invitation_id": invitation_id})
    return found


@router.put("/caregivers/{caregiver_id}")
def change_caregiver(caregiver_id: int, body: CaregiverIn, me: PatientSelf, conn: ConnDep) -> Grant:
    """Change what a caregiver sees and is told (at once); 404 if not an active caregiver of mine."""
    with conn.transaction():
        grant = caregivers.update(conn, me.patient_id, caregiver_id, body.label, list(body.scopes), body.notify_level)
        if grant is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no active caregiver {caregiver_id}")
        store.audit(conn, me.user, "write:caregiver", [me.patient_id],
                    {"caregiver_id": caregiver_id, "scopes": grant.scopes, "notify_level": grant.notify_level})
    return grant


@router.post("/caregivers/{caregiver_id}/revoke")
def revoke_caregiver(caregiver_id: int, me: PatientSelf, conn: ConnDep) -> Grant:
    """End a caregiver's access at once, open sessions and live alerts included; 404 if not mine."""
    with conn.transaction():
        grant = caregivers.revoke(conn, me.patient_id, caregiver_id, me.user.id)
        if grant is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no caregiver {caregiver_id}")
        store.audit(conn, me.user, "revoke:caregiver", [me.patient_id], {"caregiver_id": caregiver_id})
    return grant
