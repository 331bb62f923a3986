"""Ingest writes: uplink messages to rows, rule state and alert rows.

Every function runs inside the caller's transaction; :mod:`server.ingest`
commits once per MQTT message, so a message's rows, its idempotency key, the
rule state and the alerts it caused are stored together or not at all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from server.rules import AlertAction, RuleState
from wire import Event, EventType, Status, Strip, Summary

ALERT_CHANNEL = "pisces_alerts"  # PostgreSQL NOTIFY channel; payload: the alert id

SUMMARY_COLUMNS = (
    "patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, hr_min, hr_max, rr_mean,"
    " sdnn, rmssd, flags, resp_rate, activity, intensity, quality, battery, lat, lon"
)


@dataclass(frozen=True)
class AlertChange:
    """An alert row that an action created or changed (what the notifier needs)."""

    alert_id: int
    kind: str  # "open", "escalate", "resolve"
    level: str
    parameter: str
    time: float  # s since epoch
    trigger: dict[str, Any]


def ts(seconds: float) -> datetime:
    """Seconds since the Unix epoch -> an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def device_patient(conn: psycopg.Connection[Any], device_id: str) -> int | None:
    """The id of the patient a device reports for, or None for an unknown device."""
    row = conn.execute("SELECT id FROM patients WHERE device_id = %s", (device_id,)).fetchone()
    return int(row[0]) if row else None


def claim_message(conn: psycopg.Connection[Any], device_id: str, seq: int, kind: str) -> bool:
    """Record (device, seq) as stored; False if it already was (a duplicate)."""
    row = conn.execute(
        "INSERT INTO uplink_messages (device_id, seq, kind) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (device_id, seq, kind),
    ).fetchone()
    return row is not None


def dead_letter(conn: psycopg.Connection[Any], topic: str, payload: bytes, reason: str, detail: str) -> None:
    """Keep a message the ingest could not use, with the reason."""
    conn.execute(
        "INSERT INTO dead_letters (topic, payload, reason, detail) VALUES (%s, %s, %s, %s)",
        (topic, payload, reason, detail),
    )


def store_summary(conn: psycopg.Connection[Any], patient_id: int, msg: Summary) -> None:
    """Write a summary message's windows (binary-safe COPY) and move the patient's last_data_at."""
    with conn.cursor().copy(f"COPY summaries ({SUMMARY_COLUMNS}) FROM STDIN") as copy:
        for idx, w in enumerate(msg.windows):
            copy.write_row((
                patient_id, msg.device, msg.seq, idx, ts(w.start), ts(w.end), w.beats,
                w.hr_mean, w.hr_min, w.hr_max, w.rr_mean, w.sdnn, w.rmssd, list(w.flags),
                w.resp_rate, w.activity, w.intensity, w.quality, w.battery, w.lat, w.lon,
            ))  # fmt: skip
    newest = ts(max(w.end for w in msg.windows))
    conn.execute(
        "UPDATE patients SET last_data_at = GREATEST(last_data_at, %s) WHERE id = %s", (newest, patient_id)
    )


def store_event(conn: psycopg.Connection[Any], patient_id: int, msg: Event) -> None:
    """Write an event; symptom start/stop also open or close the patient's symptom period."""
    conn.execute(
        "INSERT INTO events (patient_id, device_id, seq, type, at, period, tags, severity, note, lat, lon)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (patient_id, msg.device, msg.seq, msg.type.value, ts(msg.time), msg.period, list(msg.tags),
         msg.severity, msg.note, msg.lat, msg.lon),
    )  # fmt: skip
    if msg.type in (EventType.SYMPTOM_START, EventType.SYMPTOM_STOP):
        _upsert_period(conn, patient_id, msg)


def _upsert_period(conn: psycopg.Connection[Any], patient_id: int, msg: Event) -> None:
    # Start and stop may arrive in either order; non-empty details of either fill the period.
    column = "started_at" if msg.type is EventType.SYMPTOM_START else "ended_at"
    conn.execute(
        f"INSERT INTO symptom_periods (patient_id, period, {column}, tags, severity, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (patient_id, period) DO UPDATE SET {column} = EXCLUDED.{column},"
        " tags = CASE WHEN cardinality(EXCLUDED.tags) > 0 THEN EXCLUDED.tags ELSE symptom_periods.tags END,"
        " severity = COALESCE(EXCLUDED.severity, symptom_periods.severity),"
        " note = CASE WHEN EXCLUDED.note <> '' THEN EXCLUDED.note ELSE symptom_periods.note END",
        (patient_id, msg.period, ts(msg.time), list(msg.tags), msg.severity, msg.note),
    )


