"""Retention: how long each kind of data is kept, and the job that removes what is older.

One setting per kind, ``PISCES_RETENTION_<KIND>_DAYS`` (``0``: keep forever;
defaults in :class:`server.settings.ServerSettings`, reasons in docs/security.md):

==============  =====================================================  ==========================
kind            what goes once older than the limit                    how
==============  =====================================================  ==========================
summaries       raw summary windows (by window start)                  whole day partitions
                                                                       (TimescaleDB: chunks)
rollups         1-minute and 1-hour rollup buckets                     rows (TimescaleDB: chunks)
events          phone events, and closed symptom periods              rows (TimescaleDB: chunks
                                                                       of events)
strips          ECG strips (by strip start)                            rows
alerts          resolved alerts closed before the cutoff, with their  rows
                history and deliveries
dead_letters    rejected uplink messages and rejected weather lines   rows
audit           audit-log rows, through the recorded path             rows
sessions        sessions expired before the cutoff                     rows
uplink_keys     idempotency keys of uplink messages                    rows
==============  =====================================================  ==========================

:func:`run_retention` runs every kind in its own transaction, under one
session advisory lock (a second job running at the same time skips the run),
and records each kind that removed anything in ``retention_runs``. The audit
log's rows can be deleted only in a transaction holding such a record of kind
``audit`` whose cutoff is newer than the row (trigger of migration 065).
:func:`cutoffs` is the pure part.

On TimescaleDB, the summaries' rollups outlive the raw windows as they do on
plain PostgreSQL: the job first refreshes the continuous aggregates up to the
cutoff (windows that arrived late get in), then drops the chunks without
logging an invalidation (:func:`server.timescale.drop_chunks_keeping_aggregates`),
so no later refresh recomputes those buckets from no windows. A kind that cannot
run (a policy's refresh under way for :data:`RETENTION_PATIENCE_S`, a
TimescaleDB older than 2.28) is skipped with the reason, and the other kinds run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from server.records import ROLLUPS
from server.store import store_engine
from server.timescale import TimescaleError, drop_chunks_keeping_aggregates, refresh_aggregates

RETENTION_LOCK_KEY = 0x50_15_CE_6  # pg_advisory_lock key: one retention job at a time
RETENTION_PATIENCE_S = 10.0  # TimescaleDB: how long the job waits for a policy's refresh of the rollups
ANOTHER_JOB = "another retention job is running"
REFRESH_BUSY = "a refresh of the rollups is under way; nothing dropped, try again"
KINDS = ("summaries", "rollups", "events", "strips", "alerts", "dead_letters", "audit", "sessions", "uplink_keys")


@dataclass(frozen=True)
class Outcome:
    """What one kind removed (or, in a dry run, would remove).

    Attributes:
        kind: one of :data:`KINDS`.
        cutoff: data older than this (UTC) goes.
        rows: rows deleted or to delete; None where only whole partitions/chunks go.
        dropped: partitions or chunks dropped (or to drop) whole.
        skipped: why nothing ran (another job held the lock, a rollup refresh was under way, the
            store cannot drop chunks keeping the rollups), else "".
    """

    kind: str
    cutoff: datetime
    rows: int | None
    dropped: tuple[str, ...]
    skipped: str = ""

    @property
    def failed(self) -> bool:
        """Skipped for a reason other than another job doing the same work: the data is still there."""
        return bool(self.skipped) and self.skipped != ANOTHER_JOB

    @property
    def removed_anything(self) -> bool:
        """True if rows or partitions went (or would go)."""
        return bool(self.rows) or bool(self.dropped)


def cutoffs(days: Mapping[str, float], now: datetime) -> dict[str, datetime]:
    """The cutoff of every kind with a limit (days > 0) at ``now``; pure. Unknown kinds raise ValueError."""
    unknown = set(days) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown retention kinds: {sorted(unknown)}")
    return {kind: now - timedelta(days=d) for kind, d in days.items() if d > 0}


def policy_from(settings: Any) -> dict[str, float]:
    """``{kind: days}`` from a settings object with ``retention_<kind>_days`` attributes."""
    return {kind: float(getattr(settings, f"retention_{kind}_days")) for kind in KINDS}


Remover = Callable[[psycopg.Connection[Any], datetime, bool, bool], tuple[int | None, tuple[str, ...]]]


def run_retention(
    conn: psycopg.Connection[Any], days: Mapping[str, float], now: datetime, *, dry_run: bool = False,
    by: str = "server",
) -> list[Outcome]:
    """Remove what every kind's limit no longer covers; return what each kind with a limit removed.

    Args:
        conn: a connection in autocommit mode (each kind commits on its own).
        days: ``{kind: days}``, 0 = keep (see :func:`policy_from`).
        now: the time the limits count back from (the caller reads the clock).
        dry_run: only count what would go; change nothing, record nothing.
        by: who runs it, recorded in ``retention_runs`` ("server", "cli:<user>").
    """
    limits = cutoffs(days, now)
    if not limits:
        return []
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK_KEY,)).fetchone()
    if not (row and row[0]):
        return [Outcome(k, c, None, (), skipped=ANOTHER_JOB) for k, c in limits.items()]
    try:
        timescale = store_engine(conn) == "timescaledb"
        return [_run_kind(conn, kind, cutoff, timescale, dry_run, by) for kind, cutoff in limits.items()]
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK_KEY,))


def _run_kind(conn: psycopg.Connection[Any], kind: str, cutoff: datetime, timescale: bool, dry_run: bool,
              by: str) -> Outcome:  # fmt: skip
    if kind == "summaries" and timescale and not dry_run and not _rollups_refreshed(conn, cutoff):
        return Outcome(kind, cutoff, None, (), skipped=REFRESH_BUSY)
    try:
        with conn.transaction():
            if kind == "audit" and not dry_run:
                return _purge_audit(conn, cutoff, by)
            rows, dropped = REMOVERS[kind](conn, cutoff, timescale, dry_run)
            outcome = Outcome(kind, cutoff, rows, dropped)
            if outcome.removed_anything and not dry_run:
                _record(conn, outcome, by)
    except TimescaleError as exc:  # this server's TimescaleDB cannot drop chunks keeping the rollups
        return Outcome(kind, cutoff, None, (), skipped=str(exc))
    return outcome


def _rollups_refreshed(conn: psycopg.Connection[Any], cutoff: datetime) -> bool:
    """TimescaleDB, before raw windows go: bring the rollups up to date up to ``cutoff``.

    Windows that arrived late (after the refresh policy's last run) are then in
    the continuous aggregates before their chunks are dropped. A refresh needs
    autocommit, so it runs outside the kind's transaction. False if a policy's
    refresh kept it from starting for :data:`RETENTION_PATIENCE_S` (the ingest
    runs the job between batches, so it does not wait longer: next run).
    """
    try:
        refresh_aggregates(conn, (view for view, _ in ROLLUPS), None, cutoff, patience_s=RETENTION_PATIENCE_S)
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def _record(conn: psycopg.Connection[Any], outcome: Outcome, by: str) -> None:
    conn.execute(
        "INSERT INTO retention_runs (kind, cutoff, rows, dropped, by_whom) VALUES (%s, %s, %s, %s, %s)",
        (outcome.kind, outcome.cutoff, outcome.rows, list(outcome.dropped), by),
    )


def _purge_audit(conn: psycopg.Connection[Any], cutoff: datetime, by: str) -> Outcome:
    """The one path that deletes audit rows: record the run first (the trigger checks it), then delete."""
    count = _delete(conn, "audit_log", "at < %(cutoff)s", cutoff, dry_run=True)
    outcome = Outcome("audit", cutoff, count, ())
    if count:
        _record(conn, outcome, by)
        deleted = _delete(conn, "audit_log", "at < %(cutoff)s", cutoff, dry_run=False)
        assert deleted == count, "audit rows older than the cutoff changed under the retention lock"
    return outcome


def _delete(conn: psycopg.Connection[Any], table: str, where: str, cutoff: datetime, dry_run: bool) -> int:
    """Delete (or count) the rows of ``table`` matching ``where`` (binds ``%(cutoff)s``)."""
    name = sql.Identifier(table)
    if dry_run:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE ").format(name) + sql.SQL(where),
                           {"cutoff": cutoff}).fetchone()  # fmt: skip
        return int(row[0]) if row else 0
    return conn.execute(sql.SQL("DELETE FROM {} WHERE ").format(name) + sql.SQL(where), {"cutoff": cutoff}).rowcount


def _chunks(conn: psycopg.Connection[Any], relation: str, cutoff: datetime, dry_run: bool) -> tuple[str, ...]:
    """TimescaleDB: drop (or list) the chunks of a hypertable or continuous aggregate entirely before ``cutoff``."""
    function = "show_chunks" if dry_run else "drop_chunks"
    rows = conn.execute(f"SELECT {function}(%s::regclass, older_than => %s)::text", (relation, cutoff)).fetchall()
    return tuple(r[0] for r in rows)


def summary_partitions_before(conn: psycopg.Connection[Any], cutoff: datetime) -> list[str]:
    """Plain PostgreSQL: the day partitions of ``summaries`` whose whole day ended by ``cutoff``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'summaries'::regclass ORDER BY c.relname"
    ).fetchall()
    out = []
    for (name,) in rows:
        day = datetime.strptime(name.removeprefix("summaries_"), "%Y%m%d").replace(tzinfo=timezone.utc)
        if day + timedelta(days=1) <= cutoff:
            out.append(name)
    return out


