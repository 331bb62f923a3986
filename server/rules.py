"""Alert rules: a pure, per-patient state machine over summary windows and events.

No database, no clock, no I/O: :func:`evaluate_windows` and :func:`evaluate_event`
take the previous :class:`RuleState` and return the next one with the alert
actions to carry out. :mod:`server.alerting` loads, persists and publishes.

Default limits are the NEWS2 bands (Royal College of Physicians, *National Early
Warning Score (NEWS) 2*, 2017), chart 1:

- pulse (bpm): <=40 scores 3, 41-50 scores 1, 111-130 scores 2, >=131 scores 3.
  Yellow at hr <= 50 or >= 111, red (a single parameter scoring 3, which
  NEWS2 says calls for urgent review) at hr <= 40 or >= 131.
- respiration rate (breaths/min): <=8 scores 3, 9-11 scores 1, 21-24 scores 2,
  >=25 scores 3. Yellow at <= 11 or >= 21, red at <= 8 or >= 25.

Rhythm defaults follow the Holter urgent findings (e.g. ACC/AHA guideline for
ambulatory electrocardiography, 1999; ISHNE-HRS expert consensus on ambulatory
ECG, 2017): a pause >= 3 s and sustained VT are red at once; AF with a fast
rate (mean > 110 bpm) is red once it has held; AF at a normal rate, and a
``pause`` flag whose length the phone did not report, are yellow once held.

The value judged is the window's **mean** heart rate (``hr_mean``): NEWS2
scores a pulse rate, not a peak. Limits are inclusive: a value equal to a limit
is beyond it. Limits may be given per activity context as ``"<param>@<context>"``
(contexts ``rest``, ``sleep``, ``active``, see :func:`context_of`); the plain
``"<param>"`` entry applies where no context entry exists. A value beyond the
:data:`HARD_LIMITS` is red at once, whatever the personal limits say.

Each parameter's level is entered only after windows at or beyond it have
covered ``hold_seconds`` (from the first such window's start to the latest
one's end), and an alert resolves only after windows back within all limits
have covered ``clear_seconds`` (hysteresis). An alert never steps down from red
to yellow by itself. Windows below ``min_quality`` or without a value neither
raise nor clear. A gap of more than ``max_gap_seconds`` without usable windows
restarts the hold and clear timers. Panic opens a red alert at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from wire import Limits, SummaryWindow

LEVELS = ("ok", "yellow", "red")
RANK = {name: i for i, name in enumerate(LEVELS)}
PANIC = "panic"
VITALS = ("hr", "resp_rate")
VITAL_FIELDS = {"hr": "hr_mean", "resp_rate": "resp_rate"}  # the SummaryWindow field judged for each vital
RHYTHMS = ("pause", "vt", "af")
CONTEXTS = ("rest", "sleep", "active")

NEWS2_LIMITS: dict[str, Limits] = {
    "hr": Limits(yellow_low=50, yellow_high=111, red_low=40, red_high=131),
    "resp_rate": Limits(yellow_low=11, yellow_high=21, red_low=8, red_high=25),
}

# Beyond these a value is red at once, and no personalised limit may be laxer.
HARD_LIMITS: dict[str, Limits] = {
    "hr": Limits(red_low=30, red_high=180),
    "resp_rate": Limits(red_low=5, red_high=40),
}

PAUSE_RED_S = 3.0  # Holter: a pause of 3 s or more is an urgent finding
AF_FAST_BPM = 110.0  # Holter: AF with a ventricular rate above 110 bpm is urgent
RHYTHM_CRITERIA = {
    "pause": f"pause >= {PAUSE_RED_S:g} s red at once; pause flag without a length yellow",
    "vt": "sustained ventricular tachycardia red at once",
    "af": f"AF with mean rate > {AF_FAST_BPM:g} bpm red; AF at a normal rate yellow",
}

_RHYTHM_BASIS = {name: {"criterion": text} for name, text in RHYTHM_CRITERIA.items()}  # shared: read only

ActionKind = Literal["open", "escalate", "resolve"]


@dataclass(frozen=True)
class RuleConfig:
    """The rule evaluator's tuning; times in seconds, quality 0..1.

    Attributes:
        limits: ``param`` or ``param@context`` -> limits (default: NEWS2).
        version: threshold version in force (None: the defaults), recorded in triggers.
        rhythm: judge the rhythm flags (pause, VT, AF) by the Holter criteria.
    """

    hold_seconds: float = 60.0
    clear_seconds: float = 120.0
    min_quality: float = 0.5
    max_gap_seconds: float = 300.0
    limits: Mapping[str, Limits] = field(default_factory=lambda: dict(NEWS2_LIMITS))
    version: int | None = None
    rhythm: bool = True

    @cached_property
    def judged(self) -> list[str]:
        """The parameters judged, in the evaluator's order: the vitals with limits (sorted), then the rhythms.

        Computed once per config (the ingest makes one per distinct limits in a batch); read it, never change it.
        """
        return vitals_of(self.limits) + (list(RHYTHMS) if self.rhythm else [])


class ParamState(NamedTuple):
    """Where one parameter of one patient stands.

    A named tuple, not a frozen dataclass: one is built for every parameter of
    every message the ingest judges and loads, and a tuple builds ~5x faster.

    Attributes:
        level: level of the active alert: ``ok`` (none), ``yellow`` or ``red``.
        yellow_since: start (s since epoch) of the current run of windows at or beyond yellow.
        red_since: start of the current run of windows at or beyond red.
        within_since: start of the current run of windows within all limits.
        last_end: end of the last usable window judged.
    """

    level: str = "ok"
    yellow_since: float | None = None
    red_since: float | None = None
    within_since: float | None = None
    last_end: float | None = None


STATE_FORMAT = 2  # RuleState.to_json: parameters as lists (1, unmarked: one object per parameter)


@dataclass(frozen=True)
class RuleState:
    """The persisted state of one patient's rules (JSON-serialisable)."""

    params: Mapping[str, ParamState] = field(default_factory=dict)
    last_end: float | None = None  # newest window end seen: older windows are not judged again

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back.

        Compact (this is written for every patient of every ingest batch): each
        parameter is a list of its :class:`ParamState` fields in order, tagged ``"v": 2``.
        """
        return {"v": STATE_FORMAT, "p": {k: list(v) for k, v in self.params.items()}, "e": self.last_end}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RuleState:
        """Rebuild a state from :meth:`to_json` output, or from the older form of one object per parameter.

        None or {} is a fresh state.
        """
        if not data:
            return cls()
        if data.get("v") == STATE_FORMAT:
            return cls(params={k: ParamState._make(v) for k, v in data["p"].items()}, last_end=data["e"])
        params = {k: ParamState(**v) for k, v in data.get("params", {}).items()}
        return cls(params=params, last_end=data.get("last_end"))

    def param(self, name: str) -> ParamState:
        """The state of one parameter (a fresh one if never seen)."""
        return self.params.get(name, ParamState())


@dataclass(frozen=True)
class AlertAction:
    """One thing the engine must do to the alerts table.

    Attributes:
        kind: ``open`` a new alert, ``escalate`` the active one to red, or ``resolve`` it.
        parameter: e.g. ``hr``, ``resp_rate``, ``pause``, ``panic``, ``no_signal``.
        level: the level after the action (for ``resolve``: the level that was active).
        time: when it happened, s since epoch (a window's end or the event's time).
        trigger: what caused it: window times, value, limits in force.
    """

    kind: ActionKind
    parameter: str
    level: str
    time: float
    trigger: dict[str, Any]


class Judgement(NamedTuple):
    """The level one window shows for one parameter, before any hold (a named tuple, as ParamState).

    Attributes:
        level: ``ok``, ``yellow`` or ``red``.
        value: the number judged (bpm, breaths/min, s of pause; 1 for a bare flag).
        at_once: red without waiting for the hold (hard limit, pause >= 3 s, VT).
        basis: the limits or criterion applied, for the trigger.
    """

    level: str
    value: float
    at_once: bool
    basis: dict[str, Any]


def classify(value: float, limits: Limits) -> str:
    """The NEWS2-style level of one value: ``red``, ``yellow`` or ``ok`` (limits inclusive)."""
    if _beyond(value, limits.red_low, limits.red_high):
        return "red"
    if _beyond(value, limits.yellow_low, limits.yellow_high):
        return "yellow"
    return "ok"


def _beyond(value: float, low: float | None, high: float | None) -> bool:
    return (low is not None and value <= low) or (high is not None and value >= high)


def context_of(activity: str) -> str:
    """The limits context of a wire activity class: ``active`` (walk, run), ``sleep`` (lying), else ``rest``."""
    if activity in ("walk", "run"):
        return "active"
    return "sleep" if activity == "lying" else "rest"


def limits_for(limits: Mapping[str, Limits], name: str, activity: str) -> Limits | None:
    """The limits of ``name`` for a window of this activity: the context entry, else the plain one."""
    return limits.get(f"{name}@{context_of(activity)}") or limits.get(name)


@lru_cache(maxsize=4096)
def limits_basis(limits: Limits) -> dict[str, Any]:
    """The trigger's record of ``limits`` (every side, None where unset), built once per distinct limits.

    The dict is shared between judgements: read it, never change it (:func:`_trigger` copies it).
    """
    return asdict(limits)


@lru_cache(maxsize=4096)
def ok_band(name: str, limits: Limits | None) -> tuple[float, float]:
    """The open interval of values of vital ``name`` that :func:`judge_vital` finds ``ok`` under ``limits``.

    Every limit is inclusive (a value equal to it is beyond), so ``ok`` is strictly
    above every low limit and strictly below every high one, the hard red limits
    included; without limits nothing is ``ok`` (an empty interval).
    """
    if limits is None:
        return math.inf, -math.inf
    hard = HARD_LIMITS.get(name, Limits())
    lows = [v for v in (hard.red_low, limits.red_low, limits.yellow_low) if v is not None]
    highs = [v for v in (hard.red_high, limits.red_high, limits.yellow_high) if v is not None]
    return max(lows, default=-math.inf), min(highs, default=math.inf)


def judge_vital(name: str, window: SummaryWindow, limits: Limits) -> Judgement | None:
    """Judge heart rate (``hr_mean``) or ``resp_rate`` of a window; None without a value."""
    value = getattr(window, VITAL_FIELDS[name])
    if value is None:
        return None
    level, at_once = vital_level(name, value, limits)
    return Judgement(level, value, at_once, limits_basis(limits))


def vital_level(name: str, value: float, limits: Limits) -> tuple[str, bool]:
    """The level of one value of vital ``name`` under ``limits``, and whether a hard limit made it red."""
    hard = HARD_LIMITS.get(name)
    at_once = hard is not None and classify(value, hard) == "red"
    return ("red" if at_once else classify(value, limits)), at_once


def judge_rhythm(name: str, window: SummaryWindow) -> Judgement:
    """Judge a rhythm parameter (``pause``, ``vt``, ``af``) of a window by the Holter criteria.

    ``pause_max`` (s, the longest RR gap) >= 3 s is red at once; without it (an
    older phone) a ``pause`` flag cannot prove a 3 s pause and counts as yellow.
    """
    basis = _RHYTHM_BASIS[name]
    flags = window.flags
    if name == "vt":
        return Judgement("red" if "vt" in flags else "ok", float("vt" in flags), "vt" in flags, basis)
    if name == "af":
        fast = window.hr_mean is not None and window.hr_mean > AF_FAST_BPM
        level = ("red" if fast else "yellow") if "af_suspected" in flags else "ok"
        return Judgement(level, window.hr_mean or 0.0, False, basis)
    longest = window.pause_max
    if longest is not None and longest >= PAUSE_RED_S:
        return Judgement("red", float(longest), True, basis)
    return Judgement("yellow" if "pause" in flags else "ok", float(longest or "pause" in flags), False, basis)


def rhythm_quiet(window: SummaryWindow) -> bool:
    """True if :func:`judge_rhythm` finds every rhythm parameter ``ok``: no flag and no pause of 3 s or more.

    The evaluator's shortcut for the common window (no Judgement is built).
    """
    return not window.flags and (window.pause_max is None or window.pause_max < PAUSE_RED_S)


def sync_levels(state: RuleState, active: Mapping[str, str]) -> RuleState:
    """Align each parameter's level with the alerts really active (``parameter -> level``).

    When a clinician resolved an alert by hand, its parameter drops to ``ok`` and
    its timers restart, so it reopens only after a fresh hold.
    """
    if not active and all(ps.level == "ok" for ps in state.params.values()):
        return state  # the common case: nothing active, nothing to align
    params = dict(state.params)
    for name in set(params) | set(active):
        ps = params.get(name, ParamState())
        want = active.get(name, "ok")
        if ps.level != want:
            params[name] = ParamState(level=want, last_end=ps.last_end)
    return replace(state, params=params)


def vitals_of(limits: Mapping[str, Limits]) -> list[str]:
    """The vital parameters ``limits`` has entries for (plain or per context), sorted."""
    return sorted({key.split("@", 1)[0] for key in limits} & set(VITALS))


def judge_window(name: str, window: SummaryWindow, config: RuleConfig) -> Judgement | None:
    """Judge one parameter of one window: a rhythm by the Holter criteria, a vital by its limits in force."""
    if name in RHYTHMS:
        return judge_rhythm(name, window)
    limits = limits_for(config.limits, name, window.activity)
    return None if limits is None else judge_vital(name, window, limits)


def evaluate_windows(
    state: RuleState, windows: Iterable[SummaryWindow], config: RuleConfig
) -> tuple[RuleState, list[AlertAction]]:
    """Judge new summary windows; return the next state and the alert actions, in time order.

    Parameters do not influence each other, so each is run over all the new
    windows in turn; the actions are then put back in window order (and, within
    a window, in parameter order: vitals sorted, then pause, VT, AF).
    """
    todo = _unjudged(state.last_end, windows)
    if not todo:
        return state, []
    usable = [w for w in todo if w.quality >= config.min_quality]
    names = config.judged
    quiet = _all_quiet(state, usable, names, config)
    if quiet is not None:
        return RuleState(params=quiet, last_end=todo[-1].end), []
    params = dict(state.params)
    found: list[tuple[int, int, AlertAction]] = []
    for order, name in enumerate(names):
        ps = _evaluate_param(state.params.get(name), name, usable, config, order, found)
        if ps is not None:
            params[name] = ps
    found.sort(key=lambda f: (f[0], f[1]))
    return RuleState(params=params, last_end=todo[-1].end), [action for _, _, action in found]


def _all_quiet(
    state: RuleState, usable: list[SummaryWindow], names: list[str], config: RuleConfig
) -> dict[str, ParamState] | None:
    """The parameters after ``usable`` if every one is steady and every window surely ``ok`` for all; else None.

    The shortcut for the message almost every patient sends almost always, with
    the result :func:`_evaluate_param` would reach window by window: each
    parameter's ``last_end`` moves to the last window's end and nothing else
    changes. Windows are checked once for all parameters (the rhythm ones share
    :func:`rhythm_quiet`); anything else (a value missing, beyond a band, a gap,
    a parameter not steady or never judged) returns None and is judged in full.
    """
    if not usable:
        return None
    gap = config.max_gap_seconds
    params = dict(state.params)
    for name in names:
        ps = params.get(name)
        if ps is None or ps.level != "ok" or ps.yellow_since is not None or ps.red_since is not None:
            return None
        if ps.within_since is None or ps.last_end is None or usable[0].start - ps.last_end > gap:
            return None
    vitals = [(VITAL_FIELDS[name], name, {}) for name in names if name not in RHYTHMS]  # bands by activity
    rhythm = len(vitals) < len(names)
    previous = None
    for window in usable:
        if previous is not None and window.start - previous > gap:
            return None
        if rhythm and not rhythm_quiet(window):
            return None
        for attribute, name, bands in vitals:
            value = getattr(window, attribute)
            band = bands.get(window.activity)
            if band is None:
                band = bands[window.activity] = ok_band(name, limits_for(config.limits, name, window.activity))
            if value is None or not band[0] < value < band[1]:
                return None
        previous = window.end
    end = usable[-1].end
    for name in names:
        params[name] = ParamState("ok", None, None, params[name].within_since, end)
    return params


def _unjudged(last_end: float | None, windows: Iterable[SummaryWindow]) -> list[SummaryWindow]:
    """The windows in start order that end after the newest one already judged (late or re-sent ones drop)."""
    todo = []
    for window in sorted(windows, key=attrgetter("start")):
        if last_end is None or window.end > last_end:
            todo.append(window)
            last_end = window.end
    return todo


def _evaluate_param(
    ps: ParamState | None, name: str, windows: list[SummaryWindow], config: RuleConfig, order: int,
    found: list[tuple[int, int, AlertAction]],
) -> ParamState | None:  # fmt: skip
    """Run one parameter over usable windows; append ``(window index, order, action)``; None if never judged.

    Steady state (no alert, no run beyond a limit, a run within limits already
    started, no gap) is the common case: a window within limits then only moves
    ``last_end``, so no state object is built for it, and it is not even judged
    when a quick test shows it ``ok`` (:func:`_surely_ok`).
    """
    judged_any = False
    current = ps or ParamState()
    last_end = current.last_end
    bands: dict[str, tuple[float, float]] = {}
    for index, window in enumerate(windows):
        steady = (current.level == "ok" and current.yellow_since is None and current.red_since is None
                  and current.within_since is not None
                  and not (last_end is not None and window.start - last_end > config.max_gap_seconds))  # fmt: skip
        if steady and _surely_ok(name, window, config, bands):
            judged_any, last_end = True, window.end
            continue
        judged = judge_window(name, window, config)
        if judged is None:
            continue
        judged_any = True
        if steady and judged.level == "ok":
            last_end = window.end
            continue
        current, action = _step(_ended(current, last_end), name, window, judged, config)
        last_end = current.last_end
        if action is not None:
            found.append((index, order, action))
    return _ended(current, last_end) if judged_any else ps


def _surely_ok(name: str, window: SummaryWindow, config: RuleConfig, bands: dict[str, tuple[float, float]]) -> bool:
    """True if :func:`judge_window` would find ``window`` ``ok`` for ``name``; False: judge it to know.

    Rhythms: :func:`rhythm_quiet`. Vitals: the value inside :func:`ok_band` of the
    limits for the window's activity (``bands`` keeps them per activity for one message).
    """
    if name in RHYTHMS:
        return rhythm_quiet(window)
    value = getattr(window, VITAL_FIELDS[name])
    band = bands.get(window.activity)
    if band is None:
        band = bands[window.activity] = ok_band(name, limits_for(config.limits, name, window.activity))
    return value is not None and band[0] < value < band[1]


def _ended(ps: ParamState, last_end: float | None) -> ParamState:
    """``ps`` with ``last_end`` moved (built positionally: this runs per parameter of every message)."""
    if ps.last_end == last_end:
        return ps
    return ParamState(ps.level, ps.yellow_since, ps.red_since, ps.within_since, last_end)


def _runs(ps: ParamState, level: str, window: SummaryWindow, max_gap: float) -> ParamState:
    if ps.last_end is not None and window.start - ps.last_end > max_gap:
        ps = ParamState(level=ps.level)  # too long without data: timers restart

    def run(since: float | None, inside: bool) -> float | None:
        return (window.start if since is None else since) if inside else None

    return ParamState(  # not _replace: this runs per window and parameter
        level=ps.level,
        yellow_since=run(ps.yellow_since, level != "ok"),
        red_since=run(ps.red_since, level == "red"),
        within_since=run(ps.within_since, level == "ok"),
        last_end=window.end,
    )


def _step(
    ps: ParamState, name: str, window: SummaryWindow, judged: Judgement, config: RuleConfig
) -> tuple[ParamState, AlertAction | None]:
    ps = _runs(ps, judged.level, window, config.max_gap_seconds)
    for target, since in (("red", ps.red_since), ("yellow", ps.yellow_since)):
        if since is None or RANK[target] <= RANK[ps.level]:
            continue
        if window.end - since >= config.hold_seconds or (target == "red" and judged.at_once):
            kind: ActionKind = "open" if ps.level == "ok" else "escalate"
            trigger = _trigger(window, judged, since, config)
            return ps._replace(level=target), AlertAction(kind, name, target, window.end, trigger)
    if ps.level != "ok" and ps.within_since is not None:
        if window.end - ps.within_since >= config.clear_seconds:
            trigger = _trigger(window, judged, ps.within_since, config)
            return ps._replace(level="ok"), AlertAction("resolve", name, ps.level, window.end, trigger)
    return ps, None


def _trigger(window: SummaryWindow, judged: Judgement, since: float, config: RuleConfig) -> dict[str, Any]:
    if "criterion" in judged.basis:
        source = "Holter"
    else:
        source = "hard limit" if judged.at_once else ("NEWS2" if config.version is None else "personalised")
    return {
        "window": {"start": window.start, "end": window.end, "quality": window.quality,
                   "activity": window.activity, "flags": list(window.flags)},
        "value": judged.value,
        "value_level": judged.level,
        "since": since,
        "held_seconds": round(window.end - since, 3),
        "limits": dict(judged.basis),  # a copy: the basis is shared between windows
        "source": source,
        "threshold_version": config.version,
    }  # fmt: skip


def evaluate_event(
    state: RuleState, event_type: str, time: float, location: tuple[float, float] | None = None
) -> tuple[RuleState, list[AlertAction]]:
    """Judge a patient event: a panic opens a red alert at once unless one is already active.

    Args:
        state: the patient's rule state.
        event_type: the wire EventType value, e.g. ``"panic"``.
        time: when the patient pressed, s since epoch.
        location: (lat, lon) in degrees if the patient shared it.
    """
    if event_type != PANIC or state.param(PANIC).level == "red":
        return state, []
    trigger: dict[str, Any] = {"event": PANIC, "time": time}
    if location is not None:
        trigger["lat"], trigger["lon"] = location
    params = dict(state.params)
    params[PANIC] = ParamState(level="red", last_end=time)
    return replace(state, params=params), [AlertAction("open", PANIC, "red", time, trigger)]
