"""ECG cleaning and signal quality, per segment, per window and per beat.

Quality is judged on consecutive segments of ``SEGMENT_S`` seconds, so that a
short lead-off or noise burst marks only its own seconds unusable:

* ``nonfinite``: more than 10 % NaN/inf samples (dropouts) -> 0;
* ``flat``: standard deviation below 0.01 mV (lead off, disconnected) -> 0;
* ``saturated``: more than 5 % of samples stuck at the segment's extremes, or a
  deviation beyond 10 mV from the median (amplifier rail, lead-off swing) -> 0.1;
* ``noise``: the QRS-band signal is not spiky: its largest deviation is at most
  5 robust standard deviations (1.4826 MAD), as for Gaussian-like noise without
  heartbeats; QRS complexes stand out far more -> 0.2;
* otherwise ``ok`` -> 1 (linearly reduced while that crest factor approaches the limit).

References: Li, Mark & Clifford, "Robust heart rate estimation from multiple
asynchronous noisy sources using signal quality indices and a Kalman filter",
Physiol. Meas. 29(1), 2008 (spikiness of the QRS band, after their kurtosis kSQI); Clifford et al., Physiol. Meas.
33(9), 2012 (flat-line and saturation checks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import sosfiltfilt

from edge.dsp.common import as_samples, bandpass_sos, fs_valid

SEGMENT_S = 2.0
CLEAN_BAND_HZ = (0.5, 40.0)
QRS_BAND_HZ = (5.0, 20.0)
FLAT_MV = 0.01
SATURATED_FRACTION = 0.05
LEAD_OFF_MV = 10.0
NONFINITE_FRACTION = 0.1
CREST_NOISE = 5.0  # largest QRS-band deviation over its robust SD, at or below: noise
CREST_CLEAN = 8.0  # at or above: clean
EDGE_S = 0.05
USABLE = 0.5  # segment quality below this: no beats, no rhythm, no alarms from it


@dataclass(frozen=True)
class SegmentQuality:
    """Quality of one segment: score 0 (unusable) .. 1 (clean) and the reason."""

    start: int  # first sample
    stop: int  # one past the last sample
    score: float
    reason: str  # "ok", "noise", "saturated", "flat", "nonfinite", "short"

    @property
    def usable(self) -> bool:
        return self.score >= USABLE


def ecg_clean(signal_mv: ArrayLike, fs: float) -> NDArray[np.float64]:
    """Band-pass 0.5-40 Hz (2nd-order Butterworth, zero phase) for display and strips.

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz (50-4000); otherwise the input is returned unchanged.
    """
    x = as_samples(signal_mv)
    if not fs_valid(fs) or x.size < 16 or not np.all(np.isfinite(x)):
        return x
    return np.asarray(sosfiltfilt(bandpass_sos(*CLEAN_BAND_HZ, fs), x), dtype=float)


def ecg_segments(signal_mv: ArrayLike, fs: float) -> list[SegmentQuality]:
    """Quality of each ``SEGMENT_S`` segment of an ECG (the last one may be shorter).

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz; an invalid rate yields one unusable segment.
    """
    x = as_samples(signal_mv)
    if x.size == 0:
        return []
    if not fs_valid(fs):
        return [SegmentQuality(0, x.size, 0.0, "short")]
    step = max(1, int(round(SEGMENT_S * fs)))
    return [_segment(x[a : a + step], a, fs) for a in range(0, x.size, step)]


def _segment(x: NDArray[np.float64], start: int, fs: float) -> SegmentQuality:
    stop = start + x.size
    finite = np.isfinite(x)
    if np.mean(~finite) > NONFINITE_FRACTION:
        return SegmentQuality(start, stop, 0.0, "nonfinite")
    x = x[finite]
    if x.size < max(16, int(0.5 * fs)):
        return SegmentQuality(start, stop, 0.0, "short")
    if float(np.std(x)) < FLAT_MV:
        return SegmentQuality(start, stop, 0.0, "flat")
    top, bottom = float(x.max()), float(x.min())
    stuck = np.mean((x >= top - 1e-9) | (x <= bottom + 1e-9))
    if stuck > SATURATED_FRACTION or float(np.max(np.abs(x - np.median(x)))) > LEAD_OFF_MV:
        return SegmentQuality(start, stop, 0.1, "saturated")
    edge = int(EDGE_S * fs)  # the zero-phase filter's start-up transients are not signal
    band = sosfiltfilt(bandpass_sos(*QRS_BAND_HZ, fs), x)[edge : x.size - edge]
    centred = np.abs(band - np.median(band))
    crest = float(centred.max()) / max(1.4826 * float(np.median(centred)), 1e-12)
    if crest <= CREST_NOISE:
        return SegmentQuality(start, stop, 0.2, "noise")
    score = USABLE + (1 - USABLE) * min(1.0, (crest - CREST_NOISE) / (CREST_CLEAN - CREST_NOISE))
    return SegmentQuality(start, stop, round(score, 3), "ok")


def ecg_quality(signal_mv: ArrayLike, fs: float) -> float:
    """Window quality in [0, 1]: the duration-weighted mean of its segments' scores.

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz.

    Returns:
        0 for empty input, a flat line, dropouts or an invalid rate; 0.1 for a
        saturated signal; 0.2 for noise without heartbeats; up to 1 for clean ECG.
    """
    segments = ecg_segments(signal_mv, fs)
    if not segments:
        return 0.0
    sizes = np.array([s.stop - s.start for s in segments], dtype=float)
    return round(float(np.dot(sizes, [s.score for s in segments]) / sizes.sum()), 3)


def ecg_beat_quality(peaks: ArrayLike, segments: list[SegmentQuality]) -> NDArray[np.float64]:
    """Quality of each beat: the score of the segment that holds it (0 outside every segment)."""
    p = np.asarray(peaks, dtype=np.int64).ravel()
    if not segments or p.size == 0:
        return np.zeros(p.size)
    starts = np.array([s.start for s in segments])
    scores = np.array([s.score for s in segments] + [0.0])
    k = np.searchsorted(starts, p, side="right") - 1
    inside = (k >= 0) & (p < segments[-1].stop)
    return np.where(inside, scores[np.clip(k, 0, len(segments) - 1)], 0.0)
