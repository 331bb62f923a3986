"""Symptom-period search across a clinician's patients, and symptom-rhythm correlation.

A period a patient marked is found by who, when and what they said (tags,
severity, note text) and by what the data showed during it: its highest heart
rate, any pause, an irregular-rhythm window overlapping it, its signal quality.
Each result carries the period's vitals beside the patient's baseline
(:mod:`server.trends`) and a link to the ECG strip recorded during it.

The data filters read the summary windows overlapping the period whose quality
is at least ``min_quality`` (a noisy window neither counts as a pause nor
lifts the maximum). Results are newest first; the query stops after
``limit + 1`` matches so a page costs the same however many periods there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from server.queries import VISIBLE, StripInfo
from server.store import User
from server.trends import ARRHYTHMIA_FLAGS, EPISODE_GAP_S, EPISODES_SQL, Baseline, baselines

IRREGULAR_FLAGS = ["irregular", "af_suspected"]
STRIP_MARGIN_S = 60  # a strip starting this long before a period still belongs to it
# The phone's outbox sends in order, so once a patient's data reaches this far past a period's
# end, every window of the period has arrived and its cached stats are final; until then they
# are recomputed at every search (a phone that was offline catches up without stale results).
STATS_SETTLE_S = 600
REFRESH_CHUNK = 2000  # periods per statement when filling the cache


@dataclass(frozen=True)
class SymptomFilter:
    """What to look for; None or empty means "any". Times are aware UTC datetimes.

    Attributes:
        patient_ids: only these patients (each must be visible: checked by the caller).
        start, end: periods overlapping [start, end).
        tags: periods carrying any of these tags (case-insensitive).
        severity_min, severity_max: 1..5, inclusive.
        text: a substring of the note or of a tag (case-insensitive).
        hr_max_above: the period's highest heart rate above this (bpm).
        hr_min_below: the period's lowest heart rate below this (bpm).
        pause: True = a window with a pause overlaps; False = none does.
        irregular: True = an irregular/AF-suspected window overlaps; False = none does.
        min_quality: the period's mean signal quality at least this (0..1).
        limit, offset: the page.
    """

    patient_ids: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    tags: tuple[str, ...] = ()
    severity_min: int | None = None
    severity_max: int | None = None
    text: str = ""
    hr_max_above: float | None = None
    hr_min_below: float | None = None
    pause: bool | None = None
    irregular: bool | None = None
    min_quality: float | None = None
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class PeriodVitals:
    """What the data showed over a period (usable windows only; None without data)."""

    windows: int  # usable windows overlapping the period
    hr_mean: float | None  # bpm, mean of the windows' means
    hr_min: float | None
    hr_max: float | None
    resp_mean: float | None  # breaths/min
    rmssd_mean: float | None  # ms
    quality_mean: float | None  # 0..1, over all overlapping windows
    flags: list[str]  # rhythm flags seen


@dataclass(frozen=True)
class HrStats:
    """Heart rate over a period's usable windows (bpm), as the skeleton's API gave it."""

    mean: float | None
    min: float | None
    max: float | None
    windows: int


@dataclass(frozen=True)
class SymptomResult:
    """One symptom period with what the data showed, the patient's baseline and its strip."""

    id: int
    patient_id: int
    patient_name: str
    period: str
    started_at: datetime | None
    ended_at: datetime | None  # None while the period is open
    tags: list[str]
    severity: int | None
    note: str
    hr: HrStats
    vitals: PeriodVitals
    baseline: Baseline | None
    strip: StripInfo | None


@dataclass(frozen=True)
class SymptomPage:
    """A page of results; ``more`` says whether another page exists."""

    results: list[SymptomResult]
    more: bool


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _candidates(joins: str) -> str:
    """FROM/WHERE of the periods a filter may match by what the patient said, before looking at the data
    (binds uid, admin, pids, start, end, tags, sev_min, sev_max, text); ``joins`` adds relations after
    ``symptom_periods s`` and ``patients p``."""
    return f"""
  FROM symptom_periods s JOIN patients p ON p.id = s.patient_id {joins}
  WHERE {VISIBLE}
    AND (cardinality(%(pids)s::bigint[]) = 0 OR s.patient_id = ANY(%(pids)s))
    AND (%(start)s::timestamptz IS NULL OR COALESCE(s.ended_at, 'infinity') > %(start)s)
    AND (%(end)s::timestamptz IS NULL OR COALESCE(s.started_at, s.ended_at) < %(end)s)
    AND (cardinality(%(tags)s::text[]) = 0 OR lower(s.tags::text)::text[] && %(tags)s)
    AND (%(sev_min)s::int IS NULL OR s.severity >= %(sev_min)s)
    AND (%(sev_max)s::int IS NULL OR s.severity <= %(sev_max)s)
    AND (%(text)s::text IS NULL OR s.note ILIKE %(text)s OR s.tags::text ILIKE %(text)s)
"""


