"""Adherence: what became of each planned dose, and per-drug figures for a period.

The pure core works on plain values, without a database:

* :func:`planned_doses` expands the versions of a patient's plan over a period
  (each version from its ``since`` until the next one's) with
  :func:`wire.medication.schedule`, the phone's own definition of a dose;
* :func:`outcomes` gives each planned dose its status from the dose events the
  phone sent (``DoseRecord``): ``on_time`` (taken by ``on_time_until``; taken
  early counts as on time), ``late`` (taken after that), ``skipped``,
  ``missed`` (the phone reminded and nobody answered before the dose closed),
  ``unconfirmed`` (no answer has arrived ``unconfirmed_after_s`` after the dose
  closed: the phone was silent, off, or never reminded), or ``pending`` (its
  window, plus that margin, is still open). The first answer (taken, skipped
  or missed, by time) decides; snoozes are counted. Because the status is
  computed when read, an ``unconfirmed`` dose becomes what the phone recorded
  as soon as its events arrive: adherence is never overstated meanwhile, and
  never corrected by hand;
* :func:`summarize` gives per drug: doses planned, taken on time, taken late,
  skipped, missed, unconfirmed, pending, the share taken on time (of the
  decided doses, i.e. all but pending) and the longest and the current run of
  consecutive doses **not taken** (skipped, missed or unconfirmed).

The database layer (:func:`adherence`, :func:`dose_history`, :func:`history_many`)
only loads plan versions and dose events. :func:`adherence` is the interface the
visit report calls::

    adherence(conn, patient_id, start, end) -> list[DrugAdherence]

with ``start``/``end`` as aware datetimes or s since epoch; doses planned in
``[start, min(end, now))`` count.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg

from server import medication
from server.records import ts
from wire.medication import MedicationPlan, ScheduledDose, dose_key, schedule

UNCONFIRMED_AFTER_S = 1800.0  # after a dose closed, this long without an answer: unconfirmed
ANSWERS = {"dose_taken": "taken", "dose_skipped": "skipped", "dose_missed": "missed"}
NOT_TAKEN = frozenset({"skipped", "missed", "unconfirmed"})
EVENT_LOOKBACK_S = 86_400.0  # dose events are read from this long before the period (early confirmations)
EVENT_LOOKAHEAD_S = 8 * 86_400.0  # ... and until this long after it (the longest grace is 7 days)


@dataclass(frozen=True)
class DoseRecord:
    """A stored dose event: ``type`` is a wire dose event type; times in s since epoch."""

    type: str
    drug: str
    planned: float
    time: float
    note: str = ""
    seq: int = 0


@dataclass(frozen=True)
class DoseOutcome:
    """What became of one planned dose (times in s since epoch)."""

    drug: str
    dose: str
    critical: bool
    plan_version: int
    planned: float
    on_time_until: float
    closes_at: float
    status: str  # on_time, late, skipped, missed, unconfirmed, pending
    answered_at: float | None = None  # the deciding event's time (taken: when it was taken)
    reason: str = ""  # a skip's reason
    snoozes: int = 0


@dataclass(frozen=True)
class DrugAdherence:
    """Adherence to one drug over a period."""

    drug: str
    critical: bool
    planned: int
    taken_on_time: int
    taken_late: int
    skipped: int
    missed: int
    unconfirmed: int
    pending: int
    share_on_time: float | None  # taken on time / decided doses (planned - pending); None if none decided
    longest_missed_streak: int  # consecutive doses not taken (skipped, missed or unconfirmed)
    current_missed_streak: int  # the run of doses not taken that the newest decided dose ends


def planned_doses(versions: Sequence[MedicationPlan], start: float, end: float) -> list[tuple[int, ScheduledDose]]:
    """``(plan version, dose)`` for each dose planned in ``[start, end)``, each version over its own span."""
    found = []
    for plan, until in medication.spans_in_force(versions, lambda p: p.version, lambda p: p.since, end):
        found += [(plan.version, d) for d in schedule(plan, start, until)]
    return sorted(found, key=lambda vd: (vd[1].planned, vd[1].drug))


def outcomes(
    doses: Iterable[tuple[int, ScheduledDose]], records: Iterable[DoseRecord], now: float,
    unconfirmed_after_s: float = UNCONFIRMED_AFTER_S,
) -> list[DoseOutcome]:  # fmt: skip
    """The status of each planned dose at ``now`` from the dose events received (pure)."""
    by_key: dict[str, list[DoseRecord]] = {}
    for r in records:
        by_key.setdefault(dose_key(r.drug, r.planned), []).append(r)
    return [_outcome(version, d, by_key.get(d.key, []), now, unconfirmed_after_s) for version, d in doses]


def _outcome(version: int, d: ScheduledDose, records: list[DoseRecord], now: float, margin: float) -> DoseOutcome:
    answers = sorted((r for r in records if r.type in ANSWERS), key=lambda r: (r.time, r.seq))
    snoozes = sum(1 for r in records if r.type == "dose_snoozed")
    base = DoseOutcome(d.drug, d.dose, d.critical, version, d.planned, d.on_time_until, d.closes_at, "pending",
                       snoozes=snoozes)  # fmt: skip
    if not answers:
        status = "pending" if now < d.closes_at + margin else "unconfirmed"
        return replace(base, status=status)
    first = answers[0]
    status = ANSWERS[first.type]
    if status == "taken":
        status = "on_time" if first.time <= d.on_time_until else "late"
    reason = first.note if status == "skipped" else ""
    return replace(base, status=status, answered_at=first.time, reason=reason)


def summarize(doses: Iterable[DoseOutcome]) -> list[DrugAdherence]:
    """Per-drug figures of a patient's dose outcomes, by drug name (pure)."""
    by_drug: dict[str, list[DoseOutcome]] = {}
    for d in sorted(doses, key=lambda d: d.planned):
        by_drug.setdefault(d.drug, []).append(d)
    return [_drug(name, by_drug[name]) for name in sorted(by_drug, key=str.casefold)]


