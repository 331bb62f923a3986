"""Ingest writes: uplink messages to rows, rule state and alert rows.

Every function runs inside the caller's transaction; :mod:`server.ingest`
commits once per batch of MQTT messages, so a message's rows, its idempotency
key, the rule state and the alerts it caused are stored together or not at all.
The ``*_many`` functions are the bulk path (one statement for a whole batch);
they take row locks in a fixed order (keys, then patient ids, ascending) so
that concurrent workers wait for each other instead of deadlocking.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import psycopg
from psycopg import postgres, pq
from psycopg.adapt import Dumper, Transformer
from psycopg.types.json import Jsonb

from server.rules import AlertAction, RuleState
from wire import Event, EventType, Status, Strip, Summary

ALERT_CHANNEL = "pisces_alerts"  # PostgreSQL NOTIFY channel; payload: the alert id

SUMMARY_COLUMNS = (
    "patient_id, device_id, seq, idx, start_at, end_at, beats, hr_mean, hr_min, hr_max, rr_mean,"
    " sdnn, rmssd, flags, resp_rate, activity, intensity, quality, battery, lat, lon,"
    " pnn50, pause_max, ectopic, steps, posture_changes, fall"
)
# PostgreSQL types of SUMMARY_COLUMNS, for binary COPY.
SUMMARY_TYPES = (
    "int8", "text", "int8", "int4", "timestamptz", "timestamptz", "int4", "float4", "float4", "float4",
    "float4", "float4", "float4", "text[]", "float4", "text", "float4", "float4", "int2", "float8", "float8",
    "float4", "float4", "int4", "int4", "int4", "bool",
)  # fmt: skip
STAGE = "pisces_stage_summaries"  # per-connection temporary staging table
ROLLUPS = (("summary_1m", "1 minute"), ("summary_1h", "1 hour"))
ROLLUP_QUALITY = 0.5  # the rollups' u_* columns count windows of at least this quality (store_info)
_U = "FILTER (WHERE quality >= 0.5)"
# Flags that mark a rhythm episode (isolated ectopic beats do not); server.trends.ARRHYTHMIA_FLAGS.
RHYTHM_FLAGS_SQL = "'{af_suspected,brady,irregular,pause,tachy,vt}'::text[]"
# Rollup columns after (patient_id, bucket): (name, aggregate over summary rows, how two buckets merge).
# Sums and counts only, so that means over any span stay exact (mean = sum / n).
ROLLUP_PARTS: tuple[tuple[str, str, str], ...] = (
    ("windows", "count(*)", "sum"), ("beats", "sum(beats)::bigint", "sum"),
    ("hr_n", "count(hr_mean)", "sum"), ("hr_sum", "sum(hr_mean::float8)", "sum"),
    ("hr_min", "min(hr_min)", "min"), ("hr_max", "max(hr_max)", "max"),
    ("resp_n", "count(resp_rate)", "sum"), ("resp_sum", "sum(resp_rate::float8)", "sum"),
    ("quality_sum", "sum(quality::float8)", "sum"),
    ("usable", f"count(*) {_U}", "sum"),
    ("u_hr_n", f"count(hr_mean) {_U}", "sum"), ("u_hr_sum", f"sum(hr_mean::float8) {_U}", "sum"),
    ("u_hr_min", f"min(hr_min) {_U}", "min"), ("u_hr_max", f"max(hr_max) {_U}", "max"),
    ("u_sdnn_n", f"count(sdnn) {_U}", "sum"), ("u_sdnn_sum", f"sum(sdnn::float8) {_U}", "sum"),
    ("u_rmssd_n", f"count(rmssd) {_U}", "sum"), ("u_rmssd_sum", f"sum(rmssd::float8) {_U}", "sum"),
    ("u_resp_n", f"count(resp_rate) {_U}", "sum"), ("u_resp_sum", f"sum(resp_rate::float8) {_U}", "sum"),
    ("u_pause_max", f"max(pause_max) {_U}", "max"),
    ("rhythm", f"count(*) FILTER (WHERE quality >= 0.5 AND flags && {RHYTHM_FLAGS_SQL})", "sum"),
    ("intensity_n", "count(intensity)", "sum"), ("intensity_sum", "sum(intensity::float8)", "sum"),
    ("steps_n", "count(steps)", "sum"), ("steps_sum", "sum(steps)::bigint", "sum"),
    ("falls", "count(*) FILTER (WHERE fall)", "sum"),
    *((f"act_{a}", f"count(*) FILTER (WHERE activity = '{a}')", "sum")
      for a in ("lying", "rest", "run", "unknown", "walk")),
)  # fmt: skip
ROLLUP_MERGE_SQL = {
    "sum": "COALESCE({a} + {b}, {a}, {b})", "min": "LEAST({a}, {b})", "max": "GREATEST({a}, {b})",
}
_ROLLUP_SELECT = (
    "SELECT patient_id, date_bin(INTERVAL '{step}', start_at, 'epoch'), "
    + ", ".join(expr for _, expr, _ in ROLLUP_PARTS)
    + " FROM ins GROUP BY 1, 2 ORDER BY 1, 2"
)
_ROLLUP_MERGE = " ON CONFLICT (patient_id, bucket) DO UPDATE SET " + ", ".join(
    f"{name} = " + ROLLUP_MERGE_SQL[how].format(a="{t}." + name, b="EXCLUDED." + name)
    for name, _, how in ROLLUP_PARTS
)
_ROLLUP_INPUTS = (
    "patient_id, start_at, beats, hr_mean, hr_min, hr_max, sdnn, rmssd, flags, resp_rate, activity,"
    " intensity, quality, pause_max, steps, fall"
)


@dataclass(frozen=True)
class AlertChange:
    """An alert row that an action created or changed (what the notifier needs)."""

    alert_id: int
    kind: str  # "open", "escalate", "resolve"
    level: str
    parameter: str
    time: float  # s since epoch
    trigger: dict[str, Any]


def ts(seconds: float) -> datetime:
    """Seconds since the Unix epoch -> an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def device_patient(conn: psycopg.Connection[Any], device_id: str) -> int | None:
    """The id of the patient a device reports for, or None for an unknown device."""
    row = conn.execute("SELECT id FROM patients WHERE device_id = %s", (device_id,)).fetchone()
    return int(row[0]) if row else None


