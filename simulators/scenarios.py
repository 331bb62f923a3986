"""Declarative patient scenarios, loaded from ``simulators/scenarios/*.json``.

A scenario is a resting heart rate and activity, timed segments that change
them (with linear ramps in and out), and timed patient actions::

    {"name": "tachy_episode", "resting_hr": 68, "seed": 7,
     "segments": [{"at": 60, "duration": 240, "hr": 145, "activity": "rest", "ramp": 30}],
     "actions": [{"at": 120, "type": "symptom_start", "tags": ["palpitations"], "severity": 3},
                 {"at": 200, "type": "panic"}]}

Times are seconds from the start of the simulation. Segment keys: ``hr``
(bpm), ``activity`` (lying/rest/walk/run), ``rhythm`` (sinus/af), ``contact``
(false: lead off), ``ramp`` (s, default 20). Action types: ``symptom_start``,
``symptom_stop``, ``panic``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ACTION_TYPES = frozenset({"symptom_start", "symptom_stop", "panic"})
ACTIVITIES = frozenset({"lying", "rest", "walk", "run"})


@dataclass(frozen=True)
class Segment:
    """A period with its own heart rate, activity, rhythm or skin contact."""

    at: float  # s from the start
    duration: float  # s
    hr: float | None = None  # bpm reached after the ramp; None: the resting HR
    activity: str | None = None
    rhythm: str = "sinus"
    contact: bool = True
    ramp: float = 20.0  # s to reach hr, and to return at the end

    def __post_init__(self) -> None:
        if self.duration <= 0 or self.at < 0:
            raise ValueError("segment needs at >= 0 and duration > 0")
        if self.activity is not None and self.activity not in ACTIVITIES:
            raise ValueError(f"activity must be one of {sorted(ACTIVITIES)}")
        if self.rhythm not in ("sinus", "af"):
            raise ValueError("rhythm must be sinus or af")

    def covers(self, t: float) -> bool:
        """Whether time ``t`` (s) is inside the segment."""
        return self.at <= t < self.at + self.duration


@dataclass(frozen=True)
class Action:
    """Something the patient does at a time: mark a symptom period or press panic."""

    at: float
    type: str
    tags: tuple[str, ...] = ()
    severity: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.type not in ACTION_TYPES:
            raise ValueError(f"action type must be one of {sorted(ACTION_TYPES)}")


@dataclass(frozen=True)
class Scenario:
    """A simulated patient's script."""

    name: str
    resting_hr: float = 70.0
    activity: str = "rest"
    seed: int = 0
    description: str = ""
    segments: tuple[Segment, ...] = ()
    actions: tuple[Action, ...] = field(default=())

    def hr_at(self, t: float) -> float:
        """Target heart rate (bpm) at ``t`` s, ramping linearly into and out of segments."""
        hr = self.resting_hr
        for s in self.segments:
            if s.hr is None or not s.covers(t):
                continue
            ramp = min(max(s.ramp, 1e-6), s.duration / 2)
            share = min(1.0, (t - s.at) / ramp, (s.at + s.duration - t) / ramp)
            hr = hr + (s.hr - hr) * share
        return hr

    def activity_at(self, t: float) -> str:
        """Activity at ``t`` s."""
        return next((s.activity for s in reversed(self.segments) if s.activity and s.covers(t)), self.activity)

    def rhythm_at(self, t: float) -> str:
        """``"sinus"`` or ``"af"`` at ``t`` s."""
        return next((s.rhythm for s in reversed(self.segments) if s.covers(t) and s.rhythm != "sinus"), "sinus")

    def contact_at(self, t: float) -> bool:
        """Whether the strap has skin contact at ``t`` s."""
        return all(s.contact for s in self.segments if s.covers(t))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        """Build a scenario from its JSON object."""
        data = dict(raw)
        data["segments"] = tuple(Segment(**s) for s in data.get("segments", ()))
        data["actions"] = tuple(
            sorted((Action(**{**a, "tags": tuple(a.get("tags", ()))}) for a in data.get("actions", ())), key=lambda a: a.at)
        )
        return cls(**data)


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or any scenario JSON file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        text = path.read_text()
    else:
        resource = SCENARIO_DIR / f"{name_or_path}.json"
        if not resource.is_file():
            raise ValueError(f"unknown scenario {name_or_path!r}; known: {', '.join(list_scenarios())}")
        text = resource.read_text()
    return Scenario.from_dict(json.loads(text))
