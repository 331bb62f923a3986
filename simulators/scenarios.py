"""Declarative patient scenarios, loaded from ``simulators/scenarios/*.json``.

A scenario is a patient (a :class:`~simulators.profiles.Profile`, by name or
inline), timed segments that change the heart rate, activity, rhythm, strap or
phone (with linear ramps in and out), instantaneous incidents, and timed
patient actions::

    {"name": "tachy_episode", "resting_hr": 68, "seed": 7, "profile": "hf_elderly",
     "segments": [{"at": 60, "duration": 240, "hr": 145, "activity": "rest", "ramp": 30},
                  {"at": "02:00:00", "duration": 1200, "rhythm": "af", "hr": 110, "ramp": 0}],
     "incidents": [{"at": 900, "type": "fall", "duration": 120}, {"at": 400, "type": "pause", "duration": 3.5}],
     "actions": [{"at": 120, "type": "symptom_start", "tags": ["palpitations"], "severity": 3},
                 {"at": 200, "type": "panic"}]}

Times (``at``, ``duration``) are seconds from the start of the simulation, or
``"HH:MM"`` / ``"HH:MM:SS"`` strings meaning the same offset.

Segment keys: ``hr`` (bpm; None: resting HR, or the activity's response),
``activity`` (lying/sitting/rest/walk/run), ``rhythm`` (sinus/af/vt/svt),
``contact`` (false: lead off), ``strap`` (ok/loose: intermittent contact and
electrode-motion noise), ``phone`` (online/offline: the uplink is cut),
``pvc_per_hour``/``pac_per_hour`` (ectopy during the segment), ``noise_snr_db``
(electrode-motion noise at this SNR), ``ramp`` (s, default 20; 0: abrupt, as
in paroxysmal runs). Incident types: ``fall``, ``pause`` (sinus arrest of
``duration`` s), ``pvc``, ``pac``. Action types (the patient presses a
button): ``symptom_start``, ``symptom_stop``, ``panic``. ``medication``: the
patient's plan and how they take their doses (:mod:`simulators.medication`).

When a segment sets an activity but no ``hr``, the heart rate follows the
activity: a share of the heart-rate reserve (walk 30 %, run 65 %, lying -5 %)
that shrinks with fitness (see :func:`activity_hr`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.medication import HrOffset, MedicationScript
from simulators.profiles import Profile, load_profile

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ACTION_TYPES = frozenset({"symptom_start", "symptom_stop", "panic"})
ACTIVITIES = frozenset({"lying", "sitting", "rest", "walk", "run"})
RHYTHMS = frozenset({"sinus", "af", "vt", "svt"})
INCIDENT_TYPES = frozenset({"fall", "pause", "pvc", "pac"})
STRAP_STATES = frozenset({"ok", "loose"})
PHONE_STATES = frozenset({"online", "offline"})
# share of the heart-rate reserve an activity takes, for fitness 0.5
ACTIVITY_RESERVE = {"lying": -0.05, "sitting": 0.0, "rest": 0.0, "walk": 0.30, "run": 0.65}
FALL_LYING_S = 120.0


def parse_seconds(value: float | int | str) -> float:
    """Seconds from a number or an ``"HH:MM[:SS]"`` string."""
    if isinstance(value, str):
        parts = value.split(":")
        if not 2 <= len(parts) <= 3:
            raise ValueError(f"time {value!r} is not HH:MM or HH:MM:SS")
        h, m, s = (float(p) for p in (parts + ["0"])[:3])
        return h * 3600 + m * 60 + s
    return float(value)


def activity_hr(profile: Profile, activity: str) -> float:
    """Steady heart rate (bpm) of ``profile`` doing ``activity``.

    The share of the reserve (peak - resting) scales by 1.2 - 0.4 x fitness:
    an athlete walks at a lower share than a sedentary patient.
    """
    share = ACTIVITY_RESERVE.get(activity, 0.0) * (1.2 - 0.4 * profile.fitness)
    return profile.resting_hr + share * (profile.peak_hr - profile.resting_hr)


def _choice(name: str, value: str | None, allowed: frozenset[str]) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, not {value!r}")


@dataclass(frozen=True)
class Segment:
    """A period with its own heart rate, activity, rhythm, skin contact, strap or phone state."""

    at: float  # s from the start
    duration: float  # s
    hr: float | None = None  # bpm reached after the ramp; None: resting HR or the activity's
    activity: str | None = None
    rhythm: str = "sinus"
    contact: bool = True
    ramp: float = 20.0  # s to reach hr, and to return at the end
    strap: str = "ok"
    phone: str = "online"
    pvc_per_hour: float | None = None
    pac_per_hour: float | None = None
    noise_snr_db: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_seconds(self.at))
        object.__setattr__(self, "duration", parse_seconds(self.duration))
        if self.duration <= 0 or self.at < 0:
            raise ValueError("segment needs at >= 0 and duration > 0")
        if self.ramp < 0:
            raise ValueError("segment ramp must be >= 0")
        _choice("activity", self.activity, ACTIVITIES)
        _choice("rhythm", self.rhythm, RHYTHMS)
        _choice("strap", self.strap, STRAP_STATES)
        _choice("phone", self.phone, PHONE_STATES)
        if self.hr is not None and not 20 <= self.hr <= 300:
            raise ValueError("segment hr must be within 20..300 bpm")

    @property
    def end(self) -> float:
        """End of the segment, s from the start."""
        return self.at + self.duration

    def covers(self, t: float) -> bool:
        """Whether time ``t`` (s) is inside the segment."""
        return self.at <= t < self.at + self.duration

    def share(self, t: float) -> float:
        """How far the segment's values have ramped in at ``t`` (0..1)."""
        if not self.covers(t):
            return 0.0
        ramp = min(max(self.ramp, 1e-6), self.duration / 2)
        return min(1.0, (t - self.at) / ramp, (self.end - t) / ramp)


