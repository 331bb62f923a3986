"""End to end: a simulated patient through the real edge agent to a real broker."""

from __future__ import annotations

import asyncio
import queue
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from simulators.patient import run_patient
from simulators.scenarios import load_scenario
from wire import BrokerAddress, Event, EventType, Strip, Summary, decode_uplink, uplink_filter

pytestmark = [pytest.mark.mqtt, pytest.mark.e2e]


def _subscriber(url: str, device_id: str) -> tuple[mqtt.Client, queue.SimpleQueue[tuple[str, bytes]]]:
    got: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    ready: queue.SimpleQueue[int] = queue.SimpleQueue()
    addr = BrokerAddress.parse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.put((m.topic, m.payload)) if f"/{device_id}/" in m.topic else None
    client.on_subscribe = lambda *a: ready.put(1)
    client.on_connect = lambda c, *a: c.subscribe(uplink_filter(), qos=1)
    client.connect(addr.host, addr.port)
    client.loop_start()
    ready.get(timeout=10)
    return client, got


def test_run_patient_end_to_end(mqtt_url: str, device_id: str, tmp_path: Path) -> None:
    scenario, duration = load_scenario("tachy_episode"), 360.0
    client, got = _subscriber(mqtt_url, device_id)
    start = time.time() - duration
    try:
        report = asyncio.run(
            run_patient(
                scenario, device_id, mqtt_url, tmp_path / "o.sqlite3", start_time=start, duration_s=duration,
                speed=0, window_seconds=10, batch_windows=5, ground_truth_path=tmp_path / "truth.json",
            )
        )
        assert report.drained and report.pending == 0 and report.acked >= report.summaries + 5
        messages = []
        deadline = time.monotonic() + 10
        while len([m for m in messages if not m[1].kind.value == "status"]) < report.acked and time.monotonic() < deadline:
            try:
                messages.append(decode_uplink(*got.get(timeout=1)))
            except queue.Empty:
                pass
    finally:
        client.disconnect()
        client.loop_stop()
    bodies = [m for _, m in messages]
    windows = [w for m in bodies if isinstance(m, Summary) for w in m.windows]
    assert len(windows) == report.windows >= 35
    for w in windows:
        mid = (w.start + w.end) / 2 - start
        if w.hr_mean is None or not 10 < mid < duration - 10:
            continue
        expected = np.mean([scenario.hr_at(mid + d) for d in np.linspace(-5, 5, 11)])
        assert w.hr_mean == pytest.approx(expected, rel=0.08), (mid, w)
    events = sorted((m for m in bodies if isinstance(m, Event)), key=lambda e: e.time)
    assert [e.type for e in events] == [EventType.SYMPTOM_START, EventType.PANIC, EventType.SYMPTOM_STOP]
    assert events[0].tags == ("palpitations", "dizzy") and events[0].severity == 3
    assert events[1].time == pytest.approx(start + 170)
    strips = [m for m in bodies if isinstance(m, Strip)]
    patient_strips = [s for s in strips if not s.reason.startswith("rhythm:")]
    assert sorted(s.reason for s in patient_strips) == ["panic", "symptom"]
    assert all(s.ref_seq in {e.seq for e in events} for s in patient_strips)
    # the episode itself (sinus tachycardia) is caught on the phone and sent with its ECG
    assert "rhythm:tachy" in {s.reason for s in strips}
    seqs = [m.seq for m in bodies if not m.kind.value == "status"]
    assert len(set(seqs)) == len(seqs)
    assert (tmp_path / "truth.json").exists()


def test_three_patients_in_one_loop(mqtt_url: str, tmp_path: Path) -> None:
    async def main() -> list[object]:
        return await asyncio.gather(
            *(
                run_patient(
                    load_scenario(name), f"t-multi-{i}-{int(time.time())}", mqtt_url, tmp_path / f"{i}.sqlite3",
                    start_time=time.time() - 120, duration_s=120, speed=0, window_seconds=10, batch_windows=3,
                )
                for i, name in enumerate(["baseline", "demo_red", "tachy_episode"])
            )
        )

    reports = asyncio.run(main())
    assert all(r.drained and r.windows >= 12 for r in reports)  # type: ignore[attr-defined]
