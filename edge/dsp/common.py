"""Shared signal maths of the DSP layer: chunk-exact causal filters and input checks.

Every filter here keeps its state between calls, so that feeding a signal in
chunks of any size gives bit-for-bit the output of one call over the whole
signal (the recursion is evaluated sample by sample in the same order either
way). That is what makes the streaming detectors equal to the batch ones.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, lfilter, lfilter_zi

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


class IirStream:
    """A causal IIR filter (transfer function ``b/a``) that keeps its state across chunks.

    Args:
        ba: numerator and denominator, as from ``scipy.signal.butter(...)``.

    One ``lfilter`` call per chunk (the cheapest per-call path in scipy; for
    the low-order band-passes used here the direct form is accurate to better
    than 1e-8 of the signal up to 4 kHz). The state starts settled on the
    first sample, which avoids a start-up step.
    """

    def __init__(self, ba: tuple[NDArray[np.float64], NDArray[np.float64]]) -> None:
        self.b, self.a = (np.asarray(c, dtype=float) for c in ba)
        self._zi: NDArray[np.float64] | None = None

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter the next chunk (may be empty)."""
        if x.size == 0:
            return np.zeros(0)
        if self._zi is None:
            self._zi = lfilter_zi(self.b, self.a) * x[0]
        y, self._zi = lfilter(self.b, self.a, x, zi=self._zi)
        return np.asarray(y, dtype=float)


def bandpass_ba(low_hz: float, high_hz: float, fs: float, order: int = 2) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Butterworth band-pass as a transfer function; the upper edge is kept below 0.45 ``fs``."""
    high = min(high_hz, 0.45 * fs)
    b, a = butter(order, [low_hz, high], btype="bandpass", fs=fs)
    return np.asarray(b, dtype=float), np.asarray(a, dtype=float)


def bandpass_sos(low_hz: float, high_hz: float, fs: float, order: int = 2) -> NDArray[np.float64]:
    """Butterworth band-pass sections; the upper edge is kept below 0.45 ``fs``.

    Args:
        low_hz, high_hz: pass band in Hz.
        fs: sampling rate in Hz.
        order: order per edge.
    """
    return _bandpass_sos(float(low_hz), float(min(high_hz, 0.45 * fs)), float(fs), int(order)).copy()


@lru_cache(maxsize=64)
def _bandpass_sos(low_hz: float, high_hz: float, fs: float, order: int) -> NDArray[np.float64]:
    """Designed once per (band, rate, order): the design costs far more than filtering a segment
    (callers get a copy, so the cached design cannot be changed)."""
    return np.asarray(butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos"), dtype=float)


def rate_from_peaks(peaks: ArrayLike, fs: float) -> NDArray[np.float64]:
    """Intervals between successive peaks in seconds (empty for fewer than two peaks)."""
    p = np.asarray(peaks, dtype=float).ravel()
    return np.diff(p) / float(fs) if p.size >= 2 else np.zeros(0)


class MedianStream:
    """Causal running median over the last ``width`` samples (odd), exact across chunks.

    Removes impulses narrower than half the width (pacemaker spikes, single
    corrupt samples) and delays the signal by ``width // 2`` samples. Widths 3
    and 5 use min/max selection networks (fast); wider ones a partition.

    Args:
        width: odd number of samples (1 passes the signal through).
    """

    def __init__(self, width: int) -> None:
        self.width = max(1, int(width) | 1)
        self._tail: NDArray[np.float64] | None = None

    def __call__(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter the next chunk (may be empty); the first samples see the first value repeated."""
        k = self.width
        if k == 1 or x.size == 0:
            return x
        if self._tail is None:
            self._tail = np.full(k - 1, x[0])
        ext = np.concatenate((self._tail, x))
        self._tail = ext[-(k - 1) :]
        cols = [ext[j : j + x.size] for j in range(k)]
        if k == 3:
            return _median3(*cols)
        if k == 5:
            a, b, c, d, e = cols
            return _median3(e, np.maximum(np.minimum(a, b), np.minimum(c, d)), np.minimum(np.maximum(a, b), np.maximum(c, d)))
        from numpy.lib.stride_tricks import sliding_window_view

        return np.asarray(np.partition(sliding_window_view(ext, k), k // 2, axis=1)[:, k // 2], dtype=float)


def _median3(a: NDArray[np.float64], b: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
