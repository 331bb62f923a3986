"""Clinic visits: a clinician records one (when, a note), and it starts the patient's next report period.

Visits are append-only (migration 055): a row is never changed. Correcting a
visit's date or note records a new row that names the row it replaces
(``corrects``); withdrawing a visit recorded in error records a row with
``withdrawn``. A row is *current* when no later row replaces it and it is not a
withdrawal; only current visits start report periods. Every row keeps who
recorded it and when, so the history of a visit reads top to bottom.
Functions leave access checks and auditing to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row

# A visit "now" from a browser whose clock runs a little fast is still accepted.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_NOTE = 4000  # characters


class VisitError(ValueError):
    """A visit that cannot be recorded; ``field`` names the part of the request at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Visit:
    """One recorded row of a visit (times are aware UTC datetimes).

    Attributes:
        corrects: the row this one replaces (None: a new visit).
        withdrawn: this row withdraws the visit it corrects.
        current: no later row replaces this one and it is not a withdrawal.
    """

    id: int
    patient_id: int
    visited_at: datetime
    note: str
    corrects: int | None
    withdrawn: bool
    recorded_by: str
    recorded_at: datetime
    current: bool


VISIT_SELECT = (
    "SELECT v.id, v.patient_id, v.visited_at, v.note, v.corrects, v.withdrawn, u.username AS recorded_by,"
    " v.recorded_at, (NOT v.withdrawn AND NOT EXISTS (SELECT 1 FROM visits n WHERE n.corrects = v.id)) AS current"
    " FROM visits v JOIN users u ON u.id = v.recorded_by"
)


def list_visits(conn: psycopg.Connection[Any], patient_id: int) -> list[Visit]:
    """Every row of the patient's visits, current and replaced, the latest visit first."""
    cur = conn.cursor(row_factory=class_row(Visit))
    return cur.execute(
        f"{VISIT_SELECT} WHERE v.patient_id = %s ORDER BY v.visited_at DESC, v.id DESC", (patient_id,)
    ).fetchall()


def last_visit(conn: psycopg.Connection[Any], patient_id: int, before: datetime) -> Visit | None:
    """The patient's latest current visit before ``before``, if any: where its report period starts."""
    cur = conn.cursor(row_factory=class_row(Visit))
    return cur.execute(
        f"SELECT * FROM ({VISIT_SELECT} WHERE v.patient_id = %s AND v.visited_at < %s) x"
        " WHERE current ORDER BY visited_at DESC, id DESC LIMIT 1",
        (patient_id, before),
    ).fetchone()


def check_visit(visited_at: datetime, note: str, now: datetime) -> None:
    """Refuse a visit in the future or with an over-long note (pure); raises :class:`VisitError`."""
    if visited_at > now + FUTURE_TOLERANCE:
        raise VisitError("visited_at", "must not be in the future")
    if len(note) > MAX_NOTE:
        raise VisitError("note", f"at most {MAX_NOTE} characters")


def record_visit(
    conn: psycopg.Connection[Any], patient_id: int, user_id: int, visited_at: datetime | None, note: str | None,
    now: datetime, corrects: int | None = None, withdrawn: bool = False,
) -> Visit:  # fmt: skip
    """Record a visit, or a correction of the current row ``corrects``; return the new row.

    A correction without ``visited_at`` keeps the corrected row's time, without
    ``note`` (None) its note; a new visit's note defaults to "". Runs in
    its own transaction, holding the patient's row so that two corrections of
    one visit take turns (the second then finds it replaced).

    Raises:
        VisitError: a time in the future, a withdrawal of nothing, or ``corrects`` not a current visit
            of this patient.
    """
    if withdrawn and corrects is None:
        raise VisitError("withdrawn", "names no visit: give `corrects`")
    with conn.transaction():
        conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (patient_id,))
        if corrects is not None:
            old = _current_row(conn, patient_id, corrects)
            visited_at = visited_at or old.visited_at
            note = old.note if note is None else note
        note = note or ""
        when = visited_at or now
        check_visit(when, note, now)
        row = conn.execute(
            "INSERT INTO visits (patient_id, visited_at, note, corrects, withdrawn, recorded_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (patient_id, when, note, corrects, withdrawn, user_id),
        ).fetchone()
        assert row is not None
        found = conn.cursor(row_factory=class_row(Visit)).execute(f"{VISIT_SELECT} WHERE v.id = %s", row).fetchone()
    assert found is not None
    return found


def _current_row(conn: psycopg.Connection[Any], patient_id: int, visit_id: int) -> Visit:
    cur = conn.cursor(row_factory=class_row(Visit))
    row = cur.execute(f"{VISIT_SELECT} WHERE v.id = %s AND v.patient_id = %s", (visit_id, patient_id)).fetchone()
    if row is None or not row.current:
        raise VisitError("corrects", f"no current visit {visit_id} of this patient")
    return row
