"""Typed reads (and the few clinician writes) behind the API; every one respects who may see what.

A clinician sees only the patients in their care; an admin sees all. Functions
return frozen dataclasses that the API serialises as they are. The caller's
connection is in autocommit mode (the API pool's); multi-statement writes open
their own transaction.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from server.store import StoreError, User

# Patients the user may see; binds %(uid)s and %(admin)s.
VISIBLE = "(%(admin)s OR p.id IN (SELECT patient_id FROM care_assignments WHERE user_id = %(uid)s))"


class AlertConflict(StoreError):
    """An alert change that its state forbids, e.g. acknowledging a resolved alert."""


@dataclass(frozen=True)
class PatientRow:
    """A patient as the overview lists them; ``state`` is the worst active alert level."""

    id: int
    name: str
    device_id: str
    state: str  # "ok", "yellow", "red"
    last_data_at: datetime | None


@dataclass(frozen=True)
class SummaryRow:
    """One summary window; units as in ``wire.SummaryWindow`` (bpm, ms, breaths/min, g, %)."""

    start: datetime
    end: datetime
    beats: int
    hr_mean: float | None
    hr_min: float | None
    hr_max: float | None
    rr_mean: float | None
    sdnn: float | None
    rmssd: float | None
    flags: list[str]
    resp_rate: float | None
    activity: str
    intensity: float | None
    quality: float
    battery: int | None


@dataclass(frozen=True)
class AlertRow:
    """An alert with its patient's name and what triggered it."""

    id: int
    patient_id: int
    patient_name: str
    level: str  # "yellow", "red"
    parameter: str
    state: str  # "open", "acknowledged", "resolved"
    opened_at: datetime
    escalated_at: datetime | None
    closed_at: datetime | None
    trigger: dict[str, Any]
    acked_by: str | None
    acked_at: datetime | None
    ack_note: str | None
    resolve_note: str | None


@dataclass(frozen=True)
class HrStats:
    """Heart rate over the summary windows overlapping a period (bpm; None without data)."""

    mean: float | None
    min: float | None
    max: float | None
    windows: int


@dataclass(frozen=True)
class SymptomRow:
    """A period the patient marked as not feeling well, with heart rate during it."""

    id: int
    patient_id: int
    patient_name: str
    period: str
    started_at: datetime | None
    ended_at: datetime | None  # None while the period is open
    tags: list[str]
    severity: int | None
    note: str
    hr: HrStats


@dataclass(frozen=True)
class DeadLetterRow:
    """A message the ingest kept because it could not use it."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_text: str  # UTF-8 with replacement characters, for reading
    payload_base64: str  # the exact bytes


def _who(user: User) -> dict[str, Any]:
    return {"uid": user.id, "admin": user.is_admin}


def list_patients(conn: psycopg.Connection[Any], user: User) -> list[PatientRow]:
    """The user's patients, worst state first, then by name."""
    cur = conn.cursor(row_factory=class_row(PatientRow))
    return cur.execute(
        "SELECT p.id, p.name, p.device_id, COALESCE(a.level, 'ok') AS state, p.last_data_at"
        " FROM patients p LEFT JOIN LATERAL (SELECT CASE WHEN bool_or(level = 'red') THEN 'red'"
        "   WHEN count(*) > 0 THEN 'yellow' END AS level"
        "   FROM alerts WHERE patient_id = p.id AND state <> 'resolved') a ON true"
        f" WHERE {VISIBLE} ORDER BY (a.level = 'red') IS TRUE DESC, a.level IS NOT NULL DESC, p.name",
        _who(user),
    ).fetchall()


def list_summaries(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime | None, end: datetime | None, limit: int
) -> list[SummaryRow]:
    """A patient's windows that overlap [start, end), oldest first (access is checked by the caller)."""
    cur = conn.cursor(row_factory=class_row(SummaryRow))
    return cur.execute(
        "SELECT start_at AS start, end_at AS end, beats, hr_mean, hr_min, hr_max, rr_mean, sdnn, rmssd,"
        " flags, resp_rate, activity, intensity, quality, battery FROM summaries"
        " WHERE patient_id = %s AND (%s::timestamptz IS NULL OR end_at > %s)"
        " AND (%s::timestamptz IS NULL OR start_at < %s) ORDER BY start_at LIMIT %s",
        (patient_id, start, start, end, end, limit),
    ).fetchall()


ALERT_SELECT = (
    "SELECT a.id, a.patient_id, p.name AS patient_name, a.level, a.parameter, a.state, a.opened_at,"
    " a.escalated_at, a.closed_at, a.trigger, u.username AS acked_by, a.acked_at, a.ack_note, a.resolve_note"
    " FROM alerts a JOIN patients p ON p.id = a.patient_id LEFT JOIN users u ON u.id = a.acked_by"
)


