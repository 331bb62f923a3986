"""Report sections read from the summary windows: trends against the limits, rhythm events, completeness.

Pure functions of :class:`~server.report.inputs.ReportData`. Vitals and rhythm
count *usable* windows (quality at least ``usable_quality``, as the alert
rules and the trends do); monitored time is the duration of those windows.
Time beyond the limits is judged as the rules judge a window
(:mod:`server.report.limits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from server.report.inputs import DayStats, Pause, ReportData
from server.report.limits import pct, time_beyond
from server.trends import ARRHYTHMIA_FLAGS, AlertMark, Episode, LimitBand, SeriesPoint, limit_bands

HOUR_S = 3600.0
SHORT_DAY_HOURS = 12.0  # a whole day with less good signal than this is a short day (pro rata for part days)
LONGEST_SHOWN = 5  # pauses and episodes listed


def _mean(total: float, n: int, digits: int = 1) -> float | None:
    return None if n == 0 else round(total / n, digits)


def _total(stats: Iterable[DayStats], attr: str) -> float:
    return float(sum(getattr(s, attr) for s in stats))


def _hours(seconds: float) -> float:
    return round(seconds / HOUR_S, 2)


# --- trends


@dataclass(frozen=True)
class VitalStat:
    """One vital over the period's usable windows (``low``/``high``: lowest and highest beat rates for HR).

    ``beyond_yellow_pct`` includes the time beyond red; both None where no limits apply.
    """

    parameter: str  # hr, rmssd, sdnn, resp_rate, intensity
    label: str
    unit: str
    mean: float | None
    low: float | None
    high: float | None
    windows: int
    beyond_yellow_pct: float | None = None
    beyond_red_pct: float | None = None


@dataclass(frozen=True)
class LimitChange:
    """A threshold version approved during the period."""

    version: int
    approved_at: datetime
    approved_by: str | None
    reason: str


@dataclass(frozen=True)
class TrendsBody:
    """Trends against the limits: per-vital figures, the limits in force at the end, the bucketed series."""

    stats: list[VitalStat]
    limits: list[LimitBand]
    limit_changes: list[LimitChange]
    alerts: list[AlertMark]  # every alert of the period, for the chart's event lane
    steps_per_day: float | None  # mean over the days with step counts
    active_hours_per_day: float | None  # walking or running, mean over the days with windows
    series: list[SeriesPoint]
    bucket_s: int


def vital_stats(data: ReportData) -> list[VitalStat]:
    """Heart rate, HRV (RMSSD, SDNN), respiration and activity intensity over the period."""
    s = data.day_stats
    lows = [d.hr_min for d in s if d.hr_min is not None]
    highs = [d.hr_max for d in s if d.hr_max is not None]
    lim = data.limits.limits

    def beyond(name: str) -> tuple[float | None, float | None]:
        return time_beyond(name, data.bands, data.edges, lim) if name in data.edges else (None, None)

    def stat(name: str, label: str, unit: str, part: str, digits: int = 0) -> VitalStat:
        n = int(_total(s, f"{part}_n"))
        return VitalStat(name, label, unit, _mean(_total(s, f"{part}_sum"), n, digits), None, None, n)

    hr_n = int(_total(s, "hr_n"))
    resp_yellow, resp_red = beyond("resp_rate")
    return [
        VitalStat("hr", "Heart rate", "bpm", _mean(_total(s, "hr_sum"), hr_n, 0), min(lows, default=None),
                  max(highs, default=None), hr_n, *beyond("hr")),
        stat("rmssd", "HRV (RMSSD)", "ms", "rmssd"),
        stat("sdnn", "HRV (SDNN)", "ms", "sdnn"),
        replace(stat("resp_rate", "Respiration", "/min", "resp", 1), beyond_yellow_pct=resp_yellow,
                beyond_red_pct=resp_red),
        stat("intensity", "Activity intensity", "g", "intensity", 3),
    ]  # fmt: skip


def trends_section(data: ReportData) -> tuple[str, TrendsBody]:
    """Vital figures and series against the limits in force at the period's end."""
    stats = vital_stats(data)
    with_steps = [d.steps for d in data.day_stats if d.steps is not None]
    changes = [LimitChange(v.version, v.approved_at, v.approved_by, v.reason)
               for v in data.limit_changes if v.version is not None and v.approved_at is not None]  # fmt: skip
    marks = [AlertMark(a.id, a.level, a.parameter, a.state, a.opened_at, a.closed_at) for a in data.alerts]
    body = TrendsBody(
        stats, limit_bands(data.limits), changes, sorted(marks, key=lambda m: (m.opened_at, m.id)),
        _mean(float(sum(with_steps)), len(with_steps), 0),
        _mean(_total(data.day_stats, "active_s") / HOUR_S, len(data.day_stats), 1),
        list(data.series), data.bucket_s,
    )  # fmt: skip
    return _trends_headline(stats, body), body


