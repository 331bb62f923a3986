"""The span a visit report covers and its calendar days (pure).

By default a report runs from the patient's last recorded visit to now; for a
patient never visited (or whose visits all lie after ``end``) it covers the
last ``default_days`` days. A given ``start`` wins over both. A report spans
at most :data:`MAX_REPORT_DAYS`: a visit further back moves the start forward
(``clipped``); a requested span longer than that is refused.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone, tzinfo

from server.report.inputs import DaySpan, ReportPeriod
from server.visits import Visit
from wire import medication
from wire.errors import WireDecodeError

MAX_REPORT_DAYS = 400  # as the trends API: a year between visits, and some


class PeriodError(ValueError):
    """A report period that cannot be served; ``field`` names the query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Ljubljana``); :class:`PeriodError` if unknown."""
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return medication.zone(name)  # the IANA list only: not "localtime", whatever the server is set to
    except WireDecodeError as exc:
        raise PeriodError("tz", f"unknown time zone {name[:64]!r}") from exc


def resolve_period(
    start: datetime | None, end: datetime, visit: Visit | None, default_days: int, tz: str
) -> ReportPeriod:
    """The report period from the request (``start`` may be None) and the last visit before ``end``."""
    longest = timedelta(days=MAX_REPORT_DAYS)
    if start is not None:
        if start >= end:
            raise PeriodError("start", "must be before end")
        if end - start > longest:
            raise PeriodError("end", f"at most {MAX_REPORT_DAYS} days after start")
        return ReportPeriod(start, end, "requested", tz)
    if visit is None:
        return ReportPeriod(end - timedelta(days=default_days), end, "default", tz)
    clipped = end - visit.visited_at > longest
    return ReportPeriod(end - longest if clipped else visit.visited_at, end, "since_visit", tz, visit, clipped)


def day_spans(start: datetime, end: datetime, zone: tzinfo) -> list[DaySpan]:
    """The calendar days of ``zone`` that [start, end) touches, each with its part inside the range.

    Days follow the zone's midnights, so a day with a daylight-saving change is 23 or 25 hours long.
    """
    spans = []
    day, at = start.astimezone(zone).date(), start
    while at < end:
        day_after = day + timedelta(days=1)
        until = min(end, datetime.combine(day_after, time(), zone).astimezone(timezone.utc))
        spans.append(DaySpan(day, at, until))
        at, day = until, day_after
    return spans


def day_bounds(days: list[DaySpan]) -> list[datetime]:
    """The instants separating ``days`` (first start, each end): the edges SQL buckets windows by."""
    return [days[0].start, *(d.end for d in days)] if days else []
