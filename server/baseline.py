"""Baselines and proposed personalised limits: pure statistics over a patient's first days.

During the initial data-collection phase (:class:`BaselinePolicy.days`, e.g. 7
days, and at least ``min_good_hours`` of good-quality windows) the patient is
judged by the defaults (:data:`server.rules.NEWS2_LIMITS`). Then
:func:`propose_limits` derives yellow and red limits per parameter and activity
context (``rest``, ``sleep``, ``active``; see :func:`server.rules.context_of`;
sleep stands for the night, since lying windows are the time-of-day split that
matters for heart and breathing rate):

- robust spread: the ``low_quantile`` and ``high_quantile`` (1st and 99th
  percentile) of the context's good windows, so that a few minutes of artefact
  or of a real episode in the baseline week do not move the limits;
- yellow = quantile -/+ the yellow margin (the patient's own deviation);
- red = the default (NEWS2) red limit, widened only as far as quantile -/+ the
  red margin needs (an athlete's 40 bpm sleep is not urgent; 70 bpm at rest is
  not urgent either, just because it is unusual for them);
- never laxer than the hard safety limits (:data:`server.rules.HARD_LIMITS`):
  red limits are clamped inside them, yellow kept strictly inside red;
- a context with fewer than ``min_context_hours`` of data is not personalised:
  the plain default applies there.

A clinician reviews, edits and approves the proposal (:mod:`server.thresholds`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.rules import CONTEXTS, HARD_LIMITS, NEWS2_LIMITS, VITAL_FIELDS, context_of
from wire import Limits

DAY_S = 86_400.0


@dataclass(frozen=True)
class Margins:
    """How far beyond the patient's usual extremes yellow and red begin (parameter units)."""

    yellow: float
    red: float


@dataclass(frozen=True)
class BaselinePolicy:
    """How the baseline is collected and turned into limits.

    Attributes:
        days: length of the initial phase, days (>= 1).
        min_good_hours: good-quality data the phase needs in total, hours.
        min_context_hours: data a context needs to be personalised, hours.
        min_quality: windows below it (0..1) are left out.
        low_quantile, high_quantile: the robust extremes, 0..1.
        margins: per parameter, in its unit (bpm, breaths/min).
    """

    days: float = 7.0
    min_good_hours: float = 48.0
    min_context_hours: float = 4.0
    min_quality: float = 0.5
    low_quantile: float = 0.01
    high_quantile: float = 0.99
    margins: Mapping[str, Margins] = field(
        default_factory=lambda: {"hr": Margins(yellow=15.0, red=25.0), "resp_rate": Margins(yellow=4.0, red=8.0)}
    )

    @classmethod
    def from_settings(cls, settings: Any) -> BaselinePolicy:
        """The phase a deployment configured (``ServerSettings.baseline_days``, ``.baseline_min_good_hours``)."""
        return cls(days=settings.baseline_days, min_good_hours=settings.baseline_min_good_hours)


@dataclass(frozen=True)
class BaselineSample:
    """One stored summary window, as far as the baseline needs it (s since epoch, bpm, breaths/min)."""

    start: float
    end: float
    activity: str
    quality: float
    hr_mean: float | None
    resp_rate: float | None


@dataclass(frozen=True)
class ContextStats:
    """The spread of one parameter in one context (parameter units; hours of data)."""

    hours: float
    windows: int
    low: float
    median: float
    high: float


@dataclass(frozen=True)
class Proposal:
    """Proposed limits (``param`` and ``param@context`` keys) and the statistics behind them."""

    limits: dict[str, Limits]
    stats: dict[str, ContextStats]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class PhaseStatus:
    """Where a patient stands in the initial phase."""

    phase: str  # "no_data", "collecting", "ready"
    since: float | None  # start of the first window, s since epoch
    good_hours: float
    days_left: float


def phase_status(first_start: float | None, good_hours: float, now: float, policy: BaselinePolicy) -> PhaseStatus:
    """``ready`` once ``policy.days`` have passed since the first window and enough good data exists."""
    if first_start is None:
        return PhaseStatus("no_data", None, 0.0, policy.days)
    days_left = max(0.0, policy.days - (now - first_start) / DAY_S)
    ready = days_left == 0.0 and good_hours >= policy.min_good_hours
    return PhaseStatus("ready" if ready else "collecting", first_start, good_hours, days_left)


