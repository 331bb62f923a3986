"""Consent per patient and purpose: the record, what is in force, and what a change sets off.

Purposes (:data:`PURPOSES`): ``monitoring`` by the care team, ``location``
sharing (GPS from the phone), ``weather`` linkage and analysis, ``caregivers``
(family or volunteers may follow the patient), ``research`` use (cohort
analyses). Every grant or withdrawal is a new row of ``consents`` with the
time, who acted (the patient, a clinician on their behalf, or the system at
enrolment), the person who recorded it and how ("in app", "signed form");
rows are never edited, and the newest row of a purpose is in force. A purpose
without rows is not granted, except that enrolment records ``monitoring``
(:func:`record_enrolment`).

A change takes effect at once: :func:`record` runs under the patient's
rule-state lock, the lock every ingest batch takes before it reads consent,
so no batch judged under the old consent commits after it. Withdrawing
``monitoring`` resolves the patient's active alerts (the care team no longer
watches); a change of ``location`` wakes the loop that re-pushes the phone's
retained config (:mod:`server.phone_config`). Functions leave the transaction
to the caller unless they say otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from server import records
from server.phone_config import CONFIG_CHANNEL
from wire import Event, Summary, Uplink

Purpose = Literal["monitoring", "location", "weather", "caregivers", "research"]
Actor = Literal["patient", "clinician", "system"]
PURPOSES: tuple[Purpose, ...] = ("monitoring", "location", "weather", "caregivers", "research")
PURPOSE_LABELS = {
    "monitoring": "monitoring by the care team", "location": "location sharing",
    "weather": "weather linkage", "caregivers": "caregiver access", "research": "research use",
}  # fmt: skip
ENROLMENT = "enrolment"
PAUSED_NOTE = "monitoring paused: the patient withdrew consent"
PAUSED_KIND = "monitoring_paused"  # alert_history kind of an alert closed by a pause (server.report.alerts)


class ConsentError(ValueError):
    """A consent request that cannot be recorded (unknown purpose, empty method)."""


@dataclass(frozen=True)
class ConsentRecord:
    """One grant or withdrawal as recorded."""

    id: int
    patient_id: int
    purpose: str
    granted: bool
    at: datetime
    actor: str  # patient, clinician, system
    recorded_by: str | None  # username of the person who recorded it (None: the system)
    method: str
    note: str


@dataclass(frozen=True)
class ConsentStatus:
    """What is in force for one purpose (``since`` None: never recorded, so not granted)."""

    purpose: str
    label: str
    granted: bool
    since: datetime | None
    actor: str | None
    recorded_by: str | None
    method: str | None


RECORD_SELECT = (
    "SELECT c.id, c.patient_id, c.purpose, c.granted, c.at, c.actor, u.username AS recorded_by, c.method, c.note"
    " FROM consents c LEFT JOIN users u ON u.id = c.recorded_by"
)


def history(conn: psycopg.Connection[Any], patient_id: int) -> list[ConsentRecord]:
    """Every grant and withdrawal of the patient, newest first."""
    cur = conn.cursor(row_factory=class_row(ConsentRecord))
    return cur.execute(f"{RECORD_SELECT} WHERE c.patient_id = %s ORDER BY c.id DESC", (patient_id,)).fetchall()


def in_force(rows: Iterable[ConsentRecord]) -> list[ConsentStatus]:
    """The status of every purpose from a patient's records, in :data:`PURPOSES` order (pure)."""
    newest: dict[str, ConsentRecord] = {}
    for row in rows:
        if row.purpose not in newest or row.id > newest[row.purpose].id:
            newest[row.purpose] = row
    out = []
    for purpose in PURPOSES:
        r = newest.get(purpose)
        out.append(ConsentStatus(purpose, PURPOSE_LABELS[purpose], bool(r and r.granted), r.at if r else None,
                                 r.actor if r else None, r.recorded_by if r else None, r.method if r else None))
    return out


def current(conn: psycopg.Connection[Any], patient_id: int) -> list[ConsentStatus]:
    """What is in force for each purpose."""
    return in_force(history(conn, patient_id))


def granted(conn: psycopg.Connection[Any], patient_id: int, purpose: Purpose) -> bool:
    """True while the patient's newest record for ``purpose`` grants it."""
    row = conn.execute("SELECT pisces_consented(%s, %s)", (patient_id, purpose)).fetchone()
    return bool(row and row[0])


