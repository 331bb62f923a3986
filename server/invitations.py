"""One-time invitation codes: a patient's own account (made by a clinician) and caregivers (made by the patient).

A code is 12 characters of Crockford's base32 (60 random bits), shown once as
``XXXX-XXXX-XXXX`` and stored only as its SHA-256 (the codes are random, so a
fast hash suffices, as for session tokens). It expires after
``settings.invitation_hours`` and is used at most once: :func:`claim` locks a
usable invitation inside the caller's transaction and :func:`mark_used`
consumes it with the account it went to, so two people racing for one code
cannot both have it. Guessing is rate-limited with the sign-in limiter.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row

Kind = Literal["patient", "caregiver"]
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_CHARS = 12
GROUP = 4
# What people mistype for Crockford characters.
READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True)
class Invitation:
    """An invitation; ``status`` is pending, used, expired or cancelled."""

    id: int
    kind: str
    patient_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    cancelled_at: datetime | None
    label: str
    scopes: list[str]
    notify_level: str
    status: str


def new_code() -> str:
    """A fresh random code, grouped for reading aloud: ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + GROUP] for i in range(0, CODE_CHARS, GROUP))


def normalise(code: str) -> str | None:
    """The code's characters as stored (upper case, no separators, O/I/L read as 0/1), or None if malformed."""
    text = "".join(code.split()).replace("-", "").upper().translate(READ_AS)
    if len(text) != CODE_CHARS or any(ch not in ALPHABET for ch in text):
        return None
    return text


def code_hash(code: str) -> bytes:
    """SHA-256 of the normalised code (what the table keeps)."""
    return hashlib.sha256((normalise(code) or code).encode()).digest()


SELECT = (
    "SELECT id, kind, patient_id, created_at, expires_at, used_at, cancelled_at, label, scopes, notify_level,"
    " CASE WHEN used_at IS NOT NULL THEN 'used' WHEN cancelled_at IS NOT NULL THEN 'cancelled'"
    " WHEN expires_at <= now() THEN 'expired' ELSE 'pending' END AS status FROM invitations"
)
USABLE = "used_at IS NULL AND cancelled_at IS NULL AND expires_at > now()"


def create(
    conn: psycopg.Connection[Any], kind: Kind, patient_id: int, created_by: int, hours: float,
    label: str = "", scopes: tuple[str, ...] = (), notify_level: str = "none",
) -> tuple[Invitation, str]:  # fmt: skip
    """Store a new invitation; return it and its code (the only time the code exists in the clear)."""
    code = new_code()
    expires = datetime.now(timezone.utc) + timedelta(hours=hours)
    row = conn.execute(
        "INSERT INTO invitations (kind, patient_id, code_hash, created_by, expires_at, label, scopes, notify_level)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (kind, patient_id, code_hash(code), created_by, expires, label, sorted(set(scopes)), notify_level),
    ).fetchone()
    assert row is not None
    found = get(conn, patient_id, int(row[0]))
    assert found is not None
    return found, code


def get(conn: psycopg.Connection[Any], patient_id: int, invitation_id: int) -> Invitation | None:
    """One invitation of the patient."""
    cur = conn.cursor(row_factory=class_row(Invitation))
    return cur.execute(f"{SELECT} WHERE patient_id = %s AND id = %s", (patient_id, invitation_id)).fetchone()


def list_for(conn: psycopg.Connection[Any], patient_id: int, kind: Kind) -> list[Invitation]:
    """The patient's invitations of one kind, newest first."""
    cur = conn.cursor(row_factory=class_row(Invitation))
    return cur.execute(f"{SELECT} WHERE patient_id = %s AND kind = %s ORDER BY id DESC", (patient_id, kind)).fetchall()


def claim(conn: psycopg.Connection[Any], code: str) -> Invitation | None:
    """Lock the usable invitation with this code until the caller's transaction ends; None if there is none."""
    if normalise(code) is None:
        return None
    cur = conn.cursor(row_factory=class_row(Invitation))
    return cur.execute(f"{SELECT} WHERE code_hash = %s AND {USABLE} FOR UPDATE", (code_hash(code),)).fetchone()


def mark_used(conn: psycopg.Connection[Any], invitation_id: int, user_id: int) -> None:
    """Consume a claimed invitation: it went to this account."""
    conn.execute("UPDATE invitations SET used_at = now(), used_by = %s WHERE id = %s", (user_id, invitation_id))


def cancel(conn: psycopg.Connection[Any], patient_id: int, invitation_id: int) -> Invitation | None:
    """Cancel a pending invitation of the patient (a used or expired one stays as it is); None if not theirs."""
    conn.execute(
        f"UPDATE invitations SET cancelled_at = now() WHERE patient_id = %s AND id = %s AND {USABLE}",
        (patient_id, invitation_id),
    )
    return get(conn, patient_id, invitation_id)
