"""Streaming summariser: decoded measurements in, :class:`wire.SummaryWindow` out.

Pure and clock-free: time comes with the data. Windows are ``[k*W, (k+1)*W)``
in epoch seconds for the window length ``W``. Each measurement is put in the
window of its own time stamp; a window is closed once data at least
``lateness`` seconds past its end has been seen (a watermark), so that the
modalities, which arrive slightly out of step, all land in the right window.
Because only time stamps decide, any chunking of the same data yields the same
windows (streaming equals batch), and memory is bounded by the open windows.

HR and HRV come from the strap's RR intervals (Heart Rate Measurement); when a
window has none, from R peaks of the ECG (beats in usable ECG only). Rhythm
episodes (pauses, brady/tachy runs, AF-suspicious irregularity, ectopic beats,
VT runs of wide beats; ``edge.dsp.rhythm``, ``edge.dsp.width``) and the ECG-derived respiration rate are computed over the
window together with up to ``CONTEXT_S`` of the ECG of the windows before it
(AF needs about 40 beats, a pause may begin before the window): the flags of
the episodes that overlap the window go into its ``flags``. Activity (class,
intensity, steps, posture changes, fall candidate) comes from the
accelerometer, quality from the ECG and the strap's skin-contact bit, battery
from the last battery level.

Windows whose flags include a rhythm event (``STRIP_FLAGS``) that the window
before did not have also leave a strip request ``(time, "rhythm:<flag>")`` in
:attr:`Summarizer.strip_requests` for the agent's ECG ring buffer; ``time`` is
where the strip should end so that it shows the event (up to a window plus
the lateness before the window closes: the ring must hold that much more than
a strip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge.dsp import (
    accel_features,
    ecg_qrs_widths,
    ecg_quality,
    ecg_wide_beats,
    resp_rate_from_ecg,
    rhythm_episodes,
    rhythm_vt_runs,
    rr_stats,
)
from edge.dsp.common import FS_MAX_HZ, FS_MIN_HZ, fs_valid
from edge.dsp.ecg import SegmentQuality, ecg_segments
from edge.dsp.qrs import ecg_peaks_and_artefacts
from edge.dsp.rhythm import Episode, intervals_clear
from edge.dsp.rr import RRStats
from wire import HeartRateMeasurement, SummaryWindow

DEFAULT_LATENESS_S = 2.0
DEFAULT_STALL_S = 120.0
STREAMS = ("hrm", "ecg", "acc")
RESYNC_S = 0.5  # a sample stream this far off its expected time is re-anchored
CONTEXT_S = 90.0  # ECG of the windows before that rhythm and respiration analysis may use
RESP_S = 60.0  # ECG-derived respiration over this much signal ending at the window's end
STRIP_FLAGS = ("af_suspected", "pause", "vt", "brady", "tachy")
STRIP_AFTER_S = 3.0  # a pause's strip ends this long after the pause
STRIP_ONSET_S = 20.0  # a run's or AF's strip ends this long after its onset
EPISODE_FLAGS = {"pause": "pause", "af": "af_suspected", "brady": "brady", "tachy": "tachy", "ectopic": "ectopic",
                 "vt": "vt"}
VT_FLAG_BEATS = 6  # a VT run flags its windows from this many beats (sustained VT: an urgent Holter finding)


@dataclass
class _Bucket:
    rr: list[float] = field(default_factory=list)
    contact: list[bool] = field(default_factory=list)
    ecg: list[NDArray[np.float64]] = field(default_factory=list)
    ecg_t: list[NDArray[np.float64]] = field(default_factory=list)  # sample times (s) of ``ecg``
    acc: list[NDArray[np.float64]] = field(default_factory=list)
    battery: int | None = None


@dataclass
class _Clock:
    """Sample times of one stream: anchored at its first chunk, then by count."""

    fs: float
    anchor: float | None = None
    count: int = 0

    def times(self, start: float, n: int) -> NDArray[np.float64]:
        expected = None if self.anchor is None else self.anchor + self.count / self.fs
        if expected is None or abs(expected - start) > RESYNC_S:
            self.anchor, self.count = start, 0
        assert self.anchor is not None
        t = self.anchor + (self.count + np.arange(n)) / self.fs
        self.count += n
        return t


class Summarizer:
    """Turn a stream of measurements into aligned summary windows.

    Each ``feed_*`` method returns the windows that the new data closed (often
    none); :meth:`finish` closes the rest.
    """

    def __init__(
        self,
        window_seconds: float,
        *,
        ecg_fs: float = 130.0,
        acc_fs: float = 25.0,
        lateness: float = DEFAULT_LATENESS_S,
        stall_s: float = DEFAULT_STALL_S,
    ) -> None:
        if not window_seconds > 0:
            raise ValueError("window_seconds must be positive")
        if not fs_valid(ecg_fs):  # the strap's configured rate: a wrong one is a clear error at once
            raise ValueError(f"ecg_fs must be {FS_MIN_HZ:g}-{FS_MAX_HZ:g} Hz, got {ecg_fs!r}")
        if not (np.isfinite(acc_fs) and acc_fs > 0):
            raise ValueError(f"acc_fs must be a positive rate in Hz, got {acc_fs!r}")
        self.window_seconds = float(window_seconds)
        self.ecg_fs, self.acc_fs, self.lateness = ecg_fs, acc_fs, lateness
        self._buckets: dict[int, _Bucket] = {}
        self._closed_before = -(2**62)  # index of the first window still open
        self.stall_s = stall_s
        self._latest: dict[str, float] = {}
        self._first = float("inf")
        self._ecg_clock = _Clock(ecg_fs)
        self._acc_clock = _Clock(acc_fs)
        self.late_items = 0
        self._battery: int | None = None  # last known level, carried into later windows
        self._context: list[tuple[NDArray[np.float64], NDArray[np.float64]]] = []  # (times, ECG) of closed windows
        self._posture = "unknown"  # at the end of the last closed window
        self._last_flags: tuple[str, ...] = ()
        self.strip_requests: list[tuple[float, str]] = []  # (time, reason) for the agent's strip ring

    def feed_hrm(self, time: float, m: HeartRateMeasurement) -> list[SummaryWindow]:
        """Add a Heart Rate Measurement received at ``time`` (s since epoch)."""
        bucket = self._bucket(time)
        if bucket is not None:
            bucket.rr.extend(m.rr)
            if m.sensor_contact is not None:
                bucket.contact.append(m.sensor_contact)
        return self._advance("hrm", time)

    def feed_battery(self, time: float, percent: int) -> list[SummaryWindow]:
        """Add a battery level (%) received at ``time``."""
        bucket = self._bucket(time)
        if bucket is not None:
            bucket.battery = percent
        return self._advance("battery", time)

    def feed_ecg(self, start: float, samples_mv: ArrayLike) -> list[SummaryWindow]:
        """Add consecutive ECG samples (mV) whose first sample is at ``start``."""
        x = np.asarray(samples_mv, dtype=float).ravel()
        return self._feed_samples(self._ecg_clock.times(start, x.size), x, "ecg")

    def feed_acc(self, start: float, xyz_g: ArrayLike) -> list[SummaryWindow]:
        """Add consecutive accelerometer samples, shape (n, 3) in g, first at ``start``."""
        a = np.asarray(xyz_g, dtype=float).reshape(-1, 3)
        return self._feed_samples(self._acc_clock.times(start, a.shape[0]), a, "acc")

    def ecg_sample_times(self) -> tuple[float | None, int]:
        """(anchor, count) of the ECG clock, for callers that keep raw samples aligned."""
        return self._ecg_clock.anchor, self._ecg_clock.count

    def finish(self) -> list[SummaryWindow]:
        """Close every open window (end of the record)."""
        return self._close(lambda k: True)

    def _feed_samples(self, t: NDArray[np.float64], x: NDArray[np.float64], name: str) -> list[SummaryWindow]:
        if t.size == 0:
            return []
        idx = np.floor(t / self.window_seconds).astype(np.int64)
        for k in np.unique(idx):
            bucket = self._bucket_at(int(k))
            if bucket is not None:
                getattr(bucket, name).append(x[idx == k])
                if name == "ecg":
                    bucket.ecg_t.append(t[idx == k])
        return self._advance(name, float(t[-1]), float(t[0]))

    def _bucket(self, time: float) -> _Bucket | None:
        return self._bucket_at(int(np.floor(time / self.window_seconds)))

    def _bucket_at(self, k: int) -> _Bucket | None:
        if k < self._closed_before:
            self.late_items += 1
            return None
        return self._buckets.setdefault(k, _Bucket())

    def _advance(self, stream: str, time: float, first: float | None = None) -> list[SummaryWindow]:
        self._first = min(self._first, time if first is None else first)
        if stream in STREAMS:
            self._latest[stream] = max(self._latest.get(stream, time), time)
        if not self._latest:
            return []
        newest = max(self._latest.values())
        live = [self._latest.get(s, self._first) for s in STREAMS]
        watermark = min(t for t in live if t >= newest - self.stall_s)
        limit = watermark - self.lateness
        return self._close(lambda k: (k + 1) * self.window_seconds <= limit)

    def _close(self, due: Callable[[int], bool]) -> list[SummaryWindow]:
        out: list[SummaryWindow] = []
        for k in sorted(self._buckets):
            if not due(k):
                break
            out.append(self._summarize(k, self._buckets.pop(k)))
            self._closed_before = k + 1
        return out

    def take_strip_requests(self) -> list[tuple[float, str]]:
        """The rhythm strip requests left by closed windows since the last call (time, reason)."""
        out, self.strip_requests = self.strip_requests, []
        return out

    def _summarize(self, k: int, b: _Bucket) -> SummaryWindow:
        start = k * self.window_seconds
        end = start + self.window_seconds
        ecg = np.concatenate(b.ecg) if b.ecg else np.zeros(0)
        ecg_t = np.concatenate(b.ecg_t) if b.ecg_t else np.zeros(0)
        rhythm = self._rhythm(ecg_t, ecg, start, end)
        stats = rr_stats(np.asarray(b.rr) if b.rr else rhythm.rr)
        self._battery = b.battery if b.battery is not None else self._battery
        act = accel_features(np.concatenate(b.acc), self.acc_fs, self._posture) if b.acc else None
        if act is not None:
            self._posture = act.posture
        flags = _flags(stats, rhythm.episodes, start, end)
        self._request_strips(flags, rhythm.episodes, end)
        return SummaryWindow(
            start=start,
            end=end,
            beats=stats.beats,
            hr_mean=_bpm(stats.hr_mean),
            hr_min=_bpm(stats.hr_min),
            hr_max=_bpm(stats.hr_max),
            rr_mean=_round(stats.rr_mean),
            sdnn=_round(stats.sdnn),
            rmssd=_round(stats.rmssd),
            flags=flags,
            resp_rate=rhythm.resp_rate,
            activity=act.activity if act else "unknown",
            intensity=None if act is None or act.intensity is None else round(min(act.intensity, 16.0), 4),
            quality=_quality(ecg, self.ecg_fs, b.contact),
            battery=self._battery,
            pnn50=_round(stats.pnn50),
            pause_max=None if stats.pause_max is None else round(min(stats.pause_max, 60.0), 2),
            ectopic=_ectopic_count(stats, rhythm.episodes, start, end, from_ecg=not b.rr),
            steps=act.steps if act else None,
            posture_changes=act.posture_changes if act else None,
            fall=bool(act and act.fall),
        )

    def _rhythm(self, t: NDArray[np.float64], x: NDArray[np.float64], start: float, end: float) -> _Rhythm:
        """Beats, rhythm episodes and respiration over this window and the ECG context before it."""
        if t.size:
            self._context.append((t, x))
        while self._context and self._context[0][0][-1] < start - CONTEXT_S:
            self._context.pop(0)
        if not self._context or t.size == 0:
            return _Rhythm(np.zeros(0), [], None)
        times, ecg = _last_run(np.concatenate([c[0] for c in self._context]), np.concatenate([c[1] for c in self._context]), self.ecg_fs)
        return _analyse(times, ecg, self.ecg_fs, start, end)

    def _request_strips(self, flags: tuple[str, ...], episodes: list[Episode], end: float) -> None:
        """A strip request per rhythm flag the window gains, timed so the strip shows the event.

        The request time is the end of the strip: a pause's end plus ``STRIP_AFTER_S``; a run's or
        AF's start plus ``STRIP_ONSET_S`` (the onset inside the strip); else the window's end.
        """
        for flag in flags:
            if flag in STRIP_FLAGS and flag not in self._last_flags:
                self.strip_requests.append((min(end, _strip_time(flag, episodes, end)), f"rhythm:{flag}"))
        self._last_flags = flags


def _strip_time(flag: str, episodes: list[Episode], end: float) -> float:
    kinds = [k for k, f in EPISODE_FLAGS.items() if f == flag]
    found = [e for e in episodes if e.kind in kinds]
    if not found:
        return end
    e = found[-1]
    return e.end + STRIP_AFTER_S if e.kind == "pause" else e.start + STRIP_ONSET_S


@dataclass(frozen=True)
class _Rhythm:
    rr: NDArray[np.float64]  # s, ECG-derived intervals inside the window between usable beats
    episodes: list[Episode]
    resp_rate: float | None


def _last_run(t: NDArray[np.float64], x: NDArray[np.float64], fs: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The contiguous stretch of samples that ends with the newest one (a gap is never analysed across)."""
    gaps = np.flatnonzero(np.diff(t) > 1.5 / fs)
    first = int(gaps[-1]) + 1 if gaps.size else 0
    return t[first:], x[first:]


