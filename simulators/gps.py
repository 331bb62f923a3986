"""A GPS track: the patient stays home at rest and walks or runs from there.

Positions every ``step_s`` seconds: still (plus fix noise of ~5 m) while lying,
sitting or at rest; moving at 1.3 m/s walking and 2.8 m/s running along a
heading that wanders (random walk, ~20 degrees per minute), turning home for the
second half of each outing so the patient comes back. Positions use a local
flat-earth approximation, ample for a few kilometres.

:func:`track_source` plays a scenario's track (the one in its ground truth)
as the phone's location source, in the agent's own :class:`edge.location.FixBuffer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge.location import Fix, FixBuffer
from simulators.scenarios import Scenario

SPEED_M_S = {"walk": 1.3, "run": 2.8}
FIX_NOISE_M = 5.0
HEADING_WANDER_RAD_PER_S = math.radians(20) / math.sqrt(60)
EARTH_M_PER_DEG = 111_320.0
TRACK_STEP_S = 10.0  # a phone's GPS fix interval while moving


@dataclass(frozen=True)
class GpsFix:
    """A position fix: ``time`` s from the start, ``lat``/``lon`` degrees, ``speed`` m/s (true)."""

    time: float
    lat: float
    lon: float
    speed: float


def gps_track(scenario: Scenario, duration_s: float, rng: np.random.Generator, step_s: float = 10.0) -> list[GpsFix]:
    """Fixes every ``step_s`` s over ``duration_s`` s for ``scenario``'s patient."""
    lat0, lon0 = scenario.patient.home
    m_per_deg_lon = EARTH_M_PER_DEG * max(math.cos(math.radians(lat0)), 1e-6)
    x = y = 0.0  # metres east and north of home
    heading = float(rng.uniform(0, 2 * math.pi))
    fixes = []
    for t in np.arange(0.0, duration_s, step_s):
        activity = scenario.activity_at(float(t))
        speed = SPEED_M_S.get(activity, 0.0)
        if speed:
            heading += HEADING_WANDER_RAD_PER_S * math.sqrt(step_s) * float(rng.standard_normal())
            if _returning(scenario, float(t)):
                heading = math.atan2(-y, -x) if math.hypot(x, y) > speed * step_s else heading
            x += speed * step_s * math.cos(heading)
            y += speed * step_s * math.sin(heading)
        nx, ny = rng.normal(0, FIX_NOISE_M, 2)
        fixes.append(GpsFix(float(t), lat0 + (y + ny) / EARTH_M_PER_DEG, lon0 + (x + nx) / m_per_deg_lon, speed))
    return fixes


def _returning(scenario: Scenario, t: float) -> bool:
    seg = next((s for s in reversed(scenario.segments) if s.activity in SPEED_M_S and s.covers(t)), None)
    return seg is not None and t > seg.at + seg.duration / 2


def scenario_track(scenario: Scenario, duration_s: float, step_s: float = TRACK_STEP_S) -> list[GpsFix]:
    """The scenario's own track: the same for the same seed (the ground truth's and the phone's)."""
    return gps_track(scenario, duration_s, np.random.default_rng([scenario.seed, 17]), step_s)


def track_source(scenario: Scenario, start_time: float, duration_s: float) -> FixBuffer:
    """The track of :func:`scenario_track` from ``start_time`` as the phone's location source: the fixes
    pushed, as the OS would, into the agent's own buffer (kept whole)."""
    source = FixBuffer(keep_s=math.inf)
    for f in scenario_track(scenario, duration_s):
        source.push(Fix(start_time + f.time, f.lat, f.lon))
    return source
