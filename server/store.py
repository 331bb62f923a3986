"""PostgreSQL schema and people: migrations, users, patients, sessions, the audit log.

Retention lives in :mod:`server.retention`, erasure in :mod:`server.erasure`.

Ingest writes live in :mod:`server.records`, the portal's reads in
:mod:`server.queries`; this module owns the schema and everything about who
may see whom. All functions take an open psycopg connection and leave the
transaction to the caller unless they say otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from server import timescale as timescale_mod

MIGRATION_LOCK_KEY = 0x50_15_CE_5  # pg_advisory_lock key: one migrator at a time
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB, ~50 ms: OWASP's scrypt minimum
ROLES = ("clinician", "admin", "patient", "caregiver")
STAFF_ROLES = ("clinician", "admin")  # the care team: the only roles clinician routes admit
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
ROLLUPS_REBUILT_BY = 3  # the migration that recreates the TimescaleDB continuous aggregates


class StoreError(Exception):
    """A request the store refuses, e.g. an unknown user or a bad role."""


@dataclass(frozen=True)
class User:
    """A person who signs in to the portal.

    ``reason`` is why the current request reads or changes data (the request's
    ``X-Access-Reason`` header, see :mod:`server.api.deps`); :func:`audit`
    records it with every row. It is no part of the identity (not compared).
    """

    id: int
    username: str
    role: str
    reason: str | None = field(default=None, compare=False)

    @property
    def is_admin(self) -> bool:
        """True for admins, who see every patient."""
        return self.role == "admin"

    @property
    def is_staff(self) -> bool:
        """True for clinicians and admins; patients and caregivers see only their own pages."""
        return self.role in STAFF_ROLES


def _migrations(timescale: bool) -> list[tuple[int, str, str]]:
    """``(number, file name, SQL)`` in order; ``NNN_x.timescale.sql`` replaces ``NNN_x.sql`` on Timescale."""
    chosen: dict[int, Path] = {}
    for entry in sorted(MIGRATIONS_DIR.glob("*.sql")):
        number = int(entry.name.split("_", 1)[0])
        variant = entry.name.endswith(".timescale.sql")
        if variant == timescale or (not variant and number not in chosen):
            chosen[number] = entry
    return [(n, e.name, e.read_text(encoding="utf-8")) for n, e in sorted(chosen.items())]


def timescale_usable(conn: psycopg.Connection[Any]) -> bool:
    """True if the server has the ``timescaledb`` extension installed and preloaded."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        " AND current_setting('shared_preload_libraries') LIKE '%%timescaledb%%'"
    ).fetchone()
    return bool(row and row[0])


def store_engine(conn: psycopg.Connection[Any]) -> str:
    """``"timescaledb"`` or ``"postgresql"``: which path migration 002 took on this database."""
    row = conn.execute("SELECT value FROM store_info WHERE key = 'engine'").fetchone()
    return str(row[0]) if row else "postgresql"


def migrate(url: str, timescale: bool | None = None) -> list[int]:
    """Apply the migrations this database lacks, in order; return the numbers applied.

    Idempotent, and safe when several processes run it at once: they queue on
    a session advisory lock and each migration runs in its own transaction (run
    again if it lost a race with a TimescaleDB job, see :mod:`server.timescale`).

    Args:
        url: PostgreSQL connection URL.
        timescale: take the TimescaleDB path (True), the plain one (False), or
            TimescaleDB when the server has it (None). Only decides migrations
            not yet applied: a database keeps the engine it was created with.
    """
    applied: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if 2 in done:
                timescale = store_engine(conn) == "timescaledb"
            elif timescale is None:
                timescale = timescale_usable(conn)
            for number, name, text in _migrations(timescale):
                if number not in done:
                    timescale_mod.retry_job_races(functools.partial(_apply, conn, number, name, text))
                    applied.append(number)
            if timescale and ROLLUPS_REBUILT_BY in applied:
                refresh_rollups(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied


def _apply(conn: psycopg.Connection[Any], number: int, name: str, text: str) -> None:
    """Run one migration and record it, in one transaction."""
    with conn.transaction():
        conn.execute(text.encode())
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))


