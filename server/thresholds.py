"""Threshold versions in PostgreSQL: limits in force, proposals, clinician approval, burden figures.

A patient starts on the defaults (version None). When the initial phase is
complete the server stores a *proposal* (:func:`propose`); a clinician edits
and approves it (:func:`approve`), which makes it version 1, 2, ... with who,
when and why. The newest approved version is in force from its approval on;
older ones are kept as ``superseded``. Each new version reaches the phone in
its retained ``wire.Config`` (:mod:`server.phone_config`; ``pushed_at`` says
when). Functions leave the transaction to the caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from server.baseline import BaselinePolicy, BaselineSample, PhaseStatus, Proposal, check_limits, phase_status
from server.baseline import DAY_S, good_hours, propose_limits
from server.records import ts
from server.rules import NEWS2_LIMITS
from wire import Limits


class ThresholdError(ValueError):
    """Limits a clinician may not approve; ``problems`` names each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class InForce:
    """The limits a patient is judged by and their version (None: the defaults)."""

    version: int | None
    limits: dict[str, Limits]


@dataclass(frozen=True)
class VersionRow:
    """One stored threshold set (proposal or version)."""

    id: int
    patient_id: int
    status: str  # proposed, approved, superseded, rejected
    version: int | None
    limits: dict[str, Any]
    baseline: dict[str, Any]
    created_at: datetime
    created_by: str | None
    approved_at: datetime | None
    approved_by: str | None
    reason: str
    pushed_at: datetime | None


VERSION_SELECT = (
    "SELECT t.id, t.patient_id, t.status, t.version, t.limits, t.baseline, t.created_at,"
    " c.username AS created_by, t.approved_at, a.username AS approved_by, t.reason, t.pushed_at"
    " FROM threshold_versions t LEFT JOIN users c ON c.id = t.created_by LEFT JOIN users a ON a.id = t.approved_by"
)


def limits_to_json(limits: dict[str, Limits]) -> dict[str, Any]:
    """``{key: {yellow_low: ...}}`` with unset sides left out."""
    return {k: {f: v for f, v in asdict(lim).items() if v is not None} for k, lim in sorted(limits.items())}


def limits_from_json(data: dict[str, Any]) -> dict[str, Limits]:
    """Inverse of :func:`limits_to_json`."""
    return {k: Limits(**v) for k, v in data.items()}


def limits_in_force(conn: psycopg.Connection[Any], patient_id: int) -> InForce:
    """The newest approved version, else the NEWS2 defaults."""
    row = conn.execute(
        "SELECT version, limits FROM threshold_versions WHERE patient_id = %s AND status = 'approved'"
        " ORDER BY version DESC LIMIT 1",
        (patient_id,),
    ).fetchone()
    if row is None:
        return InForce(None, dict(NEWS2_LIMITS))
    return InForce(int(row[0]), limits_from_json(row[1]))


DEFAULTS = InForce(None, dict(NEWS2_LIMITS))  # shared by every patient on the defaults: read only


def limits_in_force_many(conn: psycopg.Connection[Any], patient_ids: list[int]) -> dict[int, InForce]:
    """The limits in force of each patient in one query (the ingest asks once per batch).

    Reading them afresh per batch is what keeps a batch current: a version
    approved while a batch runs applies from the next batch on, never halfway
    through a patient's messages.
    """
    rows = conn.execute(
        "SELECT DISTINCT ON (patient_id) patient_id, version, limits FROM threshold_versions"
        " WHERE patient_id = ANY(%s) AND status = 'approved' ORDER BY patient_id, version DESC",
        (patient_ids,),
    ).fetchall()
    found = {int(pid): InForce(int(version), limits_from_json(lim)) for pid, version, lim in rows}
    return {pid: found.get(pid, DEFAULTS) for pid in patient_ids}


def list_versions(conn: psycopg.Connection[Any], patient_id: int) -> list[VersionRow]:
    """Every proposal and version of the patient, newest first."""
    cur = conn.cursor(row_factory=class_row(VersionRow))
    return cur.execute(f"{VERSION_SELECT} WHERE t.patient_id = %s ORDER BY t.id DESC", (patient_id,)).fetchall()


def get_version(conn: psycopg.Connection[Any], row_id: int) -> VersionRow | None:
    """One stored threshold set by id."""
    cur = conn.cursor(row_factory=class_row(VersionRow))
    return cur.execute(f"{VERSION_SELECT} WHERE t.id = %s", (row_id,)).fetchone()


def baseline_samples(conn: psycopg.Connection[Any], patient_id: int, policy: BaselinePolicy) -> list[BaselineSample]:
    """The windows of the initial phase: from the patient's first window for ``policy.days``."""
    rows = conn.execute(
        "WITH first AS (SELECT min(start_at) AS t FROM summaries WHERE patient_id = %(p)s)"
        " SELECT extract(epoch FROM start_at)::float8, extract(epoch FROM end_at)::float8, activity, quality,"
        " hr_mean, resp_rate FROM summaries, first WHERE patient_id = %(p)s"
        " AND start_at < first.t + make_interval(secs => %(span)s) ORDER BY start_at",
        {"p": patient_id, "span": policy.days * DAY_S},
    ).fetchall()
    return [BaselineSample(*row) for row in rows]


def status(conn: psycopg.Connection[Any], patient_id: int, now: float, policy: BaselinePolicy) -> PhaseStatus:
    """Where the patient stands in the initial phase at ``now`` (s since epoch)."""
    samples = baseline_samples(conn, patient_id, policy)
    first = samples[0].start if samples else None
    return phase_status(first, good_hours(samples, policy), now, policy)


