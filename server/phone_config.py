"""The retained ``config`` each phone should hold: the limits in force and the medication plan in force.

A phone keeps the newest config it received (higher ``version`` wins) and
replaces all of it, so every config the server publishes carries both: the
limits in force (the approved version, else the NEWS2 defaults) and the
medication plan in force (absent while the patient has none). Its ``version``
is the threshold version (0 on the defaults) **plus** the plan version (0
without a plan): both only ever grow, so the sum grows with every change of
either, and a config pushed before plans existed (version = the threshold
version) is never newer than one pushed after.

A patient's config is due when an approved threshold version or the newest
plan version has not been pushed yet; :func:`mark_pushed` records the push of
exactly the versions a config carried (a version saved meanwhile stays due).
Pure :func:`config_for`; the rest are thin queries. The escalation loop
(:func:`server.escalation.run_round`) publishes what :func:`due_configs` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from server import medication, thresholds
from server.records import ts
from wire import Config, Limits
from wire.medication import MedicationPlan

# NOTIFY channel of new threshold versions and plan versions, which wakes the loop; payload: the patient id.
CONFIG_CHANNEL = "pisces_thresholds"


@dataclass(frozen=True)
class DueConfig:
    """A config to publish and the versions it carries."""

    patient_id: int
    config: Config
    threshold_version: int | None
    plan_version: int | None


def config_for(
    device: str, limits: thresholds.InForce, plan: MedicationPlan | None, now: float, window_seconds: float = 60.0
) -> Config:
    """The retained config of one phone (pure)."""
    version = (limits.version or 0) + (plan.version if plan is not None else 0)
    items: tuple[tuple[str, Limits], ...] = tuple(sorted(limits.limits.items()))
    return Config(device, version, now, window_seconds=window_seconds, limits=items, medication=plan)


DUE_SQL = (
    "SELECT p.id, p.device_id FROM patients p WHERE EXISTS (SELECT 1 FROM threshold_versions t"
    " WHERE t.patient_id = p.id AND t.status = 'approved' AND t.pushed_at IS NULL)"
    " OR EXISTS (SELECT 1 FROM medication_plans m WHERE m.patient_id = p.id AND m.pushed_at IS NULL"
    " AND m.version = (SELECT max(version) FROM medication_plans n WHERE n.patient_id = p.id)) ORDER BY p.id"
)


def due_configs(conn: psycopg.Connection[Any], now: float, window_seconds: float = 60.0) -> list[DueConfig]:
    """The configs of every patient whose limits or plan in force were not pushed yet."""
    due = []
    for patient_id, device in conn.execute(DUE_SQL).fetchall():
        limits = thresholds.limits_in_force(conn, patient_id)
        row = medication.plan_in_force(conn, patient_id)
        plan = row.to_wire() if row is not None else None
        due.append(DueConfig(patient_id, config_for(device, limits, plan, now, window_seconds), limits.version,
                             None if plan is None else plan.version))  # fmt: skip
    return due


def mark_pushed(conn: psycopg.Connection[Any], due: DueConfig, now: float) -> None:
    """Record that ``due.config`` reached the broker: the versions it carried, and older unpushed ones."""
    if due.threshold_version is not None:
        conn.execute(
            "UPDATE threshold_versions SET pushed_at = %s WHERE patient_id = %s AND status = 'approved'"
            " AND pushed_at IS NULL AND version <= %s",
            (ts(now), due.patient_id, due.threshold_version),
        )
    if due.plan_version is not None:
        conn.execute(
            "UPDATE medication_plans SET pushed_at = %s WHERE patient_id = %s AND pushed_at IS NULL AND version <= %s",
            (ts(now), due.patient_id, due.plan_version),
        )