def _analyse(t: NDArray[np.float64], x: NDArray[np.float64], fs: float, start: float, end: float) -> _Rhythm:
    peaks, artefacts = ecg_peaks_and_artefacts(x, fs)
    beat_t = t[peaks]
    segments = ecg_segments(x, fs)
    clear = intervals_clear(peaks, artefacts)
    usable = _usable_intervals(peaks, segments) & clear
    # fast monomorphic VT is nearly a sine wave, which the spikiness index calls noise: such
    # intervals may still carry a VT run, if it is regular (rhythm_vt_runs)
    doubtful = _usable_intervals(peaks, segments, lambda s: s.usable or s.reason == "noise") & clear & ~usable
    wide = ecg_wide_beats(np.where(usable | doubtful, ecg_qrs_widths(x, peaks, fs), np.nan))
    found = rhythm_episodes(beat_t, usable) + rhythm_vt_runs(beat_t, wide, usable, doubtful=doubtful)
    episodes = [e for e in found if e.end >= start and e.start < end]
    inside = (beat_t >= start) & (beat_t < end)
    rr = np.diff(beat_t)[inside[1:] & inside[:-1] & usable[1:]]
    recent = beat_t >= end - RESP_S
    resp = resp_rate_from_ecg(peaks[recent], x, fs, usable[recent])
    return _Rhythm(rr, episodes, resp.rate if resp.rate is not None and 1 <= resp.rate <= 80 else None)


