"""The agent without a broker: decoding, batching, urgent flush, strips, patient actions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from edge.agent import EdgeAgent, mark_symptom, press_panic
from edge.outbox import Outbox
from edge.sensors import Notification, SensorSource
from simulators.scenarios import Scenario, Segment, load_scenario
from simulators.wearable import VirtualWearable
from wire import Config, EventType, Kind, Limits, Strip, Summary, decode
from wire.gatt import HEART_RATE_MEASUREMENT_UUID, PMD_DATA_UUID

DEV = "dev-agent"
START = 1_700_000_000.0


class _Garbage:
    """Wraps a source and injects malformed frames."""

    def __init__(self, inner: SensorSource) -> None:
        self.inner = inner

    async def notifications(self) -> AsyncIterator[Notification]:
        async for n in self.inner.notifications():
            yield n
            if n.uuid == HEART_RATE_MEASUREMENT_UUID and int(n.time) % 20 == 0:
                yield Notification(PMD_DATA_UUID, b"\x00\x01", n.time)
                yield Notification(HEART_RATE_MEASUREMENT_UUID, b"", n.time)
                yield Notification("0000ffff-0000-1000-8000-00805f9b34fb", b"?", n.time)


def _messages(box: Outbox) -> list[object]:
    return [decode(p.payload) for p in box.pending(10_000)]


def test_agent_batches_and_counts_bad_frames(tmp_path: Path) -> None:
    wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=200, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent(DEV, _Garbage(wearable), box, window_seconds=10, batch_windows=5)
        report = asyncio.run(agent.run())
        summaries = [m for m in _messages(box) if isinstance(m, Summary)]
    assert report.counters["bad_frames"] == 20 and report.counters["unknown_uuid"] == 10
    assert report.windows == sum(len(s.windows) for s in summaries) == 21  # the last HRM opens window 21
    assert all(len(s.windows) == 5 for s in summaries[:-1])
    assert [s.seq for s in summaries] == sorted(s.seq for s in summaries)


def test_urgent_windows_flush_at_once(tmp_path: Path) -> None:
    scenario = Scenario("t", resting_hr=70, segments=(Segment(at=100, duration=60, hr=90, ramp=5),))
    wearable = VirtualWearable(scenario, start_time=START, duration_s=200, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent(DEV, wearable, box, window_seconds=10, batch_windows=5)
        agent.config = Config(DEV, 1, START, limits=(("hr", Limits(yellow_high=85.0)),))
        asyncio.run(agent.run())
        summaries = [m for m in _messages(box) if isinstance(m, Summary)]
    singles = [s.windows[0] for s in summaries if len(s.windows) == 1]
    assert singles and all(w.hr_mean is not None and w.hr_mean >= 85 for w in singles)


def test_panic_and_symptom_get_strips(tmp_path: Path) -> None:
    scenario = load_scenario("tachy_episode")
    wearable = VirtualWearable(scenario, start_time=START, duration_s=120, speed=0)

    class Acting:
        async def notifications(self) -> AsyncIterator[Notification]:
            async for n in wearable.notifications():
                if n.time >= START + 60 and not getattr(self, "done", False):
                    self.done = True
                    press_panic(box, DEV, time=START + 60)
                    mark_symptom(box, DEV, "start", tags=("dizzy",), severity=2, time=START + 60)
                yield n

    with Outbox(tmp_path / "o.sqlite3") as box:
        asyncio.run(EdgeAgent(DEV, Acting(), box, window_seconds=10, strip_seconds=30).run())
        stop = mark_symptom(box, DEV, "stop", time=START + 130)
        messages = _messages(box)
    events = [m for m in messages if getattr(m, "kind", None) is Kind.EVENT]
    strips = [m for m in messages if isinstance(m, Strip) and not m.reason.startswith("rhythm:")]
    assert [e.type for e in events] == [EventType.PANIC, EventType.SYMPTOM_START, EventType.SYMPTOM_STOP]
    assert stop.period == events[1].period  # stop closes the open period
    assert sorted(s.reason for s in strips) == ["panic", "symptom"]
    assert [m.reason for m in messages if isinstance(m, Strip) and m not in strips] == ["rhythm:tachy"]
    for strip in strips:
        assert strip.ref_seq in {e.seq for e in events}
        assert 29 <= strip.duration <= 30.5 and strip.fs == 130
        assert abs(strip.start + strip.duration - (START + 60)) < 1.0
        assert max(strip.samples) > 500  # R waves of about 1.2 mV, in µV


def test_a_config_changes_the_cadence_only_if_newer_and_is_kept_for_the_next_run(tmp_path: Path) -> None:
    """The server's retained config: new window length and batch size at once, an older version ignored,
    and the limits still there after a restart (they are what the phone warns by offline)."""
    newer = Config(DEV, 2, START, window_seconds=30.0, batch_windows=1, limits=(("hr", Limits(yellow_high=100)),))
    wearable = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=200, speed=0)
    with Outbox(tmp_path / "o.sqlite3") as box:
        agent = EdgeAgent(DEV, wearable, box, window_seconds=10, batch_windows=5)
        agent.apply_config(newer)
        agent.apply_config(Config(DEV, 1, START, window_seconds=5.0, batch_windows=7))  # a stale copy
        asyncio.run(agent.run())
        summaries = [m for m in _messages(box) if isinstance(m, Summary)]
    windows = [w for s in summaries for w in s.windows]
    assert all(len(s.windows) == 1 for s in summaries) and len(windows) >= 6
    assert all(w.end - w.start == 30.0 and w.start % 30 == 0 for w in windows[1:-1])  # first and last partial
    with Outbox(tmp_path / "o.sqlite3") as box:
        again = EdgeAgent(DEV, wearable, box, window_seconds=10, batch_windows=5)
        assert again.config == newer and again.batch_windows == 1 and again.summarizer.window_seconds == 30.0
