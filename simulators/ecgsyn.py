"""A dynamical ECG after ECGSYN (McSharry, Clifford, Tarassenko, Smith, IEEE TBME 50:289, 2003).

ECGSYN moves a point around a unit limit cycle in the (x, y) plane at the
angular speed 2 pi / RR and drives the ECG ``z`` by Gaussian "events" P, Q, R,
S and T at fixed angles::

    dz/dt = -sum_i a_i dtheta_i omega exp(-dtheta_i^2 / (2 b_i^2)) - (z - z0(t))

Two faithful rearrangements make it fast and let each beat have its own shape:

* The limit cycle attracts to radius 1, where theta advances at omega; so the
  angle is integrated in closed form, per beat: theta_k(t) = 2 pi (t - R_k) /
  C_k, with R at theta = 0 exactly at the beat's true time ``R_k`` and ``C_k``
  its cycle length. Beats are superposed, so an ectopic beat may land on the
  previous T wave, and each beat carries its own morphology (sinus, PAC, PVC/VT,
  no P wave in AF and SVT).
* With heights h_i = a_i b_i^2 the driving term is exactly dG/dt for
  G = sum h_i exp(-dtheta_i^2 / (2 b_i^2)), so the ODE's exact solution is
  z = G + LP(z0 - G), with LP the unit-gain first-order low-pass of time
  constant 1 s (ECGSYN's decay term), run as a recursive filter whose state
  carries across chunks.

Wave angles scale with the heart rate as in ECGSYN (the P and T angles by
(HR/60)^(1/4), Q and S by sqrt(HR/60)), and so do the QRS widths (b_i by
sqrt(HR/60)). One deliberate change: P and T keep their duration in seconds
(width in angle grows with HR/60), because ECGSYN's scaling sharpens them at
high rates until a T wave at 145 bpm carries QRS-band energy, which real T
waves do not. The baseline
z0 is the respiration band signal (ECGSYN's 0.15 mV breathing baseline), and the
amplitude is modulated by breathing (electrical axis shifts with the chest).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

# angle (rad at 60 bpm), height (x R-wave height), width (rad at 60 bpm); order P, Q, R, S, T
MORPHOLOGY: dict[str, tuple[tuple[float, float, float], ...]] = {
    "N": ((-math.pi / 3, 0.15, 0.25), (-math.pi / 12, -0.12, 0.1), (0.0, 1.0, 0.1),
          (math.pi / 12, -0.25, 0.1), (math.pi / 2, 0.3, 0.4)),
    "A": ((-math.pi / 2.6, -0.10, 0.2), (-math.pi / 12, -0.12, 0.1), (0.0, 1.0, 0.1),
          (math.pi / 12, -0.25, 0.1), (math.pi / 2, 0.3, 0.4)),
    "V": ((-math.pi / 3, 0.0, 0.25), (-math.pi / 10, -0.05, 0.2), (0.0, 1.3, 0.22),
          (math.pi / 7, -0.55, 0.25), (math.pi / 2.2, -0.4, 0.5)),
}
NO_P = "N0"  # AF and SVT: a normal QRS-T with no P wave
MORPHOLOGY[NO_P] = ((-math.pi / 3, 0.0, 0.25),) + MORPHOLOGY["N"][1:]
KINDS = tuple(MORPHOLOGY)
# how each wave's angle scales with the heart-rate factor: P, T by sqrt(f); Q, S by f; R fixed
ANGLE_POWER = np.array([0.5, 1.0, 0.0, 1.0, 0.5])
# and each width: Q, R, S by f as in ECGSYN; P and T by f^2, so they keep their duration in seconds
WIDTH_POWER = np.array([2.0, 1.0, 1.0, 1.0, 2.0])
BASELINE_TAU_S = 1.0
RESP_BASELINE_MV = 0.15
RESP_AM = 0.08  # relative amplitude modulation by breathing
F_WAVE_HZ = 6.0
F_WAVE_MV = 0.05

_TABLE = np.array([MORPHOLOGY[k] for k in KINDS])  # (kind, wave, [angle, height, width])


def ecg_beat_params(kinds: NDArray[np.int_], cycles: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-beat wave parameters, shape (beats, 5, 3): angle (rad), height (x R), width (rad).

    Args:
        kinds: index into :data:`KINDS` per beat.
        cycles: the beat's cycle length, s (0.2..3).
    """
    p = _TABLE[np.asarray(kinds)].copy()
    f = np.sqrt(1.0 / np.clip(np.asarray(cycles, dtype=float), 0.2, 3.0))[:, None]
    p[:, :, 0] *= f**ANGLE_POWER
    p[:, :, 2] *= f**WIDTH_POWER
    return p


