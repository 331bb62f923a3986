"""R-peak detection, batch and streaming, from one ECG lead at 50-4000 Hz.

Outline after Pan & Tompkins (IEEE Trans. Biomed. Eng. 32(3):230-236, 1985)
and Hamilton & Tompkins (IEEE Trans. Biomed. Eng. 33(12):1157-1165, 1986):

1. narrow impulses (pacemaker spikes) are removed by a short causal running
   median (at >= 250 Hz); causal Butterworth band-pass (QRS band), slope
   ``(x[n] - x[n-2]) fs / 2`` in mV/s, squared, integrated over a moving window
   (a carried cumulative sum), raised to the power 0.75;
2. candidate QRS complexes: samples that are the maximum of the energy within
   +-``REFRACTORY_S`` (so the decision needs that much look-ahead, plus
   ``LOOKAHEAD_S`` for the step test);
3. adaptive thresholds from running signal/noise peak levels, a T-wave test
   (a candidate soon after a beat with less than half its slope is a T wave;
   up to the longest QT, one far slower, in slope and in slope per mV),
   search-back at half threshold when no beat came for 1.66 mean RR, and a
   step test (an electrode-motion baseline step is neither beat nor noise);
4. each beat is placed on the R peak itself: the largest deviation, of either
   polarity, of the despiked, lightly smoothed raw signal from its local
   median within +-``LOCATE_S`` of the QRS energy centre (delays of the causal
   filters are compensated), so negative QRS complexes and PVCs are placed
   too, and a pacing spike never is.

Non-finite (and absurd, > 10 V) samples are held at the last finite value for filtering, and no beat
is placed where one was seen nearby: a gap is never turned into beats.

Batch (:func:`ecg_peaks`) is the streaming detector (:class:`EcgPeakStream`) fed
once: the causal filters keep state across chunks and every decision is taken
in the order of candidates, so any chunking yields exactly the same beats.
Memory is bounded by a few seconds of signal (plus the chunk being fed);
the batch call feeds cache-sized blocks, which is faster than one pass.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import maximum_filter1d
from scipy.signal import butter

from edge.dsp.common import IirStream, MedianStream, as_samples, bandpass_ba, fs_valid

QRS_BAND_HZ = (5.0, 20.0)
INTEGRATION_S = 0.12
REFRACTORY_S = 0.20  # no two beats closer (300 bpm)
LOOKAHEAD_S = 0.05  # beyond the refractory span: room for the step test after the R peak
T_WAVE_S = 0.36  # a candidate this soon after a beat, with less than T_WAVE_SLOPE of its slope, is its T wave
T_WAVE_SLOPE = 0.5
T_LATE_S = 0.52  # ... and up to this late (long QT, slow rate) with less than T_LATE_SLOPE of it,
T_LATE_SLOPE = 0.35
T_LATE_SHARPNESS = 0.34  # ... and less than this share of its slope per mV of deflection (a slow wave),
T_LATE_QTC_S = 0.50  # ... but no later than the longest QT (Bazett, QTc 0.50 s) after the RR before the beat
T_WAVE_RR = 0.7  # ... if it also comes before this share of the mean RR
LOCATE_S = 0.09  # half width of the R-peak search around the QRS energy centre
SMOOTH_S = 0.012  # boxcar used to place the peak (symmetric: exact delay)
LEARN_S = 2.0  # thresholds are learnt from the first seconds of candidates
RELEARN_S = 6.0  # no beat for this long: learn again (lead back on, amplitude change)
SEARCHBACK_RR = 1.66
LOCAL_S = (0.75, 0.25)  # s before and after a candidate over which the mean energy is its local background
LOCAL_QUANTILE = 0.4  # the background is this quantile of the energy around (QRS complexes are brief)
LOCAL_FACTOR = 2.5  # a beat's energy is at least this multiple of its local background
MIN_ENERGY = 1.7  # (mV/s)^1.5: a QRS of ~0.05 mV still passes, a flat or quantised line does not
FEATURE_POWER = 0.75  # compresses the squared slope: broad low-frequency PVCs stay above threshold
MAX_GROWTH = 8.0  # one beat raises the signal level by at most this factor over 8 beats
ABSURD_MV = 1e4  # |sample| beyond this (10 V) is a decoding error, not ECG
DEAD_S = 0.25
BATCH_BLOCK = 1 << 15  # samples per block of the batch call
KEEP_S = 4.0  # signal history kept for search-back and peak placement
SPIKE_S = 0.002  # impulses up to about twice this wide are removed before detection (pacemaker spikes)
SPIKE_MIN_FS = 250.0  # below this rate a pacing spike is smeared by the sensor's own filter
DESPIKE_S = 0.010  # median width that removes pacemaker spikes before the R peak is placed
STEP_BEFORE_S = (0.20, 0.10)  # s before the R peak: the baseline a QRS starts from
STEP_AFTER_S = (0.10, 0.20)  # s after it: the baseline it returns to
STEP_HIGHPASS_HZ = 0.7  # first-order high-pass of the signal the step test reads
STEP_RATIO = 0.2  # deflection from before below this share of that from after: a step


@dataclass(frozen=True)
class _Candidate:
    index: int  # sample of the energy maximum
    energy: float  # (mV/s)^2
    slope: float  # mV/s, largest absolute slope before the energy maximum
    r_index: int  # sample of the R peak, -1 when a non-finite sample is near
    step: bool = False  # a baseline step (electrode motion), not a there-and-back QRS deflection
    local: float = 0.0  # mean energy around the candidate (its background), (mV/s)^1.5
    height: float = 0.0  # mV, of the R peak above the baseline before it (0.1-0.2 s earlier)

    @property
    def sharpness(self) -> float:
        """QRS-band slope per mV of deflection (1/s): low for slow waves (T waves) of any height."""
        return self.slope / max(self.height, 1e-6)


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


class _History:
    """The recent samples of a few float channels: amortised O(1) append and drop from the front.

    A linear buffer that is compacted (live part moved to the front) when it
    runs out of room, so a stream of small chunks costs no reallocation.
    """

    def __init__(self, rows: int, capacity: int) -> None:
        self._reserve = max(capacity, 16)
        self._data = np.zeros((rows, self._reserve))
        self._start = 0
        self._stop = 0

    @property
    def size(self) -> int:
        return self._stop - self._start

    def row(self, k: int) -> NDArray[np.float64]:
        return self._data[k, self._start : self._stop]

    def append(self, rows: tuple[NDArray[np.float64], ...]) -> None:
        """Append one chunk: one equally long array per channel."""
        n = rows[0].size
        if self._stop + n > self._data.shape[1]:
            live = self.size
            if live + n > self._data.shape[1]:
                data = np.empty((self._data.shape[0], live + n + self._reserve))
            else:
                data = self._data
            data[:, :live] = self._data[:, self._start : self._stop]
            self._data, self._start, self._stop = data, 0, live
        for k, row in enumerate(rows):
            self._data[k, self._stop : self._stop + n] = row
        self._stop += n

    def drop(self, n: int) -> None:
        self._start += min(n, self.size)


class _MovingSum:
    """Sum of the last ``width`` values, exact across chunks (a carried cumulative sum).

    ``np.cumsum`` adds strictly left to right, so the carried total makes every
    output bit-identical for any chunking. The total grows with the record;
    its rounding error (about 1e-16 of the total) stays far below the
    detector's energy floor for months of signal.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        self._total = 0.0
        self._tail = np.zeros(width)  # cumulative sums of the last ``width`` samples

    def __call__(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        s = np.cumsum(np.concatenate(([self._total], v)))
        self._total = float(s[-1])
        ext = np.concatenate((self._tail, s[1:]))
        self._tail = ext[-self.width :]
        return ext[self.width :] - ext[: -self.width]


ENERGY, SLOPE, RAW, BAD, LEVEL = range(5)  # rows of the signal history


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
        self._band = IirStream(bandpass_ba(*QRS_BAND_HZ, fs))
        self._level = IirStream(butter(1, STEP_HIGHPASS_HZ, btype="highpass", fs=fs))
        spike = 2 * int(np.ceil(SPIKE_S * fs)) + 1 if fs >= SPIKE_MIN_FS else 1
        self._despike_input = MedianStream(spike)
        self._width = max(1, int(round(INTEGRATION_S * fs)))
        self._mwi = _MovingSum(self._width)
        self._smooth = max(1, int(round(SMOOTH_S * fs))) | 1
        self._despike = 2 * max(1, int(round(0.5 * DESPIKE_S * fs))) + 1
        self._refractory = max(1, int(round(REFRACTORY_S * fs)))
        self._lookahead = self._refractory + int(round(LOOKAHEAD_S * fs)) + 1
        self._local_offsets = np.arange(-int(round(LOCAL_S[0] * fs)), min(int(round(LOCAL_S[1] * fs)), self._lookahead), max(1, int(fs // 100)))
        self._locate = max(2, int(round(LOCATE_S * fs)))
        margin = self._despike // 2 + self._smooth // 2 + 1  # one more: the boxcar differences cumulative sums
        span = 2 * self._locate + 1 + self._smooth
        self._shape_offsets = np.arange(span + self._despike - 1) - margin
        self._despike_offsets = np.arange(span)[:, None] + np.arange(self._despike)[None, :]
        self._locate_offsets = np.arange(2 * self._locate + 1)
        self._slope_offsets = np.arange(-self._width, 1)
        quiet = int(DEAD_S * fs)
        self._quiet_offsets = np.arange(-quiet, 0)
        b0, b1 = (int(round(s * fs)) for s in STEP_BEFORE_S)
        a0, a1 = (int(round(s * fs)) for s in STEP_AFTER_S)
        self._before_offsets = np.arange(-b0, -b1 + 1)
        self._after_offsets = np.arange(a0, a1 + 1)
        # energy peak lags the R peak by the band-pass group delay (~1/(2 pi f_c) s) and half the window
        self._lag = int(round(fs * (0.5 * INTEGRATION_S + 0.012))) + spike // 2
        self._keep = int(KEEP_S * fs)
        self._last = 0.0
        self._prev2 = np.zeros(2)
        self._t0 = 0  # absolute index of the first buffered sample
        self._hist = _History(5, 2 * self._keep)
        self._next = 1  # first sample not yet tested as a candidate
        self._pending: list[_Candidate] = []  # candidates while learning
        self._since: deque[_Candidate] = deque()  # rejected candidates since the last beat
        self._thr: _Thresholds | None = None
        self._learn_from = 0
        self._last_beat: _Candidate | None = None
        self._last_r = -1
        self._rr: deque[int] = deque(maxlen=8)
        self._artefacts: list[int] = []  # samples of baseline steps rejected since the last take
        self.artefacts_seen = 0

    def take_artefacts(self) -> NDArray[np.int64]:
        """Samples of the electrode-motion steps rejected since the last call (an interval holding
        one is no evidence of a pause: a beat may hide under the artefact)."""
        if not self.valid:
            return np.zeros(0, dtype=np.int64)
        out, self._artefacts = self._artefacts, []
        self.artefacts_seen += len(out)
        return np.asarray(out, dtype=np.int64)

    @property
    def buffered(self) -> int:
        """Samples of signal history currently held (bounded by a few seconds plus one chunk)."""
        return self._hist.size if self.valid else 0

    def feed(self, chunk_mv: ArrayLike) -> NDArray[np.int64]:
        """Consume the next samples (mV); returns the sample indices of newly decided beats."""
        x = as_samples(chunk_mv)
        if not self.valid or x.size == 0:
            self.samples += x.size
            return np.zeros(0, dtype=np.int64)
        self._append(x)
        limit = self.samples - self._lookahead
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
        nbad = int(np.count_nonzero(bad))
        if nbad:
            self.nonfinite += nbad
            x = _hold_last(x, bad, self._last)
        self._last = float(x[-1])
        band = self._band(self._despike_input(x))
        ext = np.concatenate((self._prev2, band))
        slope = (ext[2:] - ext[:-2]) * (0.5 * self.fs)
        self._prev2 = ext[-2:]
        energy = np.maximum(self._mwi(slope * slope) * (1.0 / self._width), 0.0)
        energy = np.sqrt(energy * np.sqrt(energy))  # ** FEATURE_POWER (0.75), two square roots are faster
        self.samples += x.size
        self._hist.append((energy, np.abs(slope), x, bad, self._level(x)))
        drop = min(self._hist.size - self._keep, self._next - self._t0 - self._keep // 2)
        if drop > 0:
            self._hist.drop(drop)
            self._t0 += drop

    def _candidates(self, limit: int) -> list[_Candidate]:
        """Energy maxima within +-refractory among samples [next, limit)."""
        start = self._next
        if limit <= start:
            return []
        r, t0 = self._refractory, self._t0
        lo = max(start - r, t0)
        seg = self._hist.row(ENERGY)[lo - t0 :]
        peak = maximum_filter1d(seg, size=2 * r + 1, mode="constant", cval=-1.0)
        a, b = start - lo, limit - lo
        core = seg[a:b]
        prev = seg[max(a - 1, 0) : b - 1] if a > 0 else np.concatenate(([core[0]], seg[: b - 1]))
        hit = np.flatnonzero((core >= peak[a:b]) & (core > prev) & (core > MIN_ENERGY))
        self._next = limit
        return self._describe(hit + start)

    def _describe(self, idx: NDArray[np.int64]) -> list[_Candidate]:
        """Energy, slope and R-peak sample of candidates (vectorised over the chunk's candidates)."""
        if idx.size == 0:
            return []
        half, n, length = self._locate, self._hist.size, 2 * self._locate + 1
        rel = idx - self._t0
        slopes = _gather(self._hist.row(SLOPE), rel, self._slope_offsets).max(axis=1)
        lo = np.maximum(rel - self._lag - half, 0)
        span = np.minimum(rel - self._lag + half + 1, n) - lo
        shape = self._shape(lo)
        dev = np.abs(shape - _row_median(shape))
        if np.any(span < length):  # only at the very start or end of the signal
            dev[self._locate_offsets[None, :] >= span[:, None]] = -1.0
        pick = np.argmax(dev, axis=1)
        raw = self._hist.row(RAW)
        before = _gather(raw, lo, self._quiet_offsets)
        dead = before.max(axis=1) - before.min(axis=1) < 1e-9  # exactly constant just before: lead-off
        first = int(max(lo.min() - self._width, 0))
        bad_count = np.concatenate(([0.0], np.cumsum(self._hist.row(BAD)[first : rel.max() + 1])))
        gap = bad_count[rel + 1 - first] - bad_count[np.maximum(lo - self._width, 0) - first] > 0
        r = np.where(gap | (span < 3) | dead, -1, lo + pick + self._t0)
        step, height = self._step_and_height(lo + pick, rel)
        energy_row = self._hist.row(ENERGY)
        energy = energy_row[rel]
        around = _gather(energy_row, rel, self._local_offsets)
        kth = int(LOCAL_QUANTILE * (around.shape[1] - 1))
        local = np.partition(around, kth, axis=1)[:, kth]
        rows = zip(idx.tolist(), energy.tolist(), slopes.tolist(), r.tolist(), step.tolist(), local.tolist(), height.tolist())
        return [_Candidate(int(i), float(e), float(sl), int(p), bool(s), float(bg), float(h)) for i, e, sl, p, s, bg, h in rows]

    def _step_and_height(
        self, r: NDArray[np.int64], rel: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        """Whether the deflection at ``r`` does not return (a baseline step, not a QRS), and its
        height (mV) above the baseline before it.

        The R peak of a QRS complex stands out most from the baseline it starts
        from (PR segment); after it the signal returns, partly (ST deviation, a
        T wave, a PVC's repolarisation). At an electrode-motion step the peak
        found is the edge of the step: level with the baseline before it and
        far from the level after it. Compared: the peak against the medians of
        ``STEP_BEFORE_S`` and ``STEP_AFTER_S`` (never reaching past the
        decision's look-ahead, so streaming still equals batch), on the signal
        high-passed at ``STEP_HIGHPASS_HZ`` (slow baseline wander is not a step;
        a step's level survives the first-order high-pass for these 0.2 s).
        """
        level = self._hist.row(LEVEL)
        peak = level[r]
        before = _row_median(_gather(level, r, self._before_offsets))[:, 0]
        ends = np.minimum(r[:, None] + self._after_offsets[None, :], (rel + self._lookahead - 1)[:, None])
        after = _row_median(level[np.minimum(ends, self._hist.size - 1)])[:, 0]
        height = np.abs(peak - before)
        return height < STEP_RATIO * np.abs(peak - after), height

    def _shape(self, lo: NDArray[np.int64]) -> NDArray[np.float64]:
        """Raw signal from each ``lo`` over the search width, without narrow spikes, lightly smoothed.

        A median over ``DESPIKE_S`` removes pacemaker spikes (a few ms wide) so
        they never become the R peak; a symmetric boxcar of ``SMOOTH_S`` then
        suppresses sample noise. Both are centred, so the peak is not displaced.
        """
        k, m = self._despike, self._smooth
        rows = _gather(self._hist.row(RAW), lo, self._shape_offsets)
        if k > 1:
            rows = np.partition(rows[:, self._despike_offsets], k // 2, axis=2)[:, :, k // 2]
        if m > 1:
            c = np.cumsum(rows, axis=1)
            return np.asarray((c[:, m:] - c[:, :-m]) * (1.0 / m))
        return rows[:, 1:]

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
        if c.step:  # neither a beat nor a noise level; one that would have passed as a beat is kept
            if c.energy > self._thr.primary and c.energy > LOCAL_FACTOR * c.local:
                self._artefacts.append(c.index)
            return
        if c.energy > self._thr.primary and not self._is_t_wave(c) and c.energy > LOCAL_FACTOR * c.local:
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
        """Soon after a beat and much slower than it: its T wave. Not tested where the rhythm
        itself is that fast (a candidate at the expected interval of a tachycardia).

        Up to ``T_WAVE_S``, less than half the beat's QRS-band slope suffices. Later, where a
        long QT or a slow rate puts the T wave but early PVCs come too, the candidate must be
        slow in both ways: under ``T_LATE_SLOPE`` of the beat's slope, and under
        ``T_LATE_SHARPNESS`` of its slope per mV of deflection. A T wave, a broad hump, keeps
        about a quarter of a QRS's band slope per mV however tall it is (0.23-0.31 at
        130-1000 Hz); a PVC, broad but a depolarisation, keeps more (>= 0.37 for MIT-BIH
        106's, also re-timed into AF). And no later than the longest QT (``T_LATE_QTC_S``)
        the interval before the beat allows.
        """
        b = self._last_beat
        if b is None:
            return False
        after = c.index - b.index
        if after < T_WAVE_S * self.fs:
            slow = c.slope < T_WAVE_SLOPE * b.slope
        else:
            slower = c.slope < T_LATE_SLOPE * b.slope and c.sharpness < T_LATE_SHARPNESS * b.sharpness
            slow = slower and after < self._t_late()
        return slow and (not self._rr or after < T_WAVE_RR * sum(self._rr) / len(self._rr))

    def _t_late(self) -> float:
        """Samples after a beat within which its T wave may still peak: ``T_LATE_S``, and at most
        the longest QT the interval before the beat allows (the QT follows the preceding RR)."""
        if not self._rr:
            return T_LATE_S * self.fs
        return min(T_LATE_S * self.fs, T_LATE_QTC_S * math.sqrt(self._rr[-1] * self.fs))

    def _search_back(self, now: int, beats: list[int]) -> None:
        assert self._thr is not None
        while self._last_beat is not None and self._since:
            rr = sum(self._rr) / len(self._rr) if self._rr else self.fs
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


def _gather(x: NDArray[np.float64], starts: NDArray[np.int64], offsets: NDArray[np.int64]) -> NDArray[np.float64]:
    """Rows ``x[s + offsets]`` for each start ``s``, indices clamped to the array (edge values repeat)."""
    return x[np.minimum(np.maximum(starts[:, None] + offsets[None, :], 0), x.size - 1)]


def _row_median(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median of each row (the upper one for even lengths), as a column."""
    k = rows.shape[1] // 2
    return np.partition(rows, k, axis=1)[:, k : k + 1]


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
    return ecg_peaks_and_artefacts(signal_mv, fs)[0]


def ecg_peaks_and_artefacts(signal_mv: ArrayLike, fs: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """R peaks (as :func:`ecg_peaks`) and the samples of rejected electrode-motion steps.

    Args:
        signal_mv: samples in millivolts.
        fs: sampling rate in Hz.
    """
    stream = EcgPeakStream(fs)
    x = as_samples(signal_mv)
    # blocks that fit the CPU cache are faster than one pass over the whole record (same beats)
    beats = [stream.feed(x[a : a + BATCH_BLOCK]) for a in range(0, x.size, BATCH_BLOCK)]
    peaks = np.concatenate([*beats, stream.flush()]).astype(np.int64)
    return peaks, stream.take_artefacts()
