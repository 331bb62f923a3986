"""Rhythm episodes from beat times, streaming: pauses, brady/tachy runs, AF-suspicious irregularity, ectopic beats.

Input is the sequence of detected beats (times in s) with, for each, whether
the interval that ends at it lies in usable signal (see ``edge.dsp.ecg``). An
interval over unusable signal is unknown: it is never a pause, it ends a
brady/tachy run, and it is left out of the irregularity windows (a long one,
a lead-off, ends an AF episode). So a lead-off or a noise burst never turns
into a pause or an AF alarm. ``intervals_clear`` adds the intervals that hold
an electrode-motion step the R-peak detector rejected (a beat may hide there).

Episodes, each with start and end time (s, the time base of the input):

* ``pause``: one interval of ``PAUSE_S`` (2.0 s) or more (``value`` is its
  length; :attr:`Episode.long` marks >= ``LONG_PAUSE_S``, 3.0 s).
* ``brady`` / ``tachy``: at least ``RUN_MIN_BEATS`` intervals below 50 bpm /
  above 100 bpm, tolerating one odd interval in between (an ectopic beat);
  ``value`` is the mean heart rate of the run (bpm).
* ``af``: irregularly irregular rhythm suspicious of atrial fibrillation
  (unusable intervals are left out of its windows; one longer than
  ``AF_GAP_S`` ends the episode):
  each interval is judged from the ``AF_WINDOW`` (32) intervals centred on it,
  by the coefficient of sample entropy (COSEn; Lake & Moorman, Am. J. Physiol.
  Heart Circ. Physiol. 300, 2011: sample entropy with m = 1, r = 30 ms,
  corrected for tolerance and mean RR) together with the normalised RMSSD
  after dropping the largest successive differences (an isolated ectopic beat
  is not AF; bigeminy and trigeminy are predictable, hence low entropy). An
  episode is reported when it lasts ``AF_MIN_S`` (30 s, the clinical
  convention for an AF episode) or more; up to ``AF_BRIDGE`` windows in a
  row that are not suspicious do not end it (AF has stretches that look
  regular); ``value`` is its mean COSEn.
* ``ectopic``: a premature beat: its interval below 80 % of the median of the
  last 8 normal intervals and the next one above 110 % of it (compensatory
  pause), after Malik et al., Pacing Clin. Electrophysiol. 12, 1989.
  ``start == end`` is the beat's time; ``value`` is its prematurity (RR / reference).
* ``vt``: a run of ``VT_MIN_BEATS`` (3) or more wide beats in a row (QRS
  width from ``edge.dsp.width``) whose intervals are all above ``VT_BPM``
  (100 bpm) and usable: :func:`rhythm_vt_runs`, a batch function over the
  beats of the analysed stretch (it needs the per-beat widths, which the
  summariser measures over its analysis context). ``value`` is the run's mean
  rate (bpm), ``beats`` its number of beats.

Streaming equals batch: :func:`rhythm_episodes` is :class:`RhythmStream` fed
once, and every decision is taken interval by interval in order. Memory is
bounded by the AF window. Episodes come out when they are complete (AF after
half a window more, about 16 beats).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

PAUSE_S = 2.0
LONG_PAUSE_S = 3.0
BRADY_BPM = 50.0
TACHY_BPM = 100.0
RUN_MIN_BEATS = 8
RUN_TOLERANCE = 1  # consecutive odd intervals a run survives
AF_WINDOW = 48  # intervals judged together
AF_TRIM = 4  # largest successive differences dropped from the RMSSD (isolated ectopic beats)
AF_COSEN = -1.4  # COSEn above this ...
AF_NRMSSD = 0.06  # ... and trimmed RMSSD / mean RR above this: irregular enough for AF
AF_MIN_S = 30.0
AF_VALID = 0.75  # share of a window's intervals that must be usable (the others are left out)
AF_GAP_S = 5.0  # an unusable interval this long (lead off) ends an AF run
AF_ALTERNATION = -0.35  # lag-1 correlation of RR below this: ectopy, not AF (AF's is about 0)
AF_BRIDGE = 3  # an AF run survives this many windows in a row that are not suspicious
SAMPEN_R_S = 0.030  # sample-entropy tolerance (s)
PREMATURE = 0.8
COMPENSATORY = 1.1
ECTOPY_SUM = 0.15  # a premature + compensatory pair sums to two median intervals within this share
REFERENCE_BEATS = 8
VT_MIN_BEATS = 3  # wide beats in a row at > VT_BPM: a VT run (non-sustained from 3, see rhythm_vt_runs)
VT_BPM = 100.0
VT_REGULAR_CV = 0.12  # a run over doubtful signal must be this regular (RR coefficient of variation)
KINDS = ("pause", "brady", "tachy", "af", "ectopic", "vt")


@dataclass(frozen=True)
class Episode:
    """One rhythm episode: ``kind`` from :data:`KINDS`, times in s, and its figure (see the module doc)."""

    kind: str
    start: float
    end: float
    beats: int  # intervals in the episode (``vt``: beats in the run)
    value: float

    @property
    def duration(self) -> float:
        """End minus start, s."""
        return self.end - self.start

    @property
    def long(self) -> bool:
        """A pause of ``LONG_PAUSE_S`` or more."""
        return self.kind == "pause" and self.value >= LONG_PAUSE_S


@dataclass(frozen=True)
class _Interval:
    start: float  # s, the beat that opens it
    end: float  # s, the beat that closes it
    valid: bool  # lies in usable signal

    @property
    def rr(self) -> float:
        return self.end - self.start


class _Run:
    """A run of intervals that qualify (brady or tachy), tolerating a few odd ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._reset()

    def _reset(self) -> None:
        self.start: float | None = None
        self.end = 0.0
        self.count = 0
        self.total = 0.0
        self.misses = 0

    def step(self, iv: _Interval, qualifies: bool) -> Episode | None:
        if qualifies:
            if self.start is None:
                self.start = iv.start
            self.end, self.count, self.total, self.misses = iv.end, self.count + 1, self.total + iv.rr, 0
            return None
        if self.start is None:
            return None
        self.misses += 1
        return self.close() if self.misses > RUN_TOLERANCE else None

    def close(self) -> Episode | None:
        done = None
        if self.start is not None and self.count >= RUN_MIN_BEATS:
            done = Episode(self.kind, self.start, self.end, self.count, round(60.0 * self.count / self.total, 1))
        self._reset()
        return done


