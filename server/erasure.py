"""Erasure of a patient's data on request, recorded, keeping what must be kept.

In one transaction (:func:`erase_patient`):

1. the patient's row is locked, and so is their rule state (an ingest batch of
   theirs finishes first, a later one finds no patient for the device);
2. every table holding their rows (:func:`server.patient_tables.discover`) is
   emptied of them, foreign-key children first, except the tables kept:
   :data:`server.patient_tables.KEEP` (the audit log, the erasure records) and
   the configured ``erasure_keep`` list (``PISCES_ERASURE_KEEP``, e.g. alerts
   a medical-record law requires; the rows of their child tables stay with them);
3. the ``patients`` row stays as a pseudonym: name and device id replaced,
   ``erased_at`` set, so kept rows still point at one id that names no one, and
   no read of the API shows the patient again;
4. sessions of the users whose access came from a grant on this patient (the
   care team, caregivers, the patient's own account, and any other erased table
   with a ``user_id``) are closed; the patient's own account is pseudonymised
   (``erased-user-<id>``) and can no longer sign in; consent records are kept
   (:data:`~server.patient_tables.KEPT_RECORDS`: the proof of what was agreed);
5. the device step runs (``device_step``: broker credentials revoked, the
   retained config cleared; see :func:`device_cleanup`) and its outcome is recorded;
6. an ``erasures`` row (who, when, why, rows per table, what was kept and why,
   sessions closed, the device outcome) and an audit row are written.

On TimescaleDB the rollups are continuous aggregates (views): in the same
transaction the patient's rows are deleted from their materialisations, since
no refresh would remove the rollups of windows that retention dropped (it keeps
them, :mod:`server.retention`); the rest of the aggregates is the real-time
part, computed from the windows, which go with the summaries. They are not
counted in the record's rows per table (they are derived from the summaries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from server import credentials
from server.notify import downlink_client, publish_retained
from server.consent import PURPOSES
from server.patient_tables import KEEP, KEPT_RECORDS, Scope, discover, kept_referencing
from server.records import ROLLUPS
from server.store import StoreError, User, audit, store_engine
from server.timescale import delete_materialised
from wire import Kind, topic_for

ERASED_NAME = "[erased]"
DEVICE_TIMEOUT_S = 5.0
DeviceStep = Callable[[str], dict[str, str]]


class ErasureError(StoreError):
    """An erasure refused before anything changed; ``status`` is the HTTP status that fits."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Erasure:
    """What an erasure did (the ``erasures`` row)."""

    id: int
    at: datetime
    patient_id: int
    requested_by: str
    reason: str
    erased: dict[str, int]  # table -> rows deleted
    kept: dict[str, str]  # table -> why
    sessions_closed: int
    device: dict[str, str]  # step -> outcome


def erase_patient(conn: psycopg.Connection[Any], patient_id: int, user: User, reason: str, confirm_device: str,
                  keep: Iterable[str] = (), device_step: DeviceStep | None = None) -> Erasure:  # fmt: skip
    """Erase a patient's data (see the module docstring); ``conn`` in autocommit mode.

    Args:
        user: who asks (recorded; the caller checks they may).
        reason: why (required, recorded).
        confirm_device: the patient's device id, against erasing the wrong patient by a typo.
        keep: tables to keep besides :data:`KEEP` (configured ``erasure_keep``).
        device_step: run on the device id before the commit; its outcome is recorded.

    Raises:
        ErasureError: unknown or already erased patient (404/409), wrong confirmation,
            empty reason, an unknown or inconsistent keep list (422). Nothing changed then.
    """
    if not reason.strip():
        raise ErasureError("reason: say why the data are erased", 422)
    with conn.transaction():
        device = _lock_patient(conn, patient_id, confirm_device)
        scopes = discover(conn)
        kept = _kept(conn, scopes, set(keep))
        args = {"patient": patient_id, "device": device}
        users = _granted_users(conn, [s for s in scopes if s.depth == 0], args)
        own = [r[0] for r in conn.execute("SELECT user_id FROM patient_accounts WHERE patient_id = %s",
                                          (patient_id,)).fetchall()]  # fmt: skip
        erased = {s.table: conn.execute(s.delete(), args).rowcount
                  for s in reversed(scopes) if s.table not in kept}  # fmt: skip
        if store_engine(conn) == "timescaledb":
            for view, _ in ROLLUPS:
                delete_materialised(conn, view, "patient_id", patient_id)
        withdraw_all(conn, patient_id)
        conn.execute("UPDATE patients SET name = %s, device_id = 'erased:' || id, last_data_at = NULL,"
                     " erased_at = now() WHERE id = %s", (ERASED_NAME, patient_id))  # fmt: skip
        # The patient's own sign-in (its username may name them) cannot sign in again and keeps
        # only a pseudonym: the row stays, since the audit log refers to it.
        conn.execute("UPDATE users SET username = 'erased-user-' || id, password_hash = '!' WHERE id = ANY(%s)",
                     (own,))  # fmt: skip
        closed = conn.execute("DELETE FROM sessions s USING users u WHERE u.id = s.user_id AND u.role <> 'admin'"
                              " AND s.user_id = ANY(%s)", (sorted(users),)).rowcount  # fmt: skip
        outcome = device_step(device) if device_step else {"credentials": "not_configured"}
        record = _record(conn, patient_id, user, reason, erased, kept, closed, outcome)
        audit(conn, user, "erase:patient", [patient_id], {"erasure_id": record.id, "reason": reason})
    return record