def claim_message(conn: psycopg.Connection[Any], device_id: str, seq: int, kind: str) -> bool:
    """Record (device, seq) as stored; False if it already was (a duplicate)."""
    row = conn.execute(
        "INSERT INTO uplink_messages (device_id, seq, kind) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        (device_id, seq, kind),
    ).fetchone()
    return row is not None


def device_patients(conn: psycopg.Connection[Any], devices: Iterable[str]) -> dict[str, int]:
    """``device id -> patient id`` for the known ones among ``devices``."""
    rows = conn.execute(
        "SELECT device_id, id FROM patients WHERE device_id = ANY(%s)", (sorted(set(devices)),)
    ).fetchall()
    return {str(d): int(p) for d, p in rows}


def claim_many(conn: psycopg.Connection[Any], keys: Sequence[tuple[str, int, str]]) -> set[tuple[str, int]]:
    """Record ``(device, seq, kind)`` keys as stored; return those that were new (the rest are duplicates)."""
    if not keys:
        return set()
    ordered = sorted(keys)
    rows = conn.execute(
        "INSERT INTO uplink_messages (device_id, seq, kind)"
        " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[]) ORDER BY 1, 2"
        " ON CONFLICT DO NOTHING RETURNING device_id, seq",
        ([k[0] for k in ordered], [k[1] for k in ordered], [k[2] for k in ordered]),
    ).fetchall()
    return {(str(d), int(s)) for d, s in rows}


def ensure_partitions(conn: psycopg.Connection[Any], days: Iterable[date]) -> int:
    """Create the summary partitions for these UTC days if missing; returns how many were made."""
    row = conn.execute("SELECT pisces_ensure_summary_partitions(%s::date[])", (sorted(set(days)),)).fetchone()
    return int(row[0]) if row else 0


def summary_days(msg: Summary) -> set[date]:
    """The UTC days the windows of a summary message start on (their partitions).

    The first and last start on the same day (the common case) put every window there.
    """
    starts = [w.start for w in msg.windows]
    first, last = ts(min(starts)).date(), ts(max(starts)).date()
    return {first} if first == last else {ts(t).date() for t in starts}