def _trends_headline(stats: list[VitalStat], body: TrendsBody) -> str:
    hr, rmssd, _, resp, _ = stats
    if hr.mean is None:
        return "No usable heart-rate data in this period."
    spread = f" ({hr.low:.0f}–{hr.high:.0f})" if hr.low is not None and hr.high is not None else ""
    parts = [f"Heart rate {hr.mean:.0f} bpm{spread}"]
    if hr.beyond_yellow_pct is not None:
        parts[0] += f", {hr.beyond_yellow_pct:g} % of the time at or beyond the yellow limits (red {hr.beyond_red_pct:g} %)"
    if rmssd.mean is not None:
        parts.append(f"RMSSD {rmssd.mean:.0f} ms")
    if resp.mean is not None:
        parts.append(f"respiration {resp.mean:.1f} /min")
    if body.steps_per_day is not None:
        parts.append(f"{body.steps_per_day:.0f} steps a day")
    if body.limit_changes:
        parts.append(f"limits changed {len(body.limit_changes)}×")
    return "; ".join(parts) + "."


# --- rhythm


@dataclass(frozen=True)
class EpisodeCount:
    """Rhythm episodes carrying one flag: how many, their total and longest duration (s)."""

    flag: str
    episodes: int
    total_s: float
    longest_s: float


@dataclass(frozen=True)
class RhythmBody:
    """Rhythm events over the monitored (usable) time.

    AF burden is the share of monitored time in windows flagged ``af_suspected``.
    Pauses count usable windows flagged ``pause``; ``long_pauses`` those whose
    longest RR interval is 3 s or more. Ectopy is per monitored hour and per
    beat, over the windows that counted ectopic beats.
    """

    monitored_h: float
    af_h: float
    af_burden_pct: float | None
    pause_windows: int
    long_pauses: int
    longest_pauses: list[Pause]
    ectopic_beats: int
    ectopic_per_hour: float | None
    ectopic_pct_of_beats: float | None
    episode_counts: list[EpisodeCount]
    longest_episodes: list[Episode]
    episodes: list[Episode]  # all, oldest first (the trends chart marks them)


def _duration(e: Episode) -> float:
    return (e.end - e.start).total_seconds()


def episode_counts(episodes: Sequence[Episode]) -> list[EpisodeCount]:
    """Per arrhythmia flag that occurred: episodes, total and longest duration."""
    counts = []
    for flag in ARRHYTHMIA_FLAGS:
        spans = [_duration(e) for e in episodes if flag in e.flags]
        if spans:
            counts.append(EpisodeCount(flag, len(spans), round(sum(spans), 1), round(max(spans), 1)))
    return counts


