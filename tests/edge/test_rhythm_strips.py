"""Rhythm strips: the agent's ring buffer, de-duplication and rate limit, and strips reaching a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from edge.agent import EdgeAgent, press_panic
from edge.dsp import ecg_peaks, ecg_qrs_widths
from edge.outbox import Outbox
from edge.sensors import Notification, SensorSource
from edge.strip_policy import RhythmStripPolicy, StripLimits
from edge.uplink import Uplink
from simulators.scenarios import Incident, Scenario, Segment
from simulators.wearable import VirtualWearable
from tests.edge.test_uplink import Subscriber
from wire import BrokerAddress, Kind, Strip, Summary, decode, decode_uplink, topic_for

START = 1_700_000_040.0  # a multiple of 60 s: windows start on the minute
PAUSE_AT = 125.0  # s from START: 5 s into the window [120, 180), whose strip request comes ~57 s later


def _pause_then_vt() -> Scenario:
    return Scenario(
        "pause_then_vt", resting_hr=70, seed=3,
        segments=(Segment(at=210, duration=20, rhythm="vt", hr=180, ramp=0),),
        incidents=(Incident(at=PAUSE_AT, type="pause", duration=3.5),),
    )  # fmt: skip


def _longest_rr(strip: Strip) -> float:
    peaks = ecg_peaks(np.asarray(strip.samples, dtype=float) / 1000.0, strip.fs)
    return float(np.diff(peaks).max() / strip.fs)


@pytest.mark.mqtt
def test_rhythm_strips_reach_the_broker_and_show_the_event(mqtt_url: str, device_id: str, tmp_path: Path) -> None:
    sub = Subscriber(mqtt_url, topic_for(device_id, Kind.STRIP))
    try:
        wearable = VirtualWearable(_pause_then_vt(), start_time=START, duration_s=330, speed=0)
        with Outbox(tmp_path / "o.sqlite3") as box:
            uplink = Uplink(device_id, BrokerAddress.parse(mqtt_url), box)
            agent = EdgeAgent(device_id, wearable, box, uplink, window_seconds=60)
            report = asyncio.run(agent.run())
            assert asyncio.run(agent.drain(15.0))
            uplink.stop()
        received = [decode_uplink(topic, payload)[1] for topic, _, payload in sub.take(report.strips)]
    finally:
        sub.close()
    strips = {s.reason: s for s in received if isinstance(s, Strip)}
    assert set(strips) == {"rhythm:pause", "rhythm:vt", "rhythm:tachy"}  # VT at 180 bpm is a tachycardia too
    assert report.counters["rhythm_strips"] == 3
    pause, vt = strips["rhythm:pause"], strips["rhythm:vt"]
    assert pause.encoding == "dvz" and pause.ref_seq is None
    # the full 30 s although the request came almost a window after the pause (the ring holds enough)
    assert 29.5 <= pause.duration <= 30.0
    assert pause.start < START + PAUSE_AT < pause.start + pause.duration
    assert 3.0 <= _longest_rr(pause) <= 4.5  # the pause itself is in the strip
    assert vt.start < START + 210 < vt.start + vt.duration  # the onset of the run ...
    x = np.asarray(vt.samples, dtype=float) / 1000.0
    peaks = ecg_peaks(x, vt.fs)
    run = peaks / vt.fs + vt.start > START + 211
    widths = ecg_qrs_widths(x, peaks, vt.fs)
    assert run.sum() >= 30 and np.nanmedian(widths[run]) > 1.2 * np.nanmedian(widths[~run])  # ... and its wide beats


def test_a_run_that_keeps_coming_back_is_rate_limited_and_panic_never(tmp_path: Path) -> None:
    bouts = tuple(Segment(at=60 + 90 * k, duration=45, hr=150, ramp=0) for k in range(5))
    scenario = Scenario("tachy_bouts", resting_hr=70, seed=5, segments=bouts)
    wearable = VirtualWearable(scenario, start_time=START, duration_s=520, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        panics = [START + 60 + 90 * k + 20 for k in (2, 3, 4)]  # in the bouts whose rhythm strips are skipped
        limits = StripLimits(strip_seconds=30, per_reason_per_hour=2)
        agent = EdgeAgent("dev-rl", _Pressing(wearable, box, panics), box, window_seconds=30, strip_limits=limits)
        report = asyncio.run(agent.run())
        messages = [decode(p.payload) for p in box.pending(10_000)]
        restarted = EdgeAgent("dev-rl", _Pressing(wearable, box, []), box, strip_limits=limits)
    gained = sum(1 for s, prev in _window_pairs(messages) if "tachy" in s.flags and "tachy" not in prev.flags)
    strips = [m for m in messages if isinstance(m, Strip)]
    assert gained >= 4  # the flag came back at least four times ...
    assert sum(s.reason == "rhythm:tachy" for s in strips) == 2  # ... two strips were sent
    assert report.counters["rhythm_strips_rate_limited"] + report.counters["rhythm_strips_duplicate"] == gained - 2
    assert sorted(s.start + s.duration for s in strips if s.reason == "panic") == pytest.approx(panics, abs=0.5)
    assert restarted.strip_policy.admit(START + 530, "rhythm:tachy") == "rate_limited"  # the limit survives a restart


class _Pressing:
    """A source that presses panic (into the outbox, as the app does) when the stream reaches given times."""

    def __init__(self, inner: SensorSource, box: Outbox, times: list[float]) -> None:
        self.inner, self.box, self.times = inner, box, list(times)

    async def notifications(self) -> AsyncIterator[Notification]:
        async for n in self.inner.notifications():
            while self.times and n.time >= self.times[0]:
                press_panic(self.box, "dev-rl", time=self.times.pop(0))
            yield n


def _window_pairs(messages: list[object]) -> list[tuple[object, object]]:
    windows = [w for m in messages if isinstance(m, Summary) for w in m.windows]
    return list(zip(windows[1:], windows[:-1]))


def test_policy_skips_overlapping_strips_and_limits_each_reason_and_all() -> None:
    policy = RhythmStripPolicy(StripLimits(strip_seconds=30, per_reason_per_hour=2, total_per_hour=3))
    assert policy.admit(1000, "rhythm:pause") is None
    assert policy.admit(1020, "rhythm:pause") == "duplicate"  # its strip would overlap the last
    assert policy.admit(1020, "rhythm:tachy") is None  # another reason: its own strip
    assert policy.admit(1100, "rhythm:pause") is None
    assert policy.admit(1200, "rhythm:pause") == "rate_limited"  # 2 per hour per reason
    assert policy.admit(1300, "rhythm:af_suspected") == "rate_limited"  # 3 per hour in all
    assert policy.admit(1000 + 3601, "rhythm:pause") is None  # the first left the rolling hour
    restored = RhythmStripPolicy.loads(policy.dumps(), policy.limits)
    assert restored.admit(1000 + 3602, "rhythm:pause") == "duplicate"
    assert restored.admit(1000 - 7200, "rhythm:pause") is None  # the clock jumped back: history cleared
    with pytest.raises(ValueError):
        RhythmStripPolicy.loads("{not json")
