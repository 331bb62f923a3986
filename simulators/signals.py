"""Seeded physiological signal generators, shared by the simulators and the tests.

Every generator takes an explicit ``numpy.random.Generator`` (or is
deterministic), works on any sampling rate and returns plain arrays:

* :class:`RRGenerator`: beat-to-beat RR intervals (s) that follow a heart-rate
  profile, with respiratory sinus arrhythmia (RSA) and AR(1) heart-rate
  variability; ``"af"`` rhythm makes them irregularly irregular.
The full simulator uses :mod:`simulators.rhythm` (beats with arrhythmias),
:mod:`simulators.ecgsyn` (the dynamical ECG) and :mod:`simulators.noise`; the
simple generators here remain for unit tests of the edge DSP.

* :func:`ecg_waveform`: a single-lead ECG (mV) as a sum of Gaussian P, Q, R, S
  and T waves per beat, after the morphology of ECGSYN (McSharry et al., IEEE
  Trans. Biomed. Eng. 50(3), 2003), with the QT interval scaled by sqrt(RR).
* :func:`accel_samples`: chest accelerometer (g) for lying, sitting, rest, walk and
  run, with breathing motion; :func:`accel_fall` adds a fall's free fall and impact.
* :func:`battery_level`: a linear battery drain (%).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

RSA_AMPLITUDE = 0.03  # fraction of RR modulated by breathing
RESP_HZ = 0.25  # 15 breaths/min
HRV_SD = 0.02  # fraction of RR, AR(1) innovation scale
HRV_AR = 0.9
AF_SPREAD = 0.25  # RR varies uniformly by +-25 % in atrial fibrillation

# (offset from R in s at RR = 1 s, amplitude mV, width s); offsets of P and T scale with sqrt(RR)
# gravity direction per posture; (step Hz, vertical bounce g) per gait
GRAVITY = {
    "lying": np.array([0.0, 0.0, 1.0]),
    "sitting": np.array([0.0, 0.94, 0.34]),
    "rest": np.array([0.0, 1.0, 0.0]),
    "walk": np.array([0.0, 1.0, 0.0]),
    "run": np.array([0.0, 1.0, 0.0]),
}
STEPS = {"walk": (1.9, 0.25), "run": (2.8, 0.8)}

ECG_WAVES = (
    (-0.20, 0.12, 0.025),  # P
    (-0.035, -0.12, 0.010),  # Q
    (0.0, 1.20, 0.010),  # R
    (0.035, -0.25, 0.010),  # S
    (0.28, 0.30, 0.045),  # T
)


class RRGenerator:
    """Beat-by-beat RR intervals following ``hr_at(t)`` (bpm at s since the start).

    Args:
        hr_at: heart rate profile, bpm, as a function of time (s).
        rng: the random generator (seeded by the caller).
        rhythm_at: rhythm at a time: ``"sinus"`` (default) or ``"af"``.
    """

    def __init__(
        self,
        hr_at: Callable[[float], float],
        rng: np.random.Generator,
        rhythm_at: Callable[[float], str] = lambda t: "sinus",
    ) -> None:
        self.hr_at, self.rng, self.rhythm_at = hr_at, rng, rhythm_at
        self.t = 0.0
        self._ar = 0.0

    def next_beat(self) -> tuple[float, float]:
        """Advance by one beat; returns (beat time s, RR interval s that ended at it)."""
        base = 60.0 / self.hr_at(self.t)
        self._ar = HRV_AR * self._ar + HRV_SD * math.sqrt(1 - HRV_AR**2) * float(self.rng.standard_normal())
        rr = base * (1 + RSA_AMPLITUDE * math.sin(2 * math.pi * RESP_HZ * self.t) + self._ar)
        if self.rhythm_at(self.t) == "af":
            rr = base * (1 + float(self.rng.uniform(-AF_SPREAD, AF_SPREAD)))
        rr = min(max(rr, 0.26), 2.9)
        self.t += rr
        return self.t, rr


def rr_series(hr_at: Callable[[float], float], duration_s: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Beat times (s from 0) of a sinus rhythm over ``duration_s`` seconds."""
    gen, beats = RRGenerator(hr_at, rng), []
    while (beat := gen.next_beat()[0]) < duration_s:
        beats.append(beat)
    return np.asarray(beats)