def rhythm_section(data: ReportData) -> tuple[str, RhythmBody]:
    """AF burden, pauses with the longest, ectopy and rhythm episodes."""
    s = data.day_stats
    monitored, af, ectopic = _total(s, "good_s"), _total(s, "af_s"), int(_total(s, "ectopic"))
    body = RhythmBody(
        _hours(monitored), _hours(af), pct(af, monitored, 2), int(_total(s, "pause_windows")),
        int(_total(s, "long_pauses")), list(data.pauses[:LONGEST_SHOWN]), ectopic,
        _rate(ectopic, _total(s, "ectopic_s") / HOUR_S),
        pct(ectopic, _total(s, "ectopic_beats"), 2), episode_counts(data.episodes),
        sorted(data.episodes, key=lambda e: (-_duration(e), e.start))[:LONGEST_SHOWN],
        sorted(data.episodes, key=lambda e: e.start),
    )  # fmt: skip
    return _rhythm_headline(body), body


def _rate(count: float, hours: float) -> float | None:
    return None if hours <= 0 else round(count / hours, 1)


def _rhythm_headline(b: RhythmBody) -> str:
    if b.monitored_h == 0:
        return "No monitored time in this period."
    af = "no AF suspected" if not b.af_h else f"AF burden {b.af_burden_pct:g} %"
    parts = [f"{af} over {b.monitored_h:.1f} h monitored"]
    longest = next((p.seconds for p in b.longest_pauses if p.seconds is not None), None)
    pauses = f"{b.pause_windows} pause{'s' if b.pause_windows != 1 else ''}"
    parts.append(pauses + (f" (longest {longest:.1f} s, {b.long_pauses} of 3 s or more)" if longest else ""))
    if b.ectopic_per_hour is not None:
        parts.append(f"{b.ectopic_beats} ectopic beats ({b.ectopic_per_hour:g} an hour)")
    return "; ".join(parts) + "."


# --- completeness


@dataclass(frozen=True)
class DayCompleteness:
    """One calendar day: hours inside the period, hours with windows, hours of good-quality signal."""

    day: date
    span_h: float
    recorded_h: float
    good_h: float
    short: bool  # good signal under SHORT_DAY_HOURS (pro rata for a part day)


@dataclass(frozen=True)
class CompletenessBody:
    """Hours of good-quality signal per day (good: quality >= the usable quality)."""

    days: list[DayCompleteness]
    good_h: float
    good_h_per_day: float | None  # over the period's length in days
    good_pct: float | None  # of the period's time
    short_day_hours: float
    short_days: int
    days_without_data: int


def completeness_section(data: ReportData) -> tuple[str, CompletenessBody]:
    """Per day: recorded and good hours; totals, short days and days without any window."""
    by_day = {s.index: s for s in data.day_stats}
    days = [_day(i, span.day, (span.end - span.start).total_seconds(), by_day.get(i))
            for i, span in enumerate(data.days)]  # fmt: skip
    good = _total(data.day_stats, "good_s")
    length = (data.period.end - data.period.start).total_seconds()
    body = CompletenessBody(
        days, _hours(good), _rate(good / HOUR_S, length / 86400.0), pct(good, length), SHORT_DAY_HOURS,
        sum(d.short for d in days), sum(d.recorded_h == 0 for d in days),
    )  # fmt: skip
    return _completeness_headline(body), body


def _day(index: int, day: date, span_s: float, stats: DayStats | None) -> DayCompleteness:
    good = stats.good_s if stats else 0.0
    return DayCompleteness(day, _hours(span_s), _hours(stats.recorded_s if stats else 0.0), _hours(good),
                           good < SHORT_DAY_HOURS * HOUR_S * span_s / 86400.0)  # fmt: skip


def _completeness_headline(b: CompletenessBody) -> str:
    if b.good_h_per_day is None:
        return "The period is empty."
    text = f"{b.good_h_per_day:g} h of good signal a day ({b.good_pct:g} % of the time)"
    text += f"; {b.short_days} of {len(b.days)} days under {b.short_day_hours:g} h"
    if b.days_without_data:
        text += f", {b.days_without_data} without any data"
    return text + "."

