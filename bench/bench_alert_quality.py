"""Alert quality on a simulated cohort: default (NEWS2) limits vs. personalised limits, side by side.

A seeded generator (summary level, one-minute windows) makes patients with
heterogeneous baselines: a typical patient, an athlete resting at 45 bpm, an
elderly patient resting at 95 bpm, and a patient with frequent ectopy (noisy
heart rate). Each wears the strap for a 7-day baseline week, then a 7-day
evaluation week with ground-truth red episodes (sustained tachycardia at rest,
fast breathing, a VT run). The rule engine runs over the evaluation week twice:
with the defaults, and with the limits :func:`server.baseline.propose_limits`
derived from that patient's baseline week.

Figures: red-episode sensitivity (a red alert while the episode lasts), median
time from episode start to the red alert, false alerts per patient-day (alerts
opened more than 10 min away from any episode), and the ratio.

    .venv/bin/python bench/bench_alert_quality.py [--seed 42] [--days 7]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, replace

import numpy as np

from server.baseline import BaselinePolicy, BaselineSample, propose_limits
from server.rules import NEWS2_LIMITS, RuleConfig, RuleState, evaluate_windows, sync_levels
from wire import Limits, SummaryWindow

T0 = 1_763_856_000.0  # a midnight, UTC
MARGIN_S = 600.0


@dataclass(frozen=True)
class Profile:
    """A simulated patient: heart rate by context (bpm), its noise, breathing rate (breaths/min)."""

    name: str
    rest: float
    sleep: float
    active: float
    noise: float
    resp: float
    ectopy: float = 0.0  # share of windows with an ectopy-inflated heart rate


COHORT = (
    Profile("typical", rest=72, sleep=62, active=105, noise=3, resp=15),
    Profile("athlete", rest=45, sleep=40, active=95, noise=3, resp=12),
    Profile("elderly", rest=95, sleep=86, active=118, noise=3, resp=19),
    Profile("ectopy", rest=75, sleep=66, active=108, noise=6, resp=16, ectopy=0.05),
)
EPISODES = (("tachy", 150.0, 20), ("resp", 30.0, 20), ("vt", 170.0, 2))  # kind, value, minutes


def activity_at(minute_of_day: int) -> str:
    """Lying 23:00-07:00, walking 08:00-09:00 and 17:00-18:00, else at rest."""
    hour = minute_of_day // 60
    if hour >= 23 or hour < 7:
        return "lying"
    return "walk" if hour in (8, 17) else "rest"


def week(p: Profile, start: float, days: int, rng: np.random.Generator) -> list[SummaryWindow]:
    """One-minute windows over ``days`` with noise, post-walk recovery and, rarely, poor signal."""
    out = []
    for m in range(days * 1440):
        act = activity_at(m % 1440)
        base = {"lying": p.sleep, "walk": p.active, "rest": p.rest}[act]
        if act == "rest" and activity_at((m - 10) % 1440) == "walk":
            base += 15  # ten minutes of recovery after a walk
        hr = base + rng.normal(0, p.noise) + (rng.uniform(10, 25) if rng.random() < p.ectopy else 0)
        quality = 0.2 if rng.random() < 0.02 else 0.9
        flags = ("ectopic",) if p.ectopy and rng.random() < p.ectopy else ()
        out.append(SummaryWindow(start=start + 60 * m, end=start + 60 * (m + 1), beats=int(hr), hr_mean=round(hr, 1),
                                 resp_rate=round(p.resp + rng.normal(0, 1.2), 1), activity=act, quality=quality,
                                 flags=flags))  # fmt: skip
    return out


def inject(windows: list[SummaryWindow], rng: np.random.Generator) -> tuple[list[SummaryWindow], list[tuple[float, float]]]:
    """Put each ground-truth red episode at rest on a random day; return the windows and the episodes."""
    episodes, windows = [], list(windows)
    for day, (kind, value, minutes) in enumerate(EPISODES):
        first = (day * 2 + 1) * 1440 + int(rng.integers(10 * 60, 16 * 60))
        for i in range(first, first + minutes):
            w = windows[i]
            if kind == "tachy":
                windows[i] = replace(w, hr_mean=value + rng.normal(0, 3), quality=0.9)
            elif kind == "resp":
                windows[i] = replace(w, resp_rate=value + rng.normal(0, 1), quality=0.9)
            else:
                windows[i] = replace(w, hr_mean=value, flags=("vt",), quality=0.9)
        episodes.append((windows[first].start, windows[first + minutes - 1].end))
    return windows, episodes


def run(windows: list[SummaryWindow], limits: dict[str, Limits]) -> list[tuple[float, str]]:
    """Alerts opened (time, level), in 60-window batches; red-level changes count as their own alert."""
    config, state, opened = RuleConfig(limits=limits, version=1), RuleState(), []
    for i in range(0, len(windows), 5):
        state, actions = evaluate_windows(state, windows[i:i + 5], config)
        opened += [(a.time, a.level) for a in actions if a.kind in ("open", "escalate")]
        state = sync_levels(state, {k: v.level for k, v in state.params.items() if v.level != "ok"})
    return opened


def score(opened: list[tuple[float, str]], episodes: list[tuple[float, float]], days: int) -> tuple[int, list[float], float]:
    """Episodes caught by a red alert, times to alert (s), false alerts per patient-day."""
    caught, delays = 0, []
    for start, end in episodes:
        reds = [t for t, lvl in opened if lvl == "red" and start <= t <= end + 60]
        if reds:
            caught += 1
            delays.append(min(reds) - start)
    false = [t for t, _ in opened if not any(s - MARGIN_S <= t <= e + MARGIN_S for s, e in episodes)]
    return caught, delays, len(false) / days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    totals = {"default": [0, [], 0.0], "personalised": [0, [], 0.0]}
    print(f"{'patient':10} {'limits':13} {'red caught':>10} {'median s to red':>16} {'false/day':>10}")
    for p in COHORT:
        base = week(p, T0, args.days, rng)
        evaluation, episodes = inject(week(p, T0 + args.days * 86400, args.days, rng), rng)
        samples = [BaselineSample(w.start, w.end, w.activity, w.quality, w.hr_mean, w.resp_rate) for w in base]
        personal = propose_limits(samples, BaselinePolicy(days=args.days)).limits
        for name, limits in (("default", dict(NEWS2_LIMITS)), ("personalised", personal)):
            caught, delays, false_per_day = score(run(evaluation, limits), episodes, args.days)
            t = totals[name]
            t[0], t[2] = t[0] + caught, t[2] + false_per_day / len(COHORT)  # type: ignore[operator]
            t[1] += delays  # type: ignore[operator]
            median = statistics.median(delays) if delays else float("nan")
            print(f"{p.name:10} {name:13} {caught:>5}/{len(episodes):<4} {median:>16.0f} {false_per_day:>10.2f}")
    n = len(COHORT) * len(EPISODES)
    for name, (caught, delays, fpd) in totals.items():
        print(f"{'cohort':10} {name:13} {caught:>5}/{n:<4} {statistics.median(delays):>16.0f} {fpd:>10.2f}")
    ratio = totals["personalised"][2] / totals["default"][2]  # type: ignore[operator]
    print(f"false alerts per patient-day, personalised / default = {ratio:.2f} (goal <= 0.50)")


if __name__ == "__main__":
    main()
