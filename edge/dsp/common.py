"""Shared signal maths of the DSP layer: chunk-exact causal filters and input checks.

Every filter here keeps its state between calls, so that feeding a signal in
chunks of any size gives bit-for-bit the output of one call over the whole
signal (the recursion is evaluated sample by sample in the same order either
way). That is what makes the streaming detectors equal to the batch ones.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, lfilter, lfilter_zi, sosfilt, sosfilt_zi

FS_MIN_HZ = 50.0  # below this an ECG's QRS complex is not resolved
FS_MAX_HZ = 4000.0


def fs_valid(fs: float) -> bool:
    """True for a finite sampling rate (Hz) that the detectors accept: [50, 4000] Hz."""
    try:
        value = float(fs)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(value)) and FS_MIN_HZ <= value <= FS_MAX_HZ


def as_samples(signal: ArrayLike) -> NDArray[np.float64]:
    """A 1-D float array of ``signal``; anything that is not numeric becomes empty."""
    try:
        x = np.asarray(signal, dtype=float).ravel()
    except (TypeError, ValueError):
        return np.zeros(0)
    return x


class SosStream:
    """A causal IIR filter (second-order sections) that keeps its state across chunks.

    Args:
        sos: second-order sections, as from ``scipy.signal.butter(..., output="sos")``.

    The state starts settled on the first sample, which avoids a start-up step.
    """

    def __init__(self, sos: NDArray[np.float64]) -> None:
        self.sos = sos
        self._zi: NDArray[np.float64] | None = None

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter the next chunk (may be empty)."""
        if x.size == 0:
            return np.zeros(0)
        if self._zi is None:
            self._zi = sosfilt_zi(self.sos) * x[0]
        y, self._zi = sosfilt(self.sos, x, zi=self._zi)
        return np.asarray(y, dtype=float)


class FirStream:
    """A causal FIR filter with state across chunks (delay (len(taps) - 1) / 2 for symmetric taps)."""

    def __init__(self, taps: NDArray[np.float64]) -> None:
        self.taps = np.asarray(taps, dtype=float)
        self._zi: NDArray[np.float64] | None = None

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter the next chunk (may be empty)."""
        if x.size == 0:
            return np.zeros(0)
        if self.taps.size == 1:
            return self.taps[0] * x
        if self._zi is None:
            self._zi = lfilter_zi(self.taps, [1.0]) * x[0]
        y, self._zi = lfilter(self.taps, [1.0], x, zi=self._zi)
        return np.asarray(y, dtype=float)


def bandpass_sos(low_hz: float, high_hz: float, fs: float, order: int = 2) -> NDArray[np.float64]:
    """Butterworth band-pass sections; the upper edge is kept below 0.45 ``fs``.

    Args:
        low_hz, high_hz: pass band in Hz.
        fs: sampling rate in Hz.
        order: order per edge.
    """
    high = min(high_hz, 0.45 * fs)
    return np.asarray(butter(order, [low_hz, high], btype="bandpass", fs=fs, output="sos"), dtype=float)


def rate_from_peaks(peaks: ArrayLike, fs: float) -> NDArray[np.float64]:
    """Intervals between successive peaks in seconds (empty for fewer than two peaks)."""
    p = np.asarray(peaks, dtype=float).ravel()
    return np.diff(p) / float(fs) if p.size >= 2 else np.zeros(0)