def ecg_waves(
    t: NDArray[np.float64], r_times: NDArray[np.float64], cycles: NDArray[np.float64], params: NDArray[np.float64]
) -> NDArray[np.float64]:
    """G(t): the superposed Gaussian waves of the beats (x R height) at sample times ``t`` (s).

    Each sample sees the two beats before and the two after it, enough for RR
    down to a quarter of the cycle length.
    """
    t = np.asarray(t, dtype=float)
    g = np.zeros_like(t)
    if r_times.size == 0:
        return g
    idx = np.searchsorted(r_times, t)
    for off in (-2, -1, 0, 1):
        k = idx + off
        ok = (k >= 0) & (k < r_times.size)
        kk = np.where(ok, k, 0)
        theta = 2 * math.pi * (t - r_times[kk]) / cycles[kk]
        pk = params[kk]
        d = theta[:, None] - pk[:, :, 0]
        g += np.where(ok, (pk[:, :, 1] * np.exp(-0.5 * (d / pk[:, :, 2]) ** 2)).sum(axis=1), 0.0)
    return g


def ecg_f_waves(t: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fibrillatory waves of AF (x R height): ~6 Hz, wandering in frequency, fixed in time."""
    t = np.asarray(t, dtype=float)
    return F_WAVE_MV * np.sin(2 * math.pi * F_WAVE_HZ * t + 3.0 * np.sin(2 * math.pi * 0.11 * t))


class EcgSynthesizer:
    """Streams ECGSYN output chunk by chunk, keeping the baseline filter's state.

    Args:
        fs: sampling rate, Hz (any; 130 for a Polar H10, 250-1000 for tests).
        amplitude_mv: R-wave height, mV.
    """

    def __init__(self, fs: float, amplitude_mv: float = 1.2) -> None:
        self.fs, self.amplitude_mv = float(fs), float(amplitude_mv)
        a = math.exp(-1.0 / (self.fs * BASELINE_TAU_S))
        self._b, self._a = np.array([1 - a]), np.array([1.0, -a])
        self._zi: NDArray[np.float64] | None = None

    def render(
        self,
        t: NDArray[np.float64],
        r_times: NDArray[np.float64],
        cycles: NDArray[np.float64],
        kinds: NDArray[np.int_],
        resp: NDArray[np.float64] | None = None,
        af: NDArray[np.bool_] | None = None,
    ) -> NDArray[np.float64]:
        """ECG in mV at consecutive sample times ``t`` (1/fs apart, continuing the previous chunk).

        Args:
            t: sample times, s.
            r_times, cycles, kinds: the beats near the chunk (R time s, cycle s, kind index).
            resp: respiration band signal at ``t`` (-1..1), or None for none.
            af: where atrial fibrillation is under way (adds f-waves).
        """
        g = ecg_waves(t, r_times, cycles, ecg_beat_params(kinds, cycles))
        if af is not None and af.any():
            g = g + np.where(af, ecg_f_waves(t), 0.0)
        z0 = RESP_BASELINE_MV / self.amplitude_mv * resp if resp is not None else np.zeros_like(g)
        u = z0 - g
        if self._zi is None:
            self._zi = np.array([-self._a[1] * u[0]]) if u.size else np.zeros(1)
        w, self._zi = lfilter(self._b, self._a, u, zi=self._zi)
        z = g + w
        if resp is not None:
            z = z * (1 + RESP_AM * resp)
        return np.asarray(self.amplitude_mv * z, dtype=float)