def _usable_intervals(
    peaks: NDArray[np.int64], segments: list[SegmentQuality], good: Callable[[SegmentQuality], bool] = lambda s: s.usable
) -> NDArray[np.bool_]:
    """Per beat: the interval ending at it lies wholly in ``good`` (usable) segments (the first beat: its own segment).

    Intervals holding a rejected electrode-motion step are cleared out too (by
    the caller): a beat may hide under the artefact, so it is no pause.
    """
    if peaks.size == 0 or not segments:
        return np.zeros(peaks.size, dtype=bool)
    starts = np.array([s.start for s in segments])
    bad = np.concatenate([[0], np.cumsum([not good(s) for s in segments])])
    seg = np.clip(np.searchsorted(starts, peaks, side="right") - 1, 0, len(segments) - 1)
    prev = np.concatenate([[seg[0]], seg[:-1]])
    return np.asarray(bad[seg + 1] - bad[prev] == 0, dtype=bool)


def _flags(stats: RRStats, episodes: list[Episode], start: float, end: float) -> tuple[str, ...]:
    """The window's RR flags and those of the rhythm episodes overlapping it.

    A pause and an ectopic beat belong to the window in which they end (so
    they are counted once); runs and AF flag every window they overlap; a VT
    run only from ``VT_FLAG_BEATS`` beats (shorter salvos stay episodes).
    """
    flags = set(stats.flags)
    for e in episodes:
        if e.kind in ("pause", "ectopic") and not start <= e.end < end:
            continue
        if e.kind == "vt" and e.beats < VT_FLAG_BEATS:
            continue
        flags.add(EPISODE_FLAGS[e.kind])
    return tuple(sorted(flags))


def _ectopic_count(stats: RRStats, episodes: list[Episode], start: float, end: float, from_ecg: bool) -> int | None:
    if from_ecg:
        return sum(1 for e in episodes if e.kind == "ectopic" and start <= e.start < end)
    return stats.ectopic if stats.beats else None


def _quality(ecg_mv: NDArray[np.float64], fs: float, contact: list[bool]) -> float:
    q = ecg_quality(ecg_mv, fs) if ecg_mv.size else 1.0
    if contact:
        q = min(q, sum(contact) / len(contact))
    return round(q, 3)


def _bpm(value: float | None) -> float | None:
    return None if value is None else round(min(max(value, 20.0), 300.0), 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
