"""The retained ``wire.Config`` each phone should hold: limits, medication plan and location consent in force.

A phone keeps the newest config it received (higher ``version`` wins) and
replaces all of it, so every config the server publishes carries everything:
the limits in force (the approved version, else the NEWS2 defaults), the
medication plan in force (absent while the patient has none) and the location
consent. Its ``version`` is derived, not stored: the newest approved threshold
version (0 on the defaults) **plus** the newest plan version (0 without a plan)
**plus** the number of location-consent records. Each only ever grows, so the
sum grows with every change of any of them, and every server computes the same
number. ``config_pushes`` keeps the newest version published per patient;
:mod:`server.escalation` publishes whatever is newer (woken at once by a NOTIFY
on :data:`CONFIG_CHANNEL`, which approvals, plan versions and location-consent
changes send). :func:`mark_pushed` also stamps the threshold and plan versions
the config carried (a version saved meanwhile stays due).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from server import medication, thresholds
from server.records import ts
from wire import Config, Limits
from wire.medication import MedicationPlan

# NOTIFY channel of new threshold versions, plan versions and location consent; payload: the patient id.
CONFIG_CHANNEL = "pisces_thresholds"

# Every patient's parts of the config version, and the version last pushed (0: never).
PARTS_SQL = """
SELECT p.id, p.device_id, t.version, m.version,
       (SELECT count(*) FROM consents c WHERE c.patient_id = p.id AND c.purpose = 'location'),
       pisces_consented(p.id, 'location'), coalesce(c.version, 0)
FROM patients p
LEFT JOIN LATERAL (SELECT version FROM threshold_versions
                   WHERE patient_id = p.id AND status = 'approved' ORDER BY version DESC LIMIT 1) t ON true
LEFT JOIN LATERAL (SELECT max(version) AS version FROM medication_plans WHERE patient_id = p.id) m ON true
LEFT JOIN config_pushes c ON c.patient_id = p.id
WHERE p.erased_at IS NULL  -- an erased patient has no phone to configure
ORDER BY p.id
"""


def config_version(threshold_version: int | None, plan_version: int | None, location_records: int) -> int:
    """The config version: the sum of three counts that only grow (pure; see the module docstring)."""
    return (threshold_version or 0) + (plan_version or 0) + location_records


@dataclass(frozen=True)
class DueConfig:
    """A config to publish and the threshold and plan versions it carries."""

    patient_id: int
    config: Config
    threshold_version: int | None
    plan_version: int | None


def config_for(device: str, limits: thresholds.InForce, plan: MedicationPlan | None, location_records: int,
               share_location: bool, now: float, window_seconds: float = 60.0) -> Config:  # fmt: skip
    """The retained config of one phone (pure)."""
    version = config_version(limits.version, plan.version if plan is not None else None, location_records)
    items: tuple[tuple[str, Limits], ...] = tuple(sorted(limits.limits.items()))
    return Config(device, version, now, window_seconds=window_seconds, limits=items, medication=plan,
                  share_location=share_location)  # fmt: skip


def due_configs(conn: psycopg.Connection[Any], now: float, window_seconds: float = 60.0) -> list[DueConfig]:
    """The configs newer than what each phone was last sent."""
    due = []
    for patient_id, device, t_version, m_version, located, share, pushed in conn.execute(PARTS_SQL).fetchall():
        if config_version(t_version, m_version, int(located)) <= pushed:
            continue
        limits = thresholds.limits_in_force(conn, patient_id)
        row = medication.plan_in_force(conn, patient_id)
        plan = row.to_wire() if row is not None else None
        config = config_for(device, limits, plan, int(located), bool(share), now, window_seconds)
        due.append(DueConfig(int(patient_id), config, limits.version, None if plan is None else plan.version))
    return due


def mark_pushed(conn: psycopg.Connection[Any], due: DueConfig, now: float) -> None:
    """Record that ``due.config`` reached the broker: its version, and the threshold and plan versions it carried."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO config_pushes (patient_id, version, pushed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (patient_id) DO UPDATE SET version = GREATEST(config_pushes.version, EXCLUDED.version),"
            " pushed_at = EXCLUDED.pushed_at",
            (due.patient_id, due.config.version, ts(now)),
        )
        if due.threshold_version is not None:
            conn.execute(
                "UPDATE threshold_versions SET pushed_at = %s WHERE patient_id = %s AND status = 'approved'"
                " AND pushed_at IS NULL AND version <= %s",
                (ts(now), due.patient_id, due.threshold_version),
            )
        if due.plan_version is not None:
            conn.execute(
                "UPDATE medication_plans SET pushed_at = %s WHERE patient_id = %s AND pushed_at IS NULL"
                " AND version <= %s",
                (ts(now), due.patient_id, due.plan_version),
            )