def store_summaries(
    conn: psycopg.Connection[Any], batch: Sequence[tuple[int, Summary]], rollups: bool | None = None
) -> int:
    """Bulk-write the windows of new summary messages; returns the rows inserted.

    The messages must be new: their (device, seq) keys claimed in this same
    transaction (:func:`claim_many`), which is what keeps every window stored
    once. A window already stored is an error (unique violation), never skipped
    in silence; the ingest then stores its batch message by message and keeps
    the one refused as a dead letter.

    COPY (binary) into a temporary staging table, then one statement that moves
    the staged rows into ``summaries``, moves each patient's ``last_data_at``
    forward and, with ``rollups`` (plain PostgreSQL; None: unless the store is
    TimescaleDB, whose continuous aggregates do it), adds the rows to the
    1-minute and 1-hour rollup tables.
    """
    with summaries_in_flight(conn, batch, rollups) as inserted:
        pass
    return inserted[0]


@contextlib.contextmanager
def summaries_in_flight(
    conn: psycopg.Connection[Any], batch: Sequence[tuple[int, Summary]], rollups: bool | None = None
) -> Iterator[list[int]]:
    """:func:`store_summaries`, with the caller's own work done while PostgreSQL moves the rows.

    The rows are staged (COPY) on entering; the statement that moves them (most
    of the database's work for a batch) is then sent in pipeline mode and its
    result read on leaving, so Python work in the block (the ingest judges the
    rules there) runs while PostgreSQL inserts. The block must not use ``conn``.
    The yielded list holds the rows inserted once the block is left; an error
    of the statement (e.g. a window already stored) is raised on leaving.
    """
    inserted = [0]
    if not batch:
        yield inserted
        return
    if conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE:
        # The COPY would commit on its own and the staging table empty itself: nothing stored.
        raise psycopg.ProgrammingError("summaries are stored inside a transaction (conn.transaction())")
    if rollups is None:
        row = conn.execute("SELECT value FROM store_info WHERE key = 'engine'").fetchone()
        rollups = row is None or row[0] != "timescaledb"
    _stage_summaries(conn, batch)
    with conn.pipeline():
        cur = conn.execute(_MOVE_STAGED_WITH_ROLLUPS if rollups else _MOVE_STAGED)
        yield inserted
        row = cur.fetchone()
    inserted[0] = int(row[0]) if row else 0


