"""The medication plan in the phone's ``config``, and the one definition of when its doses are due.

A plan version lists drugs, each with a dose and either times of day or an
interval, optional first and last days, instructions and a ``critical`` mark.
Times of day and dates are the patient's **local** wall-clock times in the
plan's ``time_zone`` (an IANA name such as ``Europe/Ljubljana``): 08:00 stays
08:00 across daylight-saving changes. An interval (``every_hours``) counts
real hours from its first dose (``times[0]`` on ``start``), so "every 8 hours"
stays 8 hours apart when the clocks change.

:func:`schedule` expands a plan into its doses between two instants. The phone
(its reminders) and the server (adherence) both call it, so they agree on every
planned time to the second; a dose is named by ``(drug, planned)``. Each dose
has two deadlines: taken by ``on_time_until`` it is *on time*; not confirmed
by ``closes_at`` it is *missed*. Both are the plan's minutes after the planned
time, shortened to the next dose of the same drug, so two doses of one drug
are never open at once.

Daylight saving: a time of day that does not exist on the day the clocks go
forward is taken as that many minutes after the change (02:30 -> 03:30 in
Europe); one that occurs twice when they go back is the first. Two times of
one drug that fall on the same instant that day make one dose.

Pure and stdlib only (``zoneinfo``, which reads the system's time-zone data).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from wire.errors import WireDecodeError

MAX_DRUGS = 30
MAX_TIMES = 12  # doses of one drug a day
MAX_TEXT = 64  # characters of a drug's name or dose
DOSE_PARAMETER_PREFIX = "dose:"  # alert parameter of a drug's missed doses: "dose:<drug name>"
MAX_INSTRUCTIONS = 500
MAX_EVERY_HOURS = 168  # a weekly dose
TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_YEAR, LAST_YEAR = 1900, 2999  # days outside are refused (no clock arithmetic near year 1 or 9999)
DEFAULT_ON_TIME_MINUTES = 60
DEFAULT_GRACE_MINUTES = 180
MAX_ON_TIME_MINUTES = 24 * 60
MAX_GRACE_MINUTES = 7 * 24 * 60


@dataclass(frozen=True)
class Drug:
    """One drug of a plan.

    Attributes:
        name: what the patient takes, 1-64 characters; unique in a plan (ignoring case); it names
            the drug's doses on the wire.
        dose: how much, free text such as ``"5 mg"`` or ``"1 tablet"``.
        times: local times of day ``"HH:MM"``; with ``every_hours`` exactly one, the first dose.
        every_hours: an interval in hours (1-168) instead of times of day; needs ``start``.
        start, end: first and last local day ``"YYYY-MM-DD"`` (inclusive); None: open.
        instructions: shown to the patient, e.g. ``"with food"``.
        critical: repeated missed doses raise an alert (docs/medication.md).
    """

    name: str
    dose: str
    times: tuple[str, ...] = ()
    every_hours: int | None = None
    start: str | None = None
    end: str | None = None
    instructions: str = ""
    critical: bool = False

    def __post_init__(self) -> None:
        _text("name", self.name, 1, MAX_TEXT)
        _text("dose", self.dose, 1, MAX_TEXT)
        if not isinstance(self.times, tuple) or not 1 <= len(self.times) <= MAX_TIMES:
            raise WireDecodeError("range", "times", f"1..{MAX_TIMES} times of day")
        for i, t in enumerate(self.times):
            if not isinstance(t, str) or TIME_OF_DAY.fullmatch(t) is None:
                raise WireDecodeError("range", f"times[{i}]", "a local time of day HH:MM")
        if len(set(self.times)) != len(self.times):
            raise WireDecodeError("range", "times", "each time of day once")
        first, last = _day("start", self.start), _day("end", self.end)
        if first is not None and last is not None and last < first:
            raise WireDecodeError("range", "end", "the last day is before the first")
        if self.every_hours is not None:
            if isinstance(self.every_hours, bool) or not isinstance(self.every_hours, int):
                raise WireDecodeError("type", "every_hours", "expected a whole number of hours")
            if not 1 <= self.every_hours <= MAX_EVERY_HOURS:
                raise WireDecodeError("range", "every_hours", f"1..{MAX_EVERY_HOURS} hours")
            if len(self.times) != 1 or first is None:
                raise WireDecodeError("missing", "start", "an interval needs a start day and one first time")
        _text("instructions", self.instructions, 0, MAX_INSTRUCTIONS)
        if not isinstance(self.critical, bool):
            raise WireDecodeError("type", "critical", "expected true or false")


@dataclass(frozen=True)
class MedicationPlan:
    """A version of a patient's medication plan, in force from ``since``.

    Attributes:
        version: 1, 2, ... per patient; every change is a new version.
        since: s since epoch from which the version is in force; doses planned
            earlier belong to the version before.
        time_zone: the patient's IANA time zone, which times of day and days are read in.
        drugs: at most 30; an empty plan means no medication.
        on_time_minutes: a dose taken up to this long after its time is on time.
        grace_minutes: a dose not confirmed this long after its time is missed (>= on_time_minutes).
    """

    version: int
    since: float
    time_zone: str
    drugs: tuple[Drug, ...] = ()
    on_time_minutes: int = DEFAULT_ON_TIME_MINUTES
    grace_minutes: int = DEFAULT_GRACE_MINUTES

    def __post_init__(self) -> None:
        _whole("version", self.version, 1, 2**31 - 1)
        if isinstance(self.since, bool) or not isinstance(self.since, (int, float)) or not (
            math.isfinite(self.since) and 0 <= self.since <= 1e11
        ):
            raise WireDecodeError("range", "since", "s since epoch")
        zone(self.time_zone)
        if not isinstance(self.drugs, tuple) or len(self.drugs) > MAX_DRUGS:
            raise WireDecodeError("range", "drugs", f"at most {MAX_DRUGS} drugs")
        seen: set[str] = set()
        for i, drug in enumerate(self.drugs):
            if not isinstance(drug, Drug):
                raise WireDecodeError("type", f"drugs[{i}]", "expected a drug")
            if drug.name.casefold() in seen:
                raise WireDecodeError("range", f"drugs[{i}].name", f"{drug.name!r} is listed twice")
            seen.add(drug.name.casefold())
        _whole("on_time_minutes", self.on_time_minutes, 1, MAX_ON_TIME_MINUTES)
        _whole("grace_minutes", self.grace_minutes, 1, MAX_GRACE_MINUTES)
        if self.grace_minutes < self.on_time_minutes:
            raise WireDecodeError("range", "grace_minutes", "must be at least on_time_minutes")

    def drug(self, name: str) -> Drug | None:
        """The drug of that name, if the plan has it."""
        return next((d for d in self.drugs if d.name == name), None)


@dataclass(frozen=True)
class ScheduledDose:
    """One planned dose; times in s since epoch."""

    drug: str
    dose: str
    planned: float
    on_time_until: float  # taken by then: on time
    closes_at: float  # not confirmed by then: missed
    critical: bool = False
    instructions: str = ""

    @property
    def key(self) -> str:
        """``"<drug>@<planned, whole seconds>"``: the dose's name on the phone and the server."""
        return dose_key(self.drug, self.planned)


