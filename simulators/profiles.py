"""Patient profiles: who is simulated (age, resting HR, fitness, condition, physiology).

Profiles are data files in ``simulators/profiles/*.json``; a scenario names one
(``"profile": "hf_elderly"``) or embeds one as an object. Every field has a
default, so ``{}`` is a healthy 60-year-old::

    {"name": "af_paroxysmal", "age": 71, "sex": "m", "resting_hr": 74, "fitness": 0.3,
     "condition": "paroxysmal_af", "hrv_sdnn_ms": 28, "lf_hf": 1.2, "resp_rate": 16,
     "pac_per_hour": 40, "pvc_per_hour": 10, "home": [48.137, 11.575]}

The maximum heart rate defaults to Tanaka's 208 - 0.7 x age (Tanaka et al., J. Am.
Coll. Cardiol. 37:153, 2001).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
CONDITIONS = frozenset(
    {"none", "heart_failure", "paroxysmal_af", "post_mi", "hypertension", "bradycardia", "copd"}
)
SEXES = frozenset({"f", "m", "x"})


@dataclass(frozen=True)
class Profile:
    """A simulated patient's constitution.

    Attributes:
        name: profile id.
        age: years, 18-110.
        sex: ``f``, ``m`` or ``x``.
        resting_hr: bpm at seated rest, 30-130.
        fitness: 0 (sedentary) .. 1 (athlete); scales the HR response to activity.
        condition: one of :data:`CONDITIONS` (descriptive; rhythms come from the scenario).
        max_hr: bpm; None: 208 - 0.7 x age.
        hrv_sdnn_ms: short-term SDNN at rest, ms (healthy adults ~30-60, heart failure ~15-30).
        lf_hf: LF (0.04-0.15 Hz) over HF (0.15-0.4 Hz) RR power ratio at rest.
        resp_rate: breaths/min at rest, 6-40.
        ecg_amplitude_mv: R-wave height of the strap lead, mV.
        pvc_per_hour, pac_per_hour: background ectopy rates.
        home: (latitude, longitude) in degrees, for the GPS track and the weather.
        share_location: whether the patient consented to sending positions.
    """

    name: str = "default"
    age: int = 60
    sex: str = "x"
    resting_hr: float = 70.0
    fitness: float = 0.5
    condition: str = "none"
    max_hr: float | None = None
    hrv_sdnn_ms: float = 40.0
    lf_hf: float = 1.5
    resp_rate: float = 15.0
    ecg_amplitude_mv: float = 1.2
    pvc_per_hour: float = 0.0
    pac_per_hour: float = 0.0
    home: tuple[float, float] = (52.52, 13.40)
    share_location: bool = False

    def __post_init__(self) -> None:
        _check("age", self.age, 18, 110)
        _check("resting_hr", self.resting_hr, 30, 130)
        _check("fitness", self.fitness, 0, 1)
        _check("hrv_sdnn_ms", self.hrv_sdnn_ms, 0, 300)
        _check("lf_hf", self.lf_hf, 0.05, 20)
        _check("resp_rate", self.resp_rate, 6, 40)
        _check("ecg_amplitude_mv", self.ecg_amplitude_mv, 0.05, 5)
        _check("pvc_per_hour", self.pvc_per_hour, 0, 3600)
        _check("pac_per_hour", self.pac_per_hour, 0, 3600)
        if self.sex not in SEXES:
            raise ValueError(f"profile sex must be one of {sorted(SEXES)}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"profile condition must be one of {sorted(CONDITIONS)}")
        object.__setattr__(self, "home", tuple(float(v) for v in self.home))
        _check("home latitude", self.home[0], -90, 90)
        _check("home longitude", self.home[1], -180, 180)
        if self.peak_hr <= self.resting_hr:
            raise ValueError("max_hr must be above resting_hr")

    @property
    def peak_hr(self) -> float:
        """Maximum heart rate, bpm."""
        return self.max_hr if self.max_hr is not None else 208.0 - 0.7 * self.age

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Profile:
        """Build a profile from its JSON object; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown profile keys {sorted(unknown)}")
        return cls(**raw)


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"profile {name} {value} outside {lo}..{hi}")


def list_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load_profile(name_or_path: str | Path | dict[str, Any]) -> Profile:
    """A shipped profile by name, a profile JSON file by path, or an inline JSON object."""
    if isinstance(name_or_path, dict):
        return Profile.from_dict(name_or_path)
    path = Path(name_or_path)
    if path.suffix != ".json" or not path.exists():
        path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise ValueError(f"unknown profile {name_or_path!r}; known: {', '.join(list_profiles())}")
    return Profile.from_dict(json.loads(path.read_text()))
