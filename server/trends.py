"""A patient's trends: bucketed series, the time axis of events, rhythm episodes, baselines.

Series are served in buckets (1 min .. 1 day) chosen so a chart gets at most
about :data:`MAX_POINTS` points whatever the zoom. They are read from the
relation :func:`series_source` names: the 1-minute or 1-hour rollups for
spans of days to months, the raw summary windows for hours (identical points).

A *rhythm episode* is a run of usable windows carrying an arrhythmia flag
(:data:`ARRHYTHMIA_FLAGS`) with gaps of at most :data:`EPISODE_GAP_S` between
them. A patient's *baseline* is their vitals over the first
:data:`~server.queries.BASELINE_DAYS` days of data (the baseline phase),
computed once and kept in ``patient_baselines``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import class_row

from server import thresholds
from server.queries import BASELINE_DAYS, StripInfo, list_strips
from server.records import ROLLUP_PARTS, ROLLUP_QUALITY, ROLLUPS

# Isolated ectopic beats are common in healthy hearts: they mark no episode.
ARRHYTHMIA_FLAGS = ("af_suspected", "brady", "irregular", "pause", "tachy", "vt")
EPISODE_GAP_S = 120  # flagged windows this close belong to one episode
MAX_POINTS = 1500
BUCKETS_S = (60, 300, 900, 3600, 4 * 3600, 86400)
BASELINE_REFRESH = timedelta(hours=1)  # a baseline still being learnt is recomputed this often


def series_bucket(span_s: float) -> int:
    """The smallest bucket (s) that keeps a span of ``span_s`` seconds within :data:`MAX_POINTS`."""
    for bucket in BUCKETS_S:
        if span_s / bucket <= MAX_POINTS:
            return bucket
    return BUCKETS_S[-1]


def series_source(bucket_s: int, q: float) -> str:
    """The relation series of ``bucket_s``-second buckets at usable quality ``q`` are read from.

    A rollup when it has fewer rows than the raw windows and was built for this
    quality (:data:`~server.records.ROLLUP_QUALITY`): ``summary_1h`` for buckets
    of whole hours, ``summary_1m`` for 5 and 15 min; else the raw ``summaries``.
    Both give identical points (see :func:`series`).
    """
    if q != ROLLUP_QUALITY or bucket_s < 300:
        return "summaries"
    return "summary_1h" if bucket_s % 3600 == 0 else "summary_1m"


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket of a patient's trends; vitals over usable windows only (None without any).

    Units: bpm, ms, breaths/min, g, s; ``quality`` 0..1 over all windows; ``rhythm``
    counts usable windows with an arrhythmia flag; ``activity`` is the commonest
    class (ties: the first by name); ``steps`` is None when no window counted
    steps; ``falls`` counts windows with a fall candidate; ``pause_max`` is the
    longest RR interval of the usable windows.
    """

    t: datetime
    windows: int
    hr_mean: float | None
    hr_min: float | None
    hr_max: float | None
    sdnn: float | None
    rmssd: float | None
    resp_rate: float | None
    intensity: float | None
    quality: float | None
    activity: str | None
    rhythm: int
    steps: int | None = None
    falls: int = 0
    pause_max: float | None = None


