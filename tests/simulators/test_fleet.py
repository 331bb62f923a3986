"""Fleets through the real outbox and uplink to the real broker: counts, determinism, offline phones."""

from __future__ import annotations

import asyncio
import json
import queue
import time
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from simulators.fleet import fleet_roster, run_agent_fleet, run_summary_fleet
from simulators.patient import run_patient
from simulators.scenarios import Segment, load_scenario
from simulators.summaries import SummaryStream
from wire import BrokerAddress, Summary, SummaryWindow, decode_uplink, uplink_filter

START = 1_700_000_000.0


def test_roster_and_streams_are_deterministic_from_the_seed() -> None:
    a, b, c = fleet_roster(20, 7), fleet_roster(20, 7), fleet_roster(20, 8)
    assert a == b and a != c
    assert len({p.device_id for p in a}) == 20 and len({p.scenario.seed for p in a}) == 20
    first = [SummaryStream(p.scenario, 10, 300, START).windows_until(300) for p in a[:3]]
    again = [SummaryStream(p.scenario, 10, 300, START).windows_until(300) for p in b[:3]]
    assert first == again and first[0] != first[1]


def test_summary_stream_reflects_the_scenario() -> None:
    s = replace(load_scenario("arrhythmia_tour"), segments=load_scenario("arrhythmia_tour").segments)
    windows = {int(w.start - START): w for w in SummaryStream(s, 10, 1200, START).windows_until(1200)}
    assert len(windows) == 120
    assert "af_suspected" in windows[500].flags and "irregular" in windows[500].flags
    assert "vt" in windows[780].flags and "tachy" in windows[400].flags and "brady" in windows[250].flags
    assert "pause" in windows[200].flags and "ectopic" in windows[100].flags
    assert windows[1090].quality == 0 and windows[1090].hr_mean is None
    assert windows[20].flags == () and abs(windows[20].hr_mean - 70) < 10  # type: ignore[operator]
    assert windows[200].pause_max == pytest.approx(3.5) and windows[100].ectopic
    assert windows[20].steps == 0 and windows[20].ectopic == 0


def test_summary_stream_counts_steps_posture_changes_and_falls() -> None:
    from simulators.scenarios import Incident

    base = load_scenario("baseline")  # walks from 300 s for 240 s
    s = replace(base, incidents=(Incident(at=125, type="fall", duration=60),))
    w = {int(x.start - START): x for x in SummaryStream(s, 10, 600, START).windows_until(600)}
    assert w[400].steps == 19 and w[400].activity == "walk" and w[100].steps == 0
    assert w[120].fall and w[120].posture_changes == 1 and w[180].posture_changes == 1 and not w[150].fall


