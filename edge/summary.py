"""Streaming summariser: decoded measurements in, :class:`wire.SummaryWindow` out.

Pure and clock-free: time comes with the data. Windows are ``[k*W, (k+1)*W)``
in epoch seconds for the window length ``W``. Each measurement is put in the
window of its own time stamp; a window is closed once data at least
``lateness`` seconds past its end has been seen (a watermark), so that the
modalities, which arrive slightly out of step, all land in the right window.
Because only time stamps decide, any chunking of the same data yields the same
windows (streaming equals batch), and memory is bounded by the open windows.

HR and HRV come from the strap's RR intervals (Heart Rate Measurement); when a
window has none, from R peaks of the ECG. Activity comes from the
accelerometer, quality from the ECG and the strap's skin-contact bit, battery
from the last battery level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge.dsp import accel_activity, ecg_peaks, ecg_quality, rr_stats
from edge.dsp.ecg import USABLE, ecg_beat_quality, ecg_segments
from wire import HeartRateMeasurement, SummaryWindow

DEFAULT_LATENESS_S = 2.0
DEFAULT_STALL_S = 120.0
STREAMS = ("hrm", "ecg", "acc")
RESYNC_S = 0.5  # a sample stream this far off its expected time is re-anchored


@dataclass
class _Bucket:
    rr: list[float] = field(default_factory=list)
    contact: list[bool] = field(default_factory=list)
    ecg: list[NDArray[np.float64]] = field(default_factory=list)
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
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
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

    def _summarize(self, k: int, b: _Bucket) -> SummaryWindow:
        start = k * self.window_seconds
        ecg = np.concatenate(b.ecg) if b.ecg else np.zeros(0)
        rr = np.asarray(b.rr) if b.rr else _rr_from_ecg(ecg, self.ecg_fs)
        stats = rr_stats(rr)
        self._battery = b.battery if b.battery is not None else self._battery
        activity, intensity = accel_activity(np.concatenate(b.acc), self.acc_fs) if b.acc else ("unknown", None)
        return SummaryWindow(
            start=start,
            end=start + self.window_seconds,
            beats=stats.beats,
            hr_mean=_bpm(stats.hr_mean),
            hr_min=_bpm(stats.hr_min),
            hr_max=_bpm(stats.hr_max),
            rr_mean=_round(stats.rr_mean),
            sdnn=_round(stats.sdnn),
            rmssd=_round(stats.rmssd),
            flags=stats.flags,
            activity=activity,
            intensity=None if intensity is None else round(min(intensity, 16.0), 4),
            quality=_quality(ecg, self.ecg_fs, b.contact),
            battery=self._battery,
        )


def _rr_from_ecg(ecg_mv: NDArray[np.float64], fs: float) -> NDArray[np.float64]:
    """RR intervals (s) between consecutive beats that both lie in usable ECG segments."""
    if ecg_mv.size == 0:
        return np.zeros(0)
    peaks = ecg_peaks(ecg_mv, fs)
    usable = ecg_beat_quality(peaks, ecg_segments(ecg_mv, fs)) >= USABLE
    both = usable[1:] & usable[:-1]
    return (np.diff(peaks) / fs)[both]


def _quality(ecg_mv: NDArray[np.float64], fs: float, contact: list[bool]) -> float:
    q = ecg_quality(ecg_mv, fs) if ecg_mv.size else 1.0
    if contact:
        q = min(q, sum(contact) / len(contact))
    return round(q, 3)


def _bpm(value: float | None) -> float | None:
    return None if value is None else round(min(max(value, 20.0), 300.0), 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
