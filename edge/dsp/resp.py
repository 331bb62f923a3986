"""Respiration rate: from a respiration channel, else ECG-derived (R-amplitude and RSA), with a quality.

Two estimates of one breathing signal are compared (after Charlton et al.,
"Breathing rate estimation from the electrocardiogram and
photoplethysmogram: a review", IEEE Rev. Biomed. Eng. 11, 2018):

* **counting**: breaths are the peaks of the signal band-passed to
  ``BAND_HZ`` (6-42 breaths/min) that stand out by a share of the typical
  peak-to-trough swing (after Schaefer & Kratky's "count-orig", Ann. Biomed.
  Eng. 36(11), 2008), each timed between grid points by a parabola through
  its three samples; the rate is 60 / median breath interval;
* **spectral**: the frequency of the largest peak of the band's power
  spectrum (Welch).

The quality (0..1) is high when the two agree and the breath intervals are
regular; the rate is given only when the quality reaches ``USABLE`` (an
unusable estimate is None, never a guess). ECG-derived: the R-peak amplitude
series (chest impedance changes with breathing) and the RR series
(respiratory sinus arrhythmia) are each resampled to 4 Hz and estimated; the
estimate of the better quality is taken, and its quality raised when the
other agrees (within 2 breaths/min). Before that, each series keeps only
what carries breathing:

* beats outside usable signal are left out of both; so are intervals off the
  median of their 9 neighbours by more than ``RR_OUTLIER`` (an ectopic or a
  missed beat) from the RR series, premature beats (other shapes) and R
  amplitudes far off the median from the amplitude series: one ectopic beat
  or one noise burst would otherwise be the largest swing of the series;
* where more than ``MAX_IRREGULAR`` of the intervals are off (atrial
  fibrillation, frequent ectopy) the RR series carries no RSA and only the
  amplitude is used;
* a series is unusable when less than ``MIN_COVERAGE`` of the span is
  covered, each interval between kept samples covering at most ``MAX_GAP_S``
  (so a long gap counts all but its first ``MAX_GAP_S`` as uncovered): across
  such a gap the interpolation would invent breaths;
* beats sample breathing, so a rate above ``BREATHS_PER_BEAT`` of the heart
  rate cannot be told from an alias (Nyquist: half the heart rate) and is
  unusable. A true rate above ~0.65 of the heart rate aliases below that
  limit and is read low: the ECG alone cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import median_filter
from scipy.signal import butter, find_peaks, sosfiltfilt, welch

from edge.dsp.common import as_samples, fs_valid

BAND_HZ = (0.1, 0.7)
SERIES_FS = 4.0  # Hz, beat-to-beat series resampled to this rate
MIN_SECONDS = 20.0  # shorter: no estimate
PEAK_SHARE = 0.3  # a breath's swing is at least this share of the median swing
AGREE_BPM = 2.0
USABLE = 0.5
RR_OUTLIER = 0.2  # an interval this far (share) from the median of its 9 neighbours: ectopic or missed beat
MAX_IRREGULAR = 0.1  # more such intervals than this share: AF or frequent ectopy, no usable RSA
AMPLITUDE_OUTLIER = 5.0  # robust SDs (1.4826 MAD) from the median: not a breathing modulation
MAX_GAP_S = 2.0  # kept samples further apart than this leave a gap (half a breath at 15/min)
MIN_COVERAGE = 0.8  # share of the analysed span a series must cover
BREATHS_PER_BEAT = 0.35  # a beat-sampled series resolves breathing up to this share of the heart rate
WELCH_PAD = 4  # zero-padding of the Welch segments: a finer frequency grid for the peak


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


def resp_rate_from_ecg(
    peaks: ArrayLike, signal_mv: ArrayLike, fs: float, usable: ArrayLike | None = None
) -> RespRate:
    """ECG-derived respiration rate from R peaks (sample indices) and the ECG (mV) they were found in.

    Args:
        peaks: R-peak sample indices (e.g. from :func:`edge.dsp.ecg_peaks`), every beat detected
            in the stretch analysed (consecutive beats: their differences are the RR intervals).
        signal_mv: the ECG, in mV.
        fs: the ECG's sampling rate in Hz.
        usable: per beat, whether it and the interval ending at it lie in usable signal
            (default: all); the others are left out of both series.

    Returns:
        The rate (breaths/min) with its quality, or rate None when the estimate is unusable
        (quality below ``USABLE``, too little usable signal, or a rate the beats cannot resolve).
        Never raises.
    """
    p = np.asarray(peaks, dtype=np.int64).ravel()
    x = as_samples(signal_mv)
    ok = np.ones(p.size, dtype=bool) if usable is None else np.asarray(usable, dtype=bool).ravel()
    if not fs_valid(fs) or p.size < 8 or ok.size != p.size or x.size == 0 or np.any((p < 0) | (p >= x.size)):
        return NONE
    t = p / float(fs)
    if t[-1] - t[0] < MIN_SECONDS:
        return NONE
    rr = np.diff(t)
    local = median_filter(rr, size=9, mode="nearest")  # the sinus interval around each one
    span = (float(t[0]), float(t[-1]))
    premature = np.concatenate(([False], rr < (1 - RR_OUTLIER) * local))  # ectopic beats have other shapes
    amplitude = _r_amplitudes(x, p, fs)
    keep = ok & ~premature
    found = _combined(
        _from_series(t, amplitude, keep & _amplitude_inliers(amplitude, keep), span, "ecg-amplitude"),
        _rsa(t, rr, local, ok, span),
    )
    return _resolvable(found, rr[ok[1:]])


def _rsa(
    t: NDArray[np.float64], rr: NDArray[np.float64], local: NDArray[np.float64], ok: NDArray[np.bool_],
    span: tuple[float, float],
) -> RespRate:
    """The estimate from the RR series: none where the rhythm is not sinus (AF, frequent ectopy)."""
    sinus = np.abs(rr - local) <= RR_OUTLIER * local
    if np.mean(~sinus) > MAX_IRREGULAR:
        return RespRate(None, 0.0, "ecg-rsa")
    return _from_series(t[1:], rr, ok[1:] & sinus, span, "ecg-rsa")


def _combined(amplitude: RespRate, rsa: RespRate) -> RespRate:
    """The better of the two estimates, its quality raised by 0.25 when the other agrees."""
    best, other = (amplitude, rsa) if amplitude.quality >= rsa.quality else (rsa, amplitude)
    if best.rate is None:
        return best
    quality = best.quality
    if other.rate is not None and abs(other.rate - best.rate) <= AGREE_BPM:
        quality = min(1.0, quality + 0.25)
    return RespRate(best.rate, round(quality, 3), best.source)


def _resolvable(found: RespRate, rr: NDArray[np.float64]) -> RespRate:
    """``found``, unless its rate is too fast for the beats (intervals ``rr``, s) to have sampled it."""
    if found.rate is None or rr.size == 0 or found.rate <= BREATHS_PER_BEAT * 60.0 / float(np.median(rr)):
        return found
    return RespRate(None, round(min(found.quality, 0.5 * USABLE), 3), found.source)  # an alias cannot be ruled out


def _r_amplitudes(x: NDArray[np.float64], p: NDArray[np.int64], fs: float) -> NDArray[np.float64]:
    """Height of each R peak (mV) above the median of the ~80 ms before it (its PR-Q baseline)."""
    base = max(1, int(0.08 * fs))
    return x[p] - np.array([np.median(x[max(0, i - base) : i + 1]) for i in p])


def _amplitude_inliers(v: NDArray[np.float64], ok: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Amplitudes within ``AMPLITUDE_OUTLIER`` robust SDs of the median of the usable beats."""
    if not np.any(ok):
        return ok
    centre = float(np.median(v[ok]))
    spread = 1.4826 * float(np.median(np.abs(v[ok] - centre)))
    return np.asarray(np.abs(v - centre) <= AMPLITUDE_OUTLIER * spread) if spread > 0 else ok


