"""QRS width per beat, and which beats are wide for the patient (ventricular origin suspected).

Measure (:func:`ecg_qrs_widths`): the *equivalent width* of each QRS complex,
the area of the rectified 1-30 Hz band-passed ECG within +-``HALF_S`` (80 ms)
of the R peak, around the median of +-160 ms as baseline, divided by the
complex's peak amplitude (s). It is the width of a rectangle of the QRS's
height and area, so a sharp narrow complex gives a small figure and a broad
slurred one (a PVC, VT, bundle-branch block) a large one; it is about a third
to a half of the QRS duration a cardiologist measures (on MIT-BIH 106 at
130 Hz: normal beats median 32 ms, ventricular ones 66 ms). Unlike onset and
offset detection it needs no fiducial thresholds, which are unstable at a
chest strap's 130 Hz.

Wide (:func:`ecg_wide_beats`): a beat whose width is at least ``WIDE_RATIO``
(1.2) times the patient's own narrow width, the ``REFERENCE_PERCENTILE`` (30th)
percentile of the widths in the analysed stretch (robust while at least that
share of beats is supraventricular). Absolute widths of a chest lead vary too
much between patients, leads and rates for one threshold (simulated sinus
complexes measure 47 ms, MIT-BIH 106's normal ones 32 ms, its PVCs from 49 ms).
Consequence, documented in docs/dsp.md: a patient whose every beat is wide
(bundle-branch block, or VT throughout the analysed stretch) has no narrow
reference, so no beat is wide for them.

Pure numpy/scipy; the filter is zero-phase over the given stretch, so the
caller (the summariser) measures over the same analysis context it detects
beats in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.signal import sosfiltfilt

from edge.dsp.common import as_samples, bandpass_sos, fs_valid

HALF_S = 0.080  # s each side of the R peak
BASELINE_S = 0.160  # s each side: the median here is the complex's baseline
BAND_HZ = (1.0, 30.0)
WIDE_RATIO = 1.2
REFERENCE_PERCENTILE = 30.0
MIN_BEATS = 8  # fewer measured beats give no reference: nothing is called wide
_PAD_S = 1.0  # filtfilt needs some signal beyond the last complex


def ecg_qrs_widths(signal_mv: ArrayLike, peaks: ArrayLike, fs: float) -> NDArray[np.float64]:
    """Equivalent QRS width (s) of each beat; NaN where it cannot be measured.

    Args:
        signal_mv: one ECG lead, mV.
        peaks: R-peak sample indices into ``signal_mv`` (e.g. from ``ecg_peaks``).
        fs: sampling rate, Hz (100-1000).

    Returns:
        One width per peak, s (typically 0.02-0.10); NaN for a peak too near
        either end, outside the signal, on a flat line, or on invalid input.
    """
    p = np.asarray(peaks, dtype=np.int64).ravel()
    out = np.full(p.size, np.nan)
    x = as_samples(signal_mv)
    if p.size == 0 or not fs_valid(fs) or x.size < int(2 * _PAD_S * fs) or not np.all(np.isfinite(x)):
        return out
    y = sosfiltfilt(bandpass_sos(*BAND_HZ, fs), x)
    h, hb = int(round(HALF_S * fs)), int(round(BASELINE_S * fs))
    ok = (p - hb >= 0) & (p + hb < x.size)
    if not ok.any():
        return out
    base = np.median(y[p[ok, None] + np.arange(-hb, hb + 1)], axis=1)
    seg = np.abs(y[p[ok, None] + np.arange(-h, h + 1)] - base[:, None])
    peak = seg.max(axis=1)
    width = np.where(peak > 1e-3, seg.sum(axis=1) / fs / np.maximum(peak, 1e-12), np.nan)
    out[ok] = width
    return out


def ecg_wide_beats(widths_s: ArrayLike) -> NDArray[np.bool_]:
    """Which beats are wide relative to the patient's narrow ones (see the module doc).

    Args:
        widths_s: widths from :func:`ecg_qrs_widths` (NaN: unknown, never wide).

    Returns:
        A boolean per beat.
    """
    w = np.asarray(widths_s, dtype=float).ravel()
    known = np.isfinite(w)
    if known.sum() < MIN_BEATS:
        return np.zeros(w.size, dtype=bool)
    reference = float(np.percentile(w[known], REFERENCE_PERCENTILE))
    return known & (np.where(known, w, 0.0) >= WIDE_RATIO * reference)
