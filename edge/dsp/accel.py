"""Activity from a chest-worn 3-axis accelerometer: intensity (ENMO), class, steps, posture changes, fall candidate.

Device frame (as a chest strap worn upright): +y points up along the trunk,
+z out of the chest. Upright, gravity reads about (0, 1, 0) g; lying, the
y component is small.

* **ENMO** (Euclidean norm minus one, negatives set to 0, mean over the
  window, g; van Hees et al., PLoS One 8(4), 2013) and ``intensity`` (mean
  absolute deviation of |a| from 1 g, the wire's field).
* **Posture** per second from the gravity direction (1 s mean): the trunk's
  inclination from vertical; lying above 60 deg, upright below 40 deg, in
  between the posture is kept (hysteresis). A change between them counts.
* **Steps**: peaks of |a| band-passed 0.8-3.5 Hz (48-210 steps/min), at least
  ``STEP_MIN_G`` high and 0.25 s apart, counted only while the person moves.
* **Class**: ``lying`` or ``rest`` below ``REST_MAX_G`` of intensity (by
  posture), ``run`` at a cadence of 2.4 Hz or more with intensity above
  ``WALK_MAX_G``, else ``walk``.
* **Fall candidate**: an impact (|a| >= 2.5 g) preceded within 1 s by a
  near free fall (|a| <= 0.6 g) and followed, 2-5 s later, by a lying posture
  with little movement. Only a candidate: the patient app asks the patient.

References: Bourke et al., Gait Posture 26(2), 2007 (impact and posture
thresholds for trunk-worn fall detection); Zijlstra & Hof, Gait Posture 18(2),
2003 (steps from trunk acceleration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, find_peaks, sosfiltfilt

UPRIGHT_AXIS = 1  # y
LYING_DEG = 60.0
UPRIGHT_DEG = 40.0
REST_MAX_G = 0.05
WALK_MAX_G = 0.35
RUN_CADENCE_HZ = 2.4
STEP_BAND_HZ = (0.8, 3.5)
STEP_MIN_G = 0.05
STEP_MIN_S = 0.25
IMPACT_G = 2.5
FREE_FALL_G = 0.6
FREE_FALL_WINDOW_S = 1.0
STILL_AFTER_S = (2.0, 5.0)
ABSURD_G = 16.0  # beyond any wearable's range: a decoding error


@dataclass(frozen=True)
class Activity:
    """Activity of one window (see the module doc); counts are 0 and class ``unknown`` without samples."""

    activity: str  # "lying", "rest", "walk", "run", "unknown"
    intensity: float | None  # g
    enmo: float | None  # g
    steps: int = 0
    cadence_hz: float | None = None  # steps per second while walking or running
    posture: str = "unknown"  # "upright", "lying", "unknown" at the end of the window
    posture_changes: int = 0
    fall: bool = False
    dropped: int = 0  # samples that were not finite or absurd (kept out, counted)


def accel_features(xyz_g: ArrayLike, fs: float, posture: str = "unknown") -> Activity:
    """Everything this module computes for one window of accelerometer samples.

    Args:
        xyz_g: shape (n, 3) or flat (3n), acceleration in g.
        fs: sampling rate in Hz (>= 5; below that, invalid, or under 1 s of samples, only intensity is given).
        posture: posture at the end of the previous window (for counting a change at the border).

    Returns:
        The window's :class:`Activity`. Never raises: non-finite or absurd
        samples are dropped and counted; a window no worn sensor could read
        (all samples identical, or no gravity: see :func:`_plausible`) is
        ``unknown`` with no intensity, so it never passes for rest or exercise.
    """
    a = _samples(xyz_g)
    good = np.all(np.isfinite(a), axis=1) & np.all(np.abs(a) <= ABSURD_G, axis=1)
    dropped = int(a.shape[0] - good.sum())
    a = a[good]
    magnitude = np.linalg.norm(a, axis=1)
    if a.shape[0] == 0 or not _plausible(a, magnitude):
        return Activity("unknown", None, None, posture=posture, dropped=dropped)
    intensity = float(np.mean(np.abs(magnitude - 1.0)))
    enmo = float(np.mean(np.maximum(magnitude - 1.0, 0.0)))
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        rate = float("nan")
    if not np.isfinite(rate) or rate < 5.0 or a.shape[0] < rate:
        return Activity(_class(intensity, posture, None), intensity, enmo, posture=posture, dropped=dropped)
    postures = accel_postures(a, rate, posture)
    changes = sum(1 for p, q in zip([posture, *postures[:-1]], postures) if p != q and "unknown" not in (p, q))
    steps, cadence = accel_steps(magnitude, rate) if intensity >= REST_MAX_G else (0, None)
    end = postures[-1] if postures else posture
    return Activity(
        _class(intensity, end, cadence),
        intensity,
        enmo,
        steps=steps,
        cadence_hz=cadence,
        posture=end,
        posture_changes=changes,
        fall=accel_fall(a, rate),
        dropped=dropped,
    )


def accel_activity(xyz_g: ArrayLike, fs: float) -> tuple[str, float | None]:
    """Activity class and intensity (g) of a window; ("unknown", None) without samples."""
    act = accel_features(xyz_g, fs)
    return act.activity, act.intensity


def accel_postures(a: NDArray[np.float64], fs: float, start: str = "unknown") -> list[str]:
    """Posture of each whole second (``upright`` / ``lying``; in between the previous one is kept)."""
    per = int(round(fs))
    out, current = [], start
    for k in range(a.shape[0] // per):
        g = a[k * per : (k + 1) * per].mean(axis=0)
        norm = float(np.linalg.norm(g))
        if norm < 0.5:  # no gravity reference (free fall, impact): keep the posture
            out.append(current)
            continue
        angle = float(np.degrees(np.arccos(min(1.0, abs(float(g[UPRIGHT_AXIS])) / norm))))
        if angle >= LYING_DEG:
            current = "lying"
        elif angle <= UPRIGHT_DEG:
            current = "upright"
        out.append(current)
    return out


def accel_steps(magnitude: NDArray[np.float64], fs: float) -> tuple[int, float | None]:
    """Steps and cadence (Hz) from |a| (g): peaks of the 0.8-3.5 Hz band, >= 0.05 g, >= 0.25 s apart."""
    if magnitude.size < 3 * 4 * 2 + 1:  # sosfiltfilt needs a little signal
        return 0, None
    sos = butter(2, [STEP_BAND_HZ[0], min(STEP_BAND_HZ[1], 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    band = sosfiltfilt(sos, magnitude - magnitude.mean())
    peaks, _ = find_peaks(band, height=STEP_MIN_G, distance=max(1, int(STEP_MIN_S * fs)))
    if peaks.size < 2:
        return int(peaks.size), None
    return int(peaks.size), float(fs / np.median(np.diff(peaks)))


def accel_fall(a: NDArray[np.float64], fs: float) -> bool:
    """A fall candidate: impact after near free fall, then lying still (see the module doc)."""
    magnitude = np.linalg.norm(a, axis=1)
    impacts = np.flatnonzero(magnitude >= IMPACT_G)
    window = int(FREE_FALL_WINDOW_S * fs)
    lo, hi = (int(s * fs) for s in STILL_AFTER_S)
    for i in impacts:
        if not np.any(magnitude[max(0, i - window) : i] <= FREE_FALL_G):
            continue
        after = a[i + lo : i + hi]
        if after.shape[0] < hi - lo:
            continue  # not enough signal after the impact in this window
        still = float(np.mean(np.abs(np.linalg.norm(after, axis=1) - 1.0))) < 2 * REST_MAX_G
        if still and accel_postures(after, fs)[-1:] == ["lying"]:
            return True
    return False


def _plausible(a: NDArray[np.float64], magnitude: NDArray[np.float64]) -> bool:
    """False for what no worn sensor reads: every sample identical (a stuck or disconnected
    sensor: a body always moves a little, if only breathing), or a typical |a| far from gravity
    (a median outside 0.6-2.5 g: free fall and impacts last a fraction of a second)."""
    if a.shape[0] > 1 and not np.any(np.ptp(a, axis=0) > 0):
        return False
    return bool(FREE_FALL_G <= float(np.median(magnitude)) <= IMPACT_G)


def _class(intensity: float, posture: str, cadence: float | None) -> str:
    if intensity < REST_MAX_G:
        return "lying" if posture == "lying" else "rest"
    if intensity >= WALK_MAX_G or (cadence is not None and cadence >= RUN_CADENCE_HZ and intensity >= 0.5 * WALK_MAX_G):
        return "run"
    return "walk"


def _samples(xyz_g: ArrayLike) -> NDArray[np.float64]:
    try:
        a = np.asarray(xyz_g, dtype=float)
    except (TypeError, ValueError):
        return np.zeros((0, 3))
    if a.size % 3:
        return np.zeros((0, 3))
    return a.reshape(-1, 3)