def _drug(name: str, doses: list[DoseOutcome]) -> DrugAdherence:
    count = {s: sum(1 for d in doses if d.status == s) for s in
             ("on_time", "late", "skipped", "missed", "unconfirmed", "pending")}  # fmt: skip
    decided = len(doses) - count["pending"]
    longest = run = 0
    for d in doses:
        if d.status == "pending":
            continue
        run = run + 1 if d.status in NOT_TAKEN else 0
        longest = max(longest, run)
    return DrugAdherence(
        name, doses[-1].critical, len(doses), count["on_time"], count["late"], count["skipped"], count["missed"],
        count["unconfirmed"], count["pending"], round(count["on_time"] / decided, 4) if decided else None, longest, run,
    )  # fmt: skip


def is_low(drugs: Iterable[DrugAdherence], threshold: float) -> bool:
    """True if any drug's share taken on time is below ``threshold`` (drugs with no decided dose do not count)."""
    return any(d.share_on_time is not None and d.share_on_time < threshold for d in drugs)


def _seconds(t: float | datetime) -> float:
    return t.timestamp() if isinstance(t, datetime) else float(t)


def history_many(
    conn: psycopg.Connection[Any], patient_ids: Sequence[int], start: float | datetime, end: float | datetime,
    now: float | None = None, unconfirmed_after_s: float = UNCONFIRMED_AFTER_S,
) -> dict[int, list[DoseOutcome]]:  # fmt: skip
    """Each patient's dose outcomes for doses planned in ``[start, min(end, now))``.

    Patients without a plan are absent.
    """
    now = time.time() if now is None else now
    lo, hi = _seconds(start), min(_seconds(end), now)
    plans = medication.plans_many(conn, list(patient_ids))
    if not plans or hi <= lo:
        return {pid: [] for pid in plans}
    records = _records(conn, sorted(plans), lo, hi)
    return {pid: outcomes(planned_doses(versions, lo, hi), records.get(pid, []), now, unconfirmed_after_s)
            for pid, versions in plans.items()}  # fmt: skip


def _records(
    conn: psycopg.Connection[Any], patient_ids: list[int], lo: float, hi: float
) -> dict[int, list[DoseRecord]]:
    rows = conn.execute(
        "SELECT patient_id, type, drug, extract(epoch FROM planned_at)::float8, extract(epoch FROM at)::float8,"
        " note, seq FROM events WHERE patient_id = ANY(%s) AND at >= %s AND at < %s AND drug IS NOT NULL"
        " AND planned_at >= %s AND planned_at < %s ORDER BY patient_id, at, seq",
        (patient_ids, ts(lo - EVENT_LOOKBACK_S), ts(hi + EVENT_LOOKAHEAD_S), ts(lo), ts(hi)),
    ).fetchall()
    found: dict[int, list[DoseRecord]] = {}
    for pid, *fields in rows:
        found.setdefault(int(pid), []).append(DoseRecord(*fields))
    return found


def dose_history(
    conn: psycopg.Connection[Any], patient_id: int, start: float | datetime, end: float | datetime,
    now: float | None = None, unconfirmed_after_s: float = UNCONFIRMED_AFTER_S,
) -> list[DoseOutcome]:  # fmt: skip
    """The patient's planned doses in the period with their outcomes, by planned time."""
    return history_many(conn, [patient_id], start, end, now, unconfirmed_after_s).get(patient_id, [])


def adherence(
    conn: psycopg.Connection[Any], patient_id: int, start: float | datetime, end: float | datetime,
    now: float | None = None, unconfirmed_after_s: float = UNCONFIRMED_AFTER_S,
) -> list[DrugAdherence]:  # fmt: skip
    """Per-drug adherence of the patient over the period (empty without a plan); see the module docstring."""
    return summarize(dose_history(conn, patient_id, start, end, now, unconfirmed_after_s))
