"""GPS-derived mobility per day: distance travelled and time at home (pure core, one read at the edge).

Positions come from summary windows that carry ``lat``/``lon``, which the phone
sends only where the patient consented; without them there is no mobility,
and the result says so (``fixes == 0``) rather than reporting zero distance.

Distance is the sum of great-circle (haversine, mean Earth radius 6371.0088 km)
steps between consecutive fixes of a day. A step implying more than
:data:`MAX_SPEED_M_S` is a GPS jump: it is counted in ``jumps`` and left out.
A step over a gap longer than :data:`MAX_GAP_S` (the phone was off, or GPS
lost) still counts its distance but not its time. Time at home is the time of
steps whose both ends lie within :data:`HOME_RADIUS_M` of the home location.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import psycopg

EARTH_RADIUS_M = 6_371_008.8
MAX_SPEED_M_S = 70.0  # faster than a train between two fixes: a GPS jump
MAX_GAP_S = 900.0
HOME_RADIUS_M = 200.0


@dataclass(frozen=True)
class Fix:
    """A position: ``at`` (UTC), latitude and longitude in degrees."""

    at: datetime
    lat: float
    lon: float


@dataclass(frozen=True)
class DayMobility:
    """One UTC day of movement.

    Attributes:
        day: the UTC date.
        fixes: positions that day.
        distance_m: metres travelled (jumps left out).
        observed_s: seconds covered by steps no longer than MAX_GAP_S.
        home_s: of those, seconds spent within HOME_RADIUS_M of home (None: no home known).
        jumps: steps left out as implausibly fast.
    """

    day: date
    fixes: int
    distance_m: float
    observed_s: float
    home_s: float | None
    jumps: int


def gps_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points in degrees (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _day(fixes: Sequence[Fix], home: tuple[float, float] | None) -> DayMobility:
    distance = observed = at_home = 0.0
    jumps = 0
    for a, b in zip(fixes, fixes[1:]):
        dt = (b.at - a.at).total_seconds()
        step = gps_distance_m(a.lat, a.lon, b.lat, b.lon)
        if dt <= 0 or step / dt > MAX_SPEED_M_S:
            jumps += step > 0
            continue
        distance += step
        if dt <= MAX_GAP_S:
            observed += dt
            if home and max(gps_distance_m(*home, a.lat, a.lon), gps_distance_m(*home, b.lat, b.lon)) <= HOME_RADIUS_M:
                at_home += dt
    return DayMobility(fixes[0].at.date(), len(fixes), distance, observed, at_home if home else None, jumps)


def mobility_days(fixes: Sequence[Fix], home: tuple[float, float] | None) -> list[DayMobility]:
    """Mobility per UTC day of time-ordered fixes (steps across midnight count for neither day)."""
    days: dict[date, list[Fix]] = {}
    for f in sorted(fixes, key=lambda f: f.at):
        days.setdefault(f.at.astimezone(timezone.utc).date(), []).append(f)
    return [_day(v, home) for _, v in sorted(days.items())]


def patient_fixes(conn: psycopg.Connection[Any], patient_id: int, start: datetime, end: datetime) -> list[Fix]:
    """The positions of the patient's windows in [start, end) (consented GPS only), oldest first."""
    rows = conn.execute(
        "SELECT start_at, lat, lon FROM summaries WHERE patient_id = %s AND start_at >= %s AND start_at < %s"
        " AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY start_at",
        (patient_id, start, end),
    ).fetchall()
    return [Fix(r[0], float(r[1]), float(r[2])) for r in rows]
