"""Ground truth of a simulated run, as JSON: what the DSP and the alerts are scored against.

Layout (times in s since epoch; ``format`` names the version)::

    {"format": "pisces-ground-truth/1", "scenario": "...", "seed": 7, "strap": "h10",
     "profile": {...}, "start_time": ..., "duration_s": ...,
     "beat_times": [...],                          # R peaks, as before
     "beats": {"time": [...], "rr": [...], "label": "NNNVN..."},   # N, A (PAC), V (PVC/VT)
     "episodes": [{"type": "af", "start": ..., "end": ..., ...}],
     "events": [{"type": "fall", "time": ...}, {"type": "pause", "time": ..., "duration": 3.5}],
     "actions": [{"type": "panic", "time": ..., ...}],
     "gps": [[time, lat, lon, speed_m_s], ...], "weather": [{"time": ..., "temperature_c": ...}, ...],
     "doses": [{"drug": ..., "planned": ..., "closes_at": ..., "behaviour": "late", "tap": ..., "action": "taken",
                "reason": ""}]}

Episode types: ``af``, ``vt``, ``svt``, ``tachycardia`` (sinus above 100 bpm),
``bradycardia`` (below 50 bpm), ``lead_off``, ``loose_strap``,
``phone_offline``, ``activity`` (with its ``activity``). A pause's time is the
R peak that ends it. ``doses`` (scenarios with medication): every dose planned
in the run, the patient's behaviour (``on_time``, ``late``, ``skipped``,
``forgotten``) and tap (see :mod:`simulators.medication`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any


from simulators.gps import TRACK_STEP_S, scenario_track
from simulators.medication import DoseTruth, dose_truth
from simulators.rhythm import Beat
from simulators.scenarios import Scenario, Segment
from simulators.weather import weather_hourly
from wire.medication import MedicationPlan

FORMAT = "pisces-ground-truth/1"
GPS_STEP_S = TRACK_STEP_S


def segment_episodes(segment: Segment, resting_hr: float) -> list[dict[str, Any]]:
    """The typed episodes one segment stands for (times relative to the start)."""
    kinds: list[dict[str, Any]] = []
    if segment.rhythm != "sinus":
        kinds.append({"type": segment.rhythm, "hr": segment.hr})
    elif segment.hr is not None and segment.hr > 100 >= resting_hr:
        kinds.append({"type": "tachycardia", "hr": segment.hr})
    elif segment.hr is not None and segment.hr < 50 <= resting_hr:
        kinds.append({"type": "bradycardia", "hr": segment.hr})
    if not segment.contact:
        kinds.append({"type": "lead_off"})
    if segment.strap == "loose":
        kinds.append({"type": "loose_strap"})
    if segment.phone == "offline":
        kinds.append({"type": "phone_offline"})
    if segment.activity is not None:
        kinds.append({"type": "activity", "activity": segment.activity})
    return [{**k, "start": segment.at, "end": segment.end} for k in kinds]


def ground_truth(
    scenario: Scenario, beats: Sequence[Beat], start_time: float, duration_s: float, *, strap: str = "h10",
    plan: MedicationPlan | None = None,
) -> dict[str, Any]:
    """The ground truth of ``scenario`` played from ``start_time`` for ``duration_s`` s with ``beats``.

    Args:
        beats: the simulated beats (s from the start); those after ``duration_s`` are left out.
        strap: what carried the signals (``h10``, ``hrs``, ``lead`` for a recording, ``summary``).
        plan: the medication plan the phone had (default: the scenario's, in force from ``start_time``).
    """
    beats = [b for b in beats if b.time <= duration_s]
    times = [round(start_time + b.time, 4) for b in beats]
    episodes = [
        {**e, "start": start_time + e["start"], "end": start_time + min(e["end"], duration_s)}
        for s in scenario.segments if s.at < duration_s
        for e in segment_episodes(s, scenario.resting_hr)
    ]
    home = scenario.patient.home
    return {
        "format": FORMAT,
        "scenario": scenario.name,
        "seed": scenario.seed,
        "strap": strap,
        "profile": asdict(scenario.patient),
        "start_time": start_time,
        "duration_s": duration_s,
        "beat_times": times,
        "beats": {"time": times, "rr": [round(b.rr, 4) for b in beats], "label": "".join(b.label for b in beats)},
        "episodes": episodes,
        "events": _events(scenario, beats, start_time, duration_s),
        "actions": [
            {"time": start_time + a.at, "type": a.type, "tags": list(a.tags), "severity": a.severity}
            for a in scenario.actions if a.at < duration_s
        ],
        "gps": [[start_time + f.time, round(f.lat, 6), round(f.lon, 6), f.speed]
                for f in scenario_track(scenario, duration_s, GPS_STEP_S)],
        "weather": [asdict(w) for w in weather_hourly(*home, start_time, math.ceil(duration_s / 3600) + 1, scenario.seed)],
        "doses": [asdict(d) for d in scenario_doses(scenario, start_time, duration_s, plan)],
    }


def scenario_doses(
    scenario: Scenario, start_time: float, duration_s: float, plan: MedicationPlan | None = None
) -> list[DoseTruth]:
    """The ground truth of the scenario's doses played from ``start_time`` (empty without medication).

    ``plan`` is the plan on the phone (default: the scenario's, in force from ``start_time``).
    """
    script = scenario.medication
    if script is None:
        return []
    return dose_truth(script, plan or script.plan_at(start_time), start_time, duration_s, scenario.seed)


def _events(scenario: Scenario, beats: list[Beat], start_time: float, duration_s: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in scenario.incidents:
        if i.at >= duration_s:
            continue
        if i.type == "fall":
            out.append({"type": "fall", "time": start_time + i.at, "lying_s": i.duration})
        elif i.type == "pause":
            end = next((b for b in beats if b.time > i.at and b.rr >= i.duration - 1e-9), None)
            if end is not None:
                out.append({"type": "pause", "time": round(start_time + end.time, 4), "duration": i.duration})
        else:
            out.append({"type": i.type, "time": start_time + i.at})
    return out


def write_ground_truth(truth: dict[str, Any], path: str | Path) -> None:
    """Write ``truth`` as compact JSON to ``path``."""
    Path(path).write_text(json.dumps(truth, separators=(",", ":")))