def propose(conn: psycopg.Connection[Any], patient_id: int, policy: BaselinePolicy) -> tuple[int, Proposal]:
    """Compute and store a proposal from the baseline windows; older open proposals are superseded."""
    proposal = propose_limits(baseline_samples(conn, patient_id, policy), policy)
    conn.execute(
        "UPDATE threshold_versions SET status = 'superseded' WHERE patient_id = %s AND status = 'proposed'",
        (patient_id,),
    )
    baseline = {"stats": {k: asdict(v) for k, v in proposal.stats.items()}, "notes": list(proposal.notes),
                "policy": {"days": policy.days, "min_good_hours": policy.min_good_hours}}  # fmt: skip
    row = conn.execute(
        "INSERT INTO threshold_versions (patient_id, status, limits, baseline, reason)"
        " VALUES (%s, 'proposed', %s, %s, 'proposed from the baseline') RETURNING id",
        (patient_id, Jsonb(limits_to_json(proposal.limits)), Jsonb(baseline)),
    ).fetchone()
    assert row is not None
    return int(row[0]), proposal


def approve(
    conn: psycopg.Connection[Any], patient_id: int, user_id: int, limits: dict[str, Limits], reason: str,
    proposal_id: int | None = None,
) -> int:  # fmt: skip
    """Store ``limits`` as the patient's next version, in force from now; return the row id.

    Raises:
        ThresholdError: limits out of order, laxer than the hard limits, or an unknown proposal.
    """
    problems = [p for key, lim in sorted(limits.items()) for p in check_limits(key, lim)]
    if not reason.strip():
        problems.append("reason: say why these limits")
    if problems:
        raise ThresholdError(problems)
    conn.execute("SELECT 1 FROM patients WHERE id = %s FOR UPDATE", (patient_id,))  # versions in turn
    conn.execute(
        "UPDATE threshold_versions SET status = 'superseded' WHERE patient_id = %s AND status = 'approved'",
        (patient_id,),
    )
    values = {"p": patient_id, "u": user_id, "l": Jsonb(limits_to_json(limits)), "r": reason, "id": proposal_id}
    next_version = "(SELECT coalesce(max(version), 0) + 1 FROM threshold_versions WHERE patient_id = %(p)s)"
    if proposal_id is not None:
        row = conn.execute(
            f"UPDATE threshold_versions SET status = 'approved', version = {next_version}, limits = %(l)s,"
            " approved_at = now(), approved_by = %(u)s, reason = %(r)s"
            " WHERE id = %(id)s AND patient_id = %(p)s AND status = 'proposed' RETURNING id", values,
        ).fetchone()  # fmt: skip
        if row is None:
            raise ThresholdError([f"proposal {proposal_id}: no open proposal of this patient"])
        return int(row[0])
    row = conn.execute(
        "INSERT INTO threshold_versions (patient_id, status, version, limits, created_by, approved_at,"
        f" approved_by, reason) VALUES (%(p)s, 'approved', {next_version}, %(l)s, %(u)s, now(), %(u)s, %(r)s)"
        " RETURNING id", values,
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


@dataclass(frozen=True)
class Burden:
    """Alarm burden of one patient under one threshold version (None: the defaults)."""

    patient_id: int
    threshold_version: int | None
    patient_days: float
    alerts: int
    red_alerts: int
    alerts_per_patient_day: float | None
    share_acknowledged: float | None  # of the alerts, acknowledged by a person (0..1)
    median_seconds_to_ack: float | None


def alarm_burden(conn: psycopg.Connection[Any], patient_ids: list[int], now: float) -> list[Burden]:
    """Burden per patient and version; the days a version was in force count as its patient-days."""
    rows = conn.execute(BURDEN_SQL, {"pids": patient_ids, "now": ts(now)}).fetchall()
    return [Burden(int(pid), ver, round(days, 3), int(n), int(red),
                   round(n / days, 3) if days > 0 else None,
                   None if n == 0 else round(acked / n, 3), None if med is None else round(med, 1))
            for pid, ver, days, n, red, acked, med in rows]  # fmt: skip


# Version spans: defaults from the first data to the first approval, then each version to the next.
BURDEN_SQL = """
WITH approved AS (
    SELECT patient_id, version, approved_at AS since,
           lead(approved_at) OVER (PARTITION BY patient_id ORDER BY version) AS until
    FROM threshold_versions WHERE version IS NOT NULL AND patient_id = ANY(%(pids)s)
), first_data AS (
    SELECT p.id AS patient_id, coalesce((SELECT min(start_at) FROM summaries s WHERE s.patient_id = p.id),
           p.created_at) AS t FROM patients p WHERE p.id = ANY(%(pids)s)
), spans AS (
    SELECT f.patient_id, NULL::int AS version, f.t AS since,
           (SELECT min(since) FROM approved a WHERE a.patient_id = f.patient_id) AS until FROM first_data f
    UNION ALL SELECT patient_id, version, since, until FROM approved
)
SELECT s.patient_id, s.version,
       greatest(extract(epoch FROM coalesce(s.until, %(now)s) - s.since), 0)::float8 / 86400,
       count(a.id), count(a.id) FILTER (WHERE a.level = 'red'), count(a.acked_at),
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.acked_at - a.opened_at)))::float8
FROM spans s LEFT JOIN alerts a ON a.patient_id = s.patient_id
     AND a.threshold_version IS NOT DISTINCT FROM s.version
GROUP BY s.patient_id, s.version, s.since, s.until ORDER BY s.patient_id, s.version NULLS FIRST
"""
