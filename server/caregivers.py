"""Caregivers: who follows a patient, what they see, and their own delivery settings.

A grant (a ``caregivers`` row) is made when a caregiver redeems the patient's
invitation. The patient chooses its *scopes* (``status``: the patient's state
and last data; ``alerts``: their alerts, live and listed; ``trends``: hourly
vitals) and its *notify level* (``none``, ``red`` only, or ``yellow`` and red).
A caregiver sees a patient only while the grant is not revoked **and** the
patient's consent to caregiver access is in force (:func:`access`), checked on
every request and every live event, so a revocation or a withdrawal ends
access at once, open sessions and streams included. Revoked grants are kept.

The caregiver's own settings say where and when: an e-mail address (an
``alert_channels`` row of theirs) and quiet hours in their time zone. The
patient decides what, the caregiver may only narrow when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import class_row

from wire.errors import WireDecodeError
from wire.medication import zone

SCOPES = ("status", "alerts", "trends")
NOTIFY_LEVELS = ("none", "red", "yellow")


class CaregiverError(ValueError):
    """A caregiver request that cannot be carried out (already following, bad time zone)."""


@dataclass(frozen=True)
class Grant:
    """A caregiver following a patient (``revoked_at`` set: no longer)."""

    id: int
    patient_id: int
    user_id: int
    username: str
    label: str
    scopes: list[str]
    notify_level: str
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Followed:
    """A patient as their caregiver sees the grant: whom they follow and what they may see."""

    grant_id: int
    patient_id: int
    name: str
    label: str
    scopes: list[str]
    notify_level: str


@dataclass(frozen=True)
class Settings:
    """A caregiver's own delivery settings (quiet hours local to ``timezone``; both or neither)."""

    email: str | None
    quiet_start: time | None
    quiet_end: time | None
    timezone: str


GRANT_SELECT = (
    "SELECT g.id, g.patient_id, g.user_id, u.username, g.label, g.scopes, g.notify_level, g.created_at,"
    " g.updated_at, g.revoked_at FROM caregivers g JOIN users u ON u.id = g.user_id"
)


def wants(notify_level: str, alert_level: str) -> bool:
    """True if an alert of ``alert_level`` reaches a caregiver with this notify level (pure)."""
    return notify_level == "yellow" or (notify_level == "red" and alert_level == "red")


def in_quiet_hours(start: time | None, end: time | None, tz: str, now: float) -> bool:
    """True if ``now`` (s since epoch) falls in [start, end) local to ``tz``; the span may pass midnight (pure)."""
    if start is None or end is None or start == end:
        return False
    local = datetime.fromtimestamp(now, timezone.utc).astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)
    return start <= local < end if start < end else (local >= start or local < end)


def check_timezone(tz: str) -> str:
    """The time zone name if the server knows it; CaregiverError otherwise."""
    try:
        zone(tz)  # the IANA list only (not "localtime")
    except WireDecodeError as exc:
        raise CaregiverError(f"timezone: unknown time zone {tz!r}, e.g. 'Europe/Berlin' or 'UTC'") from exc
    return tz


def add(conn: psycopg.Connection[Any], patient_id: int, user_id: int, label: str, scopes: list[str],
        notify_level: str, invitation_id: int | None) -> Grant:  # fmt: skip
    """Let a caregiver follow a patient; CaregiverError if they already do."""
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO caregivers (patient_id, user_id, label, scopes, notify_level, invitation_id)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (patient_id, user_id, label, sorted(set(scopes)), notify_level, invitation_id),
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise CaregiverError("you already follow this patient") from exc
    assert row is not None
    found = get(conn, patient_id, int(row[0]))
    assert found is not None
    return found


def get(conn: psycopg.Connection[Any], patient_id: int, grant_id: int) -> Grant | None:
    """One grant of the patient (revoked or not)."""
    cur = conn.cursor(row_factory=class_row(Grant))
    return cur.execute(f"{GRANT_SELECT} WHERE g.patient_id = %s AND g.id = %s", (patient_id, grant_id)).fetchone()


def list_for_patient(conn: psycopg.Connection[Any], patient_id: int) -> list[Grant]:
    """Every caregiver the patient has had, active first, newest first."""
    cur = conn.cursor(row_factory=class_row(Grant))
    return cur.execute(f"{GRANT_SELECT} WHERE g.patient_id = %s ORDER BY g.revoked_at IS NOT NULL, g.id DESC",
                       (patient_id,)).fetchall()  # fmt: skip