def ecg_waveform(t: NDArray[np.float64], beat_times: NDArray[np.float64], rr: NDArray[np.float64]) -> NDArray[np.float64]:
    """ECG in mV at times ``t`` (s) for R peaks at ``beat_times`` with local RR ``rr`` (s).

    Beats more than 1.5 s from every sample contribute nothing and may be left out.
    """
    t = np.asarray(t, dtype=float)
    x = np.zeros_like(t)
    for tb, r in zip(np.asarray(beat_times, dtype=float), np.asarray(rr, dtype=float)):
        scale = math.sqrt(max(r, 0.2))
        for offset, amplitude, width in ECG_WAVES:
            centre = tb + (offset * scale if abs(offset) > 0.1 else offset)
            x += amplitude * np.exp(-0.5 * ((t - centre) / width) ** 2)
    return x


def ecg_noise(t: NDArray[np.float64], rng: np.random.Generator, noise_mv: float = 0.02) -> NDArray[np.float64]:
    """Baseline wander (0.3 Hz breathing, 0.05 mV) plus white noise (mV)."""
    return 0.05 * np.sin(2 * np.pi * RESP_HZ * t) + noise_mv * rng.standard_normal(t.size)


def accel_samples(
    activity: str, t: NDArray[np.float64], rng: np.random.Generator, resp: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Chest accelerometer in g, shape (len(t), 3); +y up the trunk, +z out of the chest.

    Args:
        activity: ``lying``, ``sitting``, ``rest``, ``walk`` or ``run`` (anything else: rest).
        t: sample times in s.
        rng: random generator for sensor noise.
        resp: respiration band signal at ``t`` (-1..1): the chest's breathing motion, 5 mg.
    """
    t = np.asarray(t, dtype=float)
    a = np.tile(GRAVITY.get(activity, GRAVITY["rest"]), (t.size, 1)) + 0.01 * rng.standard_normal((t.size, 3))
    step_hz, amplitude = STEPS.get(activity, (0.0, 0.0))
    if amplitude:
        a[:, 1] += amplitude * np.sin(2 * np.pi * step_hz * t)
        a[:, 2] += 0.3 * amplitude * np.sin(np.pi * step_hz * t)
    if resp is not None:
        a[:, 2] += 0.005 * np.asarray(resp)
    return a


def accel_fall(t: NDArray[np.float64], t_fall: float) -> NDArray[np.float64]:
    """What a fall at ``t_fall`` adds to the chest accelerometer (g), shape (len(t), 3).

    About 0.6 s of near free fall (|a| drops towards 0.2 g), then an impact of
    ~3.5 g on the chest axis decaying within ~0.3 s; the lying posture after
    it comes from the activity.
    """
    t = np.asarray(t, dtype=float)
    out = np.zeros((t.size, 3))
    falling = (t >= t_fall - 0.6) & (t < t_fall)
    out[falling, 1] -= 0.8
    after = t >= t_fall
    out[after, 2] += 3.5 * np.exp(-(t[after] - t_fall) / 0.08)
    out[after, 0] += 1.2 * np.exp(-(t[after] - t_fall) / 0.12) * np.sin(2 * np.pi * 8 * (t[after] - t_fall))
    return out


def battery_level(elapsed_s: float, start_percent: float = 100.0, drain_percent_per_hour: float = 4.0) -> int:
    """Battery (%) after ``elapsed_s`` seconds of a linear drain, never below 0."""
    return int(max(0.0, start_percent - drain_percent_per_hour * elapsed_s / 3600.0))
