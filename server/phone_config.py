"""The retained ``wire.Config`` each phone should hold: limits in force and the location consent.

A phone applies a config only if its ``version`` is not below the one it has,
so the version must grow with every change of what the config says. It is
derived, not stored: the patient's newest approved threshold version plus the
number of location-consent records. Both only ever grow, so their sum does, by
one per approval and one per grant or withdrawal, and every server computes the
same number. ``config_pushes`` keeps the newest version published per patient;
:mod:`server.escalation` publishes whatever is newer (woken at once by a NOTIFY
on :data:`CONFIG_CHANNEL`, which approvals and location-consent changes send).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from server.records import ts
from server.thresholds import DEFAULTS, config_for, limits_from_json
from wire import Config

CONFIG_CHANNEL = "pisces_thresholds"  # NOTIFY channel; payload: the patient id

# Patients whose derived config version is above the one last pushed (0: never pushed).
DUE_SQL = """
WITH wanted AS (
    SELECT p.id, p.device_id,
           coalesce(t.version, 0) + (SELECT count(*) FROM consents c
                                     WHERE c.patient_id = p.id AND c.purpose = 'location') AS version,
           t.limits, pisces_consented(p.id, 'location') AS share_location
    FROM patients p LEFT JOIN LATERAL (
        SELECT version, limits FROM threshold_versions
        WHERE patient_id = p.id AND status = 'approved' ORDER BY version DESC LIMIT 1) t ON true
    WHERE p.erased_at IS NULL  -- an erased patient has no phone to configure
)
SELECT w.id, w.device_id, w.version, w.limits, w.share_location FROM wanted w
LEFT JOIN config_pushes c ON c.patient_id = w.id
WHERE w.version > coalesce(c.version, 0) ORDER BY w.id
"""


@dataclass(frozen=True)
class DueConfig:
    """A config to publish for one patient."""

    patient_id: int
    config: Config


def due_configs(conn: psycopg.Connection[Any], now: float, window_seconds: float = 60.0) -> list[DueConfig]:
    """The configs newer than what each phone was last sent (limits in force; defaults when none approved)."""
    out = []
    for pid, device, version, limits, share in conn.execute(DUE_SQL).fetchall():
        in_force = limits_from_json(limits) if limits is not None else DEFAULTS.limits
        config = config_for(device, int(version), in_force, now, window_seconds, share_location=bool(share))
        out.append(DueConfig(int(pid), config))
    return out


def mark_pushed(conn: psycopg.Connection[Any], patient_id: int, version: int, now: float) -> None:
    """Record that the broker holds this version of the patient's config (and its threshold version)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO config_pushes (patient_id, version, pushed_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (patient_id) DO UPDATE SET version = GREATEST(config_pushes.version, EXCLUDED.version),"
            " pushed_at = EXCLUDED.pushed_at",
            (patient_id, version, ts(now)),
        )
        conn.execute(
            "UPDATE threshold_versions SET pushed_at = %s"
            " WHERE patient_id = %s AND status = 'approved' AND pushed_at IS NULL",
            (ts(now), patient_id),
        )
