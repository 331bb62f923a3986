"""What a visit report is built from: plain frozen dataclasses, filled by :mod:`server.report.reads`.

The builder (:mod:`server.report.sections`) takes a :class:`ReportData` and
nothing else, so every number in a report can be checked on constructed data.
Daily figures come as sums and counts (like the rollups), so totals and means
over the period are exact whatever the days. Times are aware UTC datetimes;
units are those of ``wire.SummaryWindow`` (bpm, ms, breaths/min, g, s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from server.adherence import DoseOutcome
from server.medication import PlanVersion
from server.queries import AlertRow, HistoryEntry, PatientRow
from server.search import SymptomResult
from server.thresholds import InForce, VersionRow
from server.trends import Episode, SeriesPoint
from server.visits import Visit


@dataclass(frozen=True)
class ReportPeriod:
    """The span a report covers, [start, end), and why.

    Attributes:
        basis: ``since_visit`` (from the last current visit before ``end``),
            ``default`` (no visit recorded: the last ``report_default_days``) or
            ``requested`` (``start`` given).
        tz: IANA time zone whose calendar days the daily figures follow.
        visit: the visit the period starts from (``since_visit`` only).
        clipped: the visit lay further back than a report may reach; ``start`` was moved forward.
    """

    start: datetime
    end: datetime
    basis: str
    tz: str
    visit: Visit | None = None
    clipped: bool = False


@dataclass(frozen=True)
class DaySpan:
    """One calendar day of ``ReportPeriod.tz`` and the part of it inside the period, [start, end)."""

    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class DayStats:
    """Sums and counts over the windows starting in ``ReportData.days[index]``.

    *Usable* windows are those of at least ``ReportData.usable_quality``; vitals
    and rhythm count usable windows only, ``recorded_s``, ``intensity_*``,
    ``steps`` and ``active_s`` all windows. Durations in s, ``*_sum`` of the
    window values (bpm, ms, breaths/min, g).
    """

    index: int
    windows: int
    recorded_s: float
    usable: int
    good_s: float
    hr_n: int = 0
    hr_sum: float = 0.0
    hr_min: float | None = None
    hr_max: float | None = None
    rmssd_n: int = 0
    rmssd_sum: float = 0.0
    sdnn_n: int = 0
    sdnn_sum: float = 0.0
    resp_n: int = 0
    resp_sum: float = 0.0
    intensity_n: int = 0
    intensity_sum: float = 0.0
    steps: int | None = None
    active_s: float = 0.0  # windows classed walk or run
    af_s: float = 0.0  # usable windows flagged af_suspected
    pause_windows: int = 0  # usable windows flagged pause
    long_pauses: int = 0  # usable windows flagged pause whose longest RR interval is >= 3 s
    ectopic: int = 0  # ectopic beats counted in usable windows
    ectopic_beats: int = 0  # all beats of the usable windows that counted ectopic beats
    ectopic_s: float = 0.0  # and their duration


@dataclass(frozen=True)
class BandCount:
    """Usable windows of one activity class whose ``parameter`` value falls in one bucket.

    ``bucket`` is PostgreSQL's ``width_bucket(value, edges)`` over
    ``ReportData.edges[parameter]``: 0 below the first edge, ``i`` for
    ``edges[i-1] <= value < edges[i]``, ``len(edges)`` from the last one up.
    """

    parameter: str  # "hr" (window hr_mean) or "resp_rate"
    activity: str
    bucket: int
    windows: int
    seconds: float


@dataclass(frozen=True)
class Pause:
    """A usable window flagged ``pause`` and its longest RR interval (s; None from older phones)."""

    start: datetime
    end: datetime
    seconds: float | None


@dataclass(frozen=True)
class MedicationData:
    """The period's medication, as :mod:`server.adherence` and :mod:`server.medication` give it.

    Attributes:
        versions: the plan versions in force at some time in the period, oldest
            first (:func:`server.medication.versions_in_force`); never empty.
        doses: each dose planned in ``[start, min(end, generated_at))`` with its
            status (:func:`server.adherence.dose_history`), by planned time
            (their times in s since epoch, as that module gives them).
        low_share: adherence is low below this share of doses on time (0..1;
            the server's ``adherence_low_share``, as in the overview).
        low_days: ... over this many days (``adherence_low_days``): the
            overview's window, here the last days of the period.
    """

    versions: Sequence[PlanVersion]
    doses: Sequence[DoseOutcome]
    low_share: float
    low_days: float


@dataclass(frozen=True)
class ReportData:
    """Everything one report is built from (read by :func:`server.report.reads.load_report_data`).

    Attributes:
        limits: the limits in force at the period's end.
        limit_changes: threshold versions approved inside the period, oldest first.
        days: every calendar day the period touches, in order; ``day_stats`` only those with windows.
        edges: per vital, the bucket edges the ``bands`` were counted with (see :class:`BandCount`).
        series: the trends in ``bucket_s`` buckets (:func:`server.trends.series`).
        alerts: alerts active at any time in the period (at most ``reads.MAX_ALERTS``, red first, then
            newest; ``alerts_more``: more exist); ``notes`` their notes by alert id.
        symptoms: the symptom periods overlapping it, newest first; ``symptoms_more``: more exist.
        pauses: the longest pauses, longest first.
        medication: the plan and its doses; None when no plan version was in force in the period.
    """

    patient: PatientRow
    period: ReportPeriod
    generated_at: datetime
    usable_quality: float
    limits: InForce
    limit_changes: Sequence[VersionRow] = ()
    days: Sequence[DaySpan] = ()
    day_stats: Sequence[DayStats] = ()
    edges: dict[str, list[float]] = field(default_factory=dict)
    bands: Sequence[BandCount] = ()
    series: Sequence[SeriesPoint] = ()
    bucket_s: int = 3600
    alerts: Sequence[AlertRow] = ()
    alerts_more: bool = False  # more alerts than were read (red first, then newest, were kept)
    notes: dict[int, list[HistoryEntry]] = field(default_factory=dict)
    symptoms: Sequence[SymptomResult] = ()
    symptoms_more: bool = False
    episodes: Sequence[Episode] = ()
    pauses: Sequence[Pause] = ()
    medication: MedicationData | None = None
