"""A virtual chest strap: the same GATT bytes as a Polar H10, from a scenario.

:class:`VirtualWearable` implements :class:`edge.sensors.SensorSource`. Each
simulated second it emits a Heart Rate Measurement with the RR intervals of the
beats that ended in it (as straps do, about once a second), PMD ECG frames
(130 Hz, 73 samples a frame) and PMD ACC frames (25 Hz, 36 samples a frame),
and a Battery Level once a minute. Notification times are simulated time:
``start_time`` plus the simulated offset. ``speed`` paces the output against
the event loop's clock (1.0 = real time); ``0`` or ``inf`` runs as fast as
possible. Generation is lazy, a second at a time, so a 24-hour run needs no
more memory than a minute's.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.sensors import Notification
from simulators.scenarios import Scenario
from simulators.signals import RRGenerator, accel_samples, battery_level, ecg_noise, ecg_waveform
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    PMD_DATA_UUID,
    HeartRateMeasurement,
    encode_battery_level,
    encode_heart_rate_measurement,
    encode_pmd_acc_frame,
    encode_pmd_ecg_frame,
)

ECG_FS = 130
ACC_FS = 25
ECG_FRAME = 73
ACC_FRAME = 36
BATTERY_EVERY_S = 60
YIELD_EVERY = 20  # notifications between yields to the event loop when running flat out


class VirtualWearable:
    """A simulated strap playing ``scenario`` from ``start_time`` for ``duration_s`` seconds.

    Args:
        scenario: the patient's script.
        start_time: s since epoch of simulated second 0.
        duration_s: simulated seconds to emit.
        speed: simulated seconds per real second; 0 or inf: as fast as possible.
        seed: overrides the scenario's seed.
    """

    def __init__(
        self, scenario: Scenario, *, start_time: float, duration_s: float, speed: float = 1.0, seed: int | None = None
    ) -> None:
        self.scenario = scenario
        self.start_time = start_time
        self.duration_s = duration_s
        self.speed = speed
        self.rng = np.random.default_rng(scenario.seed if seed is None else seed)
        self._rr = RRGenerator(scenario.hr_at, self.rng, scenario.rhythm_at)
        self._beats: list[tuple[float, float]] = []  # (time s from start, rr s), upcoming and recent
        self.beat_times: list[float] = []  # s since epoch, every beat emitted (ground truth)
        self.frames = 0

    @property
    def fast(self) -> bool:
        """Whether pacing is off."""
        return self.speed <= 0 or math.isinf(self.speed)

    async def notifications(self) -> AsyncIterator[Notification]:
        """Yield the strap's notifications in time order, paced by ``speed``."""
        loop = asyncio.get_running_loop()
        real0 = loop.time()
        for note in self._simulate():
            if self.fast:
                self.frames += 1
                if self.frames % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            else:
                delay = real0 + (note.time - self.start_time) / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield note

    def _simulate(self) -> Iterator[Notification]:
        ecg_buf: list[np.ndarray] = []
        acc_buf: list[np.ndarray] = []
        for second in range(int(math.ceil(self.duration_s))):
            notes = []
            ecg_t = second + np.arange(ECG_FS) / ECG_FS
            ecg_buf.append(np.round(self._ecg(ecg_t) * 1000).astype(np.int64))
            notes += self._frames(ecg_buf, ECG_FRAME, ecg_t, self._ecg_frame)
            acc_t = second + np.arange(ACC_FS) / ACC_FS
            acc = accel_samples(self.scenario.activity_at(second), acc_t, self.rng)
            acc_buf.append(np.round(acc * 1000).astype(np.int64))
            notes += self._frames(acc_buf, ACC_FRAME, acc_t, self._acc_frame)
            notes.append(self._hrm(second))
            if second % BATTERY_EVERY_S == 0:
                level = battery_level(second)
                notes.append(Notification(BATTERY_LEVEL_UUID, encode_battery_level(level), self.start_time + second))
            yield from sorted(notes, key=lambda n: n.time)

    def _beats_until(self, t_end: float) -> None:
        while not self._beats or self._beats[-1][0] < t_end:
            self._beats.append(self._rr.next_beat())

    def _ecg(self, t: np.ndarray) -> np.ndarray:
        self._beats_until(float(t[-1]) + 1.5)
        self._beats = [b for b in self._beats if b[0] > t[0] - 1.5]
        beats = np.asarray(self._beats)
        x = ecg_waveform(t, beats[:, 0], beats[:, 1]) + ecg_noise(t, self.rng)
        contact = np.array([self.scenario.contact_at(float(s)) for s in t])
        return np.where(contact, x, 0.0)

    def _frames(self, buf: list[np.ndarray], size: int, t: np.ndarray, make: Any) -> list[Notification]:
        joined = np.concatenate(buf)
        out, n_done = [], 0
        end_of_second = float(t[-1])
        leftover = joined.shape[0]
        fs = 1.0 / float(t[1] - t[0])
        while leftover - n_done >= size:
            chunk = joined[n_done : n_done + size]
            n_done += size
            last = end_of_second - (leftover - n_done) / fs
            out.append(make(chunk, self.start_time + last))
        buf[:] = [joined[n_done:]]
        return out

    def _ecg_frame(self, chunk: np.ndarray, t_last: float) -> Notification:
        payload = encode_pmd_ecg_frame(int(t_last * 1e9), [int(v) for v in chunk])
        return Notification(PMD_DATA_UUID, payload, t_last)

    def _acc_frame(self, chunk: np.ndarray, t_last: float) -> Notification:
        samples = [(int(x), int(y), int(z)) for x, y, z in chunk]
        return Notification(PMD_DATA_UUID, encode_pmd_acc_frame(int(t_last * 1e9), samples), t_last)

    def _hrm(self, second: int) -> Notification:
        t_end = second + 1.0
        self._beats_until(t_end)
        done = [(tb, rr) for tb, rr in self._beats if second < tb <= t_end]
        self.beat_times.extend(self.start_time + tb for tb, _ in done)
        rr = tuple(r for _, r in done)
        hr = round(60.0 / (sum(rr) / len(rr))) if rr else round(self.scenario.hr_at(second))
        m = HeartRateMeasurement(int(hr), self.scenario.contact_at(second), None, rr)
        return Notification(HEART_RATE_MEASUREMENT_UUID, encode_heart_rate_measurement(m), self.start_time + t_end)

    def ground_truth(self) -> dict[str, Any]:
        """What was simulated: beat times, episodes and actions, in s since epoch."""
        s = self.scenario
        return {
            "scenario": s.name,
            "start_time": self.start_time,
            "duration_s": self.duration_s,
            "beat_times": self.beat_times,
            "episodes": [
                {"start": self.start_time + g.at, "end": self.start_time + g.at + g.duration, "hr": g.hr,
                 "activity": g.activity, "rhythm": g.rhythm, "contact": g.contact}
                for g in s.segments
            ],
            "actions": [
                {"time": self.start_time + a.at, "type": a.type, "tags": list(a.tags), "severity": a.severity}
                for a in s.actions if a.at < self.duration_s
            ],
        }

    def write_ground_truth(self, path: str | Path) -> None:
        """Write :meth:`ground_truth` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.ground_truth(), indent=1))