def _summaries(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
               dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
    if timescale:  # this job is the one retention of summaries (migration 080 removed TimescaleDB's policy)
        if dry_run:
            return None, _chunks(conn, "summaries", cutoff, dry_run)
        # Plain drop_chunks would log an invalidation over the dropped range, and the next refresh (the
        # policies reach back to the beginning) would recompute those buckets from no windows: deleted.
        return None, tuple(drop_chunks_keeping_aggregates(conn, "summaries", cutoff))
    names = summary_partitions_before(conn, cutoff)
    if not dry_run:
        for name in names:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    return None, tuple(names)


def _rollups(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
             dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
    if timescale:
        return None, _chunks(conn, "summary_1m", cutoff, dry_run) + _chunks(conn, "summary_1h", cutoff, dry_run)
    return sum(_delete(conn, t, "bucket < %(cutoff)s", cutoff, dry_run) for t in ("summary_1m", "summary_1h")), ()


def _events(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
            dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
    periods = _delete(conn, "symptom_periods", "ended_at < %(cutoff)s", cutoff, dry_run)  # closed ones only
    if timescale:
        return periods, _chunks(conn, "events", cutoff, dry_run)
    return periods + _delete(conn, "events", "at < %(cutoff)s", cutoff, dry_run), ()


def _rows_of(table: str, where: str) -> Remover:
    def remove(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
               dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
        return _delete(conn, table, where, cutoff, dry_run), ()

    return remove


OLD_ALERTS = "alert_id IN (SELECT id FROM alerts WHERE state = 'resolved' AND closed_at < %(cutoff)s)"


def _alerts(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
            dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
    children = sum(_delete(conn, t, OLD_ALERTS, cutoff, dry_run) for t in ("alert_deliveries", "alert_history"))
    return children + _delete(conn, "alerts", "state = 'resolved' AND closed_at < %(cutoff)s", cutoff, dry_run), ()


def _dead_letters(conn: psycopg.Connection[Any], cutoff: datetime, timescale: bool,
                  dry_run: bool) -> tuple[int | None, tuple[str, ...]]:  # fmt: skip
    letters = _delete(conn, "dead_letters", "received_at < %(cutoff)s", cutoff, dry_run)
    return letters + _delete(conn, "weather_rejects", "rejected_at < %(cutoff)s", cutoff, dry_run), ()


REMOVERS: dict[str, Remover] = {
    "summaries": _summaries,
    "rollups": _rollups,
    "events": _events,
    "strips": _rows_of("strips", "start_at < %(cutoff)s"),
    "alerts": _alerts,
    "dead_letters": _dead_letters,
    "audit": _rows_of("audit_log", "at < %(cutoff)s"),  # dry run only; deletion is _purge_audit
    "sessions": _rows_of("sessions", "expires_at < %(cutoff)s"),
    "uplink_keys": _rows_of("uplink_messages", "received_at < %(cutoff)s"),
}
