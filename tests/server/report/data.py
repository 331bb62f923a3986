"""Constructed report inputs for the builder tests: a patient, a period, windows reduced as the SQL does."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from server.queries import PatientRow
from server.report.inputs import BandCount, ReportData, ReportPeriod
from server.report.limits import limit_edges
from server.thresholds import DEFAULTS, InForce

PATIENT = PatientRow(7, "Ana Novak", "dev-7", "ok", "ok", None, None, 80, True)
T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


def period(days: float = 2.0, tz: str = "UTC") -> ReportPeriod:
    return ReportPeriod(T0, T0 + timedelta(days=days), "requested", tz)


def data(**fields: object) -> ReportData:
    """A report input over two UTC days on the NEWS2 limits; ``fields`` replace any part."""
    base: dict[str, object] = {"patient": PATIENT, "period": period(), "generated_at": T0 + timedelta(days=2),
                               "usable_quality": 0.5, "limits": DEFAULTS}
    return ReportData(**(base | fields))  # type: ignore[arg-type]


@dataclass(frozen=True)
class W:
    """A usable window as the band query sees it: a vital's value, its activity, its length (s)."""

    value: float
    activity: str = "rest"
    seconds: float = 60.0


def bands(parameter: str, windows: Iterable[W], limits: InForce = DEFAULTS) -> tuple[dict[str, list[float]], list[BandCount]]:
    """Edges and band counts of windows, bucketed as PostgreSQL's width_bucket does (values as float4)."""
    import numpy as np

    edges = limit_edges(limits.limits)
    counts: dict[tuple[str, int], tuple[int, float]] = {}
    for w in windows:
        key = (w.activity, bisect.bisect_right(edges[parameter], float(np.float32(w.value))))
        n, s = counts.get(key, (0, 0.0))
        counts[key] = (n + 1, s + w.seconds)
    return edges, [BandCount(parameter, a, b, n, s) for (a, b), (n, s) in sorted(counts.items())]