@pytest.mark.mqtt
def test_summary_fleet_sends_every_window_and_all_are_acked(mqtt_url: str, tmp_path: Path) -> None:
    prefix = f"tfleet{int(time.time() * 1000) % 10**8}"
    patients = fleet_roster(6, 3, device_prefix=prefix)
    got: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    ready: queue.SimpleQueue[int] = queue.SimpleQueue()
    addr = BrokerAddress.parse(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: got.put((m.topic, m.payload)) if prefix in m.topic else None
    client.on_subscribe = lambda *a: ready.put(1)
    client.on_connect = lambda c, *a: c.subscribe(uplink_filter("summary"), qos=1)
    client.connect(addr.host, addr.port)
    client.loop_start()
    try:
        ready.get(timeout=10)
        report = run_summary_fleet(
            patients, mqtt_url, tmp_path, start_time=START, duration_s=300, speed=0, window_seconds=10,
            batch_windows=5, drain_timeout_s=30, truth_dir=tmp_path,
        )
        assert report.drained and report.pending == 0 and report.patients == 6
        assert report.windows == 6 * 30 and report.acked == report.messages
        windows: dict[str, int] = {}
        received: list[tuple[str, SummaryWindow]] = []
        deadline = time.monotonic() + 10
        while sum(windows.values()) < report.windows and time.monotonic() < deadline:
            try:
                _, msg = decode_uplink(*got.get(timeout=1))
            except queue.Empty:
                continue
            assert isinstance(msg, Summary)
            windows[msg.device] = windows.get(msg.device, 0) + len(msg.windows)
            received.extend((msg.device, w) for w in msg.windows)
    finally:
        client.disconnect()
        client.loop_stop()
    assert windows == {p.device_id: 30 for p in patients}
    for device, w in received:  # every window's beat count is the truth's
        beats = json.loads((tmp_path / f"{device}.json").read_text())["beats"]["time"]
        assert w.beats == sum(w.start < t <= w.end for t in beats)


@pytest.mark.mqtt
def test_agent_fleet_runs_the_real_edge_agent_with_ground_truth(mqtt_url: str, tmp_path: Path) -> None:
    patients = fleet_roster(2, 5, device_prefix=f"tagent{int(time.time() * 1000) % 10**8}")
    report = asyncio.run(
        run_agent_fleet(patients, mqtt_url, tmp_path, start_time=START, duration_s=60, speed=0, window_seconds=10,
                        batch_windows=3, truth_dir=tmp_path)
    )
    assert report.patients == 2 and report.drained and report.pending == 0 and report.windows >= 12
    assert report.acked >= report.messages > 0
    for p in patients:
        truth = json.loads((tmp_path / f"{p.device_id}.json").read_text())
        assert truth["seed"] == p.scenario.seed and len(truth["beat_times"]) > 40


@pytest.mark.mqtt
def test_run_patient_holds_messages_while_the_phone_is_offline(mqtt_url: str, tmp_path: Path) -> None:
    base = fleet_roster(1, 9, device_prefix=f"tpoff{int(time.time() * 1000) % 10**8}")[0]
    scenario = replace(base.scenario, segments=(Segment(at=0, duration=1000, phone="offline"),), actions=())
    report = asyncio.run(
        run_patient(scenario, base.device_id, mqtt_url, tmp_path / "o.sqlite3", start_time=START, duration_s=60,
                    speed=0, window_seconds=10, batch_windows=2, drain_timeout_s=1.0)
    )
    assert report.published == 0 and report.acked == 0 and not report.drained
    assert report.pending == report.summaries > 0


@pytest.mark.mqtt
def test_an_offline_phone_keeps_its_messages(mqtt_url: str, tmp_path: Path) -> None:
    p = fleet_roster(1, 4, device_prefix=f"toff{int(time.time() * 1000) % 10**8}")[0]
    offline = replace(p, scenario=replace(p.scenario, segments=(Segment(at=0, duration=400, phone="offline"),)))
    report = run_summary_fleet(
        [offline], mqtt_url, tmp_path, start_time=START, duration_s=120, speed=0, window_seconds=10,
        batch_windows=3, drain_timeout_s=1,
    )
    assert report.published == 0 and report.pending == report.messages == 4 and not report.drained


@pytest.mark.mqtt
def test_large_fleets_are_split_across_processes(mqtt_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulators.fleet as fleet

    monkeypatch.setattr(fleet, "PATIENTS_PER_PROCESS", 2)
    patients = fleet_roster(5, 6, device_prefix=f"tshard{int(time.time() * 1000) % 10**8}")
    report = run_summary_fleet(
        patients, mqtt_url, tmp_path, start_time=START, duration_s=60, speed=0, window_seconds=10,
        batch_windows=2, drain_timeout_s=30,
    )
    assert report.patients == 5 and report.windows == 30 and report.drained and report.acked == report.messages
    assert len(list(tmp_path.glob("*.sqlite3"))) == 5


def test_a_whole_day_at_summary_level_shows_its_routine() -> None:
    s = load_scenario("day_routine")
    windows = SummaryStream(s, 60, 86400, START).windows_until(86400)
    assert len(windows) == 1440

    def minutes_with(flag: str) -> list[int]:
        return [int(w.start - START) // 60 for w in windows if flag in w.flags]

    assert minutes_with("af_suspected") == list(range(13 * 60, 13 * 60 + 20))  # AF for 20 minutes
    assert 11 * 60 + 30 in minutes_with("vt") and 10 * 60 + 20 in minutes_with("tachy")
    assert minutes_with("pause") == [23 * 60 + 40]
    falls = [int(w.start - START) // 60 for w in windows if w.fall]
    assert falls == [15 * 60]
    walking = [w for w in windows if w.activity == "walk"]
    assert 60 <= len(walking) <= 75 and all(w.steps and w.steps > 100 for w in walking)
    sleeping = [w.hr_mean for w in windows if START + 3600 <= w.start < START + 6 * 3600]
    day = [w.hr_mean for w in windows if START + 12 * 3600 <= w.start < START + 12.9 * 3600]
    assert max(sleeping) < min(day) + 5  # type: ignore[type-var,operator]
    loose = [w.quality for w in windows if START + 20 * 3600 <= w.start < START + 20.5 * 3600]
    assert max(loose) <= 0.6 and all(w.quality == 1.0 for w in windows[: 6 * 60])