def good_hours(samples: Sequence[BaselineSample], policy: BaselinePolicy) -> float:
    """Hours covered by windows at or above ``policy.min_quality``."""
    return sum(s.end - s.start for s in samples if s.quality >= policy.min_quality) / 3600.0


def propose_limits(samples: Sequence[BaselineSample], policy: BaselinePolicy) -> Proposal:
    """Personalised limits per parameter and context from the baseline windows (pure)."""
    limits: dict[str, Limits] = dict(NEWS2_LIMITS)
    stats: dict[str, ContextStats] = {}
    notes: list[str] = []
    for name, margins in policy.margins.items():
        for context in CONTEXTS:
            key = f"{name}@{context}"
            found = context_stats(samples, name, context, policy)
            if found is None or found.hours < policy.min_context_hours:
                have = 0.0 if found is None else found.hours
                notes.append(f"{key}: {have:.1f} h of good data, needs {policy.min_context_hours:g} h: default kept")
                continue
            stats[key] = found
            limits[key] = limits_from(found, margins, NEWS2_LIMITS.get(name), HARD_LIMITS.get(name))
    return Proposal(limits, stats, tuple(notes))


def context_stats(
    samples: Sequence[BaselineSample], name: str, context: str, policy: BaselinePolicy
) -> ContextStats | None:
    """Quantiles of one parameter over the good windows of one context; None without any."""
    column = VITAL_FIELDS[name]
    picked = [
        (getattr(s, column), s.end - s.start)
        for s in samples
        if s.quality >= policy.min_quality and context_of(s.activity) == context and getattr(s, column) is not None
    ]
    if not picked:
        return None
    values = np.array([v for v, _ in picked], dtype=float)
    low, median, high = np.quantile(values, [policy.low_quantile, 0.5, policy.high_quantile])
    hours = sum(d for _, d in picked) / 3600.0
    return ContextStats(round(hours, 2), len(picked), round(float(low), 1), round(float(median), 1),
                        round(float(high), 1))  # fmt: skip


def limits_from(stats: ContextStats, margins: Margins, default: Limits | None, hard: Limits | None) -> Limits:
    """Yellow and red limits around the spread (pure).

    Yellow follows the patient: their robust extremes plus the yellow margin.
    Red is the urgent level: it starts from the default (NEWS2) red limit and is
    widened only as far as the patient's own range plus the red margin needs, and
    never beyond the hard limits. Yellow is kept strictly inside red.
    """
    red_low, red_high = stats.low - margins.red, stats.high + margins.red
    if default is not None:
        red_low = red_low if default.red_low is None else min(red_low, default.red_low)
        red_high = red_high if default.red_high is None else max(red_high, default.red_high)
    if hard is not None:
        red_low = red_low if hard.red_low is None else max(red_low, hard.red_low)
        red_high = red_high if hard.red_high is None else min(red_high, hard.red_high)
    yellow_low = max(stats.low - margins.yellow, red_low + 1.0)
    yellow_high = min(stats.high + margins.yellow, red_high - 1.0)
    return Limits(
        yellow_low=round(yellow_low, 1), yellow_high=round(yellow_high, 1),
        red_low=round(red_low, 1), red_high=round(red_high, 1),
    )  # fmt: skip


def check_limits(name: str, limits: Limits) -> list[str]:
    """What is wrong with limits a clinician entered (empty when they are usable).

    Order must be red_low < yellow_low < yellow_high < red_high where given, and
    red limits may not be laxer than the hard safety limits.
    """
    problems = []
    ordered = [v for v in (limits.red_low, limits.yellow_low, limits.yellow_high, limits.red_high) if v is not None]
    if any(b <= a for a, b in zip(ordered, ordered[1:])):
        problems.append(f"{name}: limits must rise red_low < yellow_low < yellow_high < red_high")
    hard = HARD_LIMITS.get(name.split("@", 1)[0])
    if hard is not None:
        if hard.red_low is not None and (limits.red_low is None or limits.red_low < hard.red_low):
            problems.append(f"{name}: red_low must be at least the hard limit {hard.red_low:g}")
        if hard.red_high is not None and (limits.red_high is None or limits.red_high > hard.red_high):
            problems.append(f"{name}: red_high must be at most the hard limit {hard.red_high:g}")
    return problems
