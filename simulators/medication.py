"""A simulated patient's medication: the plan, and what the patient does at each dose (with ground truth).

A scenario's ``medication`` object holds a plan (``time_zone``, ``drugs``,
optionally ``on_time_minutes`` / ``grace_minutes``, as the clinician would
record it) and the patient's habits::

    "medication": {"time_zone": "Europe/Ljubljana",
                   "drugs": [{"name": "bisoprolol", "dose": "5 mg", "times": ["08:00"], "critical": true}],
                   "taking": {"on_time": 0.8, "late": 0.1, "skipped": 0.05, "forgotten": 0.05},
                   "doses": [{"drug": "bisoprolol", "n": 1, "do": "forgotten"}]}

``taking`` draws each dose's behaviour from the scenario's seed (default:
always on time); ``doses`` pins the ``n``-th dose of a drug (0-based, in the
simulated span) to ``on_time``, ``late``, ``skipped`` or ``forgotten``;
``effects`` (optional) makes a drug act on the heart rate, e.g.
``{"bisoprolol": {"hr_bpm": -10, "hours": 10}}``: from each dose taken, the rate
moves by ``hr_bpm``, ramping in and out over an hour, for ``hours``
(:func:`hr_offsets`; a forgotten dose has no effect, so the chart shows it).
:func:`dose_truth` is the ground truth of a run: every dose planned from the
start, what the patient did and when they tapped (on time: within the first
half of the on-time window; late: between the on-time window and the dose's
deadline; skipped: within 10 minutes, with a reason; forgotten: no tap, so
the phone records the dose as missed when it closes). A tap after the run's
end is in the truth but does not happen. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from wire.codec import plan_from_dict
from wire.errors import WireDecodeError
from wire.medication import MedicationPlan, schedule

BEHAVIOURS = ("on_time", "late", "skipped", "forgotten")
SKIP_REASON = "side effects"


@dataclass(frozen=True)
class DoseOverride:
    """The ``n``-th simulated dose of ``drug`` (0-based) is ``do``."""

    drug: str
    n: int
    do: str

    def __post_init__(self) -> None:
        if self.do not in BEHAVIOURS:
            raise ValueError(f"dose behaviour must be one of {list(BEHAVIOURS)}, not {self.do!r}")
        if self.n < 0:
            raise ValueError("dose n must be >= 0")


@dataclass(frozen=True)
class HrOffset:
    """A drug's effect on the heart rate: ``delta`` bpm from ``at`` for ``duration`` s (s from the start)."""

    at: float
    duration: float
    delta: float
    ramp: float = 3600.0

    def share(self, t: float) -> float:
        """How much of the effect acts at ``t`` (0..1)."""
        if not self.at <= t < self.at + self.duration:
            return 0.0
        ramp = min(self.ramp, self.duration / 2)
        return min(1.0, (t - self.at) / ramp, (self.at + self.duration - t) / ramp)


