"""R-peak detection, batch and streaming, from one ECG lead at 50-4000 Hz.

Outline after Pan & Tompkins (IEEE Trans. Biomed. Eng. 32(3):230-236, 1985)
and Hamilton & Tompkins (IEEE Trans. Biomed. Eng. 33(12):1157-1165, 1986):

1. causal Butterworth band-pass (QRS band), slope ``(x[n] - x[n-2]) fs / 2``
   in mV/s, squared, integrated over a moving window (energy, (mV/s)^2);
2. candidate QRS complexes: samples that are the maximum of the energy within
   +-``REFRACTORY_S`` (so the decision needs that much look-ahead);
3. adaptive thresholds from running signal/noise peak levels, a T-wave test
   (a candidate soon after a beat with less than half its slope is a T wave),
   and search-back at half threshold when no beat came for 1.66 mean RR;
4. each beat is placed on the R peak itself: the largest deviation, of either
   polarity, of the lightly smoothed raw signal from its local median within
   +-``LOCATE_S`` of the QRS energy centre (delays of the causal filters are
   compensated), so negative QRS complexes and PVCs are placed too.

Non-finite (and absurd, > 10 V) samples are held at the last finite value for filtering, and no beat
is placed where one was seen nearby: a gap is never turned into beats.

Batch (:func:`ecg_peaks`) is the streaming detector (:class:`EcgPeakStream`) fed
once: the causal filters keep state across chunks and every decision is taken
in the order of candidates, so any chunking yields exactly the same beats.
Memory is bounded by a few seconds of signal.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d

from edge.dsp.common import FirStream, SosStream, as_samples, bandpass_sos, fs_valid

QRS_BAND_HZ = (5.0, 20.0)
INTEGRATION_S = 0.12
REFRACTORY_S = 0.20  # no two beats closer (300 bpm)
T_WAVE_S = 0.36  # a candidate this soon after a beat is tested for being a T wave
LOCATE_S = 0.09  # half width of the R-peak search around the QRS energy centre
SMOOTH_S = 0.012  # boxcar used to place the peak (symmetric: exact delay)
LEARN_S = 2.0  # thresholds are learnt from the first seconds of candidates
RELEARN_S = 6.0  # no beat for this long: learn again (lead back on, amplitude change)
SEARCHBACK_RR = 1.66
MIN_ENERGY = 1.7  # (mV/s)^1.5: a QRS of ~0.05 mV still passes, a flat or quantised line does not
FEATURE_POWER = 0.75  # compresses the squared slope: broad low-frequency PVCs stay above threshold
MAX_GROWTH = 8.0  # one beat raises the signal level by at most this factor over 8 beats
ABSURD_MV = 1e4  # |sample| beyond this (10 V) is a decoding error, not ECG
DEAD_S = 0.25
KEEP_S = 4.0  # signal history kept for search-back and peak placement


@dataclass(frozen=True)
class _Candidate:
    index: int  # sample of the energy maximum
    energy: float  # (mV/s)^2
    slope: float  # mV/s, largest absolute slope before the energy maximum
    r_index: int  # sample of the R peak, -1 when a non-finite sample is near


class _Thresholds:
    """Signal and noise peak levels of the Pan-Tompkins decision rule."""

    def __init__(self, heights: list[float], floor: float = 4 * MIN_ENERGY) -> None:
        ranked = sorted(heights)
        top = ranked[-2] if len(ranked) >= 3 else ranked[-1]  # one artefact must not set the level
        self.signal = max(0.5 * top, floor)
        self.noise = min(float(np.median(heights)), 0.5 * self.signal) * 0.5

    @property
    def primary(self) -> float:
        return max(self.noise + 0.25 * (self.signal - self.noise), MIN_ENERGY)

    @property
    def secondary(self) -> float:
        return max(0.5 * self.primary, MIN_ENERGY)

    def beat(self, energy: float, weight: float) -> None:
        self.signal += weight * (min(energy, MAX_GROWTH * self.signal) - self.signal)

    def noise_peak(self, energy: float) -> None:
        self.noise += 0.125 * (min(energy, self.signal) - self.noise)


class EcgPeakStream:
    """Streaming R-peak detector: feed chunks, get the beats they complete.

    Args:
        fs: sampling rate in Hz (50-4000; any other makes the stream inert:
            it returns no beats, ``valid`` is False).

    Beats come out in order, each a few hundred ms after it happened (the
    look-ahead of the decision), or from :meth:`flush` at the end of the record.
    """

    def __init__(self, fs: float) -> None:
        self.valid = fs_valid(fs)
        self.fs = float(fs) if self.valid else 1.0
        self.samples = 0  # samples consumed so far
        self.nonfinite = 0  # samples that were NaN or inf
        if not self.valid:
            return
        fs = self.fs
        self._band = SosStream(bandpass_sos(*QRS_BAND_HZ, fs))
        width = max(1, int(round(INTEGRATION_S * fs)))
        self._mwi = FirStream(np.full(width, 1.0 / width))
        smooth = max(1, int(round(SMOOTH_S * fs))) | 1
        self._smooth = FirStream(np.full(smooth, 1.0 / smooth))
        self._smooth_delay = smooth // 2
        self._refractory = max(1, int(round(REFRACTORY_S * fs)))
        self._locate = max(2, int(round(LOCATE_S * fs)))
        self._width = width
        # energy peak lags the R peak by the band-pass group delay (~1/(2 pi f_c) s) and half the window
        self._lag = int(round(fs * (0.5 * INTEGRATION_S + 0.012)))
        self._keep = int(KEEP_S * fs)
        self._last = 0.0
        self._prev2 = np.zeros(2)
        self._t0 = 0  # absolute index of the first buffered sample
        self._energy = np.zeros(0)
        self._slope = np.zeros(0)
        self._raw = np.zeros(0)
        self._bad = np.zeros(0, dtype=bool)
        self._next = 1  # first sample not yet tested as a candidate
        self._pending: list[_Candidate] = []  # candidates while learning
        self._since: deque[_Candidate] = deque()  # rejected candidates since the last beat
        self._thr: _Thresholds | None = None
        self._learn_from = 0
        self._last_beat: _Candidate | None = None
        self._last_r = -1
        self._rr: deque[int] = deque(maxlen=8)

    def feed(self, chunk_mv: ArrayLike) -> NDArray[np.int64]:
        """Consume the next samples (mV); returns the sample indices of newly decided beats."""
        x = as_samples(chunk_mv)
        if not self.valid or x.size == 0:
            self.samples += x.size
            return np.zeros(0, dtype=np.int64)
        self._append(x)
        limit = self.samples - self._refractory - 1
        return self._decide(self._candidates(limit), final=False)

    def flush(self) -> NDArray[np.int64]:
        """End of the record: decide the remaining candidates; returns their beats."""
        if not self.valid or self.samples == 0:
            return np.zeros(0, dtype=np.int64)
        return self._decide(self._candidates(self.samples), final=True)

    # -- signal path ---------------------------------------------------------------------------

    def _append(self, x: NDArray[np.float64]) -> None:
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(x) <= ABSURD_MV)  # NaN, inf and beyond any amplifier: a gap
        self.nonfinite += int(bad.sum())
        if bad.any():
            x = _hold_last(x, bad, self._last)
        self._last = float(x[-1])
        band = self._band(x)
        ext = np.concatenate([self._prev2, band])
        slope = (ext[2:] - ext[:-2]) * (0.5 * self.fs)
        self._prev2 = ext[-2:]
        energy = np.maximum(self._mwi(slope * slope), 0.0) ** FEATURE_POWER
        raw = self._smooth(x)
        self.samples += x.size
        self._energy = np.concatenate([self._energy, energy])
        self._slope = np.concatenate([self._slope, np.abs(slope)])
        self._raw = np.concatenate([self._raw, raw])
        self._bad = np.concatenate([self._bad, bad])
        self._trim()

    def _trim(self) -> None:
        drop = min(self._energy.size - self._keep, self._next - self._t0 - self._keep // 2)
        if drop > 0:
            self._t0 += drop
            self._energy, self._slope = self._energy[drop:], self._slope[drop:]
            self._raw, self._bad = self._raw[drop:], self._bad[drop:]

    def _candidates(self, limit: int) -> list[_Candidate]:
        """Energy maxima within +-refractory among samples [next, limit)."""
        start = self._next
        if limit <= start:
            return []
        r, t0 = self._refractory, self._t0
        lo = max(start - r, t0)
        seg = self._energy[lo - t0 :]
        peak = maximum_filter1d(seg, size=2 * r + 1, mode="constant", cval=-1.0)
        idx = np.arange(start, limit)
        loc = idx - lo
        prev = seg[np.maximum(loc - 1, 0)]
        hit = (seg[loc] >= peak[loc]) & (seg[loc] > prev) & (seg[loc] > MIN_ENERGY)
        self._next = limit
        return self._describe(idx[hit])

    def _describe(self, idx: NDArray[np.int64]) -> list[_Candidate]:
        """Energy, slope and R-peak sample of candidates (vectorised over the chunk's candidates)."""
        if idx.size == 0:
            return []
        t0, w, d, half = self._t0, self._width, self._smooth_delay, self._locate
        rel = idx - t0
        slopes = _window_max(self._slope, rel - w, w + 1)
        centre = rel - self._lag  # raw-sample coordinates; the smoothed signal lags by ``d``
        lo = np.clip(centre - half, 0, None)
        hi = np.minimum(centre + half + 1, self.samples - t0 - d)
        windows = _windows(self._raw, lo + d, 2 * half + 1)
        dev = np.abs(windows - np.median(windows, axis=1, keepdims=True))
        dev[np.arange(2 * half + 1)[None, :] >= (hi - lo)[:, None]] = -1.0
        r = lo + np.argmax(dev, axis=1) + t0
        bad_count = np.concatenate([[0], np.cumsum(self._bad)])
        first = np.clip(lo - w, 0, None)
        quiet = int(DEAD_S * self.fs)  # an exactly constant run just before: lead-off, not a heart
        before = _windows(self._raw, np.clip(lo + d - quiet, 0, None), quiet)
        dead = np.ptp(before, axis=1) < 1e-9
        bad = (bad_count[rel + 1] - bad_count[first] > 0) | (hi - lo < 3) | dead
        r = np.where(bad, -1, r)
        energy = self._energy[rel]
        return [_Candidate(int(i), float(e), float(sl), int(p)) for i, e, sl, p in zip(idx, energy, slopes, r)]

    # -- decisions -----------------------------------------------------------------------------

    def _decide(self, candidates: list[_Candidate], final: bool) -> NDArray[np.int64]:
        beats: list[int] = []
        for c in candidates:
            if self._thr is None:
                self._learn(c, beats)
            else:
                self._consider(c, beats)
        if final and self._thr is None and self._pending:
            self._start(beats)
        if final and self._thr is not None:
            self._search_back(self.samples, beats)
        return np.asarray(beats, dtype=np.int64)

    def _learn(self, c: _Candidate, beats: list[int]) -> None:
        if c.index - self._learn_from < LEARN_S * self.fs:
            self._pending.append(c)
            return
        self._pending.append(c)
        self._start(beats)

    def _start(self, beats: list[int]) -> None:
        pending, self._pending = self._pending, []
        self._thr = _Thresholds([c.energy for c in pending])
        for c in pending:
            self._consider(c, beats)

    def _consider(self, c: _Candidate, beats: list[int]) -> None:
        assert self._thr is not None
        self._search_back(c.index, beats)
        if c.energy > self._thr.primary and not self._is_t_wave(c):
            self._accept(c, 0.125, beats)
            return
        self._thr.noise_peak(c.energy)
        self._since.append(c)
        while self._since and c.index - self._since[0].index > self._keep:
            self._since.popleft()
        self._maybe_relearn(c)

    def _maybe_relearn(self, c: _Candidate) -> None:
        assert self._thr is not None
        last = max(self._last_beat.index if self._last_beat else 0, self._learn_from)
        if c.index - last > RELEARN_S * self.fs:
            window = [s for s in self._since if c.index - s.index <= LEARN_S * self.fs]
            heights = [s.energy for s in window]
            if heights:  # the level may fall by at most 4x per relearning, so noise alone cannot win
                self._thr = _Thresholds(heights, max(0.25 * self._thr.signal, 4 * MIN_ENERGY))
                self._learn_from = c.index

    def _is_t_wave(self, c: _Candidate) -> bool:
        b = self._last_beat
        return b is not None and c.index - b.index < T_WAVE_S * self.fs and c.slope < 0.5 * b.slope

    def _search_back(self, now: int, beats: list[int]) -> None:
        assert self._thr is not None
        while self._last_beat is not None and self._since:
            rr = float(np.mean(self._rr)) if self._rr else self.fs
            if now - self._last_beat.index <= SEARCHBACK_RR * rr:
                return
            found = [s for s in self._since if s.energy > self._thr.secondary and not self._is_t_wave(s)]
            if not found:
                return
            best = max(found, key=lambda s: s.energy)
            self._accept(best, 0.25, beats)

    def _accept(self, c: _Candidate, weight: float, beats: list[int]) -> None:
        assert self._thr is not None
        self._thr.beat(c.energy, weight)
        if self._last_beat is not None:
            self._rr.append(c.index - self._last_beat.index)
        self._last_beat = c
        while self._since and self._since[0].index <= c.index:
            self._since.popleft()
        if c.r_index > self._last_r:
            self._last_r = c.r_index
            beats.append(c.r_index)


def _windows(x: NDArray[np.float64], starts: NDArray[np.int64], length: int) -> NDArray[np.float64]:
    """Rows ``x[s : s + length]`` (padded with the last value past the end)."""
    pad = np.concatenate([x, np.full(length, x[-1] if x.size else 0.0)])
    return np.asarray(sliding_window_view(pad, length)[np.clip(starts, 0, x.size)], dtype=float)


def _window_max(x: NDArray[np.float64], starts: NDArray[np.int64], length: int) -> NDArray[np.float64]:
    return np.asarray(_windows(x, np.clip(starts, 0, None), length).max(axis=1), dtype=float)


def _hold_last(x: NDArray[np.float64], bad: NDArray[np.bool_], last: float) -> NDArray[np.float64]:
    idx = np.where(bad, 0, np.arange(x.size))
    np.maximum.accumulate(idx, out=idx)
    held = x[idx]
    lead = ~np.maximum.accumulate(~bad)
    held[lead] = last
    return held


def ecg_peaks(signal_mv: ArrayLike, fs: float) -> NDArray[np.int64]:
    """Sample indices of the R peaks of a single-lead ECG.

    Args:
        signal_mv: samples in millivolts (any polarity, baseline wander allowed).
        fs: sampling rate in Hz, 50-4000 (100-1000 Hz is the tested range).

    Returns:
        Increasing int64 sample indices of the R peaks; empty for empty, flat,
        non-numeric or too short input and for an invalid ``fs``. Never raises.

    Reference: see the module docstring (Pan & Tompkins 1985; Hamilton & Tompkins 1986).
    """
    stream = EcgPeakStream(fs)
    beats = np.concatenate([stream.feed(signal_mv), stream.flush()])
    return beats.astype(np.int64)