def refresh_rollups(
    conn: psycopg.Connection[Any], start: datetime | None = None, end: datetime | None = None
) -> None:
    """Recompute the 1-minute and 1-hour rollup buckets overlapping [start, end) (None: unbounded).

    For windows written around the ingest (bulk loads, repairs): the ingest keeps
    the rollups itself. Buckets without stored windows (retention dropped them)
    keep their rollup rows. TimescaleDB refreshes its continuous aggregates
    (waiting for a refresh policy's run), which needs ``conn`` in autocommit
    mode; plain PostgreSQL upserts the recomputed buckets in the caller's
    transaction.
    """
    from server.records import ROLLUP_PARTS, ROLLUPS  # records imports the rule engine; keep store light

    if store_engine(conn) == "timescaledb":
        # TimescaleDB refreshes only whole buckets inside the window: widen it to whole hours.
        lo = None if start is None else datetime.fromtimestamp(start.timestamp() // 3600 * 3600, timezone.utc)
        hi = None if end is None else datetime.fromtimestamp(-(-end.timestamp() // 3600) * 3600, timezone.utc)
        timescale_mod.refresh_aggregates(conn, (table for table, _ in ROLLUPS), lo, hi)
        return
    names = ", ".join(name for name, _, _ in ROLLUP_PARTS)
    exprs = ", ".join(expr for _, expr, _ in ROLLUP_PARTS)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name, _, _ in ROLLUP_PARTS)
    for table, step in ROLLUPS:
        conn.execute(
            f"INSERT INTO {table} (patient_id, bucket, {names})"
            f" SELECT patient_id, date_bin(INTERVAL '{step}', start_at, 'epoch'), {exprs} FROM summaries"
            f" WHERE (%(start)s::timestamptz IS NULL OR start_at >= date_bin(INTERVAL '{step}', %(start)s, 'epoch'))"
            f" AND (%(end)s::timestamptz IS NULL OR start_at < date_bin(INTERVAL '{step}',"
            f" %(end)s - INTERVAL '1 microsecond', 'epoch') + INTERVAL '{step}') GROUP BY 1, 2"
            f" ON CONFLICT (patient_id, bucket) DO UPDATE SET {updates}",
            {"start": start, "end": end},
        )


def hash_password(password: str) -> str:
    """Hash a password with scrypt and a random 16-byte salt, as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches a hash made by :func:`hash_password` (constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got, bytes.fromhex(digest))


def add_user(conn: psycopg.Connection[Any], username: str, password: str, role: str = "clinician") -> int:
    """Create a portal user and return its id; raise StoreError for a bad role or empty password."""
    if role not in ROLES:
        raise StoreError(f"role must be one of {ROLES}, got {role!r}")
    if not username or not password:
        raise StoreError("username and password must not be empty")
    row = conn.execute(
        "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s) RETURNING id",
        (username, hash_password(password), role),
    ).fetchone()
    assert row is not None
    return int(row[0])


def add_patient(conn: psycopg.Connection[Any], name: str, device_id: str, enrolled_by: int | None = None) -> int:
    """Register a patient and the device (phone agent) that reports for them; return the id.

    Enrolment records consent to monitoring by the care team (by ``enrolled_by``,
    the enrolling clinician, else the system); every other purpose stays off
    until granted (:mod:`server.consent`).
    """
    from server.consent import record_enrolment  # consent imports the rule engine; keep store light

    row = conn.execute(
        "INSERT INTO patients (name, device_id) VALUES (%s, %s) RETURNING id", (name, device_id)
    ).fetchone()
    assert row is not None
    record_enrolment(conn, [int(row[0])], enrolled_by)
    return int(row[0])


def user_id(conn: psycopg.Connection[Any], username: str) -> int | None:
    """The id of a user by name, or None."""
    row = conn.execute("SELECT id FROM users WHERE username = %s", (username,)).fetchone()
    return int(row[0]) if row else None


def assign_patient(conn: psycopg.Connection[Any], username: str, patient_id: int) -> None:
    """Put a patient in a user's care (idempotent); StoreError for an unknown user or one not of the care team."""
    row = conn.execute("SELECT id, role FROM users WHERE username = %s", (username,)).fetchone()
    if row is None:
        raise StoreError(f"no user {username!r}")
    if row[1] not in STAFF_ROLES:
        raise StoreError(f"{username!r} is a {row[1]}: only clinicians and admins care for patients")
    conn.execute(
        "INSERT INTO care_assignments (user_id, patient_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (row[0], patient_id),
    )


def link_patient_account(conn: psycopg.Connection[Any], user_id: int, patient_id: int) -> None:
    """Make a ``patient`` user the account of a patient; StoreError if either already has a link."""
    try:
        with conn.transaction():
            conn.execute("INSERT INTO patient_accounts (user_id, patient_id) VALUES (%s, %s)", (user_id, patient_id))
    except psycopg.errors.UniqueViolation as exc:
        raise StoreError(f"patient {patient_id} already has an account") from exc


def account_patient(conn: psycopg.Connection[Any], user_id: int) -> int | None:
    """The patient whose own account this user is, or None."""
    row = conn.execute("SELECT patient_id FROM patient_accounts WHERE user_id = %s", (user_id,)).fetchone()
    return int(row[0]) if row else None


def has_account(conn: psycopg.Connection[Any], patient_id: int) -> bool:
    """True if the patient has an account of their own."""
    return conn.execute("SELECT 1 FROM patient_accounts WHERE patient_id = %s", (patient_id,)).fetchone() is not None


def authenticate(conn: psycopg.Connection[Any], username: str, password: str) -> User | None:
    """The user whose credentials these are, or None."""
    row = conn.execute(
        "SELECT id, username, role, password_hash FROM users WHERE username = %s", (username,)
    ).fetchone()
    if row is None:
        hash_password(password)  # spend the same time, so timing does not reveal usernames
        return None
    return User(row[0], row[1], row[2]) if verify_password(password, row[3]) else None


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_session(conn: psycopg.Connection[Any], user_id: int, hours: float) -> tuple[str, datetime]:
    """Open a session; return its bearer token (shown once, stored hashed) and expiry."""
    token = secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc) + timedelta(hours=hours)
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (%s, %s, %s)",
        (_token_hash(token), user_id, expires),
    )
    return token, expires