@dataclass(frozen=True)
class MedicationScript:
    """A scenario's plan (as the wire's plan object, without version and since) and the patient's habits."""

    plan: dict[str, Any]
    taking: tuple[tuple[str, float], ...] = (("on_time", 1.0),)
    doses: tuple[DoseOverride, ...] = ()
    effects: tuple[tuple[str, float, float], ...] = ()  # (drug, bpm, hours)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MedicationScript:
        """Parse and check a scenario's ``medication`` object (ValueError naming the problem)."""
        data = dict(raw)
        taking = data.pop("taking", {"on_time": 1.0})
        try:
            doses = tuple(DoseOverride(**d) for d in data.pop("doses", ()))
            effects = tuple((drug, float(e["hr_bpm"]), float(e["hours"]))
                            for drug, e in data.pop("effects", {}).items())  # fmt: skip
            named = {d["name"] for d in data.get("drugs", ())}
        except (TypeError, KeyError) as exc:  # a field missing or unknown
            raise ValueError(f"medication: doses, effects or drugs malformed ({exc!r})") from exc
        if any(not -60 <= bpm <= 60 or not 0 < hours <= 72 for _, bpm, hours in effects):
            raise ValueError("medication.effects: hr_bpm within -60..60 and hours within 0..72")
        strangers = sorted(({o.drug for o in doses} | {drug for drug, _, _ in effects}) - named)
        if strangers:  # a misspelt drug would silently be drawn at random or have no effect
            raise ValueError(f"medication.doses/effects: {strangers} not among the plan's drugs {sorted(named)}")
        script = cls(data, tuple(sorted(taking.items())), doses, effects)
        unknown = set(taking) - set(BEHAVIOURS)
        if unknown or any(p < 0 for p in taking.values()) or sum(taking.values()) <= 0:
            raise ValueError(f"medication.taking: probabilities of {list(BEHAVIOURS)}")
        try:
            script.plan_at(0.0)  # validates the plan as the wire contract does
        except WireDecodeError as exc:
            raise ValueError(str(exc)) from exc
        return script

    def plan_at(self, since: float, version: int = 1) -> MedicationPlan:
        """The wire plan, in force from ``since`` (s since epoch)."""
        return plan_from_dict({"version": version, "since": since, **self.plan}, "medication.")


@dataclass(frozen=True)
class DoseTruth:
    """One planned dose of a run and what the patient did (times in s since epoch; ``tap`` None: no tap)."""

    drug: str
    planned: float
    closes_at: float  # when the phone records it as missed if nobody tapped
    behaviour: str
    tap: float | None
    action: str | None  # the tap: taken, skipped (None when forgotten)
    reason: str = ""


def dose_truth(script: MedicationScript, plan: MedicationPlan, start_time: float, duration_s: float,
               seed: int) -> list[DoseTruth]:  # fmt: skip
    """What the patient does at each dose planned in the run (pure, seeded)."""
    rng = np.random.default_rng([seed, 23])
    names, weights = zip(*script.taking)
    p = np.asarray(weights, dtype=float) / sum(weights)
    counts: dict[str, int] = {}
    truth = []
    for dose in schedule(plan, start_time, start_time + duration_s):
        n = counts[dose.drug] = counts.get(dose.drug, -1) + 1
        pinned = next((o.do for o in script.doses if o.drug == dose.drug and o.n == n), None)
        drawn = str(names[int(rng.choice(len(names), p=p))])
        behaviour = pinned or drawn
        if behaviour == "late" and dose.closes_at <= dose.on_time_until:
            behaviour = "on_time"  # no late window (the next dose cuts it): a late tap would be on time
        u = float(rng.uniform(0.05, 0.95))
        if behaviour == "on_time":
            tap: float | None = dose.planned + u * 0.5 * (dose.on_time_until - dose.planned)
        elif behaviour == "late":
            tap = dose.on_time_until + u * (dose.closes_at - dose.on_time_until)
        elif behaviour == "skipped":
            tap = dose.planned + u * min(600.0, dose.closes_at - dose.planned)
        else:
            tap = None
        action = {"on_time": "taken", "late": "taken", "skipped": "skipped"}.get(behaviour)
        reason = SKIP_REASON if behaviour == "skipped" else ""
        truth.append(DoseTruth(dose.drug, dose.planned, dose.closes_at, behaviour, tap, action, reason))
    return truth


def hr_offsets(script: MedicationScript, truth: list[DoseTruth], start_time: float) -> tuple[HrOffset, ...]:
    """The heart-rate effects of the doses taken in ``truth`` (times relative to ``start_time``)."""
    effects = {drug: (bpm, hours) for drug, bpm, hours in script.effects}
    return tuple(HrOffset(t.tap - start_time, effects[t.drug][1] * 3600.0, effects[t.drug][0])
                 for t in truth if t.action == "taken" and t.tap is not None and t.drug in effects)  # fmt: skip
