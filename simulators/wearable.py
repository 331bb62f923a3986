"""Virtual chest straps: the exact GATT bytes of a Polar H10 or of a standard Heart Rate Service strap.

:class:`VirtualWearable` implements :class:`edge.sensors.SensorSource` over a
:class:`~simulators.body.SimulatedBody`. Each simulated second it emits a
Heart Rate Measurement (0x2A37, ``wire.gatt`` encoding) with the RR intervals
of the beats that ended in it and the skin-contact bit, as straps do about once
a second, and a Battery Level (0x2A19) once a minute. The ``"h10"`` strap also
streams Polar PMD frames: ECG at 130 Hz (73 samples, int24 µV, a frame) and
accelerometer at 25 Hz (36 samples, int16 mg, a frame); the ``"hrs"`` strap is
a plain Heart Rate Service strap without them. Notification times are
simulated time: ``start_time`` plus the simulated offset. ``speed`` paces the
output against the event loop's clock (1.0 = real time); ``0`` or ``inf`` runs
as fast as possible. Generation is lazy, a second at a time.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edge.sensors import Notification
from simulators.body import SimulatedBody
from simulators.scenarios import Scenario
from simulators.signals import battery_level
from simulators.truth import ground_truth, write_ground_truth
from wire.medication import MedicationPlan
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
STRAPS = {"h10": 1.0, "hrs": 0.25}  # strap kind -> battery drain, %/hour (PMD streaming costs more)


class VirtualWearable:
    """A simulated strap playing ``scenario`` from ``start_time`` for ``duration_s`` seconds.

    Args:
        scenario: the patient's script.
        start_time: s since epoch of simulated second 0.
        duration_s: simulated seconds to emit.
        speed: simulated seconds per real second; 0 or inf: as fast as possible.
        seed: overrides the scenario's seed.
        strap: ``"h10"`` (HR + PMD ECG/ACC) or ``"hrs"`` (standard Heart Rate Service only).
        battery_start: % at second 0.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        start_time: float,
        duration_s: float,
        speed: float = 1.0,
        seed: int | None = None,
        strap: str = "h10",
        battery_start: float = 100.0,
    ) -> None:
        if strap not in STRAPS:
            raise ValueError(f"strap must be one of {sorted(STRAPS)}")
        self.scenario = scenario
        self.start_time = start_time
        self.duration_s = duration_s
        self.speed = speed
        self.strap = strap
        self.battery_start = battery_start
        self.body = SimulatedBody(scenario, ecg_fs=ECG_FS, seed=seed)
        self.beat_times: list[float] = []  # s since epoch, every beat reported (ground truth)
        self.frames = 0
        self.now = 0.0  # simulated s from the start of the latest notification
        self._last_hr = round(scenario.hr_at(0.0))

    @property
    def fast(self) -> bool:
        """Whether pacing is off."""
        return self.speed <= 0 or math.isinf(self.speed)

    async def notifications(self) -> AsyncIterator[Notification]:
        """Yield the strap's notifications in time order, paced by ``speed``."""
        loop = asyncio.get_running_loop()
        real0 = loop.time()
        for note in self.simulate():
            self.now = note.time - self.start_time
            if self.fast:
                self.frames += 1
                if self.frames % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            else:
                delay = real0 + (note.time - self.start_time) / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield note

    def simulate(self) -> Iterator[Notification]:
        """All notifications in time order, unpaced (for scoring and benchmarks)."""
        ecg_buf: list[np.ndarray] = []
        acc_buf: list[np.ndarray] = []
        for second in range(int(math.ceil(self.duration_s))):
            notes = []
            if self.strap == "h10":
                ecg_t = second + np.arange(ECG_FS) / ECG_FS
                ecg_buf.append(np.round(self.body.ecg(float(second), ECG_FS) * 1000).astype(np.int64))
                notes += self._frames(ecg_buf, ECG_FRAME, ecg_t, self._ecg_frame)
                acc_t = second + np.arange(ACC_FS) / ACC_FS
                acc_buf.append(np.round(self.body.accel(acc_t) * 1000).astype(np.int64))
                notes += self._frames(acc_buf, ACC_FRAME, acc_t, self._acc_frame)
            notes.append(self._hrm(second))
            if second % BATTERY_EVERY_S == 0:
                level = battery_level(second, self.battery_start, STRAPS[self.strap])
                notes.append(Notification(BATTERY_LEVEL_UUID, encode_battery_level(level), self.start_time + second))
            yield from sorted(notes, key=lambda n: n.time)

    def _frames(
        self, buf: list[np.ndarray], size: int, t: np.ndarray, make: Callable[[np.ndarray, float], Notification]
    ) -> list[Notification]:
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
        payload = encode_pmd_ecg_frame(int(t_last * 1e9), chunk.tolist())
        return Notification(PMD_DATA_UUID, payload, t_last)

    def _acc_frame(self, chunk: np.ndarray, t_last: float) -> Notification:
        samples = [(x, y, z) for x, y, z in chunk.tolist()]
        return Notification(PMD_DATA_UUID, encode_pmd_acc_frame(int(t_last * 1e9), samples), t_last)

    def _hrm(self, second: int) -> Notification:
        t_end = second + 1.0
        done = self.body.beats_between(float(second), t_end)
        self.beat_times.extend(self.start_time + b.time for b in done)
        rr = tuple(b.rr for b in done)
        if rr:
            self._last_hr = min(max(round(60.0 / (sum(rr) / len(rr))), 1), 300)
        m = HeartRateMeasurement(int(self._last_hr), self.body.contact(second), None, rr)
        return Notification(HEART_RATE_MEASUREMENT_UUID, encode_heart_rate_measurement(m), self.start_time + t_end)

    def ground_truth(self, plan: MedicationPlan | None = None) -> dict[str, Any]:
        """What was simulated: beats, episodes, events, actions and doses (under ``plan``), in s since epoch."""
        beats = self.body.beats_until(self.duration_s)
        return ground_truth(self.scenario, beats, self.start_time, self.duration_s, strap=self.strap, plan=plan)

    def write_ground_truth(self, path: str | Path, plan: MedicationPlan | None = None) -> None:
        """Write :meth:`ground_truth` as JSON to ``path``."""
        write_ground_truth(self.ground_truth(plan), path)