def dose_key(drug: str, planned: float) -> str:
    """The name of the dose of ``drug`` planned at ``planned`` (s since epoch)."""
    return f"{drug}@{round(planned)}"


def zone(name: str) -> ZoneInfo:
    """The time zone of an IANA name; WireDecodeError("range", "time_zone") if unknown."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_TEXT:
        raise WireDecodeError("range", "time_zone", "an IANA time zone name, e.g. Europe/Ljubljana")
    if name not in _zone_names():  # also refuses "localtime", which means whatever the machine is set to
        raise WireDecodeError("range", "time_zone", f"unknown time zone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise WireDecodeError("range", "time_zone", f"unknown time zone {name!r}") from exc


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - {"localtime"}


def schedule(plan: MedicationPlan, start: float, end: float) -> list[ScheduledDose]:
    """The doses ``plan`` plans in ``[max(start, plan.since), end)``, by time then drug (pure).

    Args:
        plan: the plan version.
        start, end: s since epoch.
    """
    lo = max(start, plan.since)
    if end <= lo:
        return []
    tz = zone(plan.time_zone)
    grace, on_time = plan.grace_minutes * 60.0, plan.on_time_minutes * 60.0
    doses = []
    for drug in plan.drugs:
        times = _planned_times(drug, tz, lo, end + grace)  # one beyond the range: its deadline's bound
        for planned, following in zip(times, times[1:] + [math.inf]):
            if planned < end:
                closes = planned + min(grace, following - planned)
                doses.append(ScheduledDose(drug.name, drug.dose, planned, planned + min(on_time, closes - planned),
                                           closes, drug.critical, drug.instructions))  # fmt: skip
    return sorted(doses, key=lambda d: (d.planned, d.drug))


def _planned_times(drug: Drug, tz: ZoneInfo, lo: float, hi: float) -> list[float]:
    """The drug's planned instants in ``[lo, hi)``, ascending, without repeats."""
    first, last_day = _day("start", drug.start), _day("end", drug.end)
    if first is not None:
        lo = max(lo, _local(first, "00:00", tz))
    stop = min(hi, _local(last_day + timedelta(days=1), "00:00", tz)) if last_day is not None else hi
    if stop <= lo:
        return []
    if drug.every_hours is not None and first is not None:
        anchor, step = _local(first, drug.times[0], tz), drug.every_hours * 3600.0
        k = max(0, math.ceil((lo - anchor) / step))
        found = []
        while anchor + k * step < stop:
            found.append(anchor + k * step)
            k += 1
        return found
    day, last = datetime.fromtimestamp(lo, tz).date() - timedelta(days=1), datetime.fromtimestamp(stop, tz).date()
    found_set: set[float] = set()
    while day <= last:
        found_set.update(t for hhmm in drug.times if lo <= (t := _local(day, hhmm, tz)) < stop)
        day += timedelta(days=1)
    return sorted(found_set)


def _local(day: date, hhmm: str, tz: ZoneInfo) -> float:
    """s since epoch of a local wall-clock time (fold 0: see the module's note on daylight saving)."""
    hour, minute = int(hhmm[:2]), int(hhmm[3:])
    return datetime.combine(day, time(hour, minute), tzinfo=tz).timestamp()


def _day(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or DATE.fullmatch(value) is None:
        raise WireDecodeError("range", name, "a day YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise WireDecodeError("range", name, str(exc)) from exc
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise WireDecodeError("range", name, f"a day of the years {FIRST_YEAR}-{LAST_YEAR}")
    return day


def _text(name: str, value: str, lo: int, hi: int) -> None:
    if not isinstance(value, str) or not lo <= len(value) <= hi or (lo and not value.strip()):
        raise WireDecodeError("range", name, f"text of {lo}-{hi} characters")


def _whole(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireDecodeError("type", name, "expected an integer")
    if not lo <= value <= hi:
        raise WireDecodeError("range", name, f"{value} outside [{lo}, {hi}]")