def _stage_summaries(conn: psycopg.Connection[Any], batch: Sequence[tuple[int, Summary]]) -> None:
    """COPY (binary) the windows into the connection's staging table, made on first use.

    Window times go as they are (Unix seconds) and flags as their tuple: the
    COPY's own dumpers for those two types write them (:class:`_EpochSecondsDumper`,
    :class:`_FlagsDumper`), with no datetime or list made per window.
    """
    conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE summaries INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    cur = conn.cursor()
    cur.adapters.register_dumper(None, _EpochSecondsDumper)  # by oid only: this cursor's COPY
    cur.adapters.register_dumper(None, _FlagsDumper)
    with cur.copy(f"COPY {STAGE} ({SUMMARY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(SUMMARY_TYPES)
        for patient_id, msg in batch:
            for idx, w in enumerate(msg.windows):
                copy.write_row((
                    patient_id, msg.device, msg.seq, idx, w.start, w.end, w.beats,
                    w.hr_mean, w.hr_min, w.hr_max, w.rr_mean, w.sdnn, w.rmssd, w.flags,
                    w.resp_rate, w.activity, w.intensity, w.quality, w.battery, w.lat, w.lon,
                    w.pnn50, w.pause_max, w.ectopic, w.steps, w.posture_changes, w.fall,
                ))  # fmt: skip


_PG_EPOCH_S = 946_684_800  # 2000-01-01 00:00 UTC in Unix seconds: where PostgreSQL's timestamps count from
_INT8 = struct.Struct("!q")
_TEXT_ARRAY_OID = postgres.types["text"].array_oid
_FLAGS_BINARY: dict[tuple[str, ...], bytes] = {}  # flag tuples seen -> their binary text[]


class _EpochSecondsDumper(Dumper):
    """Unix seconds (a float) -> binary ``timestamptz`` (microseconds since 2000-01-01 UTC).

    Rounded to the microsecond as :func:`ts` rounds (``datetime.fromtimestamp``:
    the fraction, half to even), so a window's times are stored alike either way.
    """

    format = pq.Format.BINARY
    oid = postgres.types["timestamptz"].oid

    def dump(self, obj: float) -> bytes:
        frac, whole = math.modf(obj)
        return _INT8.pack((int(whole) - _PG_EPOCH_S) * 1_000_000 + round(frac * 1e6))


class _FlagsDumper(Dumper):
    """A window's flags (a tuple of str) -> binary ``text[]``, each distinct tuple encoded once.

    Encoded by psycopg's own array dumper; the flags are sorted, unique and of a
    closed set (wire contract), so there are at most a hundred or so tuples to keep.
    """

    format = pq.Format.BINARY
    oid = _TEXT_ARRAY_OID

    def dump(self, obj: tuple[str, ...]) -> bytes:
        got = _FLAGS_BINARY.get(obj)
        if got is None:
            tx = Transformer()
            tx.set_dumper_types([_TEXT_ARRAY_OID], pq.Format.BINARY)
            got = _FLAGS_BINARY[obj] = bytes(tx.dump_sequence([list(obj)], [pq.Format.BINARY])[0] or b"")
        return got


def _move_staged(rollups: bool) -> str:
    """The statement that empties the staging table into summaries (and the rollups) and moves last_data_at.

    Emptying it as the rows move, not only at commit, lets a second call in one
    transaction start empty. Patients' rows are updated under their rule-state
    locks, which the ingest holds by now.
    """
    ctes = [
        f"staged AS (DELETE FROM {STAGE} RETURNING {SUMMARY_COLUMNS})",
        f"ins AS (INSERT INTO summaries ({SUMMARY_COLUMNS}) SELECT {SUMMARY_COLUMNS} FROM staged"
        f" RETURNING {_ROLLUP_INPUTS}, end_at)",
        "newest AS (UPDATE patients p SET last_data_at = GREATEST(p.last_data_at, n.at)"
        " FROM (SELECT patient_id, max(end_at) AS at FROM ins GROUP BY 1) n WHERE p.id = n.patient_id)",
    ]
    if rollups:
        ctes += [
            f"r{i} AS (INSERT INTO {table} {_ROLLUP_SELECT.replace('{step}', step)}{_ROLLUP_MERGE.format(t=table)})"
            for i, (table, step) in enumerate(ROLLUPS)
        ]
    return "WITH " + ", ".join(ctes) + " SELECT count(*) FROM ins"


_MOVE_STAGED, _MOVE_STAGED_WITH_ROLLUPS = _move_staged(False), _move_staged(True)


def lock_rule_states(conn: psycopg.Connection[Any], patient_ids: Iterable[int]) -> dict[int, RuleState]:
    """Load and lock (until commit) the rule state of several patients, in ascending id order.

    A patient without a row yet (its first data) gets one, and then every row is
    locked again in order; two workers making the same patient's first row at
    once may deadlock, which PostgreSQL breaks and the ingest retries.
    """
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    rows = conn.execute(_LOCK_STATES, (ids,)).fetchall()
    if len(rows) < len(ids):
        have = {int(r[0]) for r in rows}
        conn.execute(
            "INSERT INTO rule_state (patient_id, state) SELECT id, '{}' FROM unnest(%s::bigint[]) AS id"
            " ORDER BY id ON CONFLICT DO NOTHING",
            ([i for i in ids if i not in have],),
        )
        rows = conn.execute(_LOCK_STATES, (ids,)).fetchall()
    return {int(p): RuleState.from_json(s) for p, s in rows}


_LOCK_STATES = "SELECT patient_id, state FROM rule_state WHERE patient_id = ANY(%s) ORDER BY patient_id FOR UPDATE"


def active_levels_many(conn: psycopg.Connection[Any], patient_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """``patient -> {parameter: level}`` of the alerts not yet resolved."""
    found: dict[int, dict[str, str]] = {}
    rows = conn.execute(
        "SELECT patient_id, parameter, level FROM alerts WHERE patient_id = ANY(%s) AND state <> 'resolved'",
        (sorted(set(patient_ids)),),
    ).fetchall()
    for patient_id, parameter, level in rows:
        found.setdefault(int(patient_id), {})[str(parameter)] = str(level)
    return found


def save_rule_states(conn: psycopg.Connection[Any], states: Mapping[int, RuleState]) -> None:
    """Persist several patients' rule states in one statement (one JSON document ``{id: state}``)."""
    if not states:
        return
    conn.execute(
        "UPDATE rule_state r SET state = n.value, updated_at = now()"
        " FROM jsonb_each(%s) AS n WHERE r.patient_id = n.key::bigint",
        (Jsonb({str(p): states[p].to_json() for p in sorted(states)}),),
    )


def dead_letter(conn: psycopg.Connection[Any], topic: str, payload: bytes, reason: str, detail: str) -> None:
    """Keep a message the ingest could not use, with the reason."""
    conn.execute(
        "INSERT INTO dead_letters (topic, payload, reason, detail) VALUES (%s, %s, %s, %s)",
        (topic, payload, reason, detail),
    )


def dead_letter_many(conn: psycopg.Connection[Any], letters: Sequence[tuple[str, bytes, str, str]]) -> None:
    """Keep several unusable messages ``(topic, payload, reason, detail)`` in one statement, in order."""
    if not letters:
        return
    conn.execute(
        "INSERT INTO dead_letters (topic, payload, reason, detail)"
        " SELECT t, p, r, x FROM unnest(%s::text[], %s::bytea[], %s::text[], %s::text[]) WITH ORDINALITY AS d(t, p, r, x, n)"
        " ORDER BY n",
        tuple(list(col) for col in zip(*letters)),
    )


def store_event(conn: psycopg.Connection[Any], patient_id: int, msg: Event) -> None:
    """Write an event; symptom start/stop also open or close the patient's symptom period.

    Dose events keep their dose's name (``drug``, ``planned_at``) for :mod:`server.adherence`.
    """
    conn.execute(
        "INSERT INTO events (patient_id, device_id, seq, type, at, period, tags, severity, note, lat, lon,"
        " drug, planned_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (patient_id, msg.device, msg.seq, msg.type.value, ts(msg.time), msg.period, list(msg.tags),
         msg.severity, msg.note, msg.lat, msg.lon, msg.drug, None if msg.planned is None else ts(msg.planned)),
    )  # fmt: skip
    if msg.type in (EventType.SYMPTOM_START, EventType.SYMPTOM_STOP):
        _upsert_period(conn, patient_id, msg)


def _upsert_period(conn: psycopg.Connection[Any], patient_id: int, msg: Event) -> None:
    # Start and stop may arrive in either order; non-empty details of either fill the period.
    column = "started_at" if msg.type is EventType.SYMPTOM_START else "ended_at"
    conn.execute(
        f"INSERT INTO symptom_periods (patient_id, period, {column}, tags, severity, note)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
        f" ON CONFLICT (patient_id, period) DO UPDATE SET {column} = EXCLUDED.{column},"
        " tags = CASE WHEN cardinality(EXCLUDED.tags) > 0 THEN EXCLUDED.tags ELSE symptom_periods.tags END,"
        " severity = COALESCE(EXCLUDED.severity, symptom_periods.severity),"
        " note = CASE WHEN EXCLUDED.note <> '' THEN EXCLUDED.note ELSE symptom_periods.note END",
        (patient_id, msg.period, ts(msg.time), list(msg.tags), msg.severity, msg.note),
    )


def store_strip(conn: psycopg.Connection[Any], patient_id: int, msg: Strip) -> None:
    """Write an ECG strip, samples packed as little-endian int16 (µV)."""
    samples = struct.pack(f"<{len(msg.samples)}h", *msg.samples)
    conn.execute(
        "INSERT INTO strips (patient_id, device_id, seq, start_at, fs, reason, ref_seq, n_samples, samples)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (patient_id, msg.device, msg.seq, ts(msg.start), msg.fs, msg.reason, msg.ref_seq,
         len(msg.samples), samples),
    )  # fmt: skip