# What the data showed over period ``s`` (usable windows: quality >= %(q)s).
PERIOD_STATS = """
  SELECT count(*) FILTER (WHERE w.quality >= %(q)s) AS windows,
         avg(w.hr_mean) FILTER (WHERE w.quality >= %(q)s) AS hr_mean,
         min(w.hr_min) FILTER (WHERE w.quality >= %(q)s) AS hr_min,
         max(w.hr_max) FILTER (WHERE w.quality >= %(q)s) AS hr_max,
         avg(w.resp_rate) FILTER (WHERE w.quality >= %(q)s) AS resp_mean,
         avg(w.rmssd) FILTER (WHERE w.quality >= %(q)s) AS rmssd_mean,
         avg(w.quality) AS quality_mean,
         (SELECT COALESCE(array_agg(DISTINCT f ORDER BY f), '{}') FROM unnest(string_to_array(
            string_agg(array_to_string(w.flags, ','), ',') FILTER (WHERE w.quality >= %(q)s), ',')) f
          WHERE f <> '') AS flags
  FROM summaries w
  WHERE w.patient_id = s.patient_id AND w.end_at > COALESCE(s.started_at, s.ended_at)
    AND w.start_at < COALESCE(s.ended_at, now())
    -- windows last at most an hour: this bound lets the (patient_id, start_at) index limit the scan
    AND w.start_at > COALESCE(s.started_at, s.ended_at) - interval '1 hour'
"""

STAT_COLUMNS = "windows, hr_mean, hr_min, hr_max, resp_mean, rmssd_mean, quality_mean, flags"

# Candidate periods whose cached stats are missing or not yet final.
STALE_SQL = f"""
SELECT s.id {_candidates("")}
  AND NOT EXISTS (SELECT 1 FROM symptom_period_stats x WHERE x.period_id = s.id AND x.usable_quality = %(q)s
                  AND x.final)
"""

# (Re)compute the stats of the periods %(ids)s.
REFRESH_SQL = f"""
INSERT INTO symptom_period_stats (period_id, usable_quality, {STAT_COLUMNS}, final)
SELECT s.id, %(q)s, v.*,
       COALESCE(p.last_data_at >= COALESCE(s.ended_at, 'infinity') + make_interval(secs => %(settle)s), false)
FROM symptom_periods s JOIN patients p ON p.id = s.patient_id CROSS JOIN LATERAL ({PERIOD_STATS}) v
WHERE s.id = ANY(%(ids)s)
ON CONFLICT (period_id) DO UPDATE SET usable_quality = EXCLUDED.usable_quality, windows = EXCLUDED.windows,
  hr_mean = EXCLUDED.hr_mean, hr_min = EXCLUDED.hr_min, hr_max = EXCLUDED.hr_max,
  resp_mean = EXCLUDED.resp_mean, rmssd_mean = EXCLUDED.rmssd_mean, quality_mean = EXCLUDED.quality_mean,
  flags = EXCLUDED.flags, final = EXCLUDED.final, computed_at = now()
"""

SEARCH_SQL = f"""
SELECT s.id, s.patient_id, p.name, s.period, s.started_at, s.ended_at, s.tags, s.severity, s.note,
       v.windows, v.hr_mean, v.hr_min, v.hr_max, v.resp_mean, v.rmssd_mean, v.quality_mean, v.flags
{_candidates("JOIN symptom_period_stats v ON v.period_id = s.id")}
  AND (%(hr_above)s::real IS NULL OR v.hr_max > %(hr_above)s)
  AND (%(hr_below)s::real IS NULL OR v.hr_min < %(hr_below)s)
  AND (%(min_q)s::real IS NULL OR v.quality_mean >= %(min_q)s)
  AND (%(pause)s::boolean IS NULL OR ('pause' = ANY(v.flags)) = %(pause)s)
  AND (%(irregular)s::boolean IS NULL OR (v.flags && %(irregular_flags)s) = %(irregular)s)
ORDER BY COALESCE(s.started_at, s.ended_at) DESC, s.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
STRIP_OF_PERIOD_SQL = """
SELECT DISTINCT ON (s.id) s.id, t.patient_id, t.device_id, t.seq, t.start_at, t.fs, t.n_samples / t.fs,
       t.reason, t.ref_seq
FROM symptom_periods s JOIN strips t ON t.patient_id = s.patient_id
  AND t.start_at >= COALESCE(s.started_at, s.ended_at) - make_interval(secs => %(margin)s)
  AND t.start_at < COALESCE(s.ended_at, now())