def store_strip(conn: psycopg.Connection[Any], patient_id: int, msg: Strip) -> None:
    """Write an ECG strip, samples packed as little-endian int16 (µV)."""
    samples = struct.pack(f"<{len(msg.samples)}h", *msg.samples)
    conn.execute(
        "INSERT INTO strips (patient_id, device_id, seq, start_at, fs, reason, ref_seq, n_samples, samples)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (patient_id, msg.device, msg.seq, ts(msg.start), msg.fs, msg.reason, msg.ref_seq,
         len(msg.samples), samples),
    )  # fmt: skip


def store_status(conn: psycopg.Connection[Any], patient_id: int, msg: Status) -> None:
    """Update the device's status row unless a newer one (higher seq) is already there."""
    conn.execute(
        "INSERT INTO device_status (device_id, patient_id, seq, at, online, sensor, battery)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET seq = EXCLUDED.seq, at = EXCLUDED.at,"
        " online = EXCLUDED.online, sensor = EXCLUDED.sensor, battery = EXCLUDED.battery,"
        " patient_id = EXCLUDED.patient_id, updated_at = now()"
        " WHERE device_status.seq < EXCLUDED.seq",
        (msg.device, patient_id, msg.seq, ts(msg.time), msg.online, msg.sensor, msg.battery),
    )


def lock_rule_state(conn: psycopg.Connection[Any], patient_id: int) -> RuleState:
    """Load a patient's rule state, locking it until commit so workers take turns per patient."""
    conn.execute(
        "INSERT INTO rule_state (patient_id, state) VALUES (%s, '{}') ON CONFLICT DO NOTHING", (patient_id,)
    )
    row = conn.execute(
        "SELECT state FROM rule_state WHERE patient_id = %s FOR UPDATE", (patient_id,)
    ).fetchone()
    assert row is not None
    return RuleState.from_json(row[0])


def save_rule_state(conn: psycopg.Connection[Any], patient_id: int, state: RuleState) -> None:
    """Persist a patient's rule state."""
    conn.execute(
        "UPDATE rule_state SET state = %s, updated_at = now() WHERE patient_id = %s",
        (Jsonb(state.to_json()), patient_id),
    )


def active_levels(conn: psycopg.Connection[Any], patient_id: int) -> dict[str, str]:
    """``parameter -> level`` of the patient's alerts not yet resolved."""
    rows = conn.execute(
        "SELECT parameter, level FROM alerts WHERE patient_id = %s AND state <> 'resolved'", (patient_id,)
    ).fetchall()
    return {param: level for param, level in rows}


def apply_actions(
    conn: psycopg.Connection[Any], patient_id: int, actions: list[AlertAction]
) -> list[AlertChange]:
    """Carry out the rule engine's actions on the alerts table and NOTIFY listeners at commit."""
    changes = []
    for action in actions:
        alert_id = _APPLY[action.kind](conn, patient_id, action)
        if alert_id is None:
            continue
        conn.execute("SELECT pg_notify(%s, %s)", (ALERT_CHANNEL, str(alert_id)))
        changes.append(
            AlertChange(alert_id, action.kind, action.level, action.parameter, action.time, action.trigger)
        )
    return changes


def _open(conn: psycopg.Connection[Any], patient_id: int, a: AlertAction) -> int | None:
    row = conn.execute(
        "INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (patient_id, parameter) WHERE state <> 'resolved'"
        " DO UPDATE SET level = EXCLUDED.level, state = 'open' RETURNING id",
        (patient_id, a.level, a.parameter, ts(a.time), Jsonb(a.trigger)),
    ).fetchone()
    return int(row[0]) if row else None


def _escalate(conn: psycopg.Connection[Any], patient_id: int, a: AlertAction) -> int | None:
    # Worse than acknowledged: the alert is open again, so it reaches people again.
    row = conn.execute(
        "UPDATE alerts SET level = %s, state = 'open', escalated_at = %s,"
        " trigger = trigger || jsonb_build_object('escalation', %s::jsonb)"
        " WHERE patient_id = %s AND parameter = %s AND state <> 'resolved' RETURNING id",
        (a.level, ts(a.time), Jsonb(a.trigger), patient_id, a.parameter),
    ).fetchone()
    return int(row[0]) if row else _open(conn, patient_id, a)


def _resolve(conn: psycopg.Connection[Any], patient_id: int, a: AlertAction) -> int | None:
    row = conn.execute(
        "UPDATE alerts SET state = 'resolved', closed_at = %s, resolve_note = %s"
        " WHERE patient_id = %s AND parameter = %s AND state <> 'resolved' RETURNING id",
        (ts(a.time), "back within limits", patient_id, a.parameter),
    ).fetchone()
    return int(row[0]) if row else None


_APPLY = {"open": _open, "escalate": _escalate, "resolve": _resolve}