def store_status(conn: psycopg.Connection[Any], patient_id: int, msg: Status) -> None:
    """Update the device's status row unless a newer one (higher seq) is already there."""
    conn.execute(
        "INSERT INTO device_status (device_id, patient_id, seq, at, online, sensor, battery)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET seq = EXCLUDED.seq, at = EXCLUDED.at,"
        " online = EXCLUDED.online, sensor = EXCLUDED.sensor, battery = EXCLUDED.battery,"
        " patient_id = EXCLUDED.patient_id, updated_at = now()"
        " WHERE device_status.seq < EXCLUDED.seq",
        (msg.device, patient_id, msg.seq, ts(msg.time), msg.online, msg.sensor, msg.battery),
    )


def lock_rule_state(conn: psycopg.Connection[Any], patient_id: int) -> RuleState:
    """Load a patient's rule state, locking it until commit so workers take turns per patient."""
    conn.execute(
        "INSERT INTO rule_state (patient_id, state) VALUES (%s, '{}') ON CONFLICT DO NOTHING", (patient_id,)
    )
    row = conn.execute(
        "SELECT state FROM rule_state WHERE patient_id = %s FOR UPDATE", (patient_id,)
    ).fetchone()
    assert row is not None
    return RuleState.from_json(row[0])


def save_rule_state(conn: psycopg.Connection[Any], patient_id: int, state: RuleState) -> None:
    """Persist a patient's rule state."""
    conn.execute(
        "UPDATE rule_state SET state = %s, updated_at = now() WHERE patient_id = %s",
        (Jsonb(state.to_json()), patient_id),
    )


