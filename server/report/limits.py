"""The limits a report judges by, and the share of time beyond them (pure).

The limits are those in force at the period's end (:func:`limits_at`). A
window is judged as the rules judge it: its ``hr_mean`` or ``resp_rate``
against the limits of its activity context, hard limits included
(:func:`server.rules.vital_level`). The database counts windows per activity
and value bucket (:func:`limit_edges` makes the buckets), so a period of any
length is judged exactly from a few hundred rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np

from server.report.inputs import BandCount
from server.rules import HARD_LIMITS, limits_for, vital_level, vitals_of
from server.thresholds import DEFAULTS, InForce, VersionRow, limits_from_json
from wire import ACTIVITY_CLASSES, Limits


def pct(part: float, whole: float, digits: int = 1) -> float | None:
    """``part`` as a percentage of ``whole``, rounded; None for an empty whole."""
    return None if whole <= 0 else round(100.0 * part / whole, digits)


def limits_at(versions: Sequence[VersionRow], t: datetime) -> InForce:
    """The threshold version in force at ``t``: the newest approved by then, else the NEWS2 defaults."""
    approved = [v for v in versions if v.version is not None and v.approved_at is not None and v.approved_at <= t]
    if not approved:
        return DEFAULTS
    newest = max(approved, key=lambda v: v.version or 0)
    return InForce(newest.version, limits_from_json(newest.limits))


def _float4_above(x: float) -> float:
    """The smallest float4 value greater than ``x``."""
    f = np.float32(x)
    return float(f if float(f) > x else np.nextafter(f, np.float32(np.inf)))


def _float4_at_or_above(x: float) -> float:
    """The smallest float4 value not less than ``x``."""
    f = np.float32(x)
    return float(f if float(f) >= x else np.nextafter(f, np.float32(np.inf)))


def limit_edges(limits: Mapping[str, Limits]) -> dict[str, list[float]]:
    """Bucket edges per vital that no limit of any activity context (nor a hard limit) falls inside.

    Window values are float4. A value is beyond a high limit when at or above
    it and beyond a low one when at or below it, so a high limit's edge is the
    limit itself (as float4, rounded up) and a low limit's the next float4 above
    it. Every bucket then lies on one side of every limit, and any one value of
    it (:func:`bucket_value`) classifies the whole bucket.
    """
    edges: dict[str, list[float]] = {}
    for name in vitals_of(limits):
        found: set[float] = set()
        contexts = [lim for a in sorted(ACTIVITY_CLASSES) if (lim := limits_for(limits, name, a)) is not None]
        for lim in [*contexts, HARD_LIMITS[name]]:
            found.update(_float4_above(v) for v in (lim.yellow_low, lim.red_low) if v is not None)
            found.update(_float4_at_or_above(v) for v in (lim.yellow_high, lim.red_high) if v is not None)
        edges[name] = sorted(found)
    return edges


def bucket_value(edges: Sequence[float], bucket: int) -> float:
    """A value inside ``width_bucket`` bucket ``bucket`` of ``edges``."""
    return edges[bucket - 1] if bucket > 0 else edges[0] - 1.0


def time_beyond(
    name: str, bands: Iterable[BandCount], edges: Mapping[str, Sequence[float]], limits: Mapping[str, Limits]
) -> tuple[float | None, float | None]:
    """Shares (%) of the usable windows' time with ``name`` at or beyond the yellow limits, and the red ones.

    Windows of an activity context without limits for ``name`` are not judged (as
    by the rules) and count as within. None without windows.
    """
    total = beyond = red = 0.0
    for band in bands:
        if band.parameter != name:
            continue
        total += band.seconds
        lim = limits_for(limits, name, band.activity)
        if lim is None:
            continue
        level, _ = vital_level(name, bucket_value(edges[name], band.bucket), lim)
        beyond += band.seconds if level != "ok" else 0.0
        red += band.seconds if level == "red" else 0.0
    return pct(beyond, total, 2), pct(red, total, 2)