@dataclass(frozen=True)
class Incident:
    """Something that happens to the patient at a time: a fall, a sinus pause, an ectopic beat."""

    at: float
    type: str
    duration: float = 0.0  # s: pause length, or time lying after a fall (default 120 s)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_seconds(self.at))
        object.__setattr__(self, "duration", parse_seconds(self.duration))
        _choice("incident type", self.type, INCIDENT_TYPES)
        if self.type == "fall" and self.duration == 0:
            object.__setattr__(self, "duration", FALL_LYING_S)
        if self.type == "pause" and not 1.5 <= self.duration <= 20:
            raise ValueError("a pause lasts 1.5..20 s")


@dataclass(frozen=True)
class Action:
    """Something the patient does at a time: mark a symptom period or press panic."""

    at: float
    type: str
    tags: tuple[str, ...] = ()
    severity: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", parse_seconds(self.at))
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
    incidents: tuple[Incident, ...] = ()
    profile: Profile | None = None
    medication: MedicationScript | None = None  # the plan and how the patient takes it (simulators.medication)
    hr_offsets: tuple[HrOffset, ...] = ()  # drug effects of a run (simulators.medication.hr_offsets)

    def __post_init__(self) -> None:
        _choice("activity", self.activity, ACTIVITIES)
        if self.profile is None:
            object.__setattr__(self, "profile", Profile(resting_hr=self.resting_hr))

    @property
    def patient(self) -> Profile:
        """The patient's profile (resting HR as the scenario says)."""
        assert self.profile is not None
        return self.profile

    def hr_at(self, t: float) -> float:
        """Target heart rate (bpm) at ``t`` s, ramping linearly into and out of segments."""
        hr = self.resting_hr
        for s in self.segments:
            share = s.share(t)
            if share == 0.0:
                continue
            target = s.hr if s.hr is not None else (activity_hr(self._resting(), s.activity) if s.activity else None)
            if target is not None:
                hr = hr + (target - hr) * share
        return hr + sum(o.delta * o.share(t) for o in self.hr_offsets)

    def _resting(self) -> Profile:
        p = self.patient
        if p.resting_hr == self.resting_hr:
            return p
        return Profile(**{**p.__dict__, "resting_hr": self.resting_hr})

    def activity_at(self, t: float) -> str:
        """Activity at ``t`` s (lying for a while after a fall)."""
        if any(i.type == "fall" and i.at <= t < i.at + i.duration for i in self.incidents):
            return "lying"
        return next((s.activity for s in reversed(self.segments) if s.activity and s.covers(t)), self.activity)

    def rhythm_at(self, t: float) -> str:
        """``sinus``, ``af``, ``vt`` or ``svt`` at ``t`` s."""
        return next((s.rhythm for s in reversed(self.segments) if s.covers(t) and s.rhythm != "sinus"), "sinus")

    def contact_at(self, t: float) -> bool:
        """Whether the strap has skin contact at ``t`` s (a loose strap is judged per second elsewhere)."""
        return all(s.contact for s in self.segments if s.covers(t))

    def strap_at(self, t: float) -> str:
        """``ok`` or ``loose`` at ``t`` s."""
        return "loose" if any(s.strap == "loose" and s.covers(t) for s in self.segments) else "ok"

    def phone_online_at(self, t: float) -> bool:
        """Whether the phone has a network at ``t`` s."""
        return not any(s.phone == "offline" and s.covers(t) for s in self.segments)

    def ectopy_at(self, t: float) -> tuple[float, float]:
        """(PVC, PAC) rates per hour at ``t`` s."""
        pvc, pac = self.patient.pvc_per_hour, self.patient.pac_per_hour
        for s in self.segments:
            if s.covers(t):
                pvc = s.pvc_per_hour if s.pvc_per_hour is not None else pvc
                pac = s.pac_per_hour if s.pac_per_hour is not None else pac
        return pvc, pac

    def noise_snr_at(self, t: float) -> float | None:
        """Electrode-motion SNR (dB) at ``t`` s, or None for a clean lead."""
        snrs = [s.noise_snr_db for s in self.segments if s.covers(t) and s.noise_snr_db is not None]
        return min(snrs) if snrs else None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        """Build a scenario from its JSON object."""
        data = dict(raw)
        if "profile" in data:
            data["profile"] = load_profile(data["profile"])
            data.setdefault("resting_hr", data["profile"].resting_hr)
        data["segments"] = tuple(Segment(**s) for s in data.get("segments", ()))
        if data.get("medication") is not None:
            data["medication"] = MedicationScript.from_dict(data["medication"])
        data["incidents"] = tuple(sorted((Incident(**i) for i in data.get("incidents", ())), key=lambda i: i.at))
        data["actions"] = tuple(
            sorted((Action(**{**a, "tags": tuple(a.get("tags", ()))}) for a in data.get("actions", ())), key=lambda a: a.at)
        )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"scenario {data.get('name')!r}: {exc}") from exc


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
    try:
        return Scenario.from_dict(json.loads(text))
    except (TypeError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"bad scenario {name_or_path!r}: {exc}") from exc