def update(conn: psycopg.Connection[Any], patient_id: int, grant_id: int, label: str, scopes: list[str],
           notify_level: str) -> Grant | None:  # fmt: skip
    """Change what an active caregiver sees and is told; None if no such active grant of the patient."""
    row = conn.execute(
        "UPDATE caregivers SET label = %s, scopes = %s, notify_level = %s, updated_at = now()"
        " WHERE patient_id = %s AND id = %s AND revoked_at IS NULL RETURNING id",
        (label, sorted(set(scopes)), notify_level, patient_id, grant_id),
    ).fetchone()
    return get(conn, patient_id, grant_id) if row else None


def revoke(conn: psycopg.Connection[Any], patient_id: int, grant_id: int, by: int) -> Grant | None:
    """End a caregiver's access at once (idempotent); None if the grant is not the patient's."""
    conn.execute(
        "UPDATE caregivers SET revoked_at = now(), revoked_by = %s, updated_at = now()"
        " WHERE patient_id = %s AND id = %s AND revoked_at IS NULL",
        (by, patient_id, grant_id),
    )
    return get(conn, patient_id, grant_id)


# Active grants of a caregiver whose patient's caregiver-access consent is in force.
FOLLOWED = (
    "SELECT g.id AS grant_id, g.patient_id, p.name, g.label, g.scopes, g.notify_level"
    " FROM caregivers g JOIN patients p ON p.id = g.patient_id"
    " WHERE g.user_id = %(uid)s AND g.revoked_at IS NULL AND pisces_consented(g.patient_id, 'caregivers')"
)


def followed(conn: psycopg.Connection[Any], user_id: int) -> list[Followed]:
    """The patients a caregiver may see now, by name."""
    cur = conn.cursor(row_factory=class_row(Followed))
    return cur.execute(f"{FOLLOWED} ORDER BY p.name, g.patient_id", {"uid": user_id}).fetchall()


def access(conn: psycopg.Connection[Any], user_id: int, patient_id: int) -> Followed | None:
    """The caregiver's grant for this patient if it gives access now (not revoked, consent in force)."""
    cur = conn.cursor(row_factory=class_row(Followed))
    return cur.execute(f"{FOLLOWED} AND g.patient_id = %(pid)s", {"uid": user_id, "pid": patient_id}).fetchone()


def get_settings(conn: psycopg.Connection[Any], user_id: int) -> Settings:
    """The caregiver's delivery settings (defaults: no e-mail, no quiet hours, UTC)."""
    row = conn.execute(
        "SELECT (SELECT target FROM alert_channels WHERE user_id = %(u)s AND kind = 'email' AND enabled"
        " ORDER BY id DESC LIMIT 1), s.quiet_start, s.quiet_end, coalesce(s.timezone, 'UTC')"
        " FROM (SELECT 1) one LEFT JOIN caregiver_settings s ON s.user_id = %(u)s",
        {"u": user_id},
    ).fetchone()
    assert row is not None
    return Settings(row[0], row[1], row[2], row[3])


def set_settings(conn: psycopg.Connection[Any], user_id: int, settings: Settings) -> Settings:
    """Replace the caregiver's settings: one enabled e-mail channel (or none), quiet hours, time zone."""
    check_timezone(settings.timezone)
    with conn.transaction():
        conn.execute(
            "INSERT INTO caregiver_settings (user_id, quiet_start, quiet_end, timezone) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (user_id) DO UPDATE SET quiet_start = EXCLUDED.quiet_start,"
            " quiet_end = EXCLUDED.quiet_end, timezone = EXCLUDED.timezone",
            (user_id, settings.quiet_start, settings.quiet_end, settings.timezone),
        )
        conn.execute("UPDATE alert_channels SET enabled = coalesce(target = %s, false) WHERE user_id = %s AND kind = 'email'",
                     (settings.email, user_id))  # fmt: skip
        if settings.email:
            conn.execute(
                "INSERT INTO alert_channels (kind, target, user_id, min_level) VALUES ('email', %s, %s, 'yellow')"
                " ON CONFLICT (kind, target, user_id) DO UPDATE SET enabled = true",
                (settings.email, user_id),
            )
    return get_settings(conn, user_id)