def active_levels(conn: psycopg.Connection[Any], patient_id: int) -> dict[str, str]:
    """``parameter -> level`` of the patient's alerts not yet resolved."""
    rows = conn.execute(
        "SELECT parameter, level FROM alerts WHERE patient_id = %s AND state <> 'resolved'", (patient_id,)
    ).fetchall()
    return {param: level for param, level in rows}


def apply_actions(
    conn: psycopg.Connection[Any], patient_id: int, actions: Sequence[AlertAction], version: int | None = None
) -> list[AlertChange]:
    """Carry out the rule engine's actions on the alerts table and NOTIFY listeners at commit.

    ``version``: the threshold version in force, recorded on each alert the actions open.
    """
    return apply_actions_many(conn, [(patient_id, actions, version)])[0]


def apply_actions_many(
    conn: psycopg.Connection[Any], work: Sequence[tuple[int, Sequence[AlertAction], int | None]]
) -> list[list[AlertChange]]:
    """Carry out the actions of several ``(patient, actions, threshold version)`` items; their changes, per item.

    The same outcome as carrying out every action in turn (items in order, each
    item's actions in order), in a few statements instead of two per action (the
    ingest's batches carry hundreds): the actions on one patient's alert for one
    parameter are applied in their order, one per round, and a round applies
    at most one action per (patient, parameter), so its actions are independent
    and each kind goes in one statement. Nearly every batch takes one round.
    Listeners are notified (at commit) in the order of the actions, each alert's
    id once per transaction, as PostgreSQL's NOTIFY folds identical ones.
    An ``escalate`` with no active alert opens one; an action that finds no
    active alert to resolve changes nothing and is left out of the changes.
    """
    steps = [(n, p, a, v) for n, (p, actions, v) in enumerate(work) for a in actions]
    done: dict[int, int] = {}  # step -> id of the alert it created or changed
    by_key: dict[tuple[int, str], list[int]] = {}
    for k, (_, p, a, _) in enumerate(steps):
        by_key.setdefault((p, a.parameter), []).append(k)
    for round_steps in _rounds(by_key):
        _apply_round(conn, [(k, steps[k][1], steps[k][2], steps[k][3]) for k in round_steps], done)
    changed = sorted(done)
    if changed:
        conn.execute("SELECT pg_notify(%s, id) FROM unnest(%s::text[]) AS n(id)",
                     (ALERT_CHANNEL, [str(done[k]) for k in changed]))  # fmt: skip
    changes: list[list[AlertChange]] = [[] for _ in work]
    for k in changed:
        n, _, a, _ = steps[k]
        changes[n].append(AlertChange(done[k], a.kind, a.level, a.parameter, a.time, a.trigger))
    return changes


