"""What only the TimescaleDB path of the store does: refresh continuous aggregates, drop chunks.

:mod:`server.store` decides which engine a database has and calls these for
TimescaleDB (2.28; the refresh options and the setting below are not in older releases).
These behaviours of TimescaleDB shape them (see docs/server.md):

- A refresh of a continuous aggregate recomputes every bucket of its window that
  the invalidation log marks, and refuses to run while another refresh of an
  overlapping window is under way (SQLSTATE 55P03), e.g. the refresh policy's,
  whose window reaches back to the beginning since migration 080. So a refresh
  here waits and tries again.
- A refresh split into batches (TimescaleDB 2.28's default, 10 buckets a batch)
  skips the bucket of an invalidation that ends exactly on a batch boundary (fixed
  in 2.29, issue timescale/timescaledb#10221): a late window starting on a
  10-minute boundary stayed out of the 1-minute rollups until a later refresh. So
  every refresh here, and the refresh policies (migration 080), run in one pass.
- The scheduler starts a database's policy jobs as soon as a migration has
  created them; one that starts while a later migration drops or alters what it
  touches makes that migration fail with "tuple concurrently updated". Each
  migration is one transaction, so it is simply run again.
- Dropping chunks logs an invalidation over their range, and the next refresh
  over it would recompute those buckets from no windows: the rollups of dropped
  windows would be deleted. So chunks are dropped with
  ``timescaledb.skip_cagg_invalidation`` on (TimescaleDB 2.28 or newer) and
  nothing ever recomputes those buckets. For the same reason no refresh can
  remove rollups of such windows (an erasure must): they are deleted from the
  aggregate's materialisation directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import errors, sql

SKIP_CAGG_INVALIDATION = "timescaledb.skip_cagg_invalidation"
REFRESH_PATIENCE_S = 600.0  # how long a refresh waits for a concurrent one (a policy's after a bulk load)
ONE_PASS = '{"buckets_per_batch": 0}'  # refresh options: no batches (see the module docstring)
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0  # the wait between tries doubles from the first to the max
RACE_TRIES, RACE_PAUSE_S = 3, 0.5  # a transaction that lost a catalog race with a job: tries, pause between
T = TypeVar("T")


class TimescaleError(Exception):
    """The TimescaleDB server cannot do what was asked (e.g. it is older than this store needs)."""


def refresh_aggregates(
    conn: psycopg.Connection[Any], views: Iterable[str], lo: datetime | None, hi: datetime | None,
    patience_s: float = REFRESH_PATIENCE_S,
) -> None:  # fmt: skip
    """Refresh continuous aggregates over [lo, hi) (None: unbounded); ``conn`` must be in autocommit mode.

    Waits for a concurrent refresh of an overlapping window for up to
    ``patience_s`` seconds, then lets :class:`psycopg.errors.LockNotAvailable` through.
    """
    for view in views:
        deadline, delay = time.monotonic() + patience_s, RETRY_FIRST_S
        while True:
            try:
                conn.execute(
                    "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz,"
                    " options => %s::jsonb)", (view, lo, hi, ONE_PASS),
                )  # fmt: skip
                break
            except errors.LockNotAvailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_S)


def retry_job_races(step: Callable[[], T]) -> T:
    """Run ``step`` (one transaction) again when a background job updated a catalog row it updates too."""
    for attempt in range(1, RACE_TRIES + 1):
        try:
            return step()
        except errors.InternalError_ as exc:
            if "tuple concurrently updated" not in str(exc) or attempt == RACE_TRIES:
                raise
            time.sleep(RACE_PAUSE_S)
    raise AssertionError("unreachable")


def drop_chunks_keeping_aggregates(conn: psycopg.Connection[Any], table: str, older_than: datetime) -> list[str]:
    """Drop the chunks of ``table`` that end by ``older_than``, logging no continuous-aggregate invalidation.

    Returns the dropped chunks' names. The setting is on for this one statement
    and set back before anything else runs in the transaction (also when
    ``conn`` is inside a caller's transaction).
    """
    with conn.transaction():
        known = conn.execute("SELECT current_setting(%s, true) IS NOT NULL", (SKIP_CAGG_INVALIDATION,)).fetchone()
        if not (known and known[0]):
            raise TimescaleError(f"dropping chunks that keep their rollups needs TimescaleDB 2.28 or newer"
                                 f" ({SKIP_CAGG_INVALIDATION})")  # fmt: skip
        conn.execute("SELECT set_config(%s, 'on', true)", (SKIP_CAGG_INVALIDATION,))
        rows = conn.execute("SELECT drop_chunks(%s::regclass, older_than => %s)", (table, older_than)).fetchall()
        conn.execute("SELECT set_config(%s, 'off', true)", (SKIP_CAGG_INVALIDATION,))
    return [str(r[0]) for r in rows]


def delete_materialised(conn: psycopg.Connection[Any], view: str, column: str, value: object) -> int:
    """Delete the materialised rows of continuous aggregate ``view`` whose ``column`` is ``value``; return how many.

    A refresh recomputes buckets from the raw rows still there, so rows whose raw
    rows were dropped without an invalidation (:func:`drop_chunks_keeping_aggregates`)
    go only so. Rows of the real-time part (above the watermark) are computed from
    the raw rows and go with them.
    """
    row = conn.execute(
        "SELECT materialization_hypertable_schema, materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates WHERE view_schema = current_schema() AND view_name = %s",
        (view,),
    ).fetchone()
    if row is None:
        raise TimescaleError(f"{view} is not a continuous aggregate of this schema")
    query = sql.SQL("DELETE FROM {} WHERE {} = %s").format(sql.Identifier(*row), sql.Identifier(column))
    return conn.execute(query, (value,)).rowcount