_RAW_SERIES = (
    "SELECT date_bin(make_interval(secs => %(b)s), start_at, TIMESTAMPTZ '2000-01-01') AS t,"
    " count(*)::int AS windows,"
    " round(avg(hr_mean) {u})::real AS hr_mean, min(hr_min) {u} AS hr_min,"
    " max(hr_max) {u} AS hr_max, round(avg(sdnn) {u})::real AS sdnn,"
    " round(avg(rmssd) {u})::real AS rmssd, (round((avg(resp_rate) {u})::numeric, 1))::real"
    " AS resp_rate, avg(intensity)::real AS intensity, avg(quality)::real AS quality,"
    " mode() WITHIN GROUP (ORDER BY activity) AS activity,"
    " (count(*) FILTER (WHERE quality >= %(q)s AND flags && %(flags)s))::int AS rhythm,"
    " sum(steps)::bigint AS steps, (count(*) FILTER (WHERE fall))::int AS falls, max(pause_max) {u} AS pause_max"
    " FROM summaries WHERE patient_id = %(pid)s AND start_at >= %(start)s AND start_at < %(end)s"
    " GROUP BY 1 ORDER BY 1"
).format(u="FILTER (WHERE quality >= %(q)s)")
ACTIVITIES = ("lying", "rest", "run", "unknown", "walk")  # the rollups' act_* columns, in name order
# The same points from rollup partials (a CTE ``parts`` with the columns of ROLLUP_PARTS and ``bucket``).
_ROLLUP_SERIES = (
    "SELECT date_bin(make_interval(secs => %(b)s), bucket, TIMESTAMPTZ '2000-01-01') AS t,"
    " sum(windows)::int AS windows,"
    " round(sum(u_hr_sum) / sum(u_hr_n)::float8)::real AS hr_mean, min(u_hr_min) AS hr_min,"
    " max(u_hr_max) AS hr_max, round(sum(u_sdnn_sum) / sum(u_sdnn_n)::float8)::real AS sdnn,"
    " round(sum(u_rmssd_sum) / sum(u_rmssd_n)::float8)::real AS rmssd,"
    " (round((sum(u_resp_sum) / sum(u_resp_n)::float8)::numeric, 1))::real AS resp_rate,"
    " (sum(intensity_sum) / sum(intensity_n)::float8)::real AS intensity,"
    " (sum(quality_sum) / sum(windows)::float8)::real AS quality,"
    f" (SELECT a FROM unnest(ARRAY{list(ACTIVITIES)}::text[],"
    f" ARRAY[{', '.join(f'sum(act_{a})' for a in ACTIVITIES)}]) AS x(a, n) ORDER BY n DESC, a LIMIT 1) AS activity,"
    " sum(rhythm)::int AS rhythm, sum(steps_sum)::bigint AS steps, sum(falls)::int AS falls,"
    " max(u_pause_max) AS pause_max"
    " FROM parts GROUP BY 1 ORDER BY 1"
)


def series(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime, bucket_s: int, q: float
) -> list[SeriesPoint]:
    """A patient's trends over [start, end) in ``bucket_s`` buckets (access is checked by the caller).

    Read from :func:`series_source`: from a rollup, whole rollup buckets inside
    the range come from it and the windows of the partial buckets at either end
    from the raw table, so the points equal those computed from the raw windows.
    Means are sums over counts in double precision, which is exact for the
    wire's float4 values in their ranges whatever the summation order.
    """
    params = {"b": bucket_s, "q": q, "pid": patient_id, "start": start, "end": end, "flags": list(ARRHYTHMIA_FLAGS)}
    cur = conn.cursor(row_factory=class_row(SeriesPoint))
    source = series_source(bucket_s, q)
    step = dict(ROLLUPS).get(source)
    lo, hi = _whole_buckets(start, end, 3600 if source == "summary_1h" else 60)
    if step is None or lo >= hi:
        return cur.execute(_RAW_SERIES, params).fetchall()
    names = ", ".join(name for name, _, _ in ROLLUP_PARTS)
    exprs = ", ".join(expr for _, expr, _ in ROLLUP_PARTS)
    parts = (
        f"WITH parts AS (SELECT bucket, {names} FROM {source}"
        " WHERE patient_id = %(pid)s AND bucket >= %(lo)s AND bucket < %(hi)s"
        f" UNION ALL SELECT date_bin(INTERVAL '{step}', start_at, 'epoch'), {exprs} FROM summaries"
        " WHERE patient_id = %(pid)s AND ((start_at >= %(start)s AND start_at < %(lo)s)"
        " OR (start_at >= %(hi)s AND start_at < %(end)s)) GROUP BY 1) "
    )
    return cur.execute((parts + _ROLLUP_SERIES).encode(), params | {"lo": lo, "hi": hi}).fetchall()


