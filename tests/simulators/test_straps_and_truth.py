"""Virtual straps emit exactly the standard GATT payloads, and every run's ground truth is complete."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from edge.sensors import Notification
from simulators.scenarios import Action, Incident, Segment, load_scenario
from simulators.wearable import VirtualWearable
from wire.gatt import (
    BATTERY_LEVEL_UUID,
    HEART_RATE_MEASUREMENT_UUID,
    PMD_DATA_UUID,
    HeartRateMeasurement,
    PmdAccFrame,
    PmdEcgFrame,
    decode_heart_rate_measurement,
    decode_pmd_frame,
    encode_heart_rate_measurement,
)

from .conftest import scenario_with

START = 1_700_000_000.0


def _notes(w: VirtualWearable) -> list[Notification]:
    async def run() -> list[Notification]:
        return [n async for n in w.notifications()]

    return asyncio.run(run())


def test_standard_hr_strap_sends_only_heart_rate_and_battery() -> None:
    s = scenario_with(Segment(at=20, duration=10, contact=False))
    w = VirtualWearable(s, start_time=START, duration_s=60, speed=0, strap="hrs")
    notes = _notes(w)
    assert {n.uuid for n in notes} == {HEART_RATE_MEASUREMENT_UUID, BATTERY_LEVEL_UUID}
    hrm = [n for n in notes if n.uuid == HEART_RATE_MEASUREMENT_UUID]
    assert len(hrm) == 60
    truth = w.ground_truth()
    rr_truth = np.array(truth["beats"]["rr"])
    rr_sent = np.concatenate([decode_heart_rate_measurement(n.data).rr for n in hrm])
    assert rr_sent.size == rr_truth.size and np.all(np.abs(rr_sent - rr_truth) <= 0.5 / 1024 + 1e-4)
    for n in hrm:  # byte for byte the Heart Rate Service encoding of what it says
        m = decode_heart_rate_measurement(n.data)
        assert n.data[0] & 0x01 == 0 and n.data == encode_heart_rate_measurement(m)
        assert m.sensor_contact is (not 20 < n.time - START <= 30)


def test_polar_h10_frames_carry_the_simulated_ecg_and_motion() -> None:
    w = VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=30, speed=0, strap="h10")
    notes = _notes(w)
    frames = [(n, decode_pmd_frame(n.data)) for n in notes if n.uuid == PMD_DATA_UUID]
    ecg = [(n, f) for n, f in frames if isinstance(f, PmdEcgFrame)]
    acc = [(n, f) for n, f in frames if isinstance(f, PmdAccFrame)]
    assert all(len(f.samples_uv) == 73 for _, f in ecg) and all(len(f.samples_mg) == 36 for _, f in acc)
    assert all(len(n.data) == 10 + 3 * 73 for n, _ in ecg) and all(len(n.data) == 10 + 6 * 36 for n, _ in acc)
    assert all(f.timestamp_ns == int(n.time * 1e9) for n, f in frames)
    uv = np.concatenate([f.samples_uv for _, f in ecg]).astype(float)
    t = START + np.arange(uv.size) / 130
    for beat in w.ground_truth()["beat_times"][2:-2]:  # every true R peak is a local maximum of the stream
        i = int(round((beat - START) * 130))
        assert uv[i - 1 : i + 2].max() == uv[i - 4 : i + 5].max() > 600, beat
    assert t[-1] <= START + 30
    mg = np.concatenate([f.samples_mg for _, f in acc])
    assert np.abs(np.linalg.norm(mg, axis=1).mean() - 1000) < 30


def test_ground_truth_file_has_beats_episodes_events_and_actions(tmp_path: Path) -> None:
    s = scenario_with(
        Segment(at=20, duration=40, rhythm="af", hr=110, ramp=0),
        Segment(at=70, duration=20, strap="loose"),
        Segment(at=90, duration=30, phone="offline"),
        incidents=(Incident(at=65, type="pause", duration=3.0), Incident(at=100, type="fall")),
        actions=(Action(at=30, type="symptom_start", tags=("palpitations",)), Action(at=101, type="panic")),
    )
    w = VirtualWearable(s, start_time=START, duration_s=120, speed=0)
    _notes(w)
    w.write_ground_truth(tmp_path / "truth.json")
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["format"] == "pisces-ground-truth/1" and truth["beat_times"] == pytest.approx(w.beat_times, abs=1e-3)
    assert len(truth["beats"]["label"]) == len(truth["beats"]["time"]) == len(truth["beats"]["rr"])
    kinds = {(e["type"], e["start"] - START, e["end"] - START) for e in truth["episodes"]}
    assert {("af", 20, 60), ("loose_strap", 70, 90), ("phone_offline", 90, 120)} <= kinds
    events = {e["type"]: e for e in truth["events"]}
    assert events["fall"]["time"] == START + 100
    pause_end = events["pause"]["time"] - START
    i = truth["beats"]["time"].index(events["pause"]["time"])
    assert 65 <= pause_end <= 70 and truth["beats"]["rr"][i] == pytest.approx(3.0)
    assert [a["type"] for a in truth["actions"]] == ["symptom_start", "panic"]
    assert len(truth["gps"]) == 12 and truth["weather"] and truth["profile"]["name"] == "healthy_adult"


def test_loose_strap_drops_contact_now_and_then() -> None:
    s = scenario_with(Segment(at=0, duration=200, strap="loose"))
    w = VirtualWearable(s, start_time=START, duration_s=200, speed=0, strap="hrs")
    contact = [decode_heart_rate_measurement(n.data).sensor_contact for n in _notes(w) if n.uuid == HEART_RATE_MEASUREMENT_UUID]
    assert 0.05 < contact.count(False) / len(contact) < 0.3


def test_unknown_strap_is_refused() -> None:
    with pytest.raises(ValueError, match="strap"):
        VirtualWearable(load_scenario("baseline"), start_time=START, duration_s=1, strap="garmin")
    assert HeartRateMeasurement(60).rr == ()