WHERE s.id = ANY(%(ids)s)
ORDER BY s.id, (t.reason = 'symptom') DESC, t.start_at
"""


def search_symptoms(
    conn: psycopg.Connection[Any], user: User, f: SymptomFilter, usable_quality: float
) -> SymptomPage:
    """Symptom periods of the user's patients matching ``f``, newest first, one page.

    Args:
        usable_quality: windows below this quality (0..1) do not count for vitals or flags.
    """
    params = {
        "uid": user.id, "admin": user.is_admin, "pids": list(f.patient_ids), "start": f.start, "end": f.end,
        "tags": [t.lower() for t in f.tags], "sev_min": f.severity_min, "sev_max": f.severity_max,
        "text": _like(f.text) if f.text else None, "q": usable_quality, "hr_above": f.hr_max_above,
        "hr_below": f.hr_min_below, "min_q": f.min_quality, "pause": f.pause, "irregular": f.irregular,
        "limit": f.limit + 1, "offset": f.offset, "irregular_flags": IRREGULAR_FLAGS,
        "settle": STATS_SETTLE_S,
    }  # fmt: skip
    refresh_stats(conn, params)
    rows = conn.execute(SEARCH_SQL, params).fetchall()
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    strips = _strips_of(conn, [r[0] for r in rows])
    base = baselines(conn, {r[1] for r in rows}, usable_quality)
    return SymptomPage([_result(r, strips.get(r[0]), base.get(r[1])) for r in rows], more)


def refresh_stats(conn: psycopg.Connection[Any], params: dict[str, Any]) -> int:
    """Compute the missing or not yet final stats of the candidate periods; return how many."""
    stale = [r[0] for r in conn.execute(STALE_SQL, params)]
    for i in range(0, len(stale), REFRESH_CHUNK):
        conn.execute(REFRESH_SQL, params | {"ids": stale[i : i + REFRESH_CHUNK]})
    return len(stale)


def _strips_of(conn: psycopg.Connection[Any], period_ids: list[int]) -> dict[int, StripInfo]:
    if not period_ids:
        return {}
    rows = conn.execute(STRIP_OF_PERIOD_SQL, {"ids": period_ids, "margin": STRIP_MARGIN_S}).fetchall()
    return {r[0]: StripInfo(*r[1:]) for r in rows}


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _result(r: tuple[Any, ...], strip: StripInfo | None, baseline: Baseline | None) -> SymptomResult:
    flags = list(r[16])
    vitals = PeriodVitals(
        int(r[9]), _round(r[10]), _round(r[11]), _round(r[12]), _round(r[13]), _round(r[14]),
        _round(r[15], 2), flags,
    )  # fmt: skip
    hr = HrStats(vitals.hr_mean, vitals.hr_min, vitals.hr_max, vitals.windows)
    return SymptomResult(*r[:9], hr=hr, vitals=vitals, baseline=baseline, strip=strip)


@dataclass(frozen=True)
class Correlation:
    """Symptom-rhythm correlation of one patient over a time range.

    Attributes:
        periods: symptom periods the patient marked in the range.
        periods_with_arrhythmia: of those, periods an arrhythmia episode overlaps.
        episodes: arrhythmia episodes (runs of flagged windows, see :mod:`server.trends`).
        episodes_unmarked: episodes that no marked period overlaps.
    """

    patient_id: int
    patient_name: str
    periods: int
    periods_with_arrhythmia: int
    episodes: int
    episodes_unmarked: int


CORRELATION_SQL = f"""
WITH pts AS (
  SELECT p.id, p.name FROM patients p
  WHERE {VISIBLE} AND (cardinality(%(pids)s::bigint[]) = 0 OR p.id = ANY(%(pids)s))
), per AS (
  SELECT s.patient_id, COALESCE(s.started_at, s.ended_at) AS s0, COALESCE(s.ended_at, now()) AS s1
  FROM symptom_periods s JOIN pts ON pts.id = s.patient_id
  WHERE COALESCE(s.started_at, s.ended_at) < %(end)s AND COALESCE(s.ended_at, 'infinity') > %(start)s
), ep AS ({EPISODES_SQL})
SELECT pts.id, pts.name,
  (SELECT count(*) FROM per WHERE per.patient_id = pts.id),
  (SELECT count(*) FROM per WHERE per.patient_id = pts.id AND EXISTS (
     SELECT 1 FROM ep WHERE ep.patient_id = pts.id AND ep.e0 < per.s1 AND ep.e1 > per.s0)),
  (SELECT count(*) FROM ep WHERE ep.patient_id = pts.id),
  (SELECT count(*) FROM ep WHERE ep.patient_id = pts.id AND NOT EXISTS (
     SELECT 1 FROM per WHERE per.patient_id = pts.id AND ep.e0 < per.s1 AND ep.e1 > per.s0))
FROM pts ORDER BY pts.name, pts.id
"""


def correlate(
    conn: psycopg.Connection[Any], user: User, patient_ids: tuple[int, ...], start: datetime, end: datetime,
    usable_quality: float,
) -> list[Correlation]:
    """Symptom-rhythm correlation for each of the user's patients (or those of ``patient_ids``)."""
    params = {
        "uid": user.id, "admin": user.is_admin, "pids": list(patient_ids), "start": start, "end": end,
        "q": usable_quality, "flags": list(ARRHYTHMIA_FLAGS), "gap": EPISODE_GAP_S,
    }  # fmt: skip
    return [Correlation(*r) for r in conn.execute(CORRELATION_SQL, params).fetchall()]
