"""Shared helpers of the simulator tests: short scenarios built in code."""

from __future__ import annotations

import numpy as np

from simulators.body import SimulatedBody
from simulators.profiles import load_profile
from simulators.rhythm import Beat
from simulators.scenarios import Scenario, Segment


def scenario_with(*segments: Segment, seed: int = 1, profile: str = "healthy_adult", **kw: object) -> Scenario:
    """A scenario of ``profile`` at rest with ``segments``."""
    p = load_profile(profile)
    return Scenario("test", resting_hr=p.resting_hr, seed=seed, profile=p, segments=segments, **kw)  # type: ignore[arg-type]


def render(scenario: Scenario, seconds: float, fs: float, *, noise: bool = False, chunk_s: float = 10.0) -> tuple[np.ndarray, list[Beat]]:
    """ECG (mV) over ``seconds`` at ``fs`` Hz, and the true beats inside it."""
    body = SimulatedBody(scenario, ecg_fs=fs, noise=noise)
    n, step = int(seconds * fs), int(chunk_s * fs)
    x = np.concatenate([body.ecg(i / fs, min(step, n - i)) for i in range(0, n, step)])
    return x, [b for b in body.beats if b.time < seconds]


def beat_times(beats: list[Beat], lo: float = 0.0, hi: float = float("inf")) -> np.ndarray:
    """R-peak times (s) of ``beats`` within [lo, hi)."""
    return np.array([b.time for b in beats if lo <= b.time < hi])