def list_alerts(
    conn: psycopg.Connection[Any],
    user: User,
    state: str = "open",
    level: str | None = None,
    patient_id: int | None = None,
    limit: int = 500,
) -> list[AlertRow]:
    """Alerts of the user's patients: red first, newest first; ``state`` open|acknowledged|resolved|active|all.

    ``open`` means not yet acknowledged; ``active`` means open or acknowledged.
    """
    states = {"all": None, "active": ["open", "acknowledged"]}.get(state, [state])
    params = _who(user) | {"states": states, "level": level, "pid": patient_id, "limit": limit}
    cur = conn.cursor(row_factory=class_row(AlertRow))
    return cur.execute(
        f"{ALERT_SELECT} WHERE {VISIBLE}"
        " AND (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))"
        " AND (%(level)s::text IS NULL OR a.level = %(level)s)"
        " AND (%(pid)s::bigint IS NULL OR a.patient_id = %(pid)s)"
        " ORDER BY a.level = 'red' DESC, a.opened_at DESC LIMIT %(limit)s",
        params,
    ).fetchall()


def get_alert(conn: psycopg.Connection[Any], user: User, alert_id: int) -> AlertRow | None:
    """One alert, if it exists and the user may see its patient."""
    cur = conn.cursor(row_factory=class_row(AlertRow))
    return cur.execute(f"{ALERT_SELECT} WHERE a.id = %(id)s AND {VISIBLE}", _who(user) | {"id": alert_id}).fetchone()


def acknowledge_alert(conn: psycopg.Connection[Any], user: User, alert_id: int, note: str) -> AlertRow | None:
    """Mark an alert seen by this user (idempotent); None if invisible, AlertConflict if resolved."""
    return _change_open_alert(
        conn, user, alert_id,
        "UPDATE alerts SET state = 'acknowledged', acked_by = %s, acked_at = now(), ack_note = %s"
        " WHERE id = %s AND state = 'open'",
        note,
    )  # fmt: skip


def resolve_alert(conn: psycopg.Connection[Any], user: User, alert_id: int, note: str) -> AlertRow | None:
    """Close an alert by hand; None if invisible, AlertConflict if already resolved."""
    return _change_open_alert(
        conn, user, alert_id,
        "UPDATE alerts SET state = 'resolved', closed_at = now(), resolved_by = %s, resolve_note = %s"
        " WHERE id = %s AND state <> 'resolved'",
        note,
    )  # fmt: skip


def _change_open_alert(
    conn: psycopg.Connection[Any], user: User, alert_id: int, update: str, note: str
) -> AlertRow | None:
    """Run ``update`` (params: user id, note, alert id) on a visible, unresolved alert."""
    alert = get_alert(conn, user, alert_id)
    if alert is None:
        return None
    if alert.state == "resolved":
        raise AlertConflict(f"alert {alert_id} is already resolved")
    conn.execute(update, (user.id, note, alert_id))
    return get_alert(conn, user, alert_id)


def list_symptoms(
    conn: psycopg.Connection[Any],
    user: User,
    patient_id: int | None,
    start: datetime | None,
    end: datetime | None,
    min_quality: float,
    limit: int = 500,
) -> list[SymptomRow]:
    """Symptom periods overlapping [start, end) of the user's patients, newest first, with HR stats.

    HR stats use the windows overlapping the period (an open period: up to now)
    whose quality is at least ``min_quality``: mean of the windows' ``hr_mean``,
    lowest ``hr_min``, highest ``hr_max``.
    """
    params = _who(user) | {"pid": patient_id, "start": start, "end": end, "q": min_quality, "limit": limit}
    rows = conn.execute(
        "SELECT s.id, s.patient_id, p.name, s.period, s.started_at, s.ended_at, s.tags, s.severity, s.note,"
        " h.mean, h.min, h.max, h.n"
        " FROM symptom_periods s JOIN patients p ON p.id = s.patient_id"
        " LEFT JOIN LATERAL (SELECT avg(hr_mean) AS mean, min(hr_min) AS min, max(hr_max) AS max,"
        "   count(hr_mean) AS n FROM summaries w WHERE w.patient_id = s.patient_id AND w.quality >= %(q)s"
        "   AND w.end_at > COALESCE(s.started_at, s.ended_at)"
        "   AND w.start_at < COALESCE(s.ended_at, now())) h ON true"
        f" WHERE {VISIBLE} AND (%(pid)s::bigint IS NULL OR s.patient_id = %(pid)s)"
        " AND (%(start)s::timestamptz IS NULL OR COALESCE(s.ended_at, 'infinity') > %(start)s)"
        " AND (%(end)s::timestamptz IS NULL OR COALESCE(s.started_at, s.ended_at) < %(end)s)"
        " ORDER BY COALESCE(s.started_at, s.ended_at) DESC LIMIT %(limit)s",
        params,
    ).fetchall()
    return [_symptom(r) for r in rows]


def _symptom(r: tuple[Any, ...]) -> SymptomRow:
    mean = round(float(r[9]), 1) if r[9] is not None else None
    return SymptomRow(*r[:9], hr=HrStats(mean, r[10], r[11], int(r[12] or 0)))


def list_dead_letters(conn: psycopg.Connection[Any], limit: int = 100) -> list[DeadLetterRow]:
    """The newest dead letters first."""
    rows = conn.execute(
        "SELECT id, received_at, topic, reason, detail, payload FROM dead_letters ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [
        DeadLetterRow(*r[:5], bytes(r[5]).decode("utf-8", "replace"), base64.b64encode(r[5]).decode())
        for r in rows
    ]
