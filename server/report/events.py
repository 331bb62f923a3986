"""The report's section of what the patient marked: symptom periods with what the data showed.

A pure function of :class:`~server.report.inputs.ReportData` returning
``(headline, body)``. Lists are in time order, oldest first, so a report reads
like the period it covers. (What the patient took: :mod:`server.report.medication`.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from server.queries import StripInfo
from server.report.inputs import ReportData
from server.rules import limits_for, vital_level
from server.search import PeriodVitals, SymptomResult
from server.trends import ARRHYTHMIA_FLAGS, PeriodMark
from wire import Limits

MAX_STRIPS = 4  # ECG strips drawn in a report; the other periods link to theirs
FLAG_LABELS = {
    "af_suspected": "AF suspected", "brady": "bradycardia", "ectopic": "ectopic beats",
    "irregular": "irregular rhythm", "pause": "pause", "tachy": "tachycardia", "vt": "VT",
}  # fmt: skip


@dataclass(frozen=True)
class ReportSymptom:
    """A period the patient marked and what the data showed during it.

    ``notable``: an arrhythmia flag, or a mean heart rate beyond the yellow limits
    at rest. ``strip_shown``: its strip is drawn in the report.
    """

    period: PeriodMark
    vitals: PeriodVitals
    baseline_hr: float | None  # bpm, the patient's baseline-phase mean
    finding: str
    notable: bool
    strip: StripInfo | None
    strip_shown: bool


@dataclass(frozen=True)
class SymptomsBody:
    """Marked periods, oldest first; ``strips`` are those drawn (at most MAX_STRIPS); ``more``: not all listed."""

    periods: list[ReportSymptom]
    notable: int
    strips: list[StripInfo]
    more: bool


def finding(v: PeriodVitals, hr_limits: Limits | None) -> tuple[str, bool]:
    """What the data showed over a period in words, and whether it is notable."""
    if v.windows == 0 or v.hr_mean is None:
        return "no usable signal", False
    text = f"HR {v.hr_mean:.0f} bpm"
    if v.hr_min is not None and v.hr_max is not None:
        text += f" ({v.hr_min:.0f}–{v.hr_max:.0f})"
    level = vital_level("hr", v.hr_mean, hr_limits)[0] if hr_limits is not None else "ok"
    if level != "ok":
        text += f", beyond the {level} limit"
    flags = [FLAG_LABELS.get(f, f) for f in v.flags]
    text += ", " + (", ".join(flags) if flags else "no rhythm flag")
    return text, level != "ok" or any(f in ARRHYTHMIA_FLAGS for f in v.flags)


def _symptom(r: SymptomResult, hr_limits: Limits | None) -> ReportSymptom:
    said, notable = finding(r.vitals, hr_limits)
    base = r.baseline.hr_mean if r.baseline is not None and r.baseline.hr_mean is not None else None
    mark = PeriodMark(r.id, r.started_at, r.ended_at, list(r.tags), r.severity, r.note)
    return ReportSymptom(mark, r.vitals, None if base is None else round(base, 1), said, notable, r.strip, False)


def strips_to_show(periods: list[ReportSymptom]) -> set[int]:
    """Ids of the periods whose strips are drawn: notable first, then by severity, then oldest."""
    ranked = sorted((p for p in periods if p.strip is not None),
                    key=lambda p: (not p.notable, -(p.period.severity or 0), _start(p)))  # fmt: skip
    return {p.period.id for p in ranked[:MAX_STRIPS]}


def _start(p: ReportSymptom) -> datetime:
    start = p.period.started_at or p.period.ended_at
    assert start is not None  # a period exists once its start or its stop has arrived
    return start


def symptoms_section(data: ReportData) -> tuple[str, SymptomsBody]:
    """The marked periods with what the data showed; strips of the relevant ones."""
    hr_limits = limits_for(data.limits.limits, "hr", "rest")
    periods = [_symptom(r, hr_limits) for r in data.symptoms]
    periods.sort(key=lambda p: (_start(p), p.period.id))
    shown = strips_to_show(periods)
    periods = [replace(p, strip_shown=p.period.id in shown) for p in periods]
    body = SymptomsBody(periods, sum(p.notable for p in periods),
                        [p.strip for p in periods if p.strip_shown and p.strip is not None], data.symptoms_more)  # fmt: skip
    return _symptoms_headline(body), body


def _symptoms_headline(b: SymptomsBody) -> str:
    n = len(b.periods)
    if not n:
        return "No symptom periods marked."
    text = f"{n}{'+' if b.more else ''} marked period{'s' if n != 1 else ''}"
    return text + f"; {b.notable} with an arrhythmia flag or a heart rate beyond the limits."