class RhythmStream:
    """Streaming rhythm analysis: feed beat times, get the episodes they complete.

    Args:
        af_min_s: shortest AF-suspicious episode reported (s).
    """

    def __init__(self, af_min_s: float = AF_MIN_S) -> None:
        self.af_min_s = af_min_s
        self._last: float | None = None
        self._brady, self._tachy = _Run("brady"), _Run("tachy")
        self._window: deque[_Interval] = deque(maxlen=AF_WINDOW)
        self._af: list[float] = []  # [start, end, cosen sum, count] of the open AF run
        self._af_misses = 0  # consecutive windows not AF-suspicious since the last one that was
        self._reference: deque[float] = deque(maxlen=REFERENCE_BEATS)
        self._pending: _Interval | None = None  # an interval waiting for the next one (ectopic test)

    def feed(self, times_s: ArrayLike, usable: ArrayLike | None = None) -> list[Episode]:
        """Add beats (s, increasing); ``usable[i]``: the interval ending at beat i is in usable signal."""
        t = np.asarray(times_s, dtype=float).ravel()
        ok = np.ones(t.size, dtype=bool) if usable is None else np.asarray(usable, dtype=bool).ravel()
        out: list[Episode] = []
        for time, good in zip(t.tolist(), ok.tolist()):
            if not np.isfinite(time) or (self._last is not None and time <= self._last):
                continue  # out of order or not a time: kept out of the rhythm, never raises
            if self._last is not None:
                self._interval(_Interval(self._last, time, bool(good)), out)
            self._last = time
        return out

    def flush(self) -> list[Episode]:
        """End of the record: close the episodes still open."""
        out = [e for e in (self._brady.close(), self._tachy.close(), self._close_af()) if e is not None]
        self._pending = None
        return sorted(out, key=lambda e: (e.start, e.kind))

    def _interval(self, iv: _Interval, out: list[Episode]) -> None:
        if iv.valid and iv.rr >= PAUSE_S:
            out.append(Episode("pause", iv.start, iv.end, 1, round(iv.rr, 3)))
        for run, qualifies in ((self._brady, iv.rr > 60.0 / BRADY_BPM), (self._tachy, iv.rr < 60.0 / TACHY_BPM)):
            done = run.step(iv, qualifies) if iv.valid else run.close()
            if done is not None:
                out.append(done)
        self._ectopic(iv, out)
        self._irregularity(iv, out)

    def _ectopic(self, iv: _Interval, out: list[Episode]) -> None:
        prev, self._pending = self._pending, iv if iv.valid else None
        if prev is None or not iv.valid or len(self._reference) < REFERENCE_BEATS // 2:
            if prev is not None and prev.rr < PAUSE_S:
                self._reference.append(prev.rr)
            return
        ref = float(np.median(self._reference))
        if prev.rr < PREMATURE * ref and iv.rr > COMPENSATORY * ref:
            out.append(Episode("ectopic", prev.end, prev.end, 1, round(prev.rr / ref, 3)))
            self._pending = None  # the compensatory interval is not a reference either
        elif prev.rr < PAUSE_S:
            self._reference.append(prev.rr)

    def _irregularity(self, iv: _Interval, out: list[Episode]) -> None:
        self._window.append(iv)
        if len(self._window) < AF_WINDOW:
            return
        centre = self._window[AF_WINDOW // 2]
        cosen = _af_cosen(self._window)
        if cosen is None:
            self._af_misses += 1
            gap = not iv.valid and iv.rr > AF_GAP_S
            if self._af and (gap or self._af_misses > AF_BRIDGE):
                done = self._close_af()
                if done is not None:
                    out.append(done)
            return
        self._af_misses = 0
        if not self._af:
            self._af = [centre.start, centre.end, cosen, 1.0]
        else:
            self._af[1], self._af[2], self._af[3] = centre.end, self._af[2] + cosen, self._af[3] + 1

    def _close_af(self) -> Episode | None:
        if not self._af:
            return None
        start, end, total, count = self._af
        self._af = []
        if end - start < self.af_min_s:
            return None
        return Episode("af", start, end, int(count), round(total / count, 3))


def _af_cosen(window: deque[_Interval]) -> float | None:
    """COSEn of the window when it is AF-suspicious, else None.

    Unusable intervals are left out; a window with fewer than ``AF_VALID`` of
    its intervals usable is not judged.

    Premature beats with their compensatory pause (a short and a long interval
    that add up to about two normal ones) are taken out first: frequent
    ectopy is irregular too, but it is not AF. A window left with fewer than
    half its intervals is ectopy, not AF.
    """
    rr = np.array([iv.rr for iv in window if iv.valid])
    if rr.size < AF_VALID * len(window):
        return None
    rr = _without_ectopy(rr)
    if rr.size < AF_WINDOW // 2:
        return None
    if _lag1_correlation(rr) < AF_ALTERNATION:
        return None  # short-long alternation: ectopic beats with their pauses (couplets, salvos)
    mean = float(rr.mean())
    diffs = np.sort(np.abs(np.diff(rr)))[: rr.size - 1 - AF_TRIM]
    nrmssd = float(np.sqrt(np.mean(diffs**2))) / mean
    if nrmssd <= AF_NRMSSD:
        return None
    cosen = rr_cosen(rr)
    return cosen if cosen > AF_COSEN else None


def _lag1_correlation(rr: np.ndarray) -> float:
    """Correlation of each interval with the next (about 0 in AF, negative when short and long alternate)."""
    a, b = rr[:-1] - rr[:-1].mean(), rr[1:] - rr[1:].mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0


def _without_ectopy(rr: np.ndarray) -> np.ndarray:
    """RR intervals without premature/compensatory pairs (short + long = about two median intervals)."""
    m = float(np.median(rr))
    short, long_ = rr[:-1] < PREMATURE * m, rr[1:] > COMPENSATORY * m
    pair = short & long_ & (np.abs(rr[:-1] + rr[1:] - 2 * m) < ECTOPY_SUM * m)
    drop = np.zeros(rr.size, dtype=bool)
    drop[:-1] |= pair
    drop[1:] |= pair
    return rr[~drop]


def rr_cosen(rr_s: ArrayLike, r_s: float = SAMPEN_R_S) -> float:
    """Coefficient of sample entropy of RR intervals (s): SampEn(m=1, r) + ln(2 r) - ln(mean RR).

    Args:
        rr_s: RR intervals in seconds (a short window, e.g. 16-64 intervals).
        r_s: matching tolerance in seconds.

    Returns:
        COSEn (dimensionless; r and mean RR in ms as in Lake & Moorman 2011).
        Atrial fibrillation is typically above -1.4, sinus rhythm below.
        When no pair of length 2 matches, the entropy is bounded by the
        number of comparisons (the most irregular value the window can show).
    """
    rr = np.asarray(rr_s, dtype=float).ravel()
    n = rr.size
    if n < 4:
        return float("-inf")
    close = np.abs(rr[:, None] - rr[None, :]) <= r_s
    np.fill_diagonal(close, False)
    b = int(close[: n - 1, : n - 1].sum())  # pairs matching over one interval (templates of length 1)
    a = int((close[: n - 1, : n - 1] & close[1:, 1:]).sum())  # ... and over the next one too
    pairs = (n - 1) * (n - 2)
    sampen = float(np.log(max(b, 1) / a)) if a > 0 else float(np.log(pairs))
    return sampen + float(np.log(2 * r_s * 1000.0)) - float(np.log(rr.mean() * 1000.0))


def intervals_clear(peaks: ArrayLike, artefacts: ArrayLike) -> NDArray[np.bool_]:
    """Per beat: no artefact lies in the interval that ends at it (the first beat: True).

    Args:
        peaks: beat samples (or times), increasing.
        artefacts: artefact samples (or times) in the same units.
    """
    p = np.asarray(peaks, dtype=float).ravel()
    a = np.sort(np.asarray(artefacts, dtype=float).ravel())
    if p.size == 0:
        return np.zeros(0, dtype=bool)
    count = np.searchsorted(a, p, side="left")
    return np.concatenate([[True], count[1:] == np.searchsorted(a, p[:-1], side="right")])


def rhythm_episodes(times_s: ArrayLike, usable: ArrayLike | None = None, af_min_s: float = AF_MIN_S) -> list[Episode]:
    """All rhythm episodes of a record (batch: the stream fed once), ordered by completion.

    Args:
        times_s: beat times in s, increasing.
        usable: per beat, whether the interval ending at it lies in usable signal (default: all).
        af_min_s: shortest AF-suspicious episode reported (s).
    """
    stream = RhythmStream(af_min_s)
    return stream.feed(times_s, usable) + stream.flush()


def rhythm_vt_runs(
    times_s: ArrayLike,
    wide: ArrayLike,
    usable: ArrayLike | None = None,
    min_beats: int = VT_MIN_BEATS,
    doubtful: ArrayLike | None = None,
) -> list[Episode]:
    """Runs of at least ``min_beats`` wide beats in a row, each interval faster than ``VT_BPM`` and usable.

    Args:
        times_s: beat times in s, increasing.
        wide: per beat, whether its QRS is wide (``edge.dsp.width.ecg_wide_beats``).
        usable: per beat, whether the interval ending at it lies in usable signal (default: all).
        min_beats: shortest run reported, in beats (3: non-sustained VT; field notes call >= 6 urgent).
        doubtful: per beat, whether the interval ending at it is usable only as a possible VT: signal
            that a spikiness quality index calls noise, as fast monomorphic VT (nearly a sine wave) can
            look. A run holding such an interval counts only if its RR intervals are regular (coefficient
            of variation <= ``VT_REGULAR_CV``), as VT is and beats found in noise are not.

    Returns:
        ``vt`` episodes from the first to the last beat of each run, in time order.
    """
    t = np.asarray(times_s, dtype=float).ravel()
    w = np.asarray(wide, dtype=bool).ravel()
    ok = np.ones(t.size, dtype=bool) if usable is None else np.asarray(usable, dtype=bool).ravel()
    if t.size < 2 or not (t.size == w.size == ok.size):
        return []
    # link[i]: beats i and i+1 belong to one run (both wide, the interval between them fast and usable)
    doubt = np.zeros(t.size, dtype=bool) if doubtful is None else np.asarray(doubtful, dtype=bool).ravel()
    if doubt.size != t.size:
        return []
    with np.errstate(invalid="ignore"):  # a non-finite time makes NaN intervals, which link nothing
        rr_all = np.diff(t)
    link = w[:-1] & w[1:] & (ok[1:] | doubt[1:]) & (rr_all < 60.0 / VT_BPM) & (rr_all > 0)
    edges = np.diff(np.concatenate([[0], link.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # beats starts[k] .. ends[k]
    out = []
    for a, b in zip(starts.tolist(), ends.tolist()):
        rr = np.diff(t[a : b + 1])
        regular = bool(rr.std() <= VT_REGULAR_CV * rr.mean())
        if b - a + 1 >= min_beats and (regular or not (doubt[a + 1 : b + 1] & ~ok[a + 1 : b + 1]).any()):
            out.append(Episode("vt", float(t[a]), float(t[b]), b - a + 1, round(60.0 * (b - a) / float(t[b] - t[a]), 1)))
    return out
