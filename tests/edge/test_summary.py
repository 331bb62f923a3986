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


def _rhythm_record() -> tuple[np.ndarray, float, np.ndarray]:
    """MIT-BIH beats at 130 Hz re-timed: 2 min sinus, a 3.5 s pause, 1 min sinus, 3 min AF-like, 1 min sinus."""
    from tests.edge.dsp.records import load_record, resampled, spliced

    rng = np.random.default_rng(9)
    sinus = lambda n: 0.85 * (1 + 0.03 * np.sin(np.arange(n) / 1.1) + 0.01 * rng.standard_normal(n))  # noqa: E731
    rr = np.concatenate([sinus(140), [3.5], sinus(70), 0.7 * np.exp(0.2 * rng.standard_normal(260)), sinus(70)])
    rec = spliced(resampled(load_record("100", 300.0), 130.0), rr, seed=3)
    return rec.signal_mv, rec.fs, rec.beats / rec.fs


def test_rhythm_flags_counts_and_strip_requests_from_ecg() -> None:
    x, fs, truth = _rhythm_record()
    s = Summarizer(30.0, ecg_fs=fs)
    windows = []
    for a in range(0, x.size, 130):
        windows += s.feed_ecg(START + a / fs, x[a : a + 130])
    windows += s.finish()
    pause_end = START + truth[141]
    with_pause = [w for w in windows if "pause" in w.flags]
    assert [w.start <= pause_end < w.end for w in with_pause] == [True]
    assert with_pause[0].pause_max == pytest.approx(3.5, abs=0.05)
    af_start, af_end = START + truth[211], START + truth[471]
    af = [w for w in windows if "af_suspected" in w.flags]
    assert af and all(af_start - 30 <= w.start and w.end <= af_end + 60 for w in af)
    assert sum(w.end - w.start for w in af) >= 0.7 * (af_end - af_start)
    calm = [w for w in windows if w.end < pause_end - 30]
    assert calm and all("af_suspected" not in w.flags and w.ectopic == 0 for w in calm)
    assert all(w.resp_rate is None or 4 <= w.resp_rate <= 40 for w in windows)
    assert all(w.pnn50 is not None for w in windows if w.beats >= 3)
    requests = dict((r, t) for t, r in s.take_strip_requests())
    assert pause_end < requests["rhythm:pause"] <= pause_end + 3.1  # the strip ends just after the pause
    assert af_start < requests["rhythm:af_suspected"] < af_start + 30  # ... and shows the onset of AF
    assert s.take_strip_requests() == []


def test_rhythm_summaries_equal_for_any_chunking() -> None:
    x, fs, _ = _rhythm_record()
    x = x[: int(200 * fs)]

    def run(cuts: list[int]) -> list[SummaryWindow]:
        s, out, edges = Summarizer(20.0, ecg_fs=fs), [], [0, *cuts, x.size]
        for a, b in zip(edges[:-1], edges[1:]):
            out += s.feed_ecg(START + a / fs, x[a:b])
        return out + s.finish()

    batch = run([])
    rng = np.random.default_rng(2)
    for _ in range(3):
        assert run(sorted(set(rng.integers(1, x.size, 40).tolist()))) == batch


def test_activity_steps_posture_and_fall_in_windows() -> None:
    fs, rng = 25.0, np.random.default_rng(4)
    t = np.arange(0, 60, 1 / fs)
    walk = np.tile([0.0, 1.0, 0.0], (t.size, 1)) + 0.01 * rng.standard_normal((t.size, 3))
    walk[:, 1] += 0.25 * np.sin(2 * np.pi * 1.8 * t)
    lying = np.tile([0.0, 0.05, 1.0], (t.size, 1)) + 0.005 * rng.standard_normal((t.size, 3))
    s, t0 = Summarizer(30.0, acc_fs=fs), 1_700_000_010.0  # on a window border
    windows = s.feed_acc(t0, walk) + s.feed_acc(t0 + 60, lying) + s.finish()
    assert [w.activity for w in windows] == ["walk", "walk", "lying", "lying"]
    assert all(abs(w.steps - 54) <= 3 for w in windows[:2]) and windows[2].steps == 0
    assert [w.posture_changes for w in windows] == [0, 0, 1, 0]
    assert not any(w.fall for w in windows)