def session_user(conn: psycopg.Connection[Any], token: str) -> User | None:
    """The user of an unexpired session token, or None."""
    row = conn.execute(
        "SELECT u.id, u.username, u.role FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = %s AND s.expires_at > now()",
        (_token_hash(token),),
    ).fetchone()
    return User(row[0], row[1], row[2]) if row else None


def end_session(conn: psycopg.Connection[Any], token: str) -> None:
    """Delete a session (logout); expired sessions of anyone are swept at the same time."""
    conn.execute("DELETE FROM sessions WHERE token_hash = %s OR expires_at < now()", (_token_hash(token),))


def can_see(conn: psycopg.Connection[Any], user: User, patient_id: int) -> bool:
    """True if the patient exists, is not erased and is in the user's care (admins: any such patient; never a non-staff user)."""
    if not user.is_staff:
        return False
    if user.is_admin:
        row = conn.execute("SELECT 1 FROM patients WHERE id = %s AND erased_at IS NULL", (patient_id,)).fetchone()
    else:
        row = conn.execute(
            "SELECT 1 FROM care_assignments c JOIN patients p ON p.id = c.patient_id"
            " WHERE c.user_id = %s AND c.patient_id = %s AND p.erased_at IS NULL",
            (user.id, patient_id),
        ).fetchone()
    return row is not None


def audit(
    conn: psycopg.Connection[Any],
    user: User,
    action: str,
    patient_ids: list[int] | set[int],
    detail: dict[str, Any] | None = None,
) -> None:
    """Record that a person read or changed these patients' data (one row per patient), and why.

    The rows can only be added to: the database refuses UPDATE, DELETE and
    TRUNCATE on ``audit_log`` except the audit retention's recorded deletion of
    old rows (migration 065, :mod:`server.retention`).
    """
    conn.cursor().executemany(
        "INSERT INTO audit_log (user_id, action, patient_id, detail, reason) VALUES (%s, %s, %s, %s, %s)",
        [(user.id, action, pid, Jsonb(detail or {}), user.reason) for pid in sorted(set(patient_ids))],
    )