def _rounds(by_key: Mapping[tuple[int, str], list[int]]) -> list[list[int]]:
    """Steps grouped so that round r holds the r-th step of every (patient, parameter), in step order."""
    rounds: list[list[int]] = []
    for keyed in by_key.values():
        for r, k in enumerate(keyed):
            if r == len(rounds):
                rounds.append([])
            rounds[r].append(k)
    return [sorted(r) for r in rounds]


_Step = tuple[int, int, AlertAction, int | None]  # (step, patient, action, threshold version)


def _apply_round(conn: psycopg.Connection[Any], steps: list[_Step], done: dict[int, int]) -> None:
    """One round: at most one step per (patient, parameter); record the alert id each step touched."""
    escalates = [s for s in steps if s[2].kind == "escalate"]
    found = _escalate_many(conn, escalates)
    done.update(found)
    done.update(_resolve_many(conn, [s for s in steps if s[2].kind == "resolve"]))
    opens = [s for s in steps if s[2].kind == "open" or (s[2].kind == "escalate" and s[0] not in found)]
    done.update(_open_many(conn, opens))  # in step order, as ``steps``


def _ids_by_key(rows: list[tuple[Any, ...]], steps: list[_Step]) -> dict[int, int]:
    """Map RETURNING rows ``(patient, parameter, id)`` back to the steps of their keys."""
    ids = {(int(p), str(k)): int(i) for p, k, i in rows}
    return {s[0]: ids[(s[1], s[2].parameter)] for s in steps if (s[1], s[2].parameter) in ids}


def _open_many(conn: psycopg.Connection[Any], steps: list[_Step]) -> dict[int, int]:
    if not steps:
        return {}
    rows = conn.execute(
        "INSERT INTO alerts (patient_id, level, parameter, opened_at, trigger, threshold_version)"
        " SELECT p, l, k, t, g, v FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[],"
        " %s::jsonb[], %s::integer[]) WITH ORDINALITY AS a(p, l, k, t, g, v, n) ORDER BY n"
        " ON CONFLICT (patient_id, parameter) WHERE state <> 'resolved'"
        " DO UPDATE SET level = EXCLUDED.level, state = 'open',"
        " threshold_version = COALESCE(EXCLUDED.threshold_version, alerts.threshold_version)"
        " RETURNING patient_id, parameter, id",
        ([s[1] for s in steps], [s[2].level for s in steps], [s[2].parameter for s in steps],
         [ts(s[2].time) for s in steps], [Jsonb(s[2].trigger) for s in steps], [s[3] for s in steps]),
    ).fetchall()  # fmt: skip
    return _ids_by_key(rows, steps)


def _escalate_many(conn: psycopg.Connection[Any], steps: list[_Step]) -> dict[int, int]:
    # Worse than acknowledged: the alert is open again, so it reaches people again.
    if not steps:
        return {}
    rows = conn.execute(
        "UPDATE alerts a SET level = u.l, state = 'open', escalated_at = u.t,"
        " trigger = a.trigger || jsonb_build_object('escalation', u.g)"
        " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::jsonb[]) AS u(p, k, l, t, g)"
        " WHERE a.patient_id = u.p AND a.parameter = u.k AND a.state <> 'resolved'"
        " RETURNING a.patient_id, a.parameter, a.id",
        ([s[1] for s in steps], [s[2].parameter for s in steps], [s[2].level for s in steps],
         [ts(s[2].time) for s in steps], [Jsonb(s[2].trigger) for s in steps]),
    ).fetchall()  # fmt: skip
    return _ids_by_key(rows, steps)


def _resolve_many(conn: psycopg.Connection[Any], steps: list[_Step]) -> dict[int, int]:
    if not steps:
        return {}
    rows = conn.execute(
        "UPDATE alerts a SET state = 'resolved', closed_at = u.t, resolve_note = u.note"
        " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[]) AS u(p, k, t, note)"
        " WHERE a.patient_id = u.p AND a.parameter = u.k AND a.state <> 'resolved'"
        " RETURNING a.patient_id, a.parameter, a.id",
        ([s[1] for s in steps], [s[2].parameter for s in steps], [ts(s[2].time) for s in steps],
         [s[2].trigger.get("reason", "back within limits") for s in steps]),
    ).fetchall()  # fmt: skip
    return _ids_by_key(rows, steps)