def granted_many(conn: psycopg.Connection[Any], patient_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """``patient -> purposes granted`` for several patients in one query (the ingest asks once per batch)."""
    ids = sorted(set(patient_ids))
    rows = conn.execute(
        "SELECT DISTINCT ON (patient_id, purpose) patient_id, purpose, granted FROM consents"
        " WHERE patient_id = ANY(%s) ORDER BY patient_id, purpose, id DESC",
        (ids,),
    ).fetchall()
    found: dict[int, set[str]] = {pid: set() for pid in ids}
    for pid, purpose, yes in rows:
        if yes:
            found[int(pid)].add(str(purpose))
    return {pid: frozenset(p) for pid, p in found.items()}


def record(
    conn: psycopg.Connection[Any], patient_id: int, purpose: str, grant: bool, actor: Actor,
    user_id: int | None, method: str, note: str = "",
) -> ConsentRecord:  # fmt: skip
    """Record a grant or withdrawal, in force at once; returns the new row (own transaction).

    Raises:
        ConsentError: an unknown purpose or an empty method.
    """
    if purpose not in PURPOSES:
        raise ConsentError(f"purpose: one of {', '.join(PURPOSES)}")
    if not method.strip():
        raise ConsentError("method: say how consent was given or withdrawn, e.g. 'in app' or 'signed form'")
    with conn.transaction():
        records.lock_rule_state(conn, patient_id)  # ingest batches of this patient wait, then see this row
        row = conn.execute(
            "INSERT INTO consents (patient_id, purpose, granted, actor, recorded_by, method, note)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, purpose, grant, actor, user_id, method.strip(), note),
        ).fetchone()
        assert row is not None
        if purpose == "monitoring" and not grant:
            pause_alerts(conn, patient_id, user_id)
        if purpose == "location":
            conn.execute("SELECT pg_notify(%s, %s)", (CONFIG_CHANNEL, str(patient_id)))
        cur = conn.cursor(row_factory=class_row(ConsentRecord))
        found = cur.execute(f"{RECORD_SELECT} WHERE c.id = %s", (row[0],)).fetchone()
    assert found is not None
    return found


def pause_alerts(conn: psycopg.Connection[Any], patient_id: int, user_id: int | None) -> list[int]:
    """Resolve the patient's active alerts because monitoring stopped; NOTIFY portals; return their ids."""
    ids = [int(r[0]) for r in conn.execute(
        "UPDATE alerts SET state = 'resolved', closed_at = now(), resolve_note = %s"
        " WHERE patient_id = %s AND state <> 'resolved' RETURNING id", (PAUSED_NOTE, patient_id),
    ).fetchall()]  # fmt: skip
    for alert_id in ids:
        conn.execute("INSERT INTO alert_history (alert_id, kind, user_id, detail) VALUES (%s, %s, %s, %s)",
                     (alert_id, PAUSED_KIND, user_id, Jsonb({"reason": PAUSED_NOTE})))  # fmt: skip
        conn.execute("SELECT pg_notify(%s, %s)", (records.ALERT_CHANNEL, str(alert_id)))
    return ids


def record_enrolment(conn: psycopg.Connection[Any], patient_ids: Iterable[int], user_id: int | None = None) -> None:
    """Record monitoring as granted at enrolment (by the enrolling clinician, else the system)."""
    actor = "system" if user_id is None else "clinician"
    conn.execute(
        "INSERT INTO consents (patient_id, purpose, granted, actor, recorded_by, method)"
        " SELECT id, 'monitoring', true, %s, %s, %s FROM unnest(%s::bigint[]) AS id",
        (actor, user_id, ENROLMENT, sorted(set(patient_ids))),
    )


def without_positions(msg: Uplink) -> tuple[Uplink, int]:
    """The message with every ``lat``/``lon`` removed, and how many windows or events lost one (pure)."""
    if isinstance(msg, Summary):
        located = sum(w.lat is not None or w.lon is not None for w in msg.windows)
        if not located:
            return msg, 0
        return replace(msg, windows=tuple(w.without_position() for w in msg.windows)), located
    if isinstance(msg, Event) and (msg.lat is not None or msg.lon is not None):
        return replace(msg, lat=None, lon=None), 1
    return msg, 0


def count_enforcement(conn: psycopg.Connection[Any], counts: dict[tuple[int, str], int]) -> None:
    """Add to today's (UTC) per-patient counts of positions stripped and messages quarantined."""
    if not counts:
        return
    keys = sorted(counts)
    conn.execute(
        "INSERT INTO consent_enforcement (day, patient_id, kind, count)"
        " SELECT (now() AT TIME ZONE 'UTC')::date, p, k, n FROM unnest(%s::bigint[], %s::text[], %s::bigint[])"
        " AS x(p, k, n) ON CONFLICT (day, patient_id, kind) DO UPDATE"
        " SET count = consent_enforcement.count + EXCLUDED.count",
        ([k[0] for k in keys], [k[1] for k in keys], [counts[k] for k in keys]),
    )


@dataclass(frozen=True)
class EnforcementRow:
    """What the ingest did for lack of consent, one UTC day, patient and kind."""

    day: date
    patient_id: int
    kind: str  # positions_stripped, quarantined
    count: int


def enforcement(conn: psycopg.Connection[Any], days: int) -> list[EnforcementRow]:
    """The counts of the last ``days`` UTC days, newest first."""
    cur = conn.cursor(row_factory=class_row(EnforcementRow))
    return cur.execute(
        "SELECT day, patient_id, kind, count FROM consent_enforcement"
        " WHERE day > (now() AT TIME ZONE 'UTC')::date - %s ORDER BY day DESC, patient_id, kind",
        (days,),
    ).fetchall()
