"""Medication plan versions in PostgreSQL: record a version (who, when, why), the plan in force, the history.

A plan is never edited: every change a clinician makes is stored as the
patient's next version (1, 2, ...; migration 050 refuses updates), in force from
its ``created_at``. The newest version is the plan in force; doses planned
before it belong to the version before (see :mod:`server.adherence`). A new
version is unpushed until :mod:`server.phone_config` has put it into the
phone's retained ``config``. The plan is validated by the wire contract's own
:class:`wire.medication.MedicationPlan`, so the server never stores a plan the
phone would refuse. Functions leave the transaction to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from wire.codec import plan_dict, plan_from_dict
from wire.errors import WireDecodeError
from wire.medication import MedicationPlan


class PlanError(ValueError):
    """A plan the wire contract refuses; ``problems`` names the field of each (``drugs[0].times[1]: ...``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PlanVersion:
    """One stored version of a patient's plan (``drugs`` as on the wire)."""

    id: int
    patient_id: int
    version: int
    time_zone: str
    on_time_minutes: int
    grace_minutes: int
    drugs: list[dict[str, Any]]
    reason: str
    created_at: datetime
    created_by: str | None
    pushed_at: datetime | None

    def to_wire(self) -> MedicationPlan:
        """The plan as the phone receives it, in force from ``created_at``."""
        return plan_from_dict({
            "version": self.version, "since": self.created_at.timestamp(), "time_zone": self.time_zone,
            "on_time_minutes": self.on_time_minutes, "grace_minutes": self.grace_minutes, "drugs": self.drugs,
        })  # fmt: skip


PLAN_SELECT = (
    "SELECT m.id, m.patient_id, m.version, m.time_zone, m.on_time_minutes, m.grace_minutes, m.drugs, m.reason,"
    " m.created_at, u.username AS created_by, m.pushed_at"
    " FROM medication_plans m LEFT JOIN users u ON u.id = m.created_by"
)


def checked_plan(body: dict[str, Any]) -> MedicationPlan:
    """Validate ``{time_zone, drugs, on_time_minutes?, grace_minutes?}`` as the wire contract does.

    Raises:
        PlanError: naming the field at fault.
    """
    try:
        return plan_from_dict({"version": 1, "since": 0.0, **body})
    except WireDecodeError as exc:
        raise PlanError([f"{exc.field or 'plan'}: {exc.detail or exc.reason}"]) from exc


def record_plan(
    conn: psycopg.Connection[Any], patient_id: int, user_id: int | None, plan: MedicationPlan, reason: str = "",
    since: datetime | None = None,
) -> int:  # fmt: skip
    """Store ``plan`` as the patient's next version, in force from now; return the row id.

    Versions are numbered in turn under the patient's row lock, so two clinicians
    saving at once get versions n and n + 1, never the same number. ``since``
    backdates the version (the demo and simulations record the plan a simulated
    record began with); clinicians' versions start at the database's ``now()``.
    """
    conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (patient_id,))
    body = plan_dict(plan)
    row = conn.execute(
        "INSERT INTO medication_plans (patient_id, version, time_zone, on_time_minutes, grace_minutes, drugs,"
        " reason, created_by, created_at) SELECT %(p)s, coalesce(max(version), 0) + 1, %(tz)s, %(on)s, %(grace)s,"
        " %(drugs)s, %(reason)s, %(u)s, coalesce(%(since)s::timestamptz, now())"
        " FROM medication_plans WHERE patient_id = %(p)s RETURNING id",
        {"p": patient_id, "tz": plan.time_zone, "on": plan.on_time_minutes, "grace": plan.grace_minutes,
         "drugs": Jsonb(body["drugs"]), "reason": reason, "u": user_id, "since": since},
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def get_plan(conn: psycopg.Connection[Any], row_id: int) -> PlanVersion | None:
    """One stored version by row id."""
    cur = conn.cursor(row_factory=class_row(PlanVersion))
    return cur.execute(f"{PLAN_SELECT} WHERE m.id = %s", (row_id,)).fetchone()


def list_plans(conn: psycopg.Connection[Any], patient_id: int) -> list[PlanVersion]:
    """Every version of the patient's plan, newest first."""
    cur = conn.cursor(row_factory=class_row(PlanVersion))
    return cur.execute(f"{PLAN_SELECT} WHERE m.patient_id = %s ORDER BY m.version DESC", (patient_id,)).fetchall()


def plan_in_force(conn: psycopg.Connection[Any], patient_id: int) -> PlanVersion | None:
    """The newest version, or None if the patient has no plan."""
    cur = conn.cursor(row_factory=class_row(PlanVersion))
    newest = f"{PLAN_SELECT} WHERE m.patient_id = %s ORDER BY m.version DESC LIMIT 1"
    return cur.execute(newest, (patient_id,)).fetchone()


def plans_many(conn: psycopg.Connection[Any], patient_ids: list[int]) -> dict[int, list[MedicationPlan]]:
    """Every version of each patient's plan as wire plans, oldest first (patients without one: absent)."""
    cur = conn.cursor(row_factory=class_row(PlanVersion))
    rows = cur.execute(f"{PLAN_SELECT} WHERE m.patient_id = ANY(%s) ORDER BY m.patient_id, m.version",
                       (patient_ids,)).fetchall()  # fmt: skip
    found: dict[int, list[MedicationPlan]] = {}
    for row in rows:
        found.setdefault(row.patient_id, []).append(row.to_wire())
    return found


def versions_in_force(versions: Sequence[PlanVersion], start: datetime, end: datetime) -> list[PlanVersion]:
    """The versions in force at some time in ``[start, end)``, oldest first (pure).

    A version is in force from its ``created_at`` until the next version's, as
    :func:`server.adherence.planned_doses` counts doses, so a version replaced
    before the range began (or recorded after it ended) is not among them.
    """
    spans = spans_in_force(versions, lambda v: v.version, lambda v: v.created_at, end)
    return [v for v, until in spans if max(start, v.created_at) < until]


V = TypeVar("V")
W = TypeVar("W", float, datetime)


def spans_in_force(versions: Sequence[V], number: Callable[[V], int], since: Callable[[V], W], end: W) -> list[tuple[V, W]]:
    """Each version, oldest first, with the end of its time in force: the next version's start, or ``end``.

    The one rule of which plan version applies when (pure): a version is in
    force from its own start until the next one's, for the report's versions
    (:func:`versions_in_force`) as for the doses counted
    (:func:`server.adherence.planned_doses`).
    """
    ordered = sorted(versions, key=number)
    return [(v, end if n is None else min(end, since(n))) for v, n in zip(ordered, [*ordered[1:], None])]
