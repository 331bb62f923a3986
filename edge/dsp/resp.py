"""Respiration rate: from a respiration channel, else ECG-derived (R-amplitude and RSA), with a quality.

Two estimates of one breathing signal are compared (after Charlton et al.,
"Breathing rate estimation from the electrocardiogram and
photoplethysmogram: a review", IEEE Rev. Biomed. Eng. 11, 2018):

* **counting**: breaths are the peaks of the signal band-passed to
  ``BAND_HZ`` (6-42 breaths/min) that stand out by a share of the typical
  peak-to-trough swing (after Schaefer & Kratky's "count-orig", Ann. Biomed.
  Eng. 36(11), 2008); the rate is 60 / median breath interval;
* **spectral**: the frequency of the largest peak of the band's power
  spectrum (Welch).

The quality (0..1) is high when the two agree and the breath intervals are
regular; the rate is given only when the quality reaches ``USABLE`` (an
unusable estimate is None, never a guess). ECG-derived: the R-peak amplitude
series (chest impedance changes with breathing) and the RR series
(respiratory sinus arrhythmia) are each resampled to 4 Hz and estimated; the
estimate of the better quality is taken, and its quality raised when the
other agrees (within 2 breaths/min).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import butter, find_peaks, sosfiltfilt, welch

from edge.dsp.common import as_samples, fs_valid

BAND_HZ = (0.1, 0.7)
SERIES_FS = 4.0  # Hz, beat-to-beat series resampled to this rate
MIN_SECONDS = 20.0  # shorter: no estimate
PEAK_SHARE = 0.3  # a breath's swing is at least this share of the median swing
AGREE_BPM = 2.0
USABLE = 0.5


@dataclass(frozen=True)
class RespRate:
    """A respiration rate (breaths/min, None when unusable), its quality 0..1 and its source."""

    rate: float | None
    quality: float
    source: str  # "channel", "ecg-amplitude", "ecg-rsa", "none"


NONE = RespRate(None, 0.0, "none")


def resp_rate(signal: ArrayLike, fs: float) -> RespRate:
    """Respiration rate from a respiration channel (any unit: impedance, strain, chest motion).

    Args:
        signal: samples of the respiration channel, at least 20 s.
        fs: sampling rate in Hz (>= 1).

    Returns:
        The rate with quality, or rate None and quality 0 for short, flat,
        non-finite or invalid input. Never raises.
    """
    x = as_samples(signal)
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        return NONE
    if not np.isfinite(rate) or rate < 1.0 or rate > 4000 or x.size < MIN_SECONDS * rate or not np.all(np.isfinite(x)):
        return NONE
    return _estimate(x, rate, "channel")


def resp_rate_from_ecg(peaks: ArrayLike, signal_mv: ArrayLike, fs: float) -> RespRate:
    """ECG-derived respiration rate from R peaks (sample indices) and the ECG (mV) they were found in.

    Args:
        peaks: R-peak sample indices (e.g. from :func:`edge.dsp.ecg_peaks`), usable beats only.
        signal_mv: the ECG, in mV.
        fs: the ECG's sampling rate in Hz.
    """
    p = np.asarray(peaks, dtype=np.int64).ravel()
    x = as_samples(signal_mv)
    if not fs_valid(fs) or p.size < 8 or x.size == 0 or np.any((p < 0) | (p >= x.size)):
        return NONE
    t = p / float(fs)
    if t[-1] - t[0] < MIN_SECONDS:
        return NONE
    base = max(1, int(0.08 * fs))
    amplitude = x[p] - np.array([np.median(x[max(0, i - base) : i + 1]) for i in p])
    rr = np.diff(t)
    candidates = [
        _from_series(t, amplitude, "ecg-amplitude"),
        _from_series(t[1:], rr, "ecg-rsa"),
    ]
    best = max(candidates, key=lambda r: r.quality)
    other = candidates[1] if best is candidates[0] else candidates[0]
    if best.rate is None:
        return NONE
    quality = best.quality
    if other.rate is not None and abs(other.rate - best.rate) <= AGREE_BPM:
        quality = min(1.0, quality + 0.25)
    return RespRate(best.rate, round(quality, 3), best.source)


def _from_series(t: NDArray[np.float64], v: NDArray[np.float64], source: str) -> RespRate:
    if not np.all(np.isfinite(v)) or np.ptp(v) == 0:
        return RespRate(None, 0.0, source)
    grid = np.arange(t[0], t[-1], 1.0 / SERIES_FS)
    series = np.interp(grid, t, v)
    return _estimate(series, SERIES_FS, source)


def _estimate(x: NDArray[np.float64], fs: float, source: str) -> RespRate:
    if np.ptp(x) <= 1e-12:
        return RespRate(None, 0.0, source)
    sos = butter(2, [BAND_HZ[0], min(BAND_HZ[1], 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    band = sosfiltfilt(sos, x - np.mean(x))
    counted, regularity = _count(band, fs)
    spectral = _spectral(band, fs)
    if counted is None or spectral is None:
        return RespRate(None, 0.0, source)
    agreement = max(0.0, 1.0 - abs(counted - spectral) / (2 * AGREE_BPM))
    quality = round(0.5 * agreement + 0.5 * regularity, 3)
    if quality < USABLE:
        return RespRate(None, quality, source)
    return RespRate(round(counted, 1), quality, source)


def _count(band: NDArray[np.float64], fs: float) -> tuple[float | None, float]:
    """Breaths/min from peak counting, and the regularity of breath intervals (1 - their CV, >= 0)."""
    peaks, _ = find_peaks(band, distance=max(1, int(fs * 60 / 45)))
    troughs, _ = find_peaks(-band, distance=max(1, int(fs * 60 / 45)))
    if peaks.size < 3 or troughs.size < 2:
        return None, 0.0
    before = np.searchsorted(troughs, peaks) - 1  # the trough just before each peak
    peaks, before = peaks[before >= 0], before[before >= 0]
    swing = band[peaks] - band[troughs[before]]
    keep = peaks[swing >= PEAK_SHARE * np.median(swing[swing > 0])] if np.any(swing > 0) else peaks[:0]
    if keep.size < 3:
        return None, 0.0
    intervals = np.diff(keep) / fs
    cv = float(np.std(intervals) / np.mean(intervals))
    return 60.0 / float(np.median(intervals)), max(0.0, 1.0 - cv)


def _spectral(band: NDArray[np.float64], fs: float) -> float | None:
    nper = min(band.size, int(32 * fs))
    f, p = welch(band, fs=fs, nperseg=nper, noverlap=nper // 2, detrend=False)
    inside = (f >= BAND_HZ[0]) & (f <= BAND_HZ[1])
    if not np.any(inside) or float(p[inside].max()) <= 0:
        return None
    return 60.0 * float(f[inside][np.argmax(p[inside])])
