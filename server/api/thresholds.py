"""Personalised thresholds: ``GET/POST /api/patients/{id}/thresholds``, ``POST .../thresholds/proposal``.

A clinician caring for the patient (or an admin) reads the limits in force, the
initial-phase status and every version with who, when and why; asks for a
proposal from the baseline; and approves limits (edited or as proposed) with a
reason. Approval NOTIFYs the escalation loop, which pushes the new limits to the
phone as its retained config.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Any

import psycopg
from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from server import store, thresholds
from server.api.deps import ConnDep, CurrentUser, SettingsDep
from server.baseline import BaselinePolicy
from server.escalation import THRESHOLD_CHANNEL
from server.store import User
from server.thresholds import ThresholdError, VersionRow
from wire import Limits

router = APIRouter(prefix="/api/patients/{patient_id}/thresholds", tags=["thresholds"])
KEY_PATTERN = r"^(hr|resp_rate)(@(rest|sleep|active))?$"


class LimitsIn(BaseModel):
    """One parameter's limits, in its unit (bpm, breaths/min); null: no limit on that side."""

    yellow_low: float | None = Field(default=None, ge=0, le=400)
    yellow_high: float | None = Field(default=None, ge=0, le=400)
    red_low: float | None = Field(default=None, ge=0, le=400)
    red_high: float | None = Field(default=None, ge=0, le=400)


class ApprovalIn(BaseModel):
    """Limits to approve: keys ``hr``, ``resp_rate``, optionally ``@rest|@sleep|@active``."""

    limits: dict[str, LimitsIn] = Field(min_length=1)
    reason: str = Field(min_length=1, max_length=2000)
    proposal_id: int | None = None


def _visible(conn: psycopg.Connection[Any], user: User, patient_id: int) -> None:
    if not store.can_see(conn, user, patient_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no patient {patient_id}")


@router.get("")
def read(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> dict[str, Any]:
    """Limits in force (version null: defaults), the initial phase and every version, newest first."""
    _visible(conn, user, patient_id)
    in_force = thresholds.limits_in_force(conn, patient_id)
    phase = thresholds.status(conn, patient_id, time.time(), BaselinePolicy.from_settings(settings))
    store.audit(conn, user, "read:thresholds", [patient_id])
    return {"in_force": {"version": in_force.version, "limits": thresholds.limits_to_json(in_force.limits)},
            "phase": asdict(phase), "versions": thresholds.list_versions(conn, patient_id)}  # fmt: skip


@router.post("/proposal", status_code=status.HTTP_201_CREATED)
def propose(patient_id: int, conn: ConnDep, user: CurrentUser, settings: SettingsDep) -> VersionRow:
    """Compute a proposal from the baseline windows now (409 while there are no data)."""
    _visible(conn, user, patient_id)
    policy = BaselinePolicy.from_settings(settings)
    with conn.transaction():
        if thresholds.status(conn, patient_id, time.time(), policy).phase == "no_data":
            raise HTTPException(status.HTTP_409_CONFLICT, "no data yet: the baseline needs summary windows")
        row_id, _ = thresholds.propose(conn, patient_id, policy)
        store.audit(conn, user, "propose:thresholds", [patient_id], {"id": row_id})
    row = thresholds.get_version(conn, row_id)
    assert row is not None
    return row


@router.post("", status_code=status.HTTP_201_CREATED)
def approve(patient_id: int, body: ApprovalIn, conn: ConnDep, user: CurrentUser) -> VersionRow:
    """Approve limits as the patient's next version (422 naming each problem); they apply from now."""
    _visible(conn, user, patient_id)
    bad = [k for k in body.limits if not _key_ok(k)]
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, [f"{k}: unknown parameter" for k in bad])
    limits = {k: Limits(**v.model_dump()) for k, v in body.limits.items()}
    try:
        with conn.transaction():
            row_id = thresholds.approve(conn, patient_id, user.id, limits, body.reason, body.proposal_id)
            store.audit(conn, user, "approve:thresholds", [patient_id], {"id": row_id})
            conn.execute("SELECT pg_notify(%s, %s)", (THRESHOLD_CHANNEL, str(patient_id)))
    except ThresholdError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.problems) from exc
    row = thresholds.get_version(conn, row_id)
    assert row is not None
    return row


def _key_ok(key: str) -> bool:
    return re.fullmatch(KEY_PATTERN, key) is not None
