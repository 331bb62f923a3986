"""Respiration: a breathing phase with breath-to-breath rate variability, and the band signal.

The rate follows ``rate_at(t)`` (breaths/min) with a slow AR(1) wobble of
about 8 % (time constant ~20 s), as in quiet breathing. The phase is built
lazily on a 4 Hz grid, keeping the last few minutes only (queries move
forward in time, as a simulation does), and is shared by the
RSA of the heart (:mod:`simulators.rhythm`), the ECG's respiratory modulation
(:mod:`simulators.ecgsyn`) and the chest motion in the accelerometer.
Inspiration is the rising half of the band signal (phase -pi/2 .. pi/2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

GRID_HZ = 4.0
BLOCK_S = 60.0
HISTORY_S = 900.0  # how far behind the newest grid point queries may reach
RATE_WOBBLE = 0.08  # relative SD of the breathing rate
WOBBLE_TAU_S = 20.0


class Respiration:
    """Breathing of one simulated patient.

    Args:
        rate_at: breaths/min at a time (s from the start).
        rng: random generator (seeded by the caller).
    """

    def __init__(self, rate_at: Callable[[float], float], rng: np.random.Generator) -> None:
        self.rate_at = rate_at
        self.rng = rng
        self._t = np.zeros(1)
        self._phase = np.array([float(rng.uniform(0, 2 * math.pi))])
        self._wobble = 0.0

    def _extend(self, t_end: float) -> None:
        while self._t[-1] < t_end:
            n = int(BLOCK_S * GRID_HZ)
            t = self._t[-1] + np.arange(1, n + 1) / GRID_HZ
            a = math.exp(-1 / (GRID_HZ * WOBBLE_TAU_S))
            noise = self.rng.standard_normal(n) * RATE_WOBBLE * math.sqrt(1 - a * a)
            wobble = lfilter([1.0], [1.0, -a], noise, zi=[a * self._wobble])[0]
            self._wobble = float(wobble[-1])
            rate = np.array([self.rate_at(float(x)) for x in t[:: int(GRID_HZ)]]).repeat(int(GRID_HZ))
            hz = rate / 60.0 * (1 + wobble)
            phase = self._phase[-1] + np.cumsum(2 * math.pi * hz / GRID_HZ)
            keep = self._t >= t[-1] - HISTORY_S
            self._t = np.concatenate([self._t[keep], t])
            self._phase = np.concatenate([self._phase[keep], phase])

    def phase(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Unwrapped breathing phase (rad) at times ``t`` (s, >= 0)."""
        t = np.asarray(t, dtype=float)
        self._extend(float(t.max(initial=0.0)) + 1.0)
        if t.size and t.min() < self._t[0]:
            raise ValueError(f"breathing before {self._t[0]:.1f} s is no longer kept")
        return np.asarray(np.interp(t, self._t, self._phase), dtype=float)

    def mean_rate(self, start: float, end: float) -> float:
        """Mean breathing rate (breaths/min) over [start, end] s: the ground truth of a rate estimate."""
        ph = self.phase(np.array([start, end]))
        return float((ph[1] - ph[0]) / (2 * math.pi) * 60 / (end - start))

    def band(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Respiration band signal (chest expansion, -1 .. 1 a.u.) at times ``t`` (s)."""
        return resp_band(self.phase(t))


def resp_band(phase: NDArray[np.float64]) -> NDArray[np.float64]:
    """Chest expansion for a breathing phase: a sine with a slightly longer expiration."""
    return np.asarray(np.sin(phase) + 0.12 * np.sin(2 * phase - math.pi / 2), dtype=float)