def _coverage(t: NDArray[np.float64], span: tuple[float, float]) -> float:
    """Share of ``span`` (s) lying between kept samples no more than ``MAX_GAP_S`` apart."""
    length = span[1] - span[0]
    if t.size < 2 or length <= 0:
        return 0.0
    return float(np.sum(np.minimum(np.diff(t), MAX_GAP_S))) / length


def _from_series(
    t: NDArray[np.float64], v: NDArray[np.float64], keep: NDArray[np.bool_], span: tuple[float, float], source: str
) -> RespRate:
    t, v = t[keep], v[keep]
    coverage = _coverage(t, span)
    if coverage < MIN_COVERAGE or t[-1] - t[0] < MIN_SECONDS or not np.all(np.isfinite(v)) or np.ptp(v) == 0:
        return RespRate(None, 0.0, source)
    grid = np.arange(t[0], t[-1], 1.0 / SERIES_FS)
    found = _estimate(np.interp(grid, t, v), SERIES_FS, source)
    quality = round(float(found.quality) * min(1.0, coverage), 3)
    return RespRate(found.rate if quality >= USABLE else None, quality, source)


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
    intervals = np.diff(_refined(band, keep)) / fs
    cv = float(np.std(intervals) / np.mean(intervals))
    return 60.0 / float(np.median(intervals)), max(0.0, 1.0 - cv)


def _refined(band: NDArray[np.float64], peaks: NDArray[np.intp]) -> NDArray[np.float64]:
    """Peak positions (fractional samples) at the vertex of the parabola through each peak's 3 samples.

    Without it breath intervals are whole grid steps: at 4 Hz a rate near 21/min
    reads 20.0 or 21.8, never in between.
    """
    inner = np.clip(peaks, 1, band.size - 2)
    left, mid, right = band[inner - 1], band[inner], band[inner + 1]
    curve = left - 2 * mid + right
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
    return inner + np.clip(shift, -0.5, 0.5)


def _spectral(band: NDArray[np.float64], fs: float) -> float | None:
    nper = min(band.size, int(32 * fs))
    f, p = welch(band, fs=fs, nperseg=nper, noverlap=nper // 2, nfft=WELCH_PAD * nper, detrend=False)
    inside = (f >= BAND_HZ[0]) & (f <= BAND_HZ[1])
    if not np.any(inside) or float(p[inside].max()) <= 0:
        return None
    return 60.0 * float(f[inside][np.argmax(p[inside])])
