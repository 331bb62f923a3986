"""A simulated patient's body: beats, ECG, respiration and motion, rendered in order.

:class:`SimulatedBody` composes the generators for one scenario. Each stream
has its own child random generator (spawned from the seed), so the beats are
the same whether or not noise or motion is rendered, and a clean and a noisy
rendering of one seed can be compared sample by sample. Rendering moves
forward in time only; every beat generated is kept as ground truth.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from simulators.ecgsyn import KINDS, NO_P, EcgSynthesizer
from simulators.noise import NoiseModel
from simulators.resp import Respiration
from simulators.rhythm import Beat, BeatGenerator
from simulators.scenarios import Scenario
from simulators.signals import accel_fall, accel_samples

RESP_FACTOR = {"lying": 0.95, "sitting": 1.0, "rest": 1.0, "walk": 1.2, "run": 1.9}
LOOSE_DROPOUT_P = 0.15  # chance a second of a loose strap loses contact
LOOSE_SNR_DB = 3.0
LOOKAHEAD_S = 3.0
_KIND = {k: i for i, k in enumerate(KINDS)}


def ecg_reference_power(scenario: Scenario, fs: float) -> float:
    """Power (mV^2) of the patient's clean sinus ECG at rest: the reference of noise SNRs."""
    quiet = replace(scenario, segments=(), incidents=(), actions=())
    body = SimulatedBody(quiet, ecg_fs=fs, seed=0, noise=False)
    x = body.ecg(0.0, int(20 * fs))
    return float(np.mean(x[int(5 * fs):] ** 2))


class SimulatedBody:
    """Everything one simulated patient's chest produces, over simulated time (s from 0).

    Args:
        scenario: the script and the patient's profile.
        ecg_fs: ECG sampling rate, Hz.
        seed: overrides the scenario's seed.
        noise: add baseline wander, muscle and electrode-motion noise.
    """

    def __init__(self, scenario: Scenario, *, ecg_fs: float = 130.0, seed: int | None = None, noise: bool = True) -> None:
        self.scenario = scenario
        self.fs = float(ecg_fs)
        seq = np.random.SeedSequence(scenario.seed if seed is None else seed)
        beat_rng, resp_rng, noise_rng, acc_rng, strap_rng = (np.random.default_rng(s) for s in seq.spawn(5))
        p = scenario.patient
        self.resp = Respiration(lambda t: p.resp_rate * RESP_FACTOR[scenario.activity_at(t)], resp_rng)
        self._beats = BeatGenerator(scenario, beat_rng, self.resp)
        self.beats: list[Beat] = []  # every beat generated so far (ground truth)
        self._synth = EcgSynthesizer(self.fs, p.ecg_amplitude_mv)
        self._noise = NoiseModel(self.fs, noise_rng, ecg_reference_power(scenario, self.fs)) if noise else None
        self._acc_rng, self._strap_rng = acc_rng, strap_rng
        self._contact: dict[int, bool] = {}
        self._falls = [i.at for i in scenario.incidents if i.type == "fall"]

    def beats_until(self, t: float) -> list[Beat]:
        """Generate beats up to at least ``t`` s; returns all beats so far."""
        while not self.beats or self.beats[-1].time < t:
            self.beats.append(self._beats.next_beat())
        return self.beats

    def beats_between(self, t0: float, t1: float) -> list[Beat]:
        """Beats with R peaks in (t0, t1]."""
        beats = self.beats_until(t1)
        lo = _first_after(beats, t0)
        return [b for b in beats[lo:] if b.time <= t1]

    def contact(self, second: int) -> bool:
        """Skin contact during simulated second ``second``: lead-off or loose-strap dropouts."""
        if second not in self._contact:
            ok = self.scenario.contact_at(second)
            if ok and self.scenario.strap_at(second) == "loose":
                ok = bool(self._strap_rng.random() >= LOOSE_DROPOUT_P)
            self._contact = {second: ok} if len(self._contact) > 4 else {**self._contact, second: ok}
        return self._contact[second]

    def ecg(self, t0: float, n: int) -> NDArray[np.float64]:
        """``n`` ECG samples (mV) from ``t0`` s, continuing the previous call (1/fs apart)."""
        t = t0 + np.arange(n) / self.fs
        beats = self.beats_until(float(t[-1]) + LOOKAHEAD_S)
        lo = _first_after(beats, float(t[0]) - LOOKAHEAD_S)
        near = beats[lo:]
        r = np.array([b.time for b in near])
        cyc = np.array([b.cycle for b in near])
        kinds = np.array([_KIND[NO_P if b.rhythm in ("af", "svt") and b.label == "N" else b.label] for b in near])
        seconds = np.floor(t).astype(int)
        af = np.array([self.scenario.rhythm_at(float(s)) == "af" for s in seconds])
        x = self._synth.render(t, r, cyc, kinds, self.resp.band(t), af)
        if self._noise is not None:
            x = x + self._noise.take(n, self._em_snr(int(seconds[0])))
        contact = np.array([self.contact(int(s)) for s in seconds])
        return np.where(contact, x, 0.0)

    def _em_snr(self, second: int) -> float | None:
        snr = self.scenario.noise_snr_at(second)
        if self.scenario.strap_at(second) == "loose":
            snr = LOOSE_SNR_DB if snr is None else min(snr, LOOSE_SNR_DB)
        return snr

    def accel(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Chest acceleration (g), shape (len(t), 3), at times ``t`` within one second."""
        t = np.asarray(t, dtype=float)
        a = accel_samples(self.scenario.activity_at(float(t[0])), t, self._acc_rng, self.resp.band(t))
        for t_fall in self._falls:
            if t_fall - 1 <= t[-1] and t[0] <= t_fall + 1:
                a = a + accel_fall(t, t_fall)
        return a

    def resp_rate_at(self, t: float) -> float:
        """Mean breathing rate (breaths/min) over the 10 s ending at ``t``."""
        return self.resp.mean_rate(max(t - 10.0, 0.0), max(t, 1e-3))


def _first_after(beats: list[Beat], t: float) -> int:
    lo, hi = 0, len(beats)
    while lo < hi:
        mid = (lo + hi) // 2
        if beats[mid].time <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo
