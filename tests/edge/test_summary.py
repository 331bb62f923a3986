"""The streaming summariser on simulated strap data: physiology, alignment, streaming = batch."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from edge.summary import Summarizer
from edge.sensors import Notification
from simulators.scenarios import load_scenario
from simulators.wearable import VirtualWearable
from wire import SummaryWindow
from wire.gatt import HeartRateMeasurement

START = 1_700_000_000.0


def _notes(name: str, duration: float) -> list[Notification]:
    wearable = VirtualWearable(load_scenario(name), start_time=START, duration_s=duration, speed=0)

    async def collect() -> list[Notification]:
        return [n async for n in wearable.notifications()]

    return asyncio.run(collect())


def _summarize(notes: list[Notification], window: float) -> list[SummaryWindow]:
    from edge.agent import EdgeAgent

    from edge.agent import ACC_FS, ECG_FS
    from wire.gatt import (
        BATTERY_LEVEL_UUID,
        HEART_RATE_MEASUREMENT_UUID,
        PmdEcgFrame,
        decode_battery_level,
        decode_heart_rate_measurement,
        decode_pmd_frame,
    )

    s = Summarizer(window, ecg_fs=ECG_FS, acc_fs=ACC_FS)
    out: list[SummaryWindow] = []
    for n in notes:
        if n.uuid == HEART_RATE_MEASUREMENT_UUID:
            out += s.feed_hrm(n.time, decode_heart_rate_measurement(n.data))
        elif n.uuid == BATTERY_LEVEL_UUID:
            out += s.feed_battery(n.time, decode_battery_level(n.data))
        else:
            f = decode_pmd_frame(n.data)
            if isinstance(f, PmdEcgFrame):
                out += s.feed_ecg(n.time - (len(f.samples_uv) - 1) / ECG_FS, np.asarray(f.samples_uv) / 1000)
            else:
                out += s.feed_acc(n.time - (len(f.samples_mg) - 1) / ACC_FS, np.asarray(f.samples_mg) / 1000)
    return out + s.finish()


def test_windows_follow_the_scenario() -> None:
    scenario = load_scenario("tachy_episode")
    windows = _summarize(_notes("tachy_episode", 360), 30.0)
    assert all(w.start % 30 == 0 and w.end - w.start == 30 for w in windows)
    assert [w.start for w in windows] == sorted(w.start for w in windows)
    full = [w for w in windows if START < w.start and w.end < START + 360]
    for w in full:
        mid = (w.start + w.end) / 2 - START
        expected = np.mean([scenario.hr_at(mid + d) for d in np.linspace(-15, 15, 31)])
        assert w.hr_mean == pytest.approx(expected, rel=0.06), (mid, w)
        assert w.activity == "rest" and w.quality == 1.0 and w.battery is not None
        assert 25 * expected / 60 <= w.beats <= 35 * expected / 60
        assert w.sdnn is not None and 1 < w.sdnn < 150
    assert any("tachy" in w.flags for w in full)
    calm = [w for w in full if w.end < START + 60]
    assert calm and all(w.flags == () for w in calm)


def test_streaming_equals_batch_over_random_chunkings() -> None:
    rng = np.random.default_rng(5)
    fs, n = 130.0, int(130 * 45)
    t = np.arange(n) / fs
    ecg = np.sin(2 * np.pi * 1.2 * t) ** 41 + 0.01 * rng.standard_normal(n)  # sharp 72 bpm pulses
    acc = np.tile([0.0, 1.0, 0.0], (int(25 * 45), 1)) + 0.01 * rng.standard_normal((int(25 * 45), 3))
    hrm = [(START + k + 1.0, HeartRateMeasurement(72, True, None, (0.83,))) for k in range(45)]

    def run(seed: int | None) -> list[SummaryWindow]:
        s = Summarizer(10.0)
        chunks_e = _chunks(n, seed)
        chunks_a = _chunks(acc.shape[0], None if seed is None else seed + 1)
        out: list[SummaryWindow] = []
        items = [(START + a / fs, "e", a, b) for a, b in chunks_e] + [(START + a / 25, "a", a, b) for a, b in chunks_a]
        items += [(when, "h", m, None) for when, m in hrm]
        for when, kind, a, b in sorted(items, key=lambda i: i[0]):
            if kind == "e":
                out += s.feed_ecg(when, ecg[a:b])
            elif kind == "a":
                out += s.feed_acc(when, acc[a:b])
            else:
                out += s.feed_hrm(when, a)
        return out + s.finish()

    batch = run(None)
    assert len(batch) == 5
    for seed in range(5):
        assert run(seed) == batch


def _chunks(n: int, seed: int | None) -> list[tuple[int, int]]:
    if seed is None:
        return [(0, n)]
    rng = np.random.default_rng(seed)
    edges = np.unique(np.concatenate([[0, n], rng.integers(1, n, size=rng.integers(5, 60))]))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def test_late_data_is_counted_not_used() -> None:
    s = Summarizer(10.0, lateness=1.0, stall_s=5.0)  # HRM only: the other streams count as stalled
    s.feed_hrm(START + 1, HeartRateMeasurement(60, None, None, (1.0,)))
    assert len(s.feed_hrm(START + 12, HeartRateMeasurement(60, None, None, (1.0,)))) == 1
    s.feed_hrm(START + 2, HeartRateMeasurement(60, None, None, (1.0,)))
    assert s.late_items == 1


@pytest.mark.parametrize("kind", ["flat", "noise", "nan"])
def test_unusable_ecg_gives_no_invented_beats(kind: str) -> None:
    fs, n = 130.0, int(130 * 30)
    rng = np.random.default_rng(8)
    x = {"flat": np.zeros(n), "noise": rng.normal(0, 0.3, n), "nan": np.full(n, np.nan)}[kind]
    s = Summarizer(30.0, ecg_fs=fs)
    windows = s.feed_ecg(START, x) + s.finish()
    assert windows
    for w in windows:
        assert w.beats == 0 and w.hr_mean is None and w.flags == ()
        assert w.quality <= 0.2