def withdraw_all(conn: psycopg.Connection[Any], patient_id: int) -> None:
    """Record every purpose still granted as withdrawn by the erasure (the kept record then ends in a withdrawal)."""
    conn.execute(
        "INSERT INTO consents (patient_id, purpose, granted, actor, method)"
        " SELECT %(p)s, purpose, false, 'system', 'erasure of the patient''s data'"
        " FROM unnest(%(purposes)s::text[]) AS purpose WHERE pisces_consented(%(p)s, purpose)",
        {"p": patient_id, "purposes": list(PURPOSES)},
    )


def _lock_patient(conn: psycopg.Connection[Any], patient_id: int, confirm_device: str) -> str:
    row = conn.execute("SELECT device_id, erased_at FROM patients WHERE id = %s FOR UPDATE", (patient_id,)).fetchone()
    if row is None:
        raise ErasureError(f"no patient {patient_id}", 404)
    if row[1] is not None:
        raise ErasureError(f"patient {patient_id} was erased at {row[1]:%Y-%m-%d %H:%M} UTC", 409)
    if confirm_device != row[0]:
        raise ErasureError("confirm_device: give the patient's device id to confirm", 422)
    conn.execute("SELECT 1 FROM rule_state WHERE patient_id = %s FOR UPDATE", (patient_id,))
    return str(row[0])


def _kept(conn: psycopg.Connection[Any], scopes: list[Scope], keep: set[str]) -> dict[str, str]:
    """``table -> why`` of everything kept: :data:`KEEP`, ``keep`` and the children of kept tables."""
    known = {s.table for s in scopes}
    unknown = keep - known
    if unknown:
        raise ErasureError(f"erasure_keep: no patient table {sorted(unknown)} (known: {sorted(known)})", 422)
    records = {t: why for t, why in KEPT_RECORDS.items() if t in known}
    kept = dict(KEEP) | records | {t: "configured to be kept (erasure_keep)" for t in keep}
    for s in scopes:  # parents come first
        parent = s.via.removeprefix("fk:")
        if s.via.startswith("fk:") and parent in kept and s.table not in kept:
            kept[s.table] = f"belongs to kept rows of {parent}"
    blocked = kept_referencing(conn, [s for s in scopes if s.table not in kept], set(kept))
    if blocked:
        raise ErasureError(f"erasure_keep: kept tables refer to erased ones: {blocked}", 422)
    return kept


def _granted_users(conn: psycopg.Connection[Any], direct: list[Scope], args: dict[str, Any]) -> set[int]:
    """Users named in a ``user_id`` column of a table naming the patient (care team, grants)."""
    with_user = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name = 'user_id'").fetchall()}  # fmt: skip
    users: set[int] = set()
    for scope in direct:
        if scope.table in with_user:
            users |= {r[0] for r in conn.execute(scope.select("DISTINCT user_id"), args).fetchall() if r[0]}
    return users


def _record(conn: psycopg.Connection[Any], patient_id: int, user: User, reason: str, erased: dict[str, int],
            kept: dict[str, str], closed: int, device: dict[str, str]) -> Erasure:  # fmt: skip
    row = conn.execute(
        "INSERT INTO erasures (patient_id, requested_by, reason, erased, kept, sessions_closed, device)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, at",
        (patient_id, user.id, reason, Jsonb(erased), Jsonb(kept), closed, Jsonb(device)),
    ).fetchone()
    assert row is not None
    return Erasure(row[0], row[1], patient_id, user.username, reason, erased, kept, closed, device)


def list_erasures(conn: psycopg.Connection[Any], limit: int = 100) -> list[Erasure]:
    """The newest erasure records first."""
    rows = conn.execute(
        "SELECT e.id, e.at, e.patient_id, u.username, e.reason, e.erased, e.kept, e.sessions_closed, e.device"
        " FROM erasures e JOIN users u ON u.id = e.requested_by ORDER BY e.id DESC LIMIT %s", (limit,),
    ).fetchall()  # fmt: skip
    return [Erasure(*r) for r in rows]


def device_cleanup(settings: Any, password_file: Path | None = None) -> DeviceStep:
    """The device step of an erasure: revoke the broker credentials and clear the retained config.

    Credentials: in ``password_file`` (default ``settings.broker_password_file``;
    reload the broker afterwards, as for ``pisces devices revoke``). The retained
    ``config`` (the patient's limits) is replaced by an empty retained message when
    ``settings.mqtt_url`` is set. Each outcome is a word: revoked, absent,
    not_configured, cleared, failed.
    """
    path = password_file or (Path(settings.broker_password_file) if settings.broker_password_file else None)

    def step(device_id: str) -> dict[str, str]:
        out = {"credentials": "not_configured", "retained_config": "not_configured"}
        if path is not None:
            out["credentials"] = "revoked" if credentials.revoke(path, device_id) else "absent"
        if settings.mqtt_url:
            out["retained_config"] = "cleared" if _clear_retained(settings, device_id) else "failed"
        return out

    return step


def _clear_retained(settings: Any, device_id: str) -> bool:
    client = downlink_client(settings, f"{settings.mqtt_client_id}-erasure")
    client.loop_start()
    try:
        deadline = time.monotonic() + DEVICE_TIMEOUT_S
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        return publish_retained(client, topic_for(device_id, Kind.CONFIG), b"", DEVICE_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()
