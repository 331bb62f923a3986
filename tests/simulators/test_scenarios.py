"""Scenarios: the shipped files load, and the profile functions behave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_day_routine_is_a_full_day_with_every_kind_of_event() -> None:
    s = load_scenario("day_routine")
    assert s.patient.condition == "paroxysmal_af" and s.resting_hr == s.patient.resting_hr
    assert s.rhythm_at(13 * 3600 + 60) == "af" and s.rhythm_at(13 * 3600 + 21 * 60) == "sinus"
    assert s.phone_online_at(17 * 3600) is False and s.phone_online_at(19 * 3600 + 60) is True
    assert s.strap_at(20 * 3600 + 60) == "loose" and s.activity_at(15 * 3600 + 60) == "lying"
    assert {i.type for i in s.incidents} == {"fall", "pause", "pvc", "pac"}
    assert [a.at for a in s.actions] == sorted(a.at for a in s.actions) and s.actions[0].at == 10 * 3600 + 16 * 60


def test_times_as_clock_strings() -> None:
    good: dict[str, Any] = {"at": "01:30", "duration": "00:00:45"}  # as from a JSON file
    seg = Segment(**good)
    assert seg.at == 5400 and seg.duration == 45
    bad: dict[str, Any] = {"at": "90", "duration": 10}
    with pytest.raises(ValueError):
        Segment(**bad)


def test_profiles_load_and_validate() -> None:
    from simulators.profiles import Profile, list_profiles, load_profile

    assert {"healthy_adult", "hf_elderly", "af_paroxysmal", "post_mi"} <= set(list_profiles())
    p = load_profile("hf_elderly")
    assert p.peak_hr == pytest.approx(208 - 0.7 * 78) and p.condition == "heart_failure"
    assert load_profile({"age": 30}).peak_hr == pytest.approx(187)
    for bad in ({"age": 5}, {"condition": "flu"}, {"resting_hr": 300}, {"shoe_size": 42}, {"home": [91, 0]}):
        with pytest.raises(ValueError):
            Profile.from_dict(bad)
    with pytest.raises(ValueError):
        load_profile("nobody")


def test_bad_scenario_files_give_clear_errors(tmp_path: Path) -> None:
    cases = {
        "unknown_key": {"name": "x", "colour": "red"},
        "bad_rhythm": {"name": "x", "segments": [{"at": 0, "duration": 5, "rhythm": "torsades"}]},
        "bad_incident": {"name": "x", "incidents": [{"at": 0, "type": "earthquake"}]},
        "bad_pause": {"name": "x", "incidents": [{"at": 0, "type": "pause", "duration": 60}]},
        "bad_profile": {"name": "x", "profile": "nobody"},
    }
    for name, raw in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(raw))
        with pytest.raises(ValueError):
            load_scenario(path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad scenario"):
        load_scenario(tmp_path / "broken.json")
