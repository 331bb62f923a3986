"""Typed reads (and the few clinician writes) behind the API; every one respects who may see what.

A clinician sees only the patients in their care; an admin sees all. Functions
return frozen dataclasses that the API serialises as they are. The caller's
connection is in autocommit mode (the API pool's); multi-statement writes open
their own transaction.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row

from server.store import StoreError, User

# Patients the user may see (never an erased one); binds %(uid)s and %(admin)s.
VISIBLE = (
    "(p.erased_at IS NULL AND (%(admin)s OR p.id IN (SELECT patient_id FROM care_assignments"
    " WHERE user_id = %(uid)s)))"
)


NO_SIGNAL_AFTER = timedelta(minutes=10)  # no data for longer: the overview says "no signal"
BASELINE_DAYS = 7  # the first days of data are the baseline phase


@dataclass(frozen=True)
class Phases:
    """When the overview calls a patient silent, and how long their baseline phase lasts.

    The defaults are the settings' defaults; :meth:`from_settings` takes a
    deployment's, so that the overview agrees with the no-signal alerts and the
    threshold phase (``ServerSettings.no_signal_after_seconds``, ``.baseline_days``).
    """

    no_signal_after: timedelta = NO_SIGNAL_AFTER
    baseline: timedelta = timedelta(days=BASELINE_DAYS)

    @classmethod
    def from_settings(cls, settings: Any) -> Phases:
        return cls(timedelta(seconds=settings.no_signal_after_seconds), timedelta(days=settings.baseline_days))


class AlertConflict(StoreError):
    """An alert change that its state forbids, e.g. acknowledging a resolved alert."""


@dataclass(frozen=True)
class PatientRow:
    """A patient as the overview lists them.

    ``state`` is, in this order of precedence: ``red`` or ``yellow`` (the worst
    active alert), ``paused`` (the patient withdrew consent to monitoring: what
    the phone sends is quarantined, no alerts), ``no_signal`` (no data for
    :attr:`Phases.no_signal_after`, or never), ``baseline`` (still in the first
    :attr:`Phases.baseline` of data), else ``ok``.
    """

    id: int
    name: str
    device_id: str
    state: str  # "ok", "yellow", "red", "paused", "no_signal", "baseline"
    alert_level: str  # "ok", "yellow", "red": the worst active alert
    last_data_at: datetime | None
    first_data_at: datetime | None
    battery: int | None  # %, the device's latest status, else its latest window
    online: bool | None  # the phone's last status message (None: never sent one)
    monitoring: bool = True  # consent to monitoring in force


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
    pnn50: float | None = None  # %
    pause_max: float | None = None  # s, longest RR interval
    ectopic: int | None = None  # beats
    steps: int | None = None
    posture_changes: int | None = None
    fall: bool = False


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
    resolved_by: str | None = None  # None when the rules resolved it (back within limits) or it is active


@dataclass(frozen=True)
class HistoryEntry:
    """One step of an alert's history: a note, an escalation step, a delivery (``by``: who, if a person)."""

    at: datetime
    kind: str  # note, escalate_contact, promote, no_signal, delivered, failed
    by: str | None
    detail: dict[str, Any]


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


