"""What a caregiver is shown: a patient's status and alerts, cut down to what the patient shared.

Access and scopes are checked by the caller (:func:`server.caregivers.access`)
except in :func:`alert_for`, the live stream's lookup, which checks both for
each event so that a revocation stops the stream's next event. Alerts carry
level, parameter, state, times and the triggering value: no clinician notes,
no names of clinicians, no positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from server import caregivers, queries
from server.caregivers import Followed


@dataclass(frozen=True)
class CaregiverStatus:
    """A followed patient's state (``paused``: monitoring consent withdrawn) and data freshness."""

    patient_id: int
    name: str
    label: str
    scopes: list[str]
    state: str
    monitoring: bool
    last_data_at: datetime | None
    online: bool | None
    battery: int | None


@dataclass(frozen=True)
class CaregiverAlert:
    """An alert as a caregiver sees it."""

    id: int
    patient_id: int
    level: str
    parameter: str
    state: str  # open, acknowledged (the care team has seen it), resolved
    opened_at: datetime
    closed_at: datetime | None
    value: float | None


ALERT_SELECT = (
    "SELECT id, patient_id, level, parameter, state, opened_at, closed_at, (trigger->>'value')::float8 AS value"
    " FROM alerts"
)


def status(conn: psycopg.Connection[Any], grant: Followed, phases: queries.Phases = queries.Phases()) -> CaregiverStatus:
    """The status of the patient of ``grant`` (the caller checked the ``status`` scope)."""
    row = queries.patient_by_id(conn, grant.patient_id, phases)
    assert row is not None  # the grant's patient exists (foreign key)
    return CaregiverStatus(row.id, row.name, grant.label, grant.scopes, row.state, row.monitoring,
                           row.last_data_at, row.online, row.battery)  # fmt: skip


def alerts(conn: psycopg.Connection[Any], patient_id: int, active_only: bool, limit: int) -> list[CaregiverAlert]:
    """The patient's alerts, red first then newest (the caller checked the ``alerts`` scope)."""
    cur = conn.cursor(row_factory=class_row(CaregiverAlert))
    return cur.execute(
        f"{ALERT_SELECT} WHERE patient_id = %s AND (NOT %s OR state <> 'resolved')"
        " ORDER BY state <> 'resolved' DESC, level = 'red' DESC, opened_at DESC LIMIT %s",
        (patient_id, active_only, limit),
    ).fetchall()


def alert_for(conn: psycopg.Connection[Any], user_id: int, alert_id: int) -> CaregiverAlert | None:
    """The alert if this caregiver may see it now: active grant, ``alerts`` scope, consent in force."""
    cur = conn.cursor(row_factory=class_row(CaregiverAlert))
    found = cur.execute(f"{ALERT_SELECT} WHERE id = %s", (alert_id,)).fetchone()
    if found is None:
        return None
    grant = caregivers.access(conn, user_id, found.patient_id)
    return found if grant is not None and "alerts" in grant.scopes else None
