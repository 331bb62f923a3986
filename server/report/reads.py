"""The visit report's reads: thin SQL filling :class:`~server.report.inputs.ReportData`.

What other modules already read is read through them: series and rhythm
episodes (:mod:`server.trends`), alerts and their history (:mod:`server.queries`),
symptom periods with their vitals and strips (:mod:`server.search`), threshold
versions (:mod:`server.thresholds`), medication plan versions and what became
of each planned dose (:mod:`server.medication`, :mod:`server.adherence`). New are only the daily sums and the band
counts behind the time beyond limits, both from one scan of the period's
windows, and the longest pauses. Access is checked by the caller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from server import adherence, medication, queries, thresholds, trends
from server.queries import PatientRow
from server.report.inputs import BandCount, DayStats, MedicationData, Pause, ReportData, ReportPeriod
from server.report.limits import limit_edges, limits_at
from server.report.period import day_bounds, day_spans, parse_zone
from server.rules import PAUSE_RED_S
from server.search import SymptomFilter, search_symptoms
from server.store import User

MAX_SYMPTOMS = 500  # periods listed in one report (the search's largest page)
MAX_ALERTS = 10_000  # alerts read for one report (dozens a month over the longest period); more: ``alerts_more``
PAUSES_LISTED = 5

# Windows starting in the period: their day (width_bucket over the day bounds, 0-based), duration,
# usability, and for usable ones the bucket of each vital's value among the limit edges (see BandCount).
_WINDOWS = """
  SELECT *, width_bucket(start_at, %(bounds)s::timestamptz[]) - 1 AS day,
         extract(epoch FROM end_at - start_at)::float8 AS d, quality >= %(q)s AS u,
         CASE WHEN quality >= %(q)s AND cardinality(%(hr_edges)s::float8[]) > 0
              THEN width_bucket(hr_mean::float8, %(hr_edges)s::float8[]) END AS hb,
         CASE WHEN quality >= %(q)s AND cardinality(%(resp_edges)s::float8[]) > 0
              THEN width_bucket(resp_rate::float8, %(resp_edges)s::float8[]) END AS rb
  FROM summaries WHERE patient_id = %(pid)s AND start_at >= %(start)s AND start_at < %(end)s
"""
# One scan of the period's windows, three groupings: per day (``set`` 7; the columns in DayStats field
# order, FILTER (WHERE u) keeping vitals and rhythm to usable windows), and per activity and bucket of
# heart rate (9) or of respiration (10), whose last two columns are the windows and their duration.
SCAN_SQL = f"""
SELECT GROUPING(day, activity, hb, rb) AS set, activity, hb, rb,
  day, count(*)::int, sum(d), (count(*) FILTER (WHERE u))::int, COALESCE(sum(d) FILTER (WHERE u), 0),
  (count(hr_mean) FILTER (WHERE u))::int, COALESCE(sum(hr_mean::float8) FILTER (WHERE u), 0),
  min(hr_min) FILTER (WHERE u), max(hr_max) FILTER (WHERE u),
  (count(rmssd) FILTER (WHERE u))::int, COALESCE(sum(rmssd::float8) FILTER (WHERE u), 0),
  (count(sdnn) FILTER (WHERE u))::int, COALESCE(sum(sdnn::float8) FILTER (WHERE u), 0),
  (count(resp_rate) FILTER (WHERE u))::int, COALESCE(sum(resp_rate::float8) FILTER (WHERE u), 0),
  count(intensity)::int, COALESCE(sum(intensity::float8), 0), sum(steps)::bigint,
  COALESCE(sum(d) FILTER (WHERE activity IN ('walk', 'run')), 0),
  COALESCE(sum(d) FILTER (WHERE u AND 'af_suspected' = ANY(flags)), 0),
  (count(*) FILTER (WHERE u AND 'pause' = ANY(flags)))::int,
  (count(*) FILTER (WHERE u AND 'pause' = ANY(flags) AND pause_max >= %(long)s))::int,
  COALESCE(sum(ectopic) FILTER (WHERE u), 0)::bigint,
  COALESCE(sum(beats) FILTER (WHERE u AND ectopic IS NOT NULL), 0)::bigint,
  COALESCE(sum(d) FILTER (WHERE u AND ectopic IS NOT NULL), 0)