@contextmanager
def portal_read(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A transaction for the portal's aggregate reads, with PostgreSQL's JIT off.

    Their cost estimates (tens of thousands of windows) pass ``jit_above_cost``,
    and compiling takes ~80 ms, more than running them (measured on the portal
    benchmark: a 30-day series 35 ms without JIT, 115-180 ms with it).
    """
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        yield conn


def _who(user: User) -> dict[str, Any]:
    return {"uid": user.id, "admin": user.is_admin}


def patient_state(alert_level: str, last_data_at: datetime | None, first_data_at: datetime | None,
                  now: datetime, *, monitoring: bool = True, phases: Phases = Phases()) -> str:
    """The overview state of a patient (see :class:`PatientRow`); pure."""
    if alert_level in ("red", "yellow"):
        return alert_level
    if not monitoring:
        return "paused"
    if last_data_at is None or now - last_data_at > phases.no_signal_after:
        return "no_signal"
    if first_data_at is not None and now - first_data_at < phases.baseline:
        return "baseline"
    return "ok"


PATIENT_SELECT = (
    "SELECT p.id, p.name, p.device_id, COALESCE(a.level, 'ok'), p.last_data_at, f.first_at,"
    " COALESCE(d.battery, l.battery), d.online, now(), pisces_consented(p.id, 'monitoring')"
    " FROM patients p LEFT JOIN LATERAL (SELECT CASE WHEN bool_or(level = 'red') THEN 'red'"
    "   WHEN count(*) > 0 THEN 'yellow' END AS level"
    "   FROM alerts WHERE patient_id = p.id AND state <> 'resolved') a ON true"
    " LEFT JOIN LATERAL (SELECT start_at AS first_at FROM summaries"
    "   WHERE patient_id = p.id ORDER BY start_at LIMIT 1) f ON true"
    " LEFT JOIN LATERAL (SELECT battery FROM summaries"
    "   WHERE patient_id = p.id ORDER BY start_at DESC LIMIT 1) l ON true"
    " LEFT JOIN LATERAL (SELECT battery, online FROM device_status WHERE device_id = p.device_id) d ON true"
)


def _patient(r: tuple[Any, ...], phases: Phases = Phases()) -> PatientRow:
    state = patient_state(r[3], r[4], r[5], r[8], monitoring=r[9], phases=phases)
    return PatientRow(r[0], r[1], r[2], state, r[3], r[4], r[5], r[6], r[7], r[9])


STATE_ORDER = {"red": 0, "yellow": 1, "no_signal": 2, "baseline": 3, "ok": 4, "paused": 5}


def list_patients(conn: psycopg.Connection[Any], user: User, phases: Phases = Phases()) -> list[PatientRow]:
    """The user's patients, most urgent state first (red, yellow, no signal, baseline, ok), then by name."""
    rows = conn.execute(f"{PATIENT_SELECT} WHERE {VISIBLE}", _who(user)).fetchall()
    return sorted((_patient(r, phases) for r in rows), key=lambda p: (STATE_ORDER[p.state], p.name, p.id))


def get_patient(
    conn: psycopg.Connection[Any], user: User, patient_id: int, phases: Phases = Phases()
) -> PatientRow | None:
    """One patient, if the user may see them."""
    row = conn.execute(f"{PATIENT_SELECT} WHERE p.id = %(pid)s AND {VISIBLE}", _who(user) | {"pid": patient_id})
    found = row.fetchone()
    return _patient(found, phases) if found else None


# The columns of a SummaryRow, in its order (for class_row).
SUMMARY_SELECT = (
    "SELECT start_at AS start, end_at AS end, beats, hr_mean, hr_min, hr_max, rr_mean, sdnn, rmssd,"
    " flags, resp_rate, activity, intensity, quality, battery, pnn50, pause_max, ectopic, steps,"
    " posture_changes, fall FROM summaries"
)


def patient_by_id(conn: psycopg.Connection[Any], patient_id: int, phases: Phases = Phases()) -> PatientRow | None:
    """One patient whoever asks (the caller has checked access, e.g. a caregiver's grant)."""
    found = conn.execute(f"{PATIENT_SELECT} WHERE p.id = %s AND p.erased_at IS NULL", (patient_id,)).fetchone()
    return _patient(found, phases) if found else None


def list_summaries(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime | None, end: datetime | None, limit: int
) -> list[SummaryRow]:
    """A patient's windows that overlap [start, end), oldest first (access is checked by the caller)."""
    cur = conn.cursor(row_factory=class_row(SummaryRow))
    return cur.execute(
        f"{SUMMARY_SELECT} WHERE patient_id = %s AND (%s::timestamptz IS NULL OR end_at > %s)"
        " AND (%s::timestamptz IS NULL OR start_at < %s) ORDER BY start_at LIMIT %s",
        (patient_id, start, start, end, end, limit),
    ).fetchall()


ALERT_SELECT = (
    "SELECT a.id, a.patient_id, p.name AS patient_name, a.level, a.parameter, a.state, a.opened_at,"
    " a.escalated_at, a.closed_at, a.trigger, u.username AS acked_by, a.acked_at, a.ack_note, a.resolve_note,"
    " r.username AS resolved_by FROM alerts a JOIN patients p ON p.id = a.patient_id"
    " LEFT JOIN users u ON u.id = a.acked_by LEFT JOIN users r ON r.id = a.resolved_by"
)


def list_alerts(
    conn: psycopg.Connection[Any],
    user: User,
    state: str = "open",
    level: str | None = None,
    patient_id: int | None = None,
    limit: int = 500,
    active_from: datetime | None = None,
    active_until: datetime | None = None,
) -> list[AlertRow]:
    """Alerts of the user's patients: red first, newest first; ``state`` open|acknowledged|resolved|active|all.

    ``open`` means not yet acknowledged; ``active`` means open or acknowledged.
    ``active_from`` / ``active_until``: only alerts active at some time in that range
    (opened before its end, closed after its start or not yet).
    """
    states = {"all": None, "active": ["open", "acknowledged"]}.get(state, [state])
    params = _who(user) | {"states": states, "level": level, "pid": patient_id, "limit": limit,
                           "t0": active_from, "t1": active_until}  # fmt: skip
    cur = conn.cursor(row_factory=class_row(AlertRow))
    return cur.execute(
        f"{ALERT_SELECT} WHERE {VISIBLE}"
        " AND (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))"
        " AND (%(level)s::text IS NULL OR a.level = %(level)s)"
        " AND (%(pid)s::bigint IS NULL OR a.patient_id = %(pid)s)"
        " AND (%(t1)s::timestamptz IS NULL OR a.opened_at < %(t1)s)"
        " AND (%(t0)s::timestamptz IS NULL OR COALESCE(a.closed_at, 'infinity') > %(t0)s)"
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


def alert_history(conn: psycopg.Connection[Any], alert_ids: list[int]) -> dict[int, list[HistoryEntry]]:
    """The history of each of these alerts, oldest first (access is checked by the caller)."""
    rows = conn.execute(
        "SELECT h.alert_id, h.at, h.kind, u.username, h.detail FROM alert_history h"
        " LEFT JOIN users u ON u.id = h.user_id WHERE h.alert_id = ANY(%s) ORDER BY h.alert_id, h.id",
        (alert_ids,),
    ).fetchall()
    found: dict[int, list[HistoryEntry]] = {}
    for alert_id, *entry in rows:
        found.setdefault(int(alert_id), []).append(HistoryEntry(*entry))
    return found


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


@dataclass(frozen=True)
class StripInfo:
    """An ECG strip without its samples: what a list or a link needs."""

    patient_id: int
    device_id: str
    seq: int
    start: datetime
    fs: float  # Hz
    duration_s: float
    reason: str  # "panic", "symptom", "rhythm:<flag>"
    ref_seq: int | None


@dataclass(frozen=True)
class StripData:
    """An ECG strip with its samples (µV at ``info.fs`` Hz)."""

    info: StripInfo
    samples_uv: list[int]


STRIP_SELECT = (
    "SELECT patient_id, device_id, seq, start_at, fs, n_samples / fs, reason, ref_seq FROM strips"
)


def list_strips(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime | None, end: datetime | None, limit: int = 500
) -> list[StripInfo]:
    """A patient's strips starting in [start, end), oldest first (access is checked by the caller)."""
    rows = conn.execute(
        f"{STRIP_SELECT} WHERE patient_id = %s AND (%s::timestamptz IS NULL OR start_at >= %s)"
        " AND (%s::timestamptz IS NULL OR start_at < %s) ORDER BY start_at LIMIT %s",
        (patient_id, start, start, end, end, limit),
    ).fetchall()
    return [StripInfo(*r) for r in rows]


def get_strip(conn: psycopg.Connection[Any], patient_id: int, device_id: str, seq: int) -> StripData | None:
    """One strip with its samples, or None (access is checked by the caller)."""
    row = conn.execute(
        f"{STRIP_DATA_SELECT} WHERE patient_id = %s AND device_id = %s AND seq = %s ORDER BY start_at LIMIT 1",
        (patient_id, device_id, seq),
    ).fetchone()
    return None if row is None else strip_data(row)


STRIP_DATA_SELECT = (
    "SELECT patient_id, device_id, seq, start_at, fs, n_samples / fs, reason, ref_seq, samples, n_samples FROM strips"
)


def strip_data(row: tuple[Any, ...]) -> StripData:
    """A row of :data:`STRIP_DATA_SELECT` as a strip with its samples."""
    samples = list(struct.unpack(f"<{row[9]}h", bytes(row[8])))
    return StripData(StripInfo(*row[:8]), samples)


def visible_patients(conn: psycopg.Connection[Any], user: User) -> list[tuple[int, str]]:
    """``(id, name)`` of the user's patients (every patient for an admin), by name."""
    rows = conn.execute(f"SELECT p.id, p.name FROM patients p WHERE {VISIBLE} ORDER BY p.name, p.id", _who(user))
    return [(int(i), str(n)) for i, n in rows.fetchall()]