def _whole_buckets(start: datetime, end: datetime, step_s: int) -> tuple[datetime, datetime]:
    """[lo, hi): the part of [start, end) covered by whole ``step_s`` buckets (lo >= hi: none)."""
    first = -(-start.timestamp() // step_s) * step_s
    last = end.timestamp() // step_s * step_s
    return datetime.fromtimestamp(first, timezone.utc), datetime.fromtimestamp(last, timezone.utc)


# Rhythm episodes of the patients in a CTE ``pts(id)``; binds start, end, q, flags, gap.
EPISODES_SQL = """
  SELECT patient_id, min(start_at) AS e0, max(end_at) AS e1, string_agg(fl, ',') AS flags
  FROM (
    SELECT patient_id, start_at, end_at, array_to_string(flags, ',') AS fl,
           sum(brk) OVER (PARTITION BY patient_id ORDER BY start_at) AS n
    FROM (
      SELECT patient_id, start_at, end_at, flags,
             CASE WHEN start_at - lag(end_at) OVER (PARTITION BY patient_id ORDER BY start_at)
                       <= make_interval(secs => %(gap)s) THEN 0 ELSE 1 END AS brk
      FROM summaries
      WHERE patient_id IN (SELECT id FROM pts) AND flags <> '{}' AND flags && %(flags)s
        AND quality >= %(q)s AND start_at >= %(start)s AND start_at < %(end)s
    ) marked
  ) numbered
  GROUP BY patient_id, n
"""


@dataclass(frozen=True)
class Episode:
    """A rhythm episode: [start, end) and the flags its windows carried."""

    start: datetime
    end: datetime
    flags: list[str]


@dataclass(frozen=True)
class AlertMark:
    """An alert on the time axis (``closed_at`` None while active)."""

    id: int
    level: str
    parameter: str
    state: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class PeriodMark:
    """A symptom period on the time axis (either end None if not yet known)."""

    id: int
    started_at: datetime | None
    ended_at: datetime | None
    tags: list[str]
    severity: int | None
    note: str


@dataclass(frozen=True)
class LimitBand:
    """Limits in force for one parameter (units of the parameter); None = no limit on that side.

    ``parameter`` is ``hr`` or ``resp_rate``, with ``@rest``, ``@sleep`` or ``@active``
    where approved limits differ by activity; ``source`` is ``NEWS2`` or ``version N``.
    """

    parameter: str
    yellow_low: float | None
    yellow_high: float | None
    red_low: float | None
    red_high: float | None
    source: str


@dataclass(frozen=True)
class Timeline:
    """Everything that happened to a patient in a time range, for one time axis."""

    alerts: list[AlertMark]
    periods: list[PeriodMark]
    strips: list[StripInfo]
    episodes: list[Episode]
    limits: list[LimitBand]


def rhythm_episodes(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime, q: float
) -> list[Episode]:
    """A patient's rhythm episodes starting in [start, end), oldest first."""
    rows = conn.execute(
        f"WITH pts AS (SELECT %(pid)s::bigint AS id) SELECT e0, e1, flags FROM ({EPISODES_SQL}) e ORDER BY e0",
        {"pid": patient_id, "start": start, "end": end, "q": q, "flags": list(ARRHYTHMIA_FLAGS),
         "gap": EPISODE_GAP_S},
    ).fetchall()  # fmt: skip
    return [Episode(r[0], r[1], sorted(set(r[2].split(",")) & set(ARRHYTHMIA_FLAGS))) for r in rows]


def limits_in_force(conn: psycopg.Connection[Any], patient_id: int) -> list[LimitBand]:
    """The limits the rules apply now: the newest approved version, else the NEWS2 defaults."""
    return limit_bands(thresholds.limits_in_force(conn, patient_id))


def limit_bands(in_force: thresholds.InForce) -> list[LimitBand]:
    """One band per limits entry of a threshold version (or the defaults), by parameter name."""
    source = "NEWS2" if in_force.version is None else f"version {in_force.version}"
    return [
        LimitBand(name, lim.yellow_low, lim.yellow_high, lim.red_low, lim.red_high, source)
        for name, lim in sorted(in_force.limits.items())
    ]


def timeline(
    conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime, q: float
) -> Timeline:
    """Alerts, symptom periods, strips and rhythm episodes overlapping [start, end), and the limits."""
    alerts = conn.cursor(row_factory=class_row(AlertMark)).execute(
        "SELECT id, level, parameter, state, opened_at, closed_at FROM alerts WHERE patient_id = %s"
        " AND opened_at < %s AND COALESCE(closed_at, 'infinity') > %s ORDER BY opened_at",
        (patient_id, end, start),
    ).fetchall()
    periods = conn.cursor(row_factory=class_row(PeriodMark)).execute(
        "SELECT id, started_at, ended_at, tags, severity, note FROM symptom_periods WHERE patient_id = %s"
        " AND COALESCE(started_at, ended_at) < %s AND COALESCE(ended_at, 'infinity') > %s"
        " ORDER BY COALESCE(started_at, ended_at)",
        (patient_id, end, start),
    ).fetchall()
    return Timeline(
        alerts, periods, list_strips(conn, patient_id, start, end), rhythm_episodes(conn, patient_id, start, end, q),
        limits_in_force(conn, patient_id),
    )  # fmt: skip


@dataclass(frozen=True)
class Baseline:
    """A patient's vitals over the baseline phase (usable windows; bpm, breaths/min, ms, 0..1)."""

    patient_id: int
    first_data_at: datetime
    until_at: datetime
    complete: bool  # the phase is over
    windows: int
    hr_mean: float | None
    hr_sd: float | None
    hr_p05: float | None
    hr_p95: float | None
    resp_mean: float | None
    resp_sd: float | None
    rmssd_mean: float | None
    sdnn_mean: float | None
    quality_mean: float | None


BASELINE_COLUMNS = (
    "patient_id, first_data_at, until_at, complete, windows, hr_mean, hr_sd, hr_p05, hr_p95,"
    " resp_mean, resp_sd, rmssd_mean, sdnn_mean, quality_mean"
)

# ``f`` is materialised so that each patient's first_at reaches the join as a value: inlined, the
# planner repeats its subquery for every day partition the join probes (quadratic in days of data).
COMPUTE_BASELINE_SQL = f"""
WITH f AS MATERIALIZED (
  SELECT p.id AS pid, (SELECT min(start_at) FROM summaries WHERE patient_id = p.id) AS first_at
  FROM patients p WHERE p.id = ANY(%(pids)s))
INSERT INTO patient_baselines ({BASELINE_COLUMNS})
SELECT f.pid, f.first_at, f.first_at + make_interval(days => %(days)s), now() >= f.first_at + make_interval(days => %(days)s),
  count(w.hr_mean), avg(w.hr_mean), stddev(w.hr_mean),
  percentile_cont(0.05) WITHIN GROUP (ORDER BY w.hr_mean), percentile_cont(0.95) WITHIN GROUP (ORDER BY w.hr_mean),
  avg(w.resp_rate), stddev(w.resp_rate), avg(w.rmssd), avg(w.sdnn), avg(w.quality)
FROM f
JOIN summaries w ON w.patient_id = f.pid AND w.start_at >= f.first_at
  AND w.start_at < f.first_at + make_interval(days => %(days)s) AND w.quality >= %(q)s
GROUP BY f.pid, f.first_at
ON CONFLICT (patient_id) DO UPDATE SET first_data_at = EXCLUDED.first_data_at, until_at = EXCLUDED.until_at,
  complete = EXCLUDED.complete, windows = EXCLUDED.windows, hr_mean = EXCLUDED.hr_mean, hr_sd = EXCLUDED.hr_sd,
  hr_p05 = EXCLUDED.hr_p05, hr_p95 = EXCLUDED.hr_p95, resp_mean = EXCLUDED.resp_mean,
  resp_sd = EXCLUDED.resp_sd, rmssd_mean = EXCLUDED.rmssd_mean, sdnn_mean = EXCLUDED.sdnn_mean,
  quality_mean = EXCLUDED.quality_mean, computed_at = now()
"""


def baselines(conn: psycopg.Connection[Any], patient_ids: set[int], q: float) -> dict[int, Baseline]:
    """Baselines of these patients (computed now if missing or still being learnt and stale).

    Patients without any usable window have none. ``q`` is the usable quality (0..1).
    """
    if not patient_ids:
        return {}
    found = _stored_baselines(conn, patient_ids)
    stale = [pid for pid in patient_ids if pid not in found]
    if stale:
        conn.execute(COMPUTE_BASELINE_SQL, {"pids": stale, "days": BASELINE_DAYS, "q": q})
        found |= _stored_baselines(conn, set(stale))
    return found


def _stored_baselines(conn: psycopg.Connection[Any], patient_ids: set[int]) -> dict[int, Baseline]:
    rows = conn.cursor(row_factory=class_row(Baseline)).execute(
        f"SELECT {BASELINE_COLUMNS} FROM patient_baselines WHERE patient_id = ANY(%s)"
        " AND (complete OR computed_at > now() - %s)",
        (list(patient_ids), BASELINE_REFRESH),
    ).fetchall()
    return {b.patient_id: b for b in rows}


@dataclass(frozen=True)
class Histogram:
    """The distribution of one parameter over a range: ``counts[i]`` windows in [edges[i], edges[i+1])."""

    parameter: str
    start: datetime
    end: datetime
    edges: list[float]
    counts: list[int]
    windows: int
    p05: float | None
    p50: float | None
    p95: float | None


HISTOGRAM_COLUMNS = {"hr": ("hr_mean", 2.0), "resp_rate": ("resp_rate", 1.0)}


def histogram(
    conn: psycopg.Connection[Any], patient_id: int, parameter: str, start: datetime, end: datetime, q: float
) -> Histogram:
    """Distribution of ``parameter`` (``hr`` bpm or ``resp_rate``/min) over a patient's usable windows."""
    column, width = HISTOGRAM_COLUMNS[parameter]
    where = f"patient_id = %(pid)s AND start_at >= %(start)s AND start_at < %(end)s AND quality >= %(q)s AND {column} IS NOT NULL"
    params = {"pid": patient_id, "start": start, "end": end, "q": q, "w": width}
    bins = conn.execute(
        f"SELECT floor({column} / %(w)s) * %(w)s AS lo, count(*) FROM summaries WHERE {where} GROUP BY 1 ORDER BY 1",
        params,
    ).fetchall()
    pct = conn.execute(
        f"SELECT count(*), percentile_cont(ARRAY[0.05, 0.5, 0.95]) WITHIN GROUP (ORDER BY {column})"
        f" FROM summaries WHERE {where}",
        params,
    ).fetchone()
    assert pct is not None
    p = [round(v, 1) for v in pct[1]] if pct[1] else [None, None, None]
    edges, counts = fill_bins([(float(lo), int(n)) for lo, n in bins], width)
    return Histogram(parameter, start, end, edges, counts, int(pct[0]), *p)


def fill_bins(bins: list[tuple[float, int]], width: float) -> tuple[list[float], list[int]]:
    """Sparse ``(low edge, count)`` bins, sorted, to contiguous edges and counts (empty bins = 0)."""
    if not bins:
        return [], []
    first, n = bins[0][0], int(round((bins[-1][0] - bins[0][0]) / width)) + 1
    counts = [0] * n
    for lo, count in bins:
        counts[int(round((lo - first) / width))] += count
    return [first + i * width for i in range(n + 1)], counts


@dataclass(frozen=True)
class Mark:
    """Something to mark on an ECG strip: ``kind`` is ``rhythm`` (a flagged window), ``symptom_start``,
    ``symptom_stop`` or ``panic``; ``end`` is set for windows."""

    kind: str
    start: datetime
    end: datetime | None
    label: str


def marks_between(conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime) -> list[Mark]:
    """Flagged windows overlapping [start, end) and the patient's events inside it, by time."""
    windows = conn.execute(
        "SELECT start_at, end_at, flags FROM summaries WHERE patient_id = %s AND flags <> '{}'"
        " AND start_at < %s AND end_at > %s AND start_at > %s - interval '1 hour' ORDER BY start_at",
        (patient_id, end, start, start),
    ).fetchall()
    events = conn.execute(
        "SELECT type, at, array_to_string(tags, ', ') FROM events WHERE patient_id = %s"
        " AND type IN ('symptom_start', 'symptom_stop', 'panic') AND at >= %s AND at < %s ORDER BY at",
        (patient_id, start, end),
    ).fetchall()
    marks = [Mark("rhythm", s, e, ", ".join(f)) for s, e, f in windows]
    marks += [Mark(kind, at, None, tags) for kind, at, tags in events]
    return sorted(marks, key=lambda m: m.start)