FROM ({_WINDOWS}) w GROUP BY GROUPING SETS ((day), (activity, hb), (activity, rb)) ORDER BY 1, 2, 3, 4, 5
"""
DAY_SET, HR_SET, RESP_SET = 7, 9, 10
# flags <> '{}' lets the partial index of flagged windows (migration 030) find them
PAUSE_SQL = """
SELECT start_at, end_at, pause_max FROM summaries WHERE patient_id = %(pid)s AND start_at >= %(start)s
  AND start_at < %(end)s AND quality >= %(q)s AND flags <> '{}' AND 'pause' = ANY(flags)
ORDER BY pause_max DESC NULLS LAST, start_at LIMIT %(n)s
"""


def load_report_data(
    conn: psycopg.Connection[Any], user: User, patient: PatientRow, period: ReportPeriod, q: float, now: datetime,
    low_adherence: tuple[float, float],
) -> ReportData:  # fmt: skip
    """Everything a report of ``patient`` over ``period`` needs, read in one portal transaction.

    Args:
        q: the usable quality (0..1), the server's ``min_quality``.
        low_adherence: the server's ``(adherence_low_share, adherence_low_days)``.
    """
    pid, start, end = patient.id, period.start, period.end
    days = day_spans(start, end, parse_zone(period.tz))
    params: dict[str, Any] = {"pid": pid, "start": start, "end": end, "q": q, "bounds": day_bounds(days),
                              "long": PAUSE_RED_S}  # fmt: skip
    bucket = trends.series_bucket((end - start).total_seconds())
    with queries.portal_read(conn):
        versions = thresholds.list_versions(conn, pid)
        limits = limits_at(versions, end)
        edges = limit_edges(limits.limits)
        scan = params | {"hr_edges": edges.get("hr", []), "resp_edges": edges.get("resp_rate", [])}
        day_stats, bands = _scan(conn, scan)
        alerts = queries.list_alerts(conn, user, "all", patient_id=pid, limit=MAX_ALERTS + 1, active_from=start,
                                     active_until=end)  # fmt: skip
        symptoms = search_symptoms(conn, user, SymptomFilter((pid,), start, end, limit=MAX_SYMPTOMS), q)
        return ReportData(
            patient, period, now, q, limits,
            limit_changes=sorted((v for v in versions if v.version is not None and v.approved_at is not None
                                  and start <= v.approved_at < end), key=lambda v: v.version or 0),
            days=days, day_stats=day_stats, edges=edges, bands=bands,
            series=trends.series(conn, pid, start, end, bucket, q), bucket_s=bucket,
            alerts=alerts[:MAX_ALERTS], alerts_more=len(alerts) > MAX_ALERTS,
            notes=queries.alert_history(conn, [a.id for a in alerts[:MAX_ALERTS]]),
            symptoms=symptoms.results, symptoms_more=symptoms.more,
            episodes=trends.rhythm_episodes(conn, pid, start, end, q),
            pauses=[Pause(*r) for r in conn.execute(PAUSE_SQL, params | {"n": PAUSES_LISTED})],
            medication=_medication(conn, pid, period, now, low_adherence),
        )  # fmt: skip


def _medication(
    conn: psycopg.Connection[Any], pid: int, period: ReportPeriod, now: datetime, low: tuple[float, float]
) -> MedicationData | None:
    """The plan versions in force in the period and each dose planned in it (None: no version was in force)."""
    versions = medication.versions_in_force(medication.list_plans(conn, pid), period.start, period.end)
    if not versions:
        return None
    doses = adherence.dose_history(conn, pid, period.start, period.end, now.timestamp())
    return MedicationData(versions, doses, *low)


def _scan(conn: psycopg.Connection[Any], params: dict[str, Any]) -> tuple[list[DayStats], list[BandCount]]:
    """The daily sums and the band counts of the period, from one scan of its windows."""
    days, bands = [], []
    for set_, activity, hb, rb, *rest in conn.execute(SCAN_SQL, params):
        if set_ == DAY_SET:
            days.append(DayStats(*rest))
        elif set_ == HR_SET and hb is not None:
            bands.append(BandCount("hr", activity, hb, rest[1], rest[2]))
        elif set_ == RESP_SET and rb is not None:
            bands.append(BandCount("resp_rate", activity, rb, rest[1], rest[2]))
    return days, bands
