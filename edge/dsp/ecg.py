"""A first, simple ECG R-peak detector and signal-quality index.

The detector follows the outline of Pan & Tompkins (IEEE Trans. Biomed. Eng.
32(3), 1985): band-pass 5-15 Hz, derivative, squaring, 150 ms moving-window
integration, then an adaptive threshold relative to the record's own envelope
with a 250 ms refractory period. Later work replaces it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, find_peaks, sosfiltfilt

BAND_HZ = (5.0, 15.0)
INTEGRATION_S = 0.150
REFRACTORY_S = 0.250
THRESHOLD_FRACTION = 0.3  # of the envelope's 99th percentile
FLAT_MV = 0.01  # standard deviation below which the lead is flat (lead-off or disconnected)
SATURATED_FRACTION = 0.05  # share of samples stuck at the extremes
LEAD_OFF_MV = 5.0  # a chest-strap ECG beyond +-5 mV is not a heart


def ecg_clean(signal_mv: ArrayLike, fs: float) -> NDArray[np.float64]:
    """Band-pass (5-15 Hz, 2nd-order Butterworth, zero phase) an ECG in mV.

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz (> 30).
    """
    x = np.asarray(signal_mv, dtype=float).ravel()
    high = min(BAND_HZ[1], 0.45 * fs)
    sos = butter(2, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    if x.size <= 3 * (2 * sos.shape[0] + 1):
        return x - x.mean() if x.size else x
    return np.asarray(sosfiltfilt(sos, x), dtype=float)


def ecg_peaks(signal_mv: ArrayLike, fs: float) -> NDArray[np.int64]:
    """Indices of R peaks in an ECG.

    Args:
        signal_mv: samples in millivolts (single lead).
        fs: sampling rate in Hz.

    Returns:
        Sample indices of the R peaks, increasing (empty for a flat or short record).
    """
    x = np.asarray(signal_mv, dtype=float).ravel()
    if x.size < int(fs) or float(np.std(x)) < FLAT_MV:
        return np.zeros(0, dtype=np.int64)
    clean = ecg_clean(x, fs)
    width = max(1, int(round(INTEGRATION_S * fs)))
    energy = np.convolve(np.gradient(clean) ** 2, np.ones(width) / width, mode="same")
    height = THRESHOLD_FRACTION * float(np.percentile(energy, 99))
    candidates, _ = find_peaks(energy, height=height, distance=max(1, int(REFRACTORY_S * fs)))
    half = max(1, width // 2 + 1)
    refined = [_local_max(clean, c, half) for c in candidates]
    return np.unique(np.asarray(refined, dtype=np.int64))


def _local_max(clean: NDArray[np.float64], centre: int, half: int) -> int:
    lo, hi = max(0, centre - half), min(clean.size, centre + half + 1)
    return lo + int(np.argmax(np.abs(clean[lo:hi])))


def ecg_quality(signal_mv: ArrayLike, fs: float) -> float:
    """A crude signal-quality index in [0, 1].

    0 for a flat line (lead off), 0.1 for a saturated or out-of-range signal,
    0.3 when no plausible rhythm (25-250 bpm) is found, else 1.

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz.
    """
    x = np.asarray(signal_mv, dtype=float).ravel()
    if x.size == 0 or float(np.std(x)) < FLAT_MV:
        return 0.0
    at_extremes = np.mean((x >= x.max() - 1e-9) | (x <= x.min() + 1e-9))
    if at_extremes > SATURATED_FRACTION or float(np.max(np.abs(x - np.median(x)))) > LEAD_OFF_MV:
        return 0.1
    peaks = ecg_peaks(x, fs)
    if peaks.size < 2:
        return 0.3
    bpm = 60.0 * fs / float(np.median(np.diff(peaks)))
    return 1.0 if 25.0 <= bpm <= 250.0 else 0.3
