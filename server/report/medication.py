"""The report's medication adherence section: per drug, what became of the doses planned in the period.

Every figure is :mod:`server.adherence`'s own, never recomputed here:
:func:`~server.adherence.summarize` over the doses
:func:`~server.adherence.dose_history` gave (planned, on time, late, skipped,
missed, unconfirmed, pending, the share on time of the decided doses, the
longest run not taken) and :func:`~server.adherence.is_low` with the
overview's threshold. The overview judges a patient's last
``adherence_low_days``; a report judges its whole period *and* the same number
of days at its end, so a report made today flags what the overview flags, and
a month that went badly is flagged even when its last week went well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from server import adherence
from server.adherence import DoseOutcome, DrugAdherence
from server.report.inputs import MedicationData, ReportData, ReportPeriod

NO_PLAN = "no medication plan recorded"
NO_DOSES = "no doses planned in this period"
FLAG = "low adherence"
HEADLINE_DRUGS = 4  # drugs named in the headline; the table lists every one


@dataclass(frozen=True)
class SkipReason:
    """A reason the patient gave for skipping doses of a drug, and for how many doses."""

    reason: str
    doses: int


@dataclass(frozen=True)
class ReportDrug(DrugAdherence):
    """One drug's figures over the period (:class:`~server.adherence.DrugAdherence`) and what the report adds.

    ``on_time_pct`` is ``share_on_time`` in %; ``recent_on_time_pct`` the same
    over the last ``AdherenceBody.recent_days`` of the period (None without a
    decided dose then, or when the period is no longer than that); ``low``:
    either is below the threshold. ``dose`` as the newest planned dose names it.
    """

    dose: str = ""
    on_time_pct: float | None = None
    recent_on_time_pct: float | None = None
    low: bool = False
    skip_reasons: list[SkipReason] = field(default_factory=list)


@dataclass(frozen=True)
class PlanNote:
    """A plan version in force during the period: from when, recorded by whom and why, how many drugs."""

    version: int
    since: datetime
    by: str | None
    reason: str
    drugs: int


@dataclass(frozen=True)
class AdherenceBody:
    """Adherence per drug, by name; without drugs, ``message`` says why there is no table.

    ``plan_recorded``: a plan version was in force in the period (``plan_versions``).
    ``low``: a drug was taken on time less often than ``low_share_pct`` over the
    period or over its last ``recent_days`` (None when the period is no longer
    than the overview's window, which it then is); ``flag`` names it for "At a
    glance" ("" when there is nothing to raise).
    """

    plan_recorded: bool
    message: str
    drugs: list[ReportDrug]
    plan_versions: list[PlanNote]
    low: bool = False
    flag: str = ""
    low_share_pct: float | None = None
    recent_days: float | None = None


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100.0 * share, 1)


def recent_start(period: ReportPeriod, now: datetime, days: float) -> float | None:
    """Where the overview's window starts at the period's end (its last ``days`` up to ``now``), s since epoch.

    None when the period is no longer than that: the period is the window.
    """
    start = min(period.end, now) - timedelta(days=days)
    return start.timestamp() if start > period.start else None


def adherence_section(data: ReportData) -> tuple[str, AdherenceBody]:
    """Per drug: doses planned, on time, late, skipped (with reasons), missed, unconfirmed, runs; the low flag."""
    m = data.medication
    if m is None:
        return "No medication plan recorded.", AdherenceBody(False, NO_PLAN, [], [])
    notes = [PlanNote(v.version, v.created_at, v.created_by, v.reason, len(v.drugs)) for v in m.versions]
    if not m.doses:
        return "No doses planned in this period.", AdherenceBody(True, NO_DOSES, [], notes)
    since = recent_start(data.period, data.generated_at, m.low_days)
    recent = {} if since is None else {d.drug: d for d in adherence.summarize(x for x in m.doses if x.planned >= since)}
    drugs = [_drug(d, m, recent.get(d.drug)) for d in adherence.summarize(m.doses)]
    low = adherence.is_low(drugs, m.low_share) or adherence.is_low(recent.values(), m.low_share)
    body = AdherenceBody(True, "", drugs, notes, low, FLAG if low else "", _pct(m.low_share),
                         None if since is None else m.low_days)  # fmt: skip
    return _headline(body), body


def _drug(d: DrugAdherence, m: MedicationData, recent: DrugAdherence | None) -> ReportDrug:
    doses = [x for x in m.doses if x.drug == d.drug]
    return ReportDrug(
        **asdict(d), dose=max(doses, key=lambda x: x.planned).dose, on_time_pct=_pct(d.share_on_time),
        recent_on_time_pct=None if recent is None else _pct(recent.share_on_time),
        low=adherence.is_low([d] if recent is None else [d, recent], m.low_share), skip_reasons=skip_reasons(doses),
    )  # fmt: skip


def skip_reasons(doses: Sequence[DoseOutcome]) -> list[SkipReason]:
    """The reasons given for skipped doses, the most frequent first (doses skipped without one are not listed)."""
    said = Counter(d.reason.strip() for d in doses if d.status == "skipped" and d.reason.strip())
    return [SkipReason(r, n) for r, n in sorted(said.items(), key=lambda kv: (-kv[1], kv[0].casefold()))]


def _headline(b: AdherenceBody) -> str:
    decided = [d for d in b.drugs if d.on_time_pct is not None]
    if not decided:
        n = sum(d.planned for d in b.drugs)
        return f"{n} dose{'s' if n != 1 else ''} planned, none decided yet."
    ranked = sorted(decided, key=lambda d: (not d.low, d.on_time_pct, d.drug.casefold()))[:HEADLINE_DRUGS]
    low = [_low_said(d, b) for d in ranked if d.low]
    fine = [f"{d.drug} {d.on_time_pct:g} % on time" for d in ranked if not d.low]
    sentences = [f"Below {b.low_share_pct:g} % on time: " + "; ".join(low)] if low else []
    sentences += ["; ".join(fine)] if fine else []
    if len(b.drugs) > len(ranked):
        sentences.append(f"{len(b.drugs) - len(ranked)} more in the table")
    return " ".join(s[:1].upper() + s[1:] + "." for s in sentences)


def _low_said(d: ReportDrug, b: AdherenceBody) -> str:
    text = f"{d.drug}{' (critical)' if d.critical else ''} {d.on_time_pct:g} %"
    if d.recent_on_time_pct not in (None, d.on_time_pct) and b.recent_days is not None:
        text += f" (last {b.recent_days:g} days {d.recent_on_time_pct:g} %)"
    if d.longest_missed_streak > 1:
        text += f", {d.longest_missed_streak} doses in a row not taken"
    return text
