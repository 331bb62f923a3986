"""Scenarios: the shipped files load, and the profile functions behave."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulators.scenarios import Scenario, Segment, list_scenarios, load_scenario


def test_shipped_scenarios_load() -> None:
    names = list_scenarios()
    assert {"baseline", "tachy_episode", "demo_red"} <= set(names)
    for name in names:
        assert load_scenario(name).name == name


def test_tachy_episode_shape() -> None:
    s = load_scenario("tachy_episode")
    assert s.hr_at(0) == s.resting_hr
    assert max(s.hr_at(t) for t in range(0, 400)) > 130
    assert sum(s.hr_at(t) > 130 for t in range(0, 400)) >= 180  # several minutes
    assert {a.type for a in s.actions} == {"symptom_start", "symptom_stop", "panic"}


def test_demo_red_goes_red_early() -> None:
    s = load_scenario("demo_red")
    assert min(t for t in range(600) if s.hr_at(t) >= 131) <= 70


def test_load_by_path_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"name": "x", "segments": [{"at": 10, "duration": 20, "activity": "lying"}]}))
    s = load_scenario(path)
    assert s.activity_at(15) == "lying" and s.activity_at(40) == "rest"
    with pytest.raises(ValueError):
        load_scenario("no_such_scenario")
    with pytest.raises(ValueError):
        Segment(at=0, duration=10, activity="swim")
    assert Scenario("y", segments=(Segment(0, 10, contact=False),)).contact_at(5) is False
